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
    /// The whole cause chain on one line: `outer: inner: root`.
    pub fn message(&self) -> String {
        format!("{:#}", self.error)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
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
