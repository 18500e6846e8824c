//! How a command fails: an exit code (DESIGN 2) and a message.

use std::fmt;

/// Exit code for an operational error (I/O, unsupported state, corrupt image).
pub const EXIT_OPERATIONAL: u8 = 1;
/// Exit code for a usage error (clap uses it too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a refusal by a security rule.
pub const EXIT_REFUSED: u8 = 3;

/// A failed command: its exit code and the error chain to print.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl Failure {
    pub fn operational(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: EXIT_OPERATIONAL,
            error: error.into(),
        }
    }
    pub fn refused(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: EXIT_REFUSED,
            error: error.into(),
        }
    }
    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: EXIT_USAGE,
            error: error.into(),
        }
    }
    pub fn code(&self) -> u8 {
        self.code
    }
    /// The cause chain on one line, `outer: inner: root`, each cause once:
    /// a cause whose text an outer message already quotes (thiserror
    /// variants that print their `#[source]`) is not repeated.
    pub fn message(&self) -> String {
        chain_message(self.error.chain().map(|c| c.to_string()))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

/// Joins the texts of a cause chain with `: `, skipping each text that is
/// already part of what was joined so far.
fn chain_message(texts: impl Iterator<Item = String>) -> String {
    let mut out = String::new();
    for text in texts {
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Shorthand: attach context to an operational error.
pub trait OrFail<T> {
    fn or_fail(self, what: impl FnOnce() -> String) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> OrFail<T> for Result<T, E> {
    fn or_fail(self, what: impl FnOnce() -> String) -> Result<T, Failure> {
        self.map_err(|e| Failure::operational(e.into().context(what())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_quoted_is_printed_once() {
        let texts = [
            "cannot freeze pid 7: PTRACE_SEIZE on pid 7: No such process (os error 3)",
            "PTRACE_SEIZE on pid 7: No such process (os error 3)",
            "No such process (os error 3)",
        ];
        let m = chain_message(texts.iter().map(|s| s.to_string()));
        assert_eq!(m, texts[0]);
        assert_eq!(m.matches("os error 3").count(), 1);
    }

    #[test]
    fn distinct_causes_are_joined() {
        let e = anyhow::Error::new(std::io::Error::from_raw_os_error(2)).context("cannot open x");
        let f = Failure::operational(e);
        assert_eq!(
            f.message(),
            "cannot open x: No such file or directory (os error 2)"
        );
    }
}
