//! Detection: what the sensor looks for in the traffic.
//!
//! [`rules`] parses Suricata-syntax signatures into typed rules. Compiling
//! them into Hyperscan databases and matching them over packets and
//! reassembled streams build on it.

pub mod rules;
