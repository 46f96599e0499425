//! The `distcc --install-links` applet. Not built yet: it answers with a clear error.

use distcc::applet::Invocation;
use distcc::{Error, Kind, Result};
use std::process::ExitCode;

/// Runs the applet.
pub fn main(_inv: Invocation) -> Result<ExitCode> {
    Err(Error::new(
        Kind::Failed,
        "--install-links is not implemented yet",
    ))
}
