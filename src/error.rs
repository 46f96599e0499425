//! The one error type of the project and its mapping to distcc's exit codes.
//!
//! distcc 3.4 reports every failure of its own as an exit status in 100..=127
//! (`exitcode.h`); scripts and the stock test suite depend on those numbers.
//! Library code returns [`Error`] with a [`Kind`]; only `applets/main.rs`
//! turns it into a message and [`Kind::exit_code`].

use std::fmt;
use std::io;

/// What went wrong, in distcc's terms. Each kind has exactly one exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// 100: general failure.
    Failed,
    /// 101: bad command-line arguments or environment values.
    BadArguments,
    /// 102: the daemon could not bind its port.
    BindFailed,
    /// 103: connecting to a server failed.
    ConnectFailed,
    /// 104: the compiler crashed.
    CompilerCrashed,
    /// 105: out of memory (or a size cap was hit).
    OutOfMemory,
    /// 106: host list could not be parsed or is empty.
    BadHostSpec,
    /// 107: I/O error, including a client that disconnected.
    Io,
    /// 108: unexpected end of input.
    Truncated,
    /// 109: protocol derailment or version mismatch.
    Protocol,
    /// 110: the compiler could not be executed.
    CompilerMissing,
    /// 111: distcc invoked itself.
    Recursion,
    /// 112: could not drop privileges.
    SetuidFailed,
    /// 113: the peer is not allowed.
    AccessDenied,
    /// 114: a lock is busy (internal).
    Busy,
    /// 115: no such file.
    NoSuchFile,
    /// 116: no usable host and fallback is disabled.
    NoHosts,
    /// 117: stale state file.
    Gone,
    /// 118: a timeout or job lifetime was exceeded.
    Timeout,
    /// 119: GSS-API failure.
    GssApiFailed,
    /// 120: internal: the job is a local preprocess.
    LocalCpp,
}

impl Kind {
    /// The distcc exit code for this kind (`exitcode.h`).
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Failed => 100,
            Kind::BadArguments => 101,
            Kind::BindFailed => 102,
            Kind::ConnectFailed => 103,
            Kind::CompilerCrashed => 104,
            Kind::OutOfMemory => 105,
            Kind::BadHostSpec => 106,
            Kind::Io => 107,
            Kind::Truncated => 108,
            Kind::Protocol => 109,
            Kind::CompilerMissing => 110,
            Kind::Recursion => 111,
            Kind::SetuidFailed => 112,
            Kind::AccessDenied => 113,
            Kind::Busy => 114,
            Kind::NoSuchFile => 115,
            Kind::NoHosts => 116,
            Kind::Gone => 117,
            Kind::Timeout => 118,
            Kind::GssApiFailed => 119,
            Kind::LocalCpp => 120,
        }
    }

    /// The kind for a distcc exit code, if it is one of ours (used when a
    /// server fabricates a wait status from a distcc code).
    pub fn from_exit_code(code: i32) -> Option<Kind> {
        ALL_KINDS
            .iter()
            .copied()
            .find(|k| i32::from(k.exit_code()) == code)
    }
}

const ALL_KINDS: [Kind; 21] = [
    Kind::Failed,
    Kind::BadArguments,
    Kind::BindFailed,
    Kind::ConnectFailed,
    Kind::CompilerCrashed,
    Kind::OutOfMemory,
    Kind::BadHostSpec,
    Kind::Io,
    Kind::Truncated,
    Kind::Protocol,
    Kind::CompilerMissing,
    Kind::Recursion,
    Kind::SetuidFailed,
    Kind::AccessDenied,
    Kind::Busy,
    Kind::NoSuchFile,
    Kind::NoHosts,
    Kind::Gone,
    Kind::Timeout,
    Kind::GssApiFailed,
    Kind::LocalCpp,
];

/// An error with its distcc kind and a human-readable context.
#[derive(Debug)]
pub struct Error {
    kind: Kind,
    context: String,
}

impl Error {
    /// A new error of `kind`, described by `context`.
    pub fn new(kind: Kind, context: impl Into<String>) -> Error {
        Error {
            kind,
            context: context.into(),
        }
    }

    /// An I/O error with what was being done when it happened.
    pub fn io(what: impl fmt::Display, err: io::Error) -> Error {
        let kind = match err.kind() {
            io::ErrorKind::UnexpectedEof => Kind::Truncated,
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Kind::Timeout,
            io::ErrorKind::NotFound => Kind::NoSuchFile,
            io::ErrorKind::OutOfMemory => Kind::OutOfMemory,
            _ => Kind::Io,
        };
        if kind == Kind::Timeout {
            // A blocking socket with a time limit reports EAGAIN, whose
            // text ("Resource temporarily unavailable") hides the timeout.
            return Error::new(kind, format!("{what}: timed out"));
        }
        Error::new(kind, format!("{what}: {err}"))
    }

    /// The distcc kind of this error.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The exit code distcc uses for this error.
    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }

    /// The description without the kind.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// Prefixes the context with what the caller was doing.
    pub fn within(mut self, what: impl fmt::Display) -> Error {
        self.context = format!("{what}: {}", self.context);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.context)
    }
}

impl std::error::Error for Error {}

/// Result with the project's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_distcc_table() {
        assert_eq!(Kind::Failed.exit_code(), 100);
        assert_eq!(Kind::BadHostSpec.exit_code(), 106);
        assert_eq!(Kind::Protocol.exit_code(), 109);
        assert_eq!(Kind::Recursion.exit_code(), 111);
        assert_eq!(Kind::NoHosts.exit_code(), 116);
        assert_eq!(Kind::LocalCpp.exit_code(), 120);
    }

    #[test]
    fn codes_are_distinct_and_round_trip() {
        for (i, k) in ALL_KINDS.iter().enumerate() {
            assert_eq!(usize::from(k.exit_code()), 100 + i);
            assert_eq!(Kind::from_exit_code(i32::from(k.exit_code())), Some(*k));
        }
        assert_eq!(Kind::from_exit_code(1), None);
    }

    #[test]
    fn io_errors_map_to_kinds() {
        let e = Error::io("reading", io::Error::from(io::ErrorKind::UnexpectedEof));
        assert_eq!(e.kind(), Kind::Truncated);
        assert!(e.to_string().starts_with("reading: "));
    }
}
