//! What inspection keeps about one flow, in the flow's slot: [`FlowState`]
//! (Hyperscan streams and windows of both TCP directions, flowbits,
//! thresholds tracked by flow, the encryption phase, the built-in
//! detectors' state), and the [`Inspection`] methods that let go of it: at
//! a gap, at the start of the encrypted part and at the flow's end. How the
//! windows fill is the stream module's job; what thresholds count is the
//! threshold module's.

use std::net::SocketAddr;

use super::prefilter::close;
use super::threshold::{ThresholdId, ThresholdWindow};
use super::verify::Context;
use super::{Detection, Inspection};
use crate::decode::Carrier;
use crate::detect::builtin::BuiltinFlow;
use crate::flow::FlowRecord;
use crate::reassembly::StreamId;

/// Where a flow stands as to encryption.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Phase {
    #[default]
    Clear,
    /// The packet under way carried the first encrypted bytes.
    Began,
    Encrypted,
}

/// What inspection keeps about one flow, in the flow's slot. A flow that
/// ends must be handed to
/// [`Inspector::end_flow`](super::Inspector::end_flow), which closes its
/// Hyperscan streams.
#[derive(Default)]
pub struct FlowState {
    /// Hyperscan stream of each TCP direction, once it carried data.
    pub(super) scanners: [Option<hyperscan::Stream>; 2],
    pub(super) windows: [Vec<u8>; 2],
    /// Stream offset of each window's first byte.
    pub(super) bases: [u64; 2],
    pub(super) bits: Vec<bool>,
    pub(super) detections: u32,
    /// The rule generation (see [`Inspector::install`](super::Inspector::install))
    /// each direction was checked against the IP-only rules at; 0 before
    /// its first packet. A direction checked before a reload is checked
    /// again against the rules added since.
    pub(super) ip_only: [u32; 2],
    /// The windows of thresholds tracked `by_flow`.
    pub(super) thresholds: Vec<(ThresholdId, ThresholdWindow)>,
    /// Whether its encrypted part began.
    pub(super) phase: Phase,
    /// (transaction, rule) that alerted on a body, shown in windows.
    pub(super) body_alerts: Vec<(u64, u32)>,
    /// What the built-in detectors keep about the flow.
    pub(super) builtin: BuiltinFlow,
}

impl std::fmt::Debug for FlowState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowState")
            .field("detections", &self.detections)
            .field(
                "window_bytes",
                &(self.windows[0].len() + self.windows[1].len()),
            )
            .finish_non_exhaustive()
    }
}

impl FlowState {
    /// Detections of the flow so far.
    pub fn detections(&self) -> u32 {
        self.detections
    }
}

impl Inspection {
    /// Bytes of `flow`'s encrypted part arrived: the first time, the flow
    /// is counted and its stream windows and Hyperscan streams let go.
    pub(super) fn encrypted(&mut self, flow: &mut FlowState, bytes: usize) {
        self.stats.encrypted_bytes += bytes as u64;
        if flow.phase == Phase::Clear {
            flow.phase = Phase::Began;
            self.stats.encrypted_flows += 1;
            self.release_streams(flow);
        }
    }

    /// Lets go of both directions' windows and Hyperscan streams.
    fn release_streams(&mut self, flow: &mut FlowState) {
        self.window_memory -= flow.windows.iter().map(Vec::capacity).sum::<usize>();
        flow.windows = Default::default();
        for scanner in flow.scanners.iter_mut().filter_map(Option::take) {
            close(scanner, self.scratch.as_ref());
        }
    }

    /// Lets go of a direction's window and Hyperscan stream.
    pub(super) fn stream_gap(&mut self, flow: &mut FlowState, stream: &StreamId) {
        self.window_memory -= flow.windows[stream.dir].capacity();
        flow.windows[stream.dir] = Vec::new();
        if let Some(scanner) = flow.scanners[stream.dir].take() {
            close(scanner, self.scratch.as_ref());
        }
    }

