//! distcc, rewritten in Rust as one binary: the library.
//!
//! Everything reusable and unit-tested lives here; the applets (client,
//! daemon, pump, include server, lsdistcc, monitor) live in `applets/` and
//! use this crate. Nothing in here prints to stdout or exits the process.
//!
//! Data flow of a job: the client classifies the compiler command
//! ([`args`]), picks a host ([`hosts`]), preprocesses locally or asks the
//! include server ([`includes`]), and sends a request in the wire format of
//! [`protocol`] with payloads from [`compress`]; the daemon decodes it,
//! checks it, runs the compiler and replies.

pub mod acl;
pub mod applet;
pub mod args;
pub mod bytes;
pub mod c_number;
pub mod compress;
pub mod debuginfo;
pub mod dotd_absolute;
pub mod dotd_rewrite;
pub mod dotd_wrap;
pub mod error;
pub mod fd_limit;
pub mod fdpass;
pub mod includes;
pub mod logging;
pub mod name_service;
pub mod protocol;
pub mod shell_words;

pub use error::{Error, Kind, Result};
pub mod env;
pub mod hosts;
pub mod lock;
pub mod state;
