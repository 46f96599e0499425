//! Compiler-argument analysis shared by the client and the daemon.
//!
//! [`classify`] decides remote or local (and why), [`strip`] builds the plain
//! mode server command and the local cpp command, [`dotd`] handles pump-mode
//! dependency files, [`cross`] rewrites compiler names, [`extensions`] knows
//! the file types (facts §4.3-4.5, §1.10.4). [`policy`] is the daemon's
//! allow-list of option shapes a network client may ask for. [`response`]
//! expands `@file` arguments on the client; [`side_files`] keeps units
//! whose compiler writes files beside the object on the client; [`colour`]
//! keeps diagnostics coloured when a local compile would colour them;
//! [`compilation_dir`] tells a remote Clang the client's directory.

pub mod classify;
pub mod colour;
pub mod compilation_dir;
pub mod cross;
pub mod dotd;
pub mod extensions;
pub mod policy;
pub mod response;
pub mod side_files;
pub mod strip;

pub use classify::{Job, LocalReason, Stage, Verdict, classify, expand_preprocessor_options};