    pub(super) fn end_flow(
        &mut self,
        flow: &mut FlowState,
        record: &FlowRecord,
        out: &mut impl FnMut(Detection),
    ) -> u32 {
        let mut found = Vec::new();
        self.builtin
            .end(&mut flow.builtin, record, &mut |f| found.push(f));
        let context = || {
            let ends = (
                SocketAddr::new(record.src, record.src_port),
                SocketAddr::new(record.dst, record.dst_port),
            );
            let carrier = Carrier {
                vlans: record.vlans,
                tunnel: record.tunnel,
            };
            Context {
                app_proto: record.app_proto,
                ..Context::between(
                    record.ts_end_ns,
                    record.flow_id,
                    record.proto,
                    ends,
                    carrier,
                    true,
                )
            }
        };
        self.raise_findings(flow, found, context, out);
        self.release_streams(flow);
        flow.detections
    }

    /// Counts a detection of `family` on `flow`.
    pub(super) fn count(&mut self, flow: &mut FlowState, family: &str) {
        self.stats.detections += 1;
        flow.detections += 1;
        match self.stats.by_family.get_mut(family) {
            Some(count) => *count += 1,
            None => {
                self.stats.by_family.insert(family.to_owned(), 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::decode::ip_proto;
    use crate::detect::builtin::Events;
    use crate::detect::inspect::testing::{engine, inspector, stream};
    use crate::detect::inspect::{DetectLimits, FlowState, Inspector, PacketView};

    #[test]
    fn a_reload_keeps_flowbits_by_name_and_drops_what_removed_rules_kept() {
        let before = concat!(
            "alert tcp any any -> any any (content:\"LOGIN\"; flowbits:set,authed; flowbits:noalert; sid:1;)\n",
            "alert tcp any any -> any any (content:\"CMD\"; flowbits:isset,authed; sid:2;)\n",
            "alert tcp any any -> any any (content:\"PING\"; ",
            "threshold: type limit, track by_flow, count 1, seconds 60; sid:3;)\n",
        );
        // Another flowbit comes first, so `authed` changes index; sids 1
        // and 3 are gone.
        let after = concat!(
            "alert tcp any any -> any any (content:\"HELLO\"; flowbits:set,other; flowbits:noalert; sid:4;)\n",
            "alert tcp any any -> any any (content:\"CMD\"; flowbits:isset,authed; sid:2;)\n",
        );
        let mut d = inspector(before, DetectLimits::default());
        let (mut flow, mut fresh) = (FlowState::default(), FlowState::default());
        let from = stream(1);
        let mut sids = Vec::new();
        d.inspect_stream(
            &mut flow,
            1,
            &from,
            0,
            b"LOGIN PING ",
            usize::MAX,
            &mut |x| sids.push(x.sid),
        );
        assert_eq!(sids, [3]);
        assert_eq!(flow.thresholds.len(), 1);

        let next = engine(after);
        let remap = next.remap_from(d.engine());
        assert_eq!(remap.bits, [Some(1)], "authed moves from bit 0 to bit 1");
        for state in [&mut flow, &mut fresh] {
            d.carry_flow(state, &remap);
        }
        d.install(next, &remap);
        assert!(flow.thresholds.is_empty(), "sid 3's window went with it");
        assert!(flow.scanners.iter().all(Option::is_none));

        sids.clear();
        d.inspect_stream(&mut flow, 1, &from, 11, b"CMD ", usize::MAX, &mut |x| {
            sids.push(x.sid)
        });
        d.inspect_stream(
            &mut fresh,
            1,
            &stream(2),
            0,
            b"CMD ",
            usize::MAX,
            &mut |x| sids.push(x.sid),
        );
        assert_eq!(sids, [2], "only the flow that logged in before the reload");
    }

    /// The sids a one-byte UDP datagram of a flow between 10.0.0.9:40000
    /// (the client) and 10.0.0.1:53 raises, sent by the client when
    /// `to_server`.
    fn udp_sids(d: &mut Inspector, flow: &mut FlowState, to_server: bool) -> Vec<u32> {
        let (client, server) = ("10.0.0.9".parse().unwrap(), "10.0.0.1".parse().unwrap());
        let (src, dst) = if to_server {
            (client, server)
        } else {
            (server, client)
        };
        let packet = PacketView {
            ts_ns: 0,
            flow_id: 1,
            to_server,
            established: true,
            reassembled: false,
            proto: ip_proto::UDP,
            src,
            dst,
            src_port: 40000,
            dst_port: 53,
            carrier: Default::default(),
            transport_valid: true,
            payload: b"x",
            payload_len: 1,
            stream_sizes: None,
            tcp: None,
            icmp: None,
        };
        let mut raised = Vec::new();
        d.inspect_packet(flow, Events::NONE, &packet, &mut |x| raised.push(x.sid));
        raised
    }

    #[test]
    fn ip_only_rules_a_reload_adds_reach_flows_already_checked_once() {
        let before = "alert udp 10.0.0.0/8 any -> any any (msg:\"old\"; sid:1;)\n";
        let after = concat!(
            "alert udp 10.0.0.0/8 any -> any any (msg:\"old\"; sid:1;)\n",
            "alert udp any any -> 10.0.0.1 any (msg:\"added\"; sid:2;)\n",
        );
        let mut d = inspector(before, DetectLimits::default());
        let (mut flow, mut unseen) = (FlowState::default(), FlowState::default());
        let send =
            |d: &mut Inspector, flow: &mut FlowState, to_server| udp_sids(d, flow, to_server);
        assert_eq!(send(&mut d, &mut flow, true), [1]);
        assert!(
            send(&mut d, &mut flow, true).is_empty(),
            "checked once per direction"
        );

        let next = engine(after);
        let remap = next.remap_from(d.engine());
        assert_eq!(remap.ip_only_added, [1]);
        for state in [&mut flow, &mut unseen] {
            d.carry_flow(state, &remap);
        }
        d.install(next, &remap);
        // A reload that adds none keeps what the previous one added due.
        let again = engine(after);
        let remap = again.remap_from(d.engine());
        assert!(remap.ip_only_added.is_empty());
        for state in [&mut flow, &mut unseen] {
            d.carry_flow(state, &remap);
        }
        d.install(again, &remap);
        assert_eq!(send(&mut d, &mut flow, true), [2], "only the added rule");
        assert!(send(&mut d, &mut flow, true).is_empty());
        assert_eq!(
            send(&mut d, &mut flow, false),
            [1],
            "the other direction had not been checked: all rules"
        );
        assert_eq!(send(&mut d, &mut unseen, true), [1, 2]);
    }

    #[test]
    fn ip_only_rules_of_two_reloads_in_a_row_both_reach_a_flow() {
        let rule =
            |sid: u32| format!("alert udp any any -> 10.0.0.1 any (msg:\"r{sid}\"; sid:{sid};)\n");
        let mut d = inspector(&rule(1), DetectLimits::default());
        let mut flow = FlowState::default();
        let send = |d: &mut Inspector, flow: &mut FlowState| udp_sids(d, flow, true);
        assert_eq!(send(&mut d, &mut flow), [1]);
        // sid 3 comes first in the last set, so every index moves.
        for text in [rule(1) + &rule(2), rule(3) + &rule(1) + &rule(2)] {
            let next = engine(&text);
            let remap = next.remap_from(d.engine());
            assert_eq!(remap.ip_only_added.len(), 1);
            d.carry_flow(&mut flow, &remap);
            d.install(next, &remap);
        }
        let mut raised = send(&mut d, &mut flow);
        raised.sort_unstable();
        assert_eq!(
            raised,
            [2, 3],
            "the additions of both reloads, not sid 1 again"
        );
        assert!(send(&mut d, &mut flow).is_empty());
    }
}
