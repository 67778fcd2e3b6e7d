//! TCP connection state as seen from a mirror port.
//!
//! The tracker follows flags only (sequence tracking belongs to reassembly):
//! which side opened, answered, finished or reset, for the Zeek-style history
//! and connection state of the flow record and for deciding when a flow is
//! closed.

use super::record::{ConnState, EndReason, History};
use crate::decode::tcp_flags::{ACK, FIN, RST, SYN};

/// Direction of a packet relative to the flow's initiator.
pub const ORIGINATOR: usize = 0;
/// Direction of a packet from the responder.
pub const RESPONDER: usize = 1;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct SideState {
    syn: bool,
    synack: bool,
    fin: bool,
    rst: bool,
}

/// Handshake and teardown flags seen per direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpTracker {
    sides: [SideState; 2],
    /// Sequence number of the originator's first SYN.
    isn: Option<u32>,
    /// The originator acknowledged the SYN-ACK: the three-way handshake is
    /// complete (or, picked up midstream, a segment without SYN was seen).
    handshake_done: bool,
    /// Picked up without the originator's SYN.
    midstream: bool,
}

/// The history letter for `upper` in direction `dir` (lower case for the responder).
fn letter(upper: u8, dir: usize) -> u8 {
    if dir == ORIGINATOR {
        upper
    } else {
        upper.to_ascii_lowercase()
    }
}

impl TcpTracker {
    /// A tracker for a connection picked up without its SYN (midstream
    /// pick-up on). As in Suricata, it is established once a segment
    /// without SYN was seen: from the packet after a midstream first
    /// packet, or after the ACK that answers a SYN-ACK seen first.
    pub fn midstream() -> Self {
        Self {
            midstream: true,
            ..Self::default()
        }
    }

    /// True when a SYN with sequence number `seq` opens a new connection on
    /// this flow's ports: the flow is closed and the SYN is not a
    /// retransmission of the one that opened it.
    pub fn is_reuse(&self, seq: u32) -> bool {
        self.closed().is_some() && self.isn != Some(seq)
    }

    /// Notes one segment sent in direction `dir` with sequence number `seq`,
    /// `flags` and `has_payload`, adding its history letters.
    pub fn on_segment(
        &mut self,
        dir: usize,
        seq: u32,
        flags: u8,
        has_payload: bool,
        history: &mut History,
    ) {
        if dir == ORIGINATOR && flags & (SYN | ACK) == SYN && self.isn.is_none() {
            self.isn = Some(seq);
        }
        if dir == ORIGINATOR && flags & (SYN | ACK) == ACK && self.established() {
            self.handshake_done = true;
        }
        let side = &mut self.sides[dir];
        let syn = flags & SYN != 0;
        let ack = flags & ACK != 0;
        let fin = flags & FIN != 0;
        let rst = flags & RST != 0;
        if syn && (fin || rst) {
            history.note(letter(b'Q', dir));
        }
        if syn && !ack {
            side.syn = true;
            history.note(letter(b'S', dir));
        } else if syn {
            side.synack = true;
            history.note(letter(b'H', dir));
        } else if ack && !has_payload && !fin && !rst {
            history.note(letter(b'A', dir));
        }
        if has_payload {
            history.note(letter(b'D', dir));
        }
        if fin {
            side.fin = true;
            history.note(letter(b'F', dir));
        }
        if rst {
            side.rst = true;
            history.note(letter(b'R', dir));
        }
        if self.midstream && !syn {
            self.handshake_done = true;
        }
    }

    /// How the connection ended, if it has: a reset from either side, or FIN
    /// from both.
    pub fn closed(&self) -> Option<EndReason> {
        let [o, r] = self.sides;
        if o.rst || r.rst {
            Some(EndReason::Rst)
        } else if o.fin && r.fin {
            Some(EndReason::Fin)
        } else {
            None
        }
    }

    /// True once the originator's SYN and the responder's SYN-ACK were seen.
    pub fn established(&self) -> bool {
        self.sides[ORIGINATOR].syn && self.sides[RESPONDER].synack
    }

    /// True once the three-way handshake is complete (SYN, SYN-ACK, ACK).
    pub fn handshake_done(&self) -> bool {
        self.handshake_done
    }

    /// True when the originator opened with a SYN.
    pub fn opened_with_syn(&self) -> bool {
        self.sides[ORIGINATOR].syn
    }

