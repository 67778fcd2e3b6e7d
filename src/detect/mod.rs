//! Detection: what the sensor looks for in the traffic.
//!
//! [`rules`] parses Suricata-syntax signatures into typed rules; [`engine`]
//! compiles them into [`groups`] (by class of payload, direction and port)
//! with Hyperscan prefilters; [`matcher`] verifies
//! a rule's contents and pcres over a buffer; [`app`] evaluates rules on
//! what application parsers saw (HTTP transactions, DNS queries, TLS
//! hellos); [`ip_only`] narrows the rules on addresses alone to those a
//! flow's hosts can match; [`dataset`] keeps the named sets `dataset` and `datarep` look
//! buffers up in; [`inspect`] is a worker's [`Inspector`], which runs packets,
//! reassembled streams and application events through them and emits
//! [`Detection`]s.

pub mod app;
pub mod builtin;
pub mod dataset;
pub mod engine;
pub mod groups;
pub mod inspect;
pub mod ip_only;
pub mod matcher;
pub mod rules;

pub use app::Sender;
pub use engine::{Engine, EngineError, Remap};
pub use inspect::{DetectLimits, DetectStats, Detection, FlowState, Inspector, PacketView};
