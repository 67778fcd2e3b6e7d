//! From a candidate rule to a [`Detection`]: the match context of a buffer,
//! the rule's header, flow and flowbit conditions, its matches, flowbit
//! updates, the per-inspection alert limit and the detection's excerpt;
//! and the same addressing for what the built-in detectors found. Which
//! rules are candidates is the prefilter's job; whether a match alerts
//! under a threshold is the threshold module's.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::{Detection, FlowState, Inspection, PacketView};
use crate::decode::{ip_proto, Carrier};
use crate::detect::builtin::{Finding, GID};
use crate::detect::engine::{CompiledRule, Engine};
use crate::detect::groups::Class;
use crate::detect::rules::{Dsize, FlowbitOp, Protocol};

/// Bytes of a detection's excerpt on each side of the match end.
const EXCERPT_SIDE: usize = 64;

/// The match context of one buffer.
#[derive(Clone, Copy)]
pub(super) struct Context {
    pub(super) ts_ns: u64,
    pub(super) flow_id: u64,
    pub(super) proto: u8,
    pub(super) src: IpAddr,
    pub(super) dst: IpAddr,
    pub(super) src_port: u16,
    pub(super) dst_port: u16,
    pub(super) carrier: Carrier,
    pub(super) to_server: bool,
    pub(super) established: bool,
    pub(super) payload_len: Option<u32>,
    /// The packet's TCP flags (packets only).
    pub(super) tcp_flags: Option<u8>,
    /// The packet's ICMP type and code (packets only).
    pub(super) icmp: Option<(u8, u8)>,
    /// The TCP sequence space of initiator and responder (packets only).
    pub(super) stream_sizes: Option<[u64; 2]>,
    pub(super) stream_base: Option<u64>,
    pub(super) transport_valid: bool,
    pub(super) app_proto: Option<&'static str>,
}

impl Context {
    /// The context of data from `src` to `dst` of an established flow that
    /// is not one packet's payload (a stream chunk, an application event,
    /// the flow's end): no packet fields, no application protocol.
    pub(super) fn between(
        ts_ns: u64,
        flow_id: u64,
        proto: u8,
        (src, dst): (SocketAddr, SocketAddr),
        carrier: Carrier,
        to_server: bool,
    ) -> Self {
        Self {
            ts_ns,
            flow_id,
            proto,
            src: src.ip(),
            dst: dst.ip(),
            src_port: src.port(),
            dst_port: dst.port(),
            carrier,
            to_server,
            established: true,
            payload_len: None,
            tcp_flags: None,
            icmp: None,
            stream_sizes: None,
            stream_base: None,
            transport_valid: true,
            app_proto: None,
        }
    }
}

/// The match context of a packet's payload.
pub(super) fn packet_context(packet: &PacketView<'_>) -> Context {
    Context {
        ts_ns: packet.ts_ns,
        flow_id: packet.flow_id,
        proto: packet.proto,
        src: packet.src,
        dst: packet.dst,
        src_port: packet.src_port,
        dst_port: packet.dst_port,
        carrier: packet.carrier,
        to_server: packet.to_server,
        established: packet.established,
        payload_len: Some(packet.payload_len),
        tcp_flags: packet.tcp.map(|h| h.flags),
        icmp: packet.icmp.map(|(icmp_type, code, _)| (icmp_type, code)),
        stream_sizes: packet.stream_sizes,
        stream_base: None,
        transport_valid: packet.transport_valid,
        app_proto: None,
    }
}

/// What a detection says of the rule or built-in detector that raised it.
struct Signature {
    gid: u32,
    sid: u32,
    rev: u32,
    msg: Arc<str>,
    classtype: Option<String>,
    priority: u8,
    family: Arc<str>,
    metadata: Arc<str>,
}

impl Context {
    /// A detection of `signature` addressed as this context, with what
    /// matched: bytes around it, and on a stream its offset.
    fn detection(
        &self,
        signature: Signature,
        stream_offset: Option<u64>,
        excerpt: Vec<u8>,
    ) -> Detection {
        Detection {
            ts_ns: self.ts_ns,
            flow_id: self.flow_id,
            proto: self.proto,
            src: self.src,
            dst: self.dst,
            src_port: self.src_port,
            dst_port: self.dst_port,
            carrier: self.carrier,
            gid: signature.gid,
            sid: signature.sid,
            rev: signature.rev,
            msg: signature.msg,
            classtype: signature.classtype,
            priority: signature.priority,
            family: signature.family,
            to_server: self.to_server,
            stream_offset,
            excerpt,
            app_proto: self.app_proto,
            metadata: signature.metadata,
            evidence: None,
        }
    }
}

