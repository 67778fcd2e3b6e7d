//! Detection: what the sensor looks for in the traffic.
//!
//! [`rules`] parses Suricata-syntax signatures into typed rules; [`engine`]
//! compiles them into groups with Hyperscan prefilters; [`matcher`] verifies
//! a rule's contents and pcres over a buffer; [`http`] evaluates HTTP rules
//! over transactions; [`inspect`] is a worker's [`Detector`], which runs
//! packets, reassembled streams and HTTP transactions through them and
//! emits [`Detection`]s.

pub mod engine;
pub mod http;
pub mod inspect;
pub mod matcher;
pub mod rules;

pub use engine::{Engine, EngineError};
pub use inspect::{DetectLimits, DetectStats, Detection, Detector, PacketView};
