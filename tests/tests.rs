//! Integration tests: one test binary, one module per topic.
//!
//! They run the real binary (under any argv[0]), real gcc/g++, stock distcc
//! 3.4 from Debian as the peer, and daemons on loopback.

mod util;

mod links;
mod lsdistcc;
mod monitor;
mod smoke;
mod transcripts;
mod units;