impl Inspection {
    /// Writes what the built-in detectors found, addressed like rules'
    /// detections in the context `context` makes (made only when they found
    /// something).
    pub(super) fn raise_findings(
        &mut self,
        flow: &mut FlowState,
        found: Vec<Finding>,
        context: impl FnOnce() -> Context,
        out: &mut impl FnMut(Detection),
    ) {
        if found.is_empty() {
            return;
        }
        let context = context();
        for finding in found {
            self.raise_finding(flow, finding, &context, out);
        }
    }

    /// Writes what a built-in detector found, addressed like a rule's
    /// detection in `context`.
    fn raise_finding(
        &mut self,
        flow: &mut FlowState,
        finding: Finding,
        context: &Context,
        out: &mut impl FnMut(Detection),
    ) {
        let found = finding.signature;
        self.count(flow, found.family);
        let signature = Signature {
            gid: GID,
            sid: found.sid,
            rev: 1,
            msg: Arc::from(found.msg),
            classtype: Some(found.classtype.to_owned()),
            priority: found.priority,
            family: Arc::from(found.family),
            metadata: Arc::from(finding.metadata.as_str()),
        };
        out(context.detection(signature, None, finding.excerpt));
    }

    /// Checks a candidate rule's header, flow and flowbit conditions, then
    /// its matches (`run`: the end of the match and the buffer it is in),
    /// and raises the detection; true when it did. `checked` is the class
    /// of the candidate's database and the bytes its matches run over.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn verify<B: AsRef<[u8]>>(
        &mut self,
        engine: &Engine,
        compiled: &CompiledRule,
        flow: &mut FlowState,
        context: &Context,
        checked: (Class, usize),
        run: impl FnOnce() -> Option<(usize, B)>,
        out: &mut impl FnMut(Detection),
    ) -> bool {
        let (class, bytes) = checked;
        if !header_allows(engine, compiled, flow, context) {
            self.stats.scan[class.index()].header_rejects += 1;
            return false;
        }
        let counters = &mut self.stats.scan[class.index()];
        counters.verified += 1;
        counters.verified_bytes += bytes as u64;
        self.stats.verified += 1;
        let rule = &compiled.rule;
        let Some((end, buffer)) = run() else {
            return false;
        };
        let buffer = buffer.as_ref();
        if !compiled.flowbits.is_empty() {
            let state = &mut *flow;
            for (op, bits, _) in &compiled.flowbits {
                for &bit in bits {
                    let slot = &mut state.bits[usize::from(bit)];
                    match op {
                        FlowbitOp::Set => *slot = true,
                        FlowbitOp::Unset => *slot = false,
                        FlowbitOp::Toggle => *slot = !*slot,
                        FlowbitOp::IsSet | FlowbitOp::IsNotSet => {}
                    }
                }
            }
        }
        if compiled.is_silent() {
            return false;
        }
        if !self.threshold_allows(compiled, flow, context) {
            self.stats.suppressed += 1;
            return false;
        }
        if self.raised >= self.limits.alerts_per_inspection {
            self.stats.alert_overflow += 1;
            return false;
        }
        self.raised += 1;
        self.count(flow, &compiled.family);
        let to = (end + EXCERPT_SIDE).min(buffer.len());
        let from = end.saturating_sub(EXCERPT_SIDE).min(to);
        let signature = Signature {
            gid: rule.gid,
            sid: rule.sid,
            rev: rule.rev,
            msg: Arc::clone(&compiled.msg),
            classtype: rule.classtype.clone(),
            priority: rule.priority.unwrap_or(3),
            family: Arc::clone(&compiled.family),
            metadata: Arc::clone(&compiled.metadata),
        };
        let stream_offset = context.stream_base.map(|base| base + end as u64);
        out(context.detection(signature, stream_offset, buffer[from..to].to_vec()));
        true
    }
}

