//! Integration tests: one test binary, one module per topic.
//!
//! They run the real binary (under any argv[0]), real gcc/g++, stock distcc
//! 3.4 from Debian as the peer, and daemons on loopback.

mod util;

mod client;
mod client_our_daemon;
mod client_pump;
mod client_scenarios;
mod client_ssh;
mod client_stock_daemon;
mod daemon;
mod daemon_hostile;
mod daemon_pump;
mod includes;
mod links;
mod lsdistcc;
mod metrics;
mod monitor;
mod pump;
mod smoke;
mod transcripts;
mod units;
