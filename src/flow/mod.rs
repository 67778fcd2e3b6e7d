//! Flow tracking: one bidirectional record per conversation.
//!
//! [`FlowTable`] is owned by one worker and keyed by [`FlowKey`], the
//! direction-free five-tuple plus VLAN tags. It decides which side initiated
//! each flow, follows the TCP handshake and teardown ([`tcp`]), expires flows
//! on per-protocol idle timeouts, writes interim records for long flows, and
//! evicts the least recently seen flow when its cap is reached. Every flow
//! leaves the table as a [`FlowRecord`] with an [`EndReason`]. Community ID v1
//! ([`community_id`]) is computed from a record, off the packet path.

pub mod community_id;
pub mod key;
pub mod record;
pub mod table;
pub mod tcp;

pub use key::{FlowKey, Side};
pub use record::{ConnState, EndReason, FlowRecord, History};
pub use table::{FlowConfig, FlowSink, FlowStats, FlowTable, RecordSink, Tracked};