    /// Zeek's `conn_state`; `responder_seen` tells whether anything came back.
    pub fn conn_state(&self, responder_seen: bool) -> ConnState {
        let [o, r] = self.sides;
        match (o.syn, r.synack) {
            (true, true) => {
                if o.rst {
                    ConnState::Rsto
                } else if r.rst {
                    ConnState::Rstr
                } else if o.fin && r.fin {
                    ConnState::SF
                } else if o.fin {
                    ConnState::S2
                } else if r.fin {
                    ConnState::S3
                } else {
                    ConnState::S1
                }
            }
            (true, false) => {
                if r.rst {
                    ConnState::Rej
                } else if o.rst {
                    ConnState::Rstos0
                } else if o.fin {
                    ConnState::Sh
                } else if !responder_seen {
                    ConnState::S0
                } else {
                    ConnState::Oth
                }
            }
            (false, true) => {
                if r.rst {
                    ConnState::Rstrh
                } else if r.fin {
                    ConnState::Shr
                } else {
                    ConnState::Oth
                }
            }
            (false, false) => ConnState::Oth,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::tcp_flags::PSH;

    fn run(segments: &[(usize, u8, bool)]) -> (TcpTracker, History) {
        let mut tracker = TcpTracker::default();
        let mut history = History::default();
        for &(dir, flags, data) in segments {
            tracker.on_segment(dir, 7, flags, data, &mut history);
        }
        (tracker, history)
    }

    #[test]
    fn full_connection_is_sf_with_zeek_history() {
        let (t, h) = run(&[
            (ORIGINATOR, SYN, false),
            (RESPONDER, SYN | ACK, false),
            (ORIGINATOR, ACK, false),
            (ORIGINATOR, PSH | ACK, true),
            (RESPONDER, PSH | ACK, true),
            (ORIGINATOR, FIN | ACK, false),
            (RESPONDER, FIN | ACK, false),
            (ORIGINATOR, ACK, false),
        ]);
        assert_eq!(h.as_str(), "ShADdFf");
        assert_eq!(t.conn_state(true), ConnState::SF);
        assert_eq!(t.closed(), Some(EndReason::Fin));
    }

    #[test]
    fn reset_answer_to_syn_is_rejected() {
        let (t, h) = run(&[(ORIGINATOR, SYN, false), (RESPONDER, RST | ACK, false)]);
        assert_eq!(h.as_str(), "Sr");
        assert_eq!(t.conn_state(true), ConnState::Rej);
        assert_eq!(t.closed(), Some(EndReason::Rst));
    }

    #[test]
    fn retransmitted_syn_after_reset_is_not_a_new_connection() {
        let (t, _) = run(&[(ORIGINATOR, SYN, false), (RESPONDER, RST | ACK, false)]);
        assert!(!t.is_reuse(7));
        assert!(t.is_reuse(8));
    }

    /// Whether each segment, fed in turn, found the connection established
    /// (the state before the segment, as rules see it).
    fn established_before(mut tracker: TcpTracker, segments: &[(usize, u8)]) -> Vec<bool> {
        let mut history = History::default();
        segments
            .iter()
            .map(|&(dir, flags)| {
                let before = tracker.handshake_done();
                tracker.on_segment(dir, 7, flags, flags & PSH != 0, &mut history);
                before
            })
            .collect()
    }

    #[test]
    fn midstream_connections_are_established_from_their_second_segment() {
        let data = [
            (ORIGINATOR, PSH | ACK),
            (RESPONDER, ACK),
            (RESPONDER, PSH | ACK),
        ];
        assert_eq!(
            established_before(TcpTracker::midstream(), &data),
            [false, true, true]
        );
        assert_eq!(
            established_before(TcpTracker::default(), &data),
            [false, false, false]
        );
        // A SYN-ACK seen first: established once the originator answers it.
        let synack = [
            (RESPONDER, SYN | ACK),
            (ORIGINATOR, ACK),
            (RESPONDER, PSH | ACK),
        ];
        assert_eq!(
            established_before(TcpTracker::midstream(), &synack),
            [false, false, true]
        );
        let full = [
            (ORIGINATOR, SYN),
            (RESPONDER, SYN | ACK),
            (ORIGINATOR, ACK),
            (ORIGINATOR, PSH | ACK),
        ];
        assert_eq!(
            established_before(TcpTracker::default(), &full),
            [false, false, false, true]
        );
    }

    #[test]
    fn unanswered_syn_is_s0_and_open() {
        let (t, _) = run(&[(ORIGINATOR, SYN, false), (ORIGINATOR, SYN, false)]);
        assert_eq!(t.conn_state(false), ConnState::S0);
        assert_eq!(t.closed(), None);
    }
}