/// Checks a candidate rule's header, flow, packet and flowbit conditions
/// against `context` and `flow`.
fn header_allows(
    engine: &Engine,
    compiled: &CompiledRule,
    flow: &mut FlowState,
    context: &Context,
) -> bool {
    let rule = &compiled.rule;
    let proto_ok = match rule.protocol {
        Protocol::Ip => true,
        _ if !context.transport_valid => false,
        Protocol::Tcp | Protocol::TcpPkt | Protocol::TcpStream | Protocol::Http | Protocol::Tls => {
            context.proto == ip_proto::TCP
        }
        Protocol::Dns => matches!(context.proto, ip_proto::TCP | ip_proto::UDP),
        Protocol::Udp => context.proto == ip_proto::UDP,
        Protocol::Icmp => matches!(context.proto, ip_proto::ICMP | ip_proto::ICMPV6),
    };
    if !proto_ok {
        return false;
    }
    if rule
        .flow
        .established
        .is_some_and(|e| e != context.established)
        || rule.flow.to_server.is_some_and(|t| t != context.to_server)
    {
        return false;
    }
    if let Some(dsize) = rule.dsize {
        match context.payload_len {
            Some(len) if dsize.matches(len) => {}
            _ => return false,
        }
    }
    if let Some(flags) = rule.tcp_flags {
        if !context.tcp_flags.is_some_and(|f| flags.matches(f)) {
            return false;
        }
    }
    if let Some(want) = rule.stream_size {
        if !context
            .stream_sizes
            .is_some_and(|sizes| want.matches(sizes))
        {
            return false;
        }
    }
    let icmp = |want: Option<Dsize>, pick: fn((u8, u8)) -> u8| {
        want.is_none_or(|want| {
            context
                .icmp
                .is_some_and(|header| want.matches(u32::from(pick(header))))
        })
    };
    if !icmp(rule.itype, |(t, _)| t) || !icmp(rule.icode, |(_, c)| c) {
        return false;
    }
    // The packet's own conditions first, then ports: cheaper than
    // address lists.
    let forward = rule.src_ports.matches(context.src_port)
        && rule.dst_ports.matches(context.dst_port)
        && rule.src.matches(context.src)
        && rule.dst.matches(context.dst);
    let backward = rule.bidirectional
        && !forward
        && rule.src_ports.matches(context.dst_port)
        && rule.dst_ports.matches(context.src_port)
        && rule.src.matches(context.dst)
        && rule.dst.matches(context.src);
    if !(forward || backward) {
        return false;
    }
    let bit_count = engine.flowbits.len();
    if !compiled.flowbits.is_empty() {
        let state = &mut *flow;
        state.bits.resize(bit_count, false);
        for (op, bits, any) in &compiled.flowbits {
            let test = |want: bool| {
                let hit = |b: &u16| state.bits[usize::from(*b)] == want;
                if *any {
                    bits.iter().any(hit)
                } else {
                    bits.iter().all(hit)
                }
            };
            let pass = match op {
                FlowbitOp::IsSet => test(true),
                FlowbitOp::IsNotSet => test(false),
                _ => true,
            };
            if !pass {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use crate::detect::inspect::testing::{inspector, stream};
    use crate::detect::inspect::{DetectLimits, FlowState};

    #[test]
    fn matches_past_the_per_packet_limit_are_counted_not_raised() {
        let rules: String = (1..=4)
            .map(|sid| format!("alert tcp any any -> any any (content:\"PAYLOAD\"; sid:{sid};)\n"))
            .collect();
        let mut d = inspector(
            &rules,
            DetectLimits {
                alerts_per_inspection: 3,
                ..DetectLimits::default()
            },
        );
        let mut flow = FlowState::default();
        let mut sids = Vec::new();
        d.inspect_stream(
            &mut flow,
            1,
            &stream(1),
            0,
            b"a PAYLOAD",
            usize::MAX,
            &mut |x| sids.push(x.sid),
        );
        assert_eq!(sids, [1, 2, 3]);
        assert_eq!(d.stats().alert_overflow, 1);
        // The limit is per inspection: the next data may raise again.
        d.inspect_stream(
            &mut flow,
            2,
            &stream(1),
            9,
            b" PAYLOAD",
            usize::MAX,
            &mut |x| sids.push(x.sid),
        );
        assert_eq!(sids.len(), 6);
    }
}
