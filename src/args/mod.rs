//! Compiler-argument analysis. This branch adds only the daemon's option
//! allow-list; the classifier lands from main.

pub mod policy;
