//! Include analysis for pump mode: which files a compile reads, without
//! preprocessing.
//!
//! Data flow: the include-server applet receives a request
//! ([`server::parse_request`]), [`command`] extracts search directories and
//! macros from the compiler argv, [`compiler`] asks the compiler once for its
//! default directories and predefined macros, [`closure`] walks the
//! directives ([`scanner`], [`macros`], [`condexpr`], [`resolve`]) using the
//! shared lock-free [`cache`], and [`mirror`] writes the client root whose
//! paths go back in the reply.

pub mod bundle;
pub mod cache;
pub mod clock;
pub mod closure;
pub mod command;
pub mod compiler;
pub mod condexpr;
pub mod fsview;
pub mod lex;
pub mod macros;
pub mod mirror;
pub mod resolve;
pub mod scanner;
pub mod server;
pub mod twins;
pub mod unseen;
