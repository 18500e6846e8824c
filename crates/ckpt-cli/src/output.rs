//! Terminal output helpers: progress only on a terminal and never with --quiet.

use std::io::IsTerminal;

/// Whether progress lines should be shown on standard error.
pub fn show_progress(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}
