//! What a flow leaves behind: the [`FlowRecord`] and its vocabulary.

use std::net::IpAddr;

use crate::applayer::AppSummary;
use crate::decode::{Tunnel, Vlans};
use crate::reassembly::StreamCounters;

/// Why a flow record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// TCP closed with FIN from both sides.
    Fin,
    /// TCP reset.
    Rst,
    /// No packet within the idle timeout of the flow's protocol and state.
    Idle,
    /// Interim record of a flow still open after the active timeout.
    Active,
    /// Evicted to make room when the flow table was full.
    Evicted,
    /// The sensor stopped (end of input or a signal).
    Shutdown,
}

impl EndReason {
    /// Name used in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fin => "fin",
            Self::Rst => "rst",
            Self::Idle => "idle",
            Self::Active => "active",
            Self::Evicted => "evicted",
            Self::Shutdown => "shutdown",
        }
    }
}

/// Zeek's `conn_state` summary of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// Connection attempt seen, no reply.
    S0,
    /// Established, not terminated.
    S1,
    /// Normal establishment and termination.
    SF,
    /// Connection attempt rejected.
    Rej,
    /// Established, close attempt by originator seen (no reply from responder).
    S2,
    /// Established, close attempt by responder seen (no reply from originator).
    S3,
    /// Established, originator aborted (sent a RST).
    Rsto,
    /// Responder sent a RST.
    Rstr,
    /// Originator sent a SYN followed by a RST, never saw a SYN-ACK.
    Rstos0,
    /// Responder sent a SYN-ACK followed by a RST, never saw a SYN from the originator.
    Rstrh,
    /// Originator sent a SYN followed by a FIN, never saw a SYN-ACK.
    Sh,
    /// Responder sent a SYN-ACK followed by a FIN, never saw a SYN from the originator.
    Shr,
    /// No SYN seen, just midstream traffic.
    Oth,
}

impl ConnState {
    /// Zeek's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::S0 => "S0",
            Self::S1 => "S1",
            Self::SF => "SF",
            Self::Rej => "REJ",
            Self::S2 => "S2",
            Self::S3 => "S3",
            Self::Rsto => "RSTO",
            Self::Rstr => "RSTR",
            Self::Rstos0 => "RSTOS0",
            Self::Rstrh => "RSTRH",
            Self::Sh => "SH",
            Self::Shr => "SHR",
            Self::Oth => "OTH",
        }
    }
}

/// Zeek-style connection history: one letter per event kind and direction,
/// upper case for the originator, lower case for the responder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct History {
    letters: [u8; History::CAPACITY],
    len: u8,
}

impl History {
    /// Letters held at most (each letter appears once per direction).
    pub const CAPACITY: usize = 32;

    /// Appends `letter` unless it is already present.
    pub fn note(&mut self, letter: u8) {
        let len = usize::from(self.len);
        if len < Self::CAPACITY && !self.letters[..len].contains(&letter) {
            self.letters[len] = letter;
            self.len += 1;
        }
    }

    /// The history as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.letters[..usize::from(self.len)]).unwrap_or_default()
    }
}

/// One flow record: a whole flow, or one interval of a long one.
///
/// Per-direction arrays are indexed `[to_server, to_client]`: to-server is
/// what the initiator sent.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRecord {
    /// Identifier shared by every record of the flow.
    pub flow_id: u64,
    /// Index of the worker that tracked the flow.
    pub worker: u16,
    /// First packet of this record, nanoseconds since the Unix epoch.
    pub ts_start_ns: u64,
    /// Last packet of this record, nanoseconds since the Unix epoch.
    pub ts_end_ns: u64,
    /// IANA protocol number.
    pub proto: u8,
    /// Initiator's address.
    pub src: IpAddr,
    /// Responder's address.
    pub dst: IpAddr,
    /// Initiator's port (ICMP: type of the first message).
    pub src_port: u16,
    /// Responder's port (ICMP: code of the first message).
    pub dst_port: u16,
    /// VLAN tags, outermost first.
    pub vlans: Vlans,
    /// The tunnel the flow was carried in.
    pub tunnel: Option<Tunnel>,
    /// Application protocol, once known.
    pub app_proto: Option<&'static str>,
    /// Packets per direction.
    pub pkts: [u64; 2],
    /// Bytes on the wire per direction, link-layer headers included.
    pub bytes: [u64; 2],
    /// Transport payload bytes per direction.
    pub payload_bytes: [u64; 2],
    /// TCP flags seen per direction, OR-ed.
    pub tcp_flags: [u8; 2],
    /// Zeek-style history.
    pub history: History,
    /// Zeek-style connection state.
    pub state: ConnState,
    /// Why the record was written.
    pub end_reason: EndReason,
    /// TCP reassembly events so far in the flow, both directions summed.
    pub reassembly: StreamCounters,
    /// Detections so far in the flow.
    pub detections: u32,
    /// What the application-layer parsers learnt (first HTTP exchange,
    /// first DNS query and response).
    pub app: AppSummary,
}

#[cfg(test)]
impl FlowRecord {
    /// A TCP flow's record, 10.0.0.1:1000 to 10.0.0.2:80, for tests to
    /// change what they look at.
    pub fn example() -> Self {
        use crate::decode::ip_proto;
        Self {
            flow_id: 1,
            worker: 0,
            ts_start_ns: 0,
            ts_end_ns: 0,
            proto: ip_proto::TCP,
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            src_port: 1000,
            dst_port: 80,
            vlans: Default::default(),
            tunnel: None,
            app_proto: None,
            pkts: [1, 1],
            bytes: [60, 60],
            payload_bytes: [0, 0],
            tcp_flags: [0, 0],
            history: Default::default(),
            state: crate::flow::ConnState::SF,
            end_reason: crate::flow::EndReason::Fin,
            reassembly: Default::default(),
            detections: 0,
            app: Default::default(),
        }
    }
}
