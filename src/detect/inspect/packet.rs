//! The packet class: a packet's payload through the packet rules of its
//! group (and, once per direction, the IP-only rules) and through the
//! built-in detectors that read packets. What a flow's encryption phase
//! lets through is decided here; prefilter and verification are their
//! modules' jobs.

use super::flow_state::Phase;
use super::verify::{packet_context, Context};
use super::{Detection, Encrypted, FlowState, Inspection, PacketView};
use crate::decode::ip_proto;
use crate::detect::builtin::Events;
use crate::detect::engine::Engine;
use crate::detect::groups::Class;

impl Inspection {
    pub(super) fn inspect_packet(
        &mut self,
        engine: &Engine,
        flow: &mut FlowState,
        kind: Events,
        packet: &PacketView<'_>,
        out: &mut impl FnMut(Detection),
    ) {
        self.clock_ns = self.clock_ns.max(packet.ts_ns);
        let phase = flow.phase;
        if phase == Phase::Encrypted && self.limits.encrypted == Encrypted::Bypass {
            return;
        }
        self.stats.packets += 1;
        if !engine.rules.is_empty() {
            let payload = phase != Phase::Encrypted;
            self.packet_rules(engine, flow, &packet_context(packet), packet, payload, out);
        }
        let mut found = Vec::new();
        self.builtin
            .packet(&mut flow.builtin, kind, packet, &mut |f| found.push(f));
        self.raise_findings(flow, found, || packet_context(packet), out);
        if phase == Phase::Began {
            flow.phase = Phase::Encrypted;
        }
    }

    /// Runs the packet rules over a packet; without `payload`, only those
    /// that do not read it (the flow is encrypted).
    fn packet_rules(
        &mut self,
        engine: &Engine,
        flow: &mut FlowState,
        context: &Context,
        packet: &PacketView<'_>,
        payload: bool,
        out: &mut impl FnMut(Detection),
    ) {
        let class = match packet.proto {
            _ if !packet.transport_valid => Class::Other,
            ip_proto::TCP if packet.reassembled => Class::Tcp,
            ip_proto::TCP => Class::TcpRaw,
            ip_proto::UDP => Class::Udp,
            _ => Class::Other,
        };
        let group =
            engine.packet[class.index()].lookup(packet.to_server, packet.src_port, packet.dst_port);
        if payload {
            self.collect_packet(class, group, packet);
        } else {
            self.begin_candidates();
            let rules = group.always.iter().copied();
            let blind = rules.filter(|&r| !engine.rules[r as usize].needs_payload);
            self.candidates.list.extend(blind);
            self.stats.scan[class.index()].candidates += self.candidates.list.len() as u64;
        }
        let candidates = std::mem::take(&mut self.candidates.list);
        for &rule in &candidates {
            let compiled = &engine.rules[rule as usize];
            let payload = packet.payload;
            let run = || {
                compiled
                    .program
                    .run_past(payload, 0)
                    .map(|end| (end, payload))
            };
            self.verify(
                engine,
                compiled,
                flow,
                context,
                (class, payload.len()),
                run,
                out,
            );
        }
        self.candidates.list = candidates;
        let checked = &mut flow.ip_only[usize::from(!packet.to_server)];
        let since = std::mem::replace(checked, self.generation);
        if since == self.generation {
            return;
        }
        // A direction checked before a reload is checked against the rules
        // added since only; the list is lent out meanwhile.
        let added = (since != 0).then(|| std::mem::take(&mut self.ip_only_added));
        for rule in engine.ip_only.candidates(packet.src, packet.dst) {
            let due = added.as_ref().is_none_or(|a| {
                a.binary_search_by_key(&rule, |&(rule, _)| rule)
                    .is_ok_and(|i| a[i].1 > since)
            });
            if !due {
                continue;
            }
            self.stats.scan[class.index()].candidates += 1;
            let compiled = &engine.rules[rule as usize];
            let run = || Some((0, packet.payload));
            self.verify(engine, compiled, flow, context, (class, 0), run, out);
        }
        if let Some(added) = added {
            self.ip_only_added = added;
        }
    }
}
