//! The per-worker flow table.
//!
//! Flows live in a slab (`Vec<Flow>` plus a free list) indexed by a hash map
//! from [`FlowKey`] to slot. Each flow is also on one of several
//! least-recently-seen lists, one per timeout class (TCP handshake,
//! established, closed; UDP, ICMP and other protocols one-sided or answered).
//! Each slot also holds what later stages remember about its flow (the
//! table's `X`: parser, rule and detector state), which the table hands to
//! its [`FlowSink`] with each event of the flow and drops when the flow
//! ends, so that nothing outside the table is keyed by flow.
//! Within a list every flow has the same idle timeout, so expiry only ever
//! looks at list tails, and the oldest flow of the table, the one evicted when
//! [`FlowConfig::max_flows`] is reached, is the oldest of the tails. Nothing
//! here allocates per packet once the slab and map have grown to the working
//! set.

use std::collections::HashMap;

use rustc_hash::FxBuildHasher;

use super::key::{FlowKey, Side};
use super::record::{ConnState, EndReason, FlowRecord, History};
use super::tcp::{TcpTracker, ORIGINATOR, RESPONDER};
use crate::decode::{ip_proto, tcp_flags, Carrier, DecodedPacket, TcpHeader, Transport, Tunnel};
use crate::detect::Detection;
use crate::evidence::EvidencePart;
use crate::reassembly::{
    ReassemblyBudget, ReassemblyConfig, Segment, Stream, StreamId, StreamSink,
};

const NIL: u32 = u32::MAX;
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Idle timeouts per protocol and state, nanoseconds (`[flow.timeouts]`,
/// seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// TCP before the handshake completes.
    #[serde(rename = "tcp_new", with = "crate::units::secs")]
    pub tcp_new_ns: u64,
    /// TCP after the handshake.
    #[serde(rename = "tcp_established", with = "crate::units::secs")]
    pub tcp_established_ns: u64,
    /// TCP after FIN from both sides or a RST.
    #[serde(rename = "tcp_closed", with = "crate::units::secs")]
    pub tcp_closed_ns: u64,
    /// UDP seen in one direction.
    #[serde(rename = "udp_new", with = "crate::units::secs")]
    pub udp_new_ns: u64,
    /// UDP seen in both directions.
    #[serde(rename = "udp_established", with = "crate::units::secs")]
    pub udp_established_ns: u64,
    /// ICMP seen in one direction.
    #[serde(rename = "icmp_new", with = "crate::units::secs")]
    pub icmp_new_ns: u64,
    /// ICMP seen in both directions.
    #[serde(rename = "icmp_established", with = "crate::units::secs")]
    pub icmp_established_ns: u64,
    /// Other protocols seen in one direction.
    #[serde(rename = "other_new", with = "crate::units::secs")]
    pub other_new_ns: u64,
    /// Other protocols seen in both directions.
    #[serde(rename = "other_established", with = "crate::units::secs")]
    pub other_established_ns: u64,
}

impl Default for Timeouts {
    /// Suricata's default flow timeouts.
    fn default() -> Self {
        let s = NANOS_PER_SEC;
        Self {
            tcp_new_ns: 60 * s,
            tcp_established_ns: 600 * s,
            tcp_closed_ns: 60 * s,
            udp_new_ns: 30 * s,
            udp_established_ns: 300 * s,
            icmp_new_ns: 30 * s,
            icmp_established_ns: 300 * s,
            other_new_ns: 30 * s,
            other_established_ns: 300 * s,
        }
    }
}

/// Limits and timeouts of a flow table (`[flow]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowConfig {
    /// Flows held at most; the least recently seen is evicted beyond it.
    pub max_flows: usize,
    /// A flow open longer than this writes an interim record and starts a
    /// new interval, nanoseconds (`active_timeout_secs`); 0 disables
    /// interim records.
    #[serde(rename = "active_timeout_secs", with = "crate::units::secs")]
    pub active_timeout_ns: u64,
    /// Idle timeouts.
    pub timeouts: Timeouts,
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            max_flows: 1_000_000,
            active_timeout_ns: 3_600 * NANOS_PER_SEC,
            timeouts: Timeouts::default(),
        }
    }
}

/// Where what a flow table produces goes: finished flow records, and (as a
/// [`StreamSink`]) the in-order bytes of each TCP direction. A flow's stream
/// data always comes before its record.
pub trait RecordSink: StreamSink {
    /// Takes one record.
    fn flow_record(&mut self, record: FlowRecord);

    /// Takes one detection (sinks that keep flows only drop it).
    fn detection(&mut self, detection: Detection) {
        let _ = detection;
    }

    /// Takes one part of an evidence capture (sinks without output drop it).
    fn evidence(&mut self, part: EvidencePart) {
        let _ = part;
    }
}

impl RecordSink for Vec<FlowRecord> {
    fn flow_record(&mut self, record: FlowRecord) {
        self.push(record);
    }
}

impl StreamSink for Vec<FlowRecord> {}

/// The stages after a flow table: each event of a flow comes with the
/// state `X` its slot keeps for them.
pub trait FlowSink<X> {
    /// In-order bytes of a TCP direction (see [`StreamSink::stream_data`]).
    fn stream_data(&mut self, ext: &mut X, stream: &StreamId, offset: u64, bytes: &[u8]);

    /// Bytes of a TCP direction never seen (see [`StreamSink::stream_gap`]).
    fn stream_gap(&mut self, ext: &mut X, stream: &StreamId, offset: u64, len: u64);

    /// A TCP direction reached the reassembly depth.
    fn stream_depth(&mut self, ext: &mut X, stream: &StreamId);

    /// A record of the flow: an interim one ([`EndReason::Active`]), after
    /// which `ext` stays, or its last, after which `ext` is dropped.
    fn flow_record(&mut self, ext: &mut X, record: FlowRecord);
}

/// A record sink is a flow sink of flows that keep nothing.
impl<S: RecordSink> FlowSink<()> for S {
    fn stream_data(&mut self, _: &mut (), stream: &StreamId, offset: u64, bytes: &[u8]) {
        StreamSink::stream_data(self, stream, offset, bytes);
    }

    fn stream_gap(&mut self, _: &mut (), stream: &StreamId, offset: u64, len: u64) {
        StreamSink::stream_gap(self, stream, offset, len);
    }

    fn stream_depth(&mut self, _: &mut (), stream: &StreamId) {
        StreamSink::stream_depth(self, stream);
    }

    fn flow_record(&mut self, _: &mut (), record: FlowRecord) {
        RecordSink::flow_record(self, record);
    }
}

/// A flow sink with one flow's state attached: what reassembly, which knows
/// nothing of that state, delivers to.
struct Attached<'a, K, X> {
    sink: &'a mut K,
    ext: &'a mut X,
}

impl<K: FlowSink<X>, X> StreamSink for Attached<'_, K, X> {
    fn stream_data(&mut self, stream: &StreamId, offset: u64, bytes: &[u8]) {
        self.sink.stream_data(self.ext, stream, offset, bytes);
    }

    fn stream_gap(&mut self, stream: &StreamId, offset: u64, len: u64) {
        self.sink.stream_gap(self.ext, stream, offset, len);
    }

    fn stream_depth(&mut self, stream: &StreamId) {
        self.sink.stream_depth(self.ext, stream);
    }
}

/// Which flow a packet was accounted to, for the stages after the flow table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracked {
    /// The flow.
    pub flow_id: u64,
    /// The packet went from the initiator to the responder.
    pub to_server: bool,
    /// TCP handshake completed; other protocols: both sides have sent.
    pub established: bool,
    /// The packet's TCP direction is being reassembled.
    pub reassembled: bool,
    /// The packet opened the flow.
    pub opened: bool,
    /// TCP: the sequence space each side (initiator, responder) has used,
    /// this packet included.
    pub stream_sizes: Option<[u64; 2]>,
}

/// Counters of one flow table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Flows created.
    pub created: u64,
    /// Packets accounted to flows (a reassembled datagram counts once).
    pub packets: u64,
    /// Wire bytes accounted to flows.
    pub bytes: u64,
    /// Records written, by [`EndReason`] (in `EndReason` declaration order).
    pub records: [u64; 6],
    /// Flows open now.
    pub active: u64,
    /// Most flows open at once.
    pub peak_active: u64,
}

impl FlowStats {
    /// Adds another table's counters (`active` and `peak_active` are summed).
    pub fn merge(&mut self, other: &FlowStats) {
        self.created += other.created;
        self.packets += other.packets;
        self.bytes += other.bytes;
        for (a, b) in self.records.iter_mut().zip(other.records.iter()) {
            *a += b;
        }
        self.active += other.active;
        self.peak_active += other.peak_active;
    }

    /// Records written for `reason`.
    pub fn records_for(&self, reason: EndReason) -> u64 {
        self.records[reason_index(reason)]
    }

    /// Records written in all.
    pub fn total_records(&self) -> u64 {
        self.records.iter().sum()
    }
}

/// The stream of direction `dir` (relative to the initiator) of a flow.
fn stream_id<X>(flow: &Flow<X>, dir: usize) -> StreamId {
    let from = if dir == ORIGINATOR {
        flow.initiator
    } else {
        flow.initiator.other()
    };
    let (src, src_port) = flow.key.endpoint(from);
    let (dst, dst_port) = flow.key.endpoint(from.other());
    StreamId {
        flow_id: flow.id,
        dir,
        src: (src, src_port).into(),
        dst: (dst, dst_port).into(),
        carrier: Carrier {
            vlans: flow.key.vlans,
            tunnel: flow.tunnel,
        },
    }
}

/// Feeds one TCP segment to the streams of its flow: a SYN anchors its
/// direction (a SYN-ACK anchors both) and its data (Fast Open) starts the
/// stream, data goes to its direction, and an ACK tells the other direction
/// what its receiver has seen.
fn reassemble<X>(
    flow: &mut Flow<X>,
    dir: usize,
    h: &TcpHeader,
    packet: &DecodedPacket<'_>,
    config: &ReassemblyConfig,
    budget: &mut ReassemblyBudget,
    sink: &mut impl FlowSink<X>,
) {
    let syn = h.flags & tcp_flags::SYN != 0;
    let ack = h.flags & tcp_flags::ACK != 0;
    let fin = h.flags & tcp_flags::FIN != 0;
    let other = 1 - dir;
    let ids = [stream_id(flow, ORIGINATOR), stream_id(flow, RESPONDER)];
    let Flow { streams, ext, .. } = flow;
    let sink = &mut Attached { sink, ext };
    if syn {
        streams[dir].anchor_syn(h.seq);
        if ack {
            streams[other].anchor_syn(h.ack.wrapping_sub(1));
        }
        if packet.payload.is_empty() {
            return;
        }
        // Data on a SYN (TCP Fast Open) follows the SYN's own number.
        let segment = Segment {
            seq: h.seq.wrapping_add(1),
            payload: packet.payload,
            fin,
        };
        streams[dir].segment(&ids[dir], segment, config, budget, sink);
        return;
    }
    if !streams[dir].is_anchored() && config.midstream && !packet.payload.is_empty() {
        streams[dir].anchor_data(h.seq);
    }
    if streams[dir].is_anchored() && (fin || !packet.payload.is_empty()) {
        let segment = Segment {
            seq: h.seq,
            payload: packet.payload,
            fin,
        };
        streams[dir].segment(&ids[dir], segment, config, budget, sink);
    }
    if ack && streams[other].is_anchored() {
        streams[other].acknowledged(&ids[other], h.ack, config, budget, sink);
    }
}

fn reason_index(reason: EndReason) -> usize {
    match reason {
        EndReason::Fin => 0,
        EndReason::Rst => 1,
        EndReason::Idle => 2,
        EndReason::Active => 3,
        EndReason::Evicted => 4,
        EndReason::Shutdown => 5,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeoutClass {
    TcpNew,
    TcpEstablished,
    TcpClosed,
    UdpNew,
    UdpEstablished,
    IcmpNew,
    IcmpEstablished,
    OtherNew,
    OtherEstablished,
}

const CLASSES: usize = 9;

impl TimeoutClass {
    fn timeout_ns(self, t: &Timeouts) -> u64 {
        match self {
            Self::TcpNew => t.tcp_new_ns,
            Self::TcpEstablished => t.tcp_established_ns,
            Self::TcpClosed => t.tcp_closed_ns,
            Self::UdpNew => t.udp_new_ns,
            Self::UdpEstablished => t.udp_established_ns,
            Self::IcmpNew => t.icmp_new_ns,
            Self::IcmpEstablished => t.icmp_established_ns,
            Self::OtherNew => t.other_new_ns,
            Self::OtherEstablished => t.other_established_ns,
        }
    }
}

#[derive(Debug)]
struct Flow<X> {
    key: FlowKey,
    id: u64,
    initiator: Side,
    /// First packet of the current record interval, ns.
    ts_start: u64,
    ts_last: u64,
    pkts: [u64; 2],
    bytes: [u64; 2],
    payload_bytes: [u64; 2],
    tcp_flags: [u8; 2],
    responder_seen: bool,
    history: History,
    tcp: TcpTracker,
    /// ICMP type and code of the first message.
    icmp: (u16, u16),
    tunnel: Option<Tunnel>,
    /// TCP byte streams, by direction.
    streams: [Stream; 2],
    class: TimeoutClass,
    prev: u32,
    next: u32,
    /// What later stages keep about the flow.
    ext: X,
}

impl<X> Flow<X> {
    fn class(&self) -> TimeoutClass {
        let answered = self.responder_seen;
        match self.key.proto {
            ip_proto::TCP if self.tcp.closed().is_some() => TimeoutClass::TcpClosed,
            ip_proto::TCP if self.tcp.established() => TimeoutClass::TcpEstablished,
            ip_proto::TCP => TimeoutClass::TcpNew,
            ip_proto::UDP if answered => TimeoutClass::UdpEstablished,
            ip_proto::UDP => TimeoutClass::UdpNew,
            ip_proto::ICMP | ip_proto::ICMPV6 if answered => TimeoutClass::IcmpEstablished,
            ip_proto::ICMP | ip_proto::ICMPV6 => TimeoutClass::IcmpNew,
            _ if answered => TimeoutClass::OtherEstablished,
            _ => TimeoutClass::OtherNew,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct List {
    /// Most recently seen.
    head: u32,
    /// Least recently seen.
    tail: u32,
}

impl Default for List {
    fn default() -> Self {
        Self {
            head: NIL,
            tail: NIL,
        }
    }
}

/// One worker's flows, each with the state `X` later stages keep for it.
#[derive(Debug)]
pub struct FlowTable<X = ()> {
    config: FlowConfig,
    reassembly: ReassemblyConfig,
    worker: u16,
    index: HashMap<FlowKey, u32, FxBuildHasher>,
    slots: Vec<Flow<X>>,
    free: Vec<u32>,
    lists: [List; CLASSES],
    id_seed: u64,
    next_serial: u64,
    now_ns: u64,
    stats: FlowStats,
    budget: ReassemblyBudget,
}

/// SplitMix64 finalizer: a bijection on u64 that spreads serial numbers into
/// well-mixed flow ids.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl<X: Default> FlowTable<X> {
    /// An empty table for worker `worker`. `id_seed` makes flow ids differ
    /// between runs (the run's start time is a good seed).
    pub fn new(
        config: FlowConfig,
        reassembly: ReassemblyConfig,
        worker: u16,
        id_seed: u64,
    ) -> Self {
        Self {
            config,
            reassembly,
            worker,
            index: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            lists: [List::default(); CLASSES],
            id_seed: mix64(id_seed ^ (u64::from(worker) << 48)),
            next_serial: 0,
            now_ns: 0,
            stats: FlowStats::default(),
            budget: ReassemblyBudget::default(),
        }
    }

    /// Bytes held out of order over every stream now, and at most.
    pub fn reassembly_memory(&self) -> &ReassemblyBudget {
        &self.budget
    }

    /// Counters so far.
    pub fn stats(&self) -> &FlowStats {
        &self.stats
    }

    /// Flows open now.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when no flow is open.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Calls `f` with what later stages keep of each open flow.
    pub fn for_each_ext(&mut self, mut f: impl FnMut(&mut X)) {
        for &slot in self.index.values() {
            f(&mut self.slots[slot as usize].ext);
        }
    }

    /// Packet time: the timestamp of the last packet tracked, ns. It follows
    /// the capture, backwards too when a capture's clock jumps back (files
    /// concatenated out of order), so a jump neither expires every flow
    /// nor freezes expiry.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Accounts one decoded packet to its flow, creating the flow if needed,
    /// and says which flow and direction it was, with the flow's state.
    pub fn track(
        &mut self,
        packet: &DecodedPacket<'_>,
        sink: &mut impl FlowSink<X>,
    ) -> (Tracked, &mut X) {
        let ts = packet.meta.ts_ns;
        self.now_ns = ts;
        let (key, side) = FlowKey::of(packet);
        let tcp = match packet.transport {
            Transport::Tcp(h) => Some(h),
            _ => None,
        };
        let syn_seq = tcp
            .filter(|h| h.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN)
            .map(|h| h.seq);
        let mut opened = true;
        let slot = match self.index.get(&key).copied() {
            Some(slot)
                if syn_seq.is_some_and(|seq| self.slots[slot as usize].tcp.is_reuse(seq)) =>
            {
                let reason = self.slots[slot as usize]
                    .tcp
                    .closed()
                    .unwrap_or(EndReason::Idle);
                self.end(slot, reason, sink);
                self.create(key, side, packet, sink)
            }
            Some(slot) => {
                opened = false;
                slot
            }
            None => self.create(key, side, packet, sink),
        };
        let active_timeout = self.config.active_timeout_ns;
        let flow = &mut self.slots[slot as usize];
        if active_timeout > 0 && ts.saturating_sub(flow.ts_start) >= active_timeout {
            let record = self.record(slot, EndReason::Active);
            sink.flow_record(&mut self.slots[slot as usize].ext, record);
            self.stats.records[reason_index(EndReason::Active)] += 1;
            let flow = &mut self.slots[slot as usize];
            flow.ts_start = ts;
            flow.pkts = [0; 2];
            flow.bytes = [0; 2];
            flow.payload_bytes = [0; 2];
            flow.tcp_flags = [0; 2];
        }
        self.stats.packets += 1;
        self.stats.bytes += u64::from(packet.meta.wire_len);
        let flow = &mut self.slots[slot as usize];
        let dir = if side == flow.initiator {
            ORIGINATOR
        } else {
            RESPONDER
        };
        flow.ts_last = flow.ts_last.max(ts);
        flow.pkts[dir] += 1;
        flow.bytes[dir] += u64::from(packet.meta.wire_len);
        flow.payload_bytes[dir] += u64::from(packet.payload_len);
        flow.responder_seen |= dir == RESPONDER;
        // As in Suricata, the segment that completes the handshake is not
        // itself "established"; a UDP reply is.
        let established_before = flow.tcp.handshake_done();
        match tcp {
            Some(h) => {
                flow.tcp_flags[dir] |= h.flags;
                flow.tcp.on_segment(
                    dir,
                    h.seq,
                    h.flags,
                    packet.payload_len > 0,
                    &mut flow.history,
                );
                let config = &self.reassembly;
                reassemble(flow, dir, &h, packet, config, &mut self.budget, sink);
            }
            None if packet.payload_len > 0 => {
                flow.history
                    .note(if dir == ORIGINATOR { b'D' } else { b'd' })
            }
            None => {}
        }
        let class = flow.class();
        let tracked = Tracked {
            flow_id: flow.id,
            to_server: dir == ORIGINATOR,
            established: match flow.key.proto {
                ip_proto::TCP => established_before,
                _ => flow.responder_seen,
            },
            reassembled: flow.streams[dir].is_anchored(),
            opened,
            stream_sizes: tcp.map(|_| [flow.streams[0].seq_span(), flow.streams[1].seq_span()]),
        };
        self.unlink(slot);
        self.slots[slot as usize].class = class;
        self.push_front(slot);
        (tracked, &mut self.slots[slot as usize].ext)
    }

    /// Ends every flow idle past its timeout at `now_ns`.
    pub fn expire(&mut self, now_ns: u64, sink: &mut impl FlowSink<X>) {
        self.now_ns = now_ns;
        for class in 0..CLASSES {
            loop {
                let tail = self.lists[class].tail;
                if tail == NIL {
                    break;
                }
                let flow = &self.slots[tail as usize];
                let timeout = flow.class.timeout_ns(&self.config.timeouts);
                if flow.ts_last.saturating_add(timeout) > self.now_ns {
                    break;
                }
                let reason = match flow.class {
                    TimeoutClass::TcpClosed => flow.tcp.closed().unwrap_or(EndReason::Idle),
                    _ => EndReason::Idle,
                };
                self.end(tail, reason, sink);
            }
        }
    }

    /// Ends every flow with reason [`EndReason::Shutdown`] (closed TCP flows
    /// keep their `fin`/`rst` reason).
    pub fn flush(&mut self, sink: &mut impl FlowSink<X>) {
        for class in 0..CLASSES {
            while self.lists[class].tail != NIL {
                let tail = self.lists[class].tail;
                let reason = self.slots[tail as usize]
                    .tcp
                    .closed()
                    .unwrap_or(EndReason::Shutdown);
                self.end(tail, reason, sink);
            }
        }
    }

    fn create(
        &mut self,
        key: FlowKey,
        side: Side,
        packet: &DecodedPacket<'_>,
        sink: &mut impl FlowSink<X>,
    ) -> u32 {
        if self.index.len() >= self.config.max_flows.max(1) {
            if let Some(oldest) = self.oldest() {
                self.end(oldest, EndReason::Evicted, sink);
            }
        }
        let ts = packet.meta.ts_ns;
        let mut history = History::default();
        let mut initiator = side;
        let mut icmp = (0, 0);
        match packet.transport {
            Transport::Tcp(h)
                if h.flags & (tcp_flags::SYN | tcp_flags::ACK)
                    == tcp_flags::SYN | tcp_flags::ACK =>
            {
                initiator = side.other();
                history.note(b'^');
            }
            Transport::Icmp {
                icmp_type, code, ..
            } => icmp = (u16::from(icmp_type), u16::from(code)),
            _ => {}
        }
        self.next_serial += 1;
        let mut streams: [Stream; 2] = Default::default();
        if key.proto == ip_proto::TCP {
            let reassembly = &self.reassembly;
            for (dir, stream) in streams.iter_mut().enumerate() {
                let receiver = if dir == ORIGINATOR {
                    initiator.other()
                } else {
                    initiator
                };
                stream.set_policy(reassembly.policy_for(key.endpoint(receiver).0));
            }
        }
        let flow = Flow {
            key,
            id: mix64(self.id_seed.wrapping_add(self.next_serial)) >> 1,
            initiator,
            ts_start: ts,
            ts_last: ts,
            pkts: [0; 2],
            bytes: [0; 2],
            payload_bytes: [0; 2],
            tcp_flags: [0; 2],
            responder_seen: false,
            history,
            tcp: match packet.transport {
                // Anything but a SYN opening it: picked up midstream.
                Transport::Tcp(h)
                    if self.reassembly.midstream
                        && h.flags & (tcp_flags::SYN | tcp_flags::ACK) != tcp_flags::SYN =>
                {
                    TcpTracker::midstream()
                }
                _ => TcpTracker::default(),
            },
            icmp,
            tunnel: packet.meta.tunnel,
            streams,
            class: TimeoutClass::OtherNew,
            prev: NIL,
            next: NIL,
            ext: X::default(),
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = flow;
                slot
            }
            None => {
                self.slots.push(flow);
                (self.slots.len() - 1) as u32
            }
        };
        let class = self.slots[slot as usize].class();
        self.slots[slot as usize].class = class;
        self.push_front(slot);
        self.index.insert(key, slot);
        self.stats.created += 1;
        self.stats.active = self.index.len() as u64;
        self.stats.peak_active = self.stats.peak_active.max(self.stats.active);
        slot
    }

    /// The least recently seen flow of the whole table.
    fn oldest(&self) -> Option<u32> {
        self.lists
            .iter()
            .filter(|l| l.tail != NIL)
            .map(|l| l.tail)
            .min_by_key(|&slot| self.slots[slot as usize].ts_last)
    }

    fn end(&mut self, slot: u32, reason: EndReason, sink: &mut impl FlowSink<X>) {
        let config = &self.reassembly;
        let flow = &mut self.slots[slot as usize];
        for dir in [ORIGINATOR, RESPONDER] {
            let id = stream_id(flow, dir);
            let Flow { streams, ext, .. } = flow;
            let mut attached = Attached {
                sink: &mut *sink,
                ext,
            };
            streams[dir].flush(&id, config, &mut self.budget, &mut attached);
            streams[dir].release(&mut self.budget);
        }
        let record = self.record(slot, reason);
        let mut ext = std::mem::take(&mut self.slots[slot as usize].ext);
        sink.flow_record(&mut ext, record);
        self.stats.records[reason_index(reason)] += 1;
        self.unlink(slot);
        let key = self.slots[slot as usize].key;
        self.index.remove(&key);
        self.free.push(slot);
        self.stats.active = self.index.len() as u64;
    }

    fn record(&self, slot: u32, reason: EndReason) -> FlowRecord {
        let flow = &self.slots[slot as usize];
        let (src, src_port) = flow.key.endpoint(flow.initiator);
        let (dst, dst_port) = flow.key.endpoint(flow.initiator.other());
        let (src_port, dst_port) = match flow.key.proto {
            ip_proto::ICMP | ip_proto::ICMPV6 => flow.icmp,
            _ => (src_port, dst_port),
        };
        let mut reassembly = *flow.streams[ORIGINATOR].counters();
        reassembly.merge(flow.streams[RESPONDER].counters());
        let state = if flow.key.proto == ip_proto::TCP {
            flow.tcp.conn_state(flow.responder_seen)
        } else if flow.responder_seen {
            ConnState::SF
        } else {
            ConnState::S0
        };
        FlowRecord {
            flow_id: flow.id,
            worker: self.worker,
            ts_start_ns: flow.ts_start,
            ts_end_ns: flow.ts_last,
            proto: flow.key.proto,
            src,
            dst,
            src_port,
            dst_port,
            vlans: flow.key.vlans,
            tunnel: flow.tunnel,
            app_proto: None,
            pkts: flow.pkts,
            bytes: flow.bytes,
            payload_bytes: flow.payload_bytes,
            tcp_flags: flow.tcp_flags,
            history: flow.history,
            state,
            end_reason: reason,
            reassembly,
            detections: 0,
            app: Default::default(),
        }
    }

    fn unlink(&mut self, slot: u32) {
        let (prev, next, class) = {
            let f = &self.slots[slot as usize];
            (f.prev, f.next, f.class as usize)
        };
        if prev == NIL {
            self.lists[class].head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.lists[class].tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
        let f = &mut self.slots[slot as usize];
        f.prev = NIL;
        f.next = NIL;
    }

    fn push_front(&mut self, slot: u32) {
        let class = self.slots[slot as usize].class as usize;
        let head = self.lists[class].head;
        {
            let f = &mut self.slots[slot as usize];
            f.prev = NIL;
            f.next = head;
        }
        if head == NIL {
            self.lists[class].tail = slot;
        } else {
            self.slots[head as usize].prev = slot;
        }
        self.lists[class].head = slot;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{PacketMeta, TcpHeader, Vlans};

    const S: u64 = NANOS_PER_SEC;

    fn packet(
        ts: u64,
        src: &str,
        sport: u16,
        dst: &str,
        dport: u16,
        transport: Option<u8>,
    ) -> DecodedPacket<'static> {
        let transport = match transport {
            Some(flags) => Transport::Tcp(TcpHeader {
                src_port: sport,
                dst_port: dport,
                seq: 1,
                ack: 1,
                flags,
                window: 1000,
            }),
            None => Transport::Udp {
                src_port: sport,
                dst_port: dport,
            },
        };
        DecodedPacket {
            meta: PacketMeta {
                ts_ns: ts,
                wire_len: 100,
                vlans: Vlans::default(),
                tunnel: None,
            },
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            proto: if transport_is_tcp(&transport) {
                ip_proto::TCP
            } else {
                ip_proto::UDP
            },
            transport,
            payload_len: 0,
            payload: &[],
            segment: &[],
        }
    }

    fn transport_is_tcp(t: &Transport) -> bool {
        matches!(t, Transport::Tcp(_))
    }

    fn table(max_flows: usize) -> FlowTable {
        FlowTable::new(
            FlowConfig {
                max_flows,
                ..FlowConfig::default()
            },
            ReassemblyConfig::default(),
            0,
            42,
        )
    }

    #[test]
    fn both_directions_share_one_flow_with_initiator_as_source() {
        let mut t = table(10);
        let mut out = Vec::new();
        t.track(&packet(S, "10.0.0.9", 5000, "10.0.0.1", 53, None), &mut out);
        t.track(
            &packet(2 * S, "10.0.0.1", 53, "10.0.0.9", 5000, None),
            &mut out,
        );
        t.flush(&mut out);
        assert_eq!(out.len(), 1);
        let r = out[0].clone();
        assert_eq!((r.src.to_string().as_str(), r.src_port), ("10.0.0.9", 5000));
        assert_eq!(
            (r.pkts, r.state, r.end_reason),
            ([1, 1], ConnState::SF, EndReason::Shutdown)
        );
    }

    #[test]
    fn syn_ack_seen_first_flips_the_initiator() {
        let mut t = table(10);
        let mut out = Vec::new();
        let syn_ack = tcp_flags::SYN | tcp_flags::ACK;
        t.track(
            &packet(S, "10.0.0.1", 80, "10.0.0.9", 4000, Some(syn_ack)),
            &mut out,
        );
        t.flush(&mut out);
        assert_eq!(out[0].src.to_string(), "10.0.0.9");
        assert_eq!(out[0].history.as_str(), "^h");
    }

    #[test]
    fn full_table_evicts_least_recently_seen_and_writes_it() {
        let mut t = table(2);
        let mut out = Vec::new();
        t.track(&packet(S, "10.0.0.1", 1, "10.0.0.2", 2, None), &mut out);
        t.track(&packet(2 * S, "10.0.0.1", 3, "10.0.0.2", 4, None), &mut out);
        t.track(&packet(3 * S, "10.0.0.1", 1, "10.0.0.2", 2, None), &mut out);
        t.track(
            &packet(4 * S, "10.0.0.1", 5, "10.0.0.2", 6, Some(tcp_flags::SYN)),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].src_port, out[0].end_reason),
            (3, EndReason::Evicted)
        );
        assert_eq!(t.len(), 2);
        assert_eq!(t.stats().records_for(EndReason::Evicted), 1);
    }

    #[test]
    fn idle_timeout_depends_on_protocol_state() {
        let mut t = table(10);
        let mut out = Vec::new();
        t.track(&packet(S, "10.0.0.1", 1, "10.0.0.2", 2, None), &mut out);
        t.track(
            &packet(S, "10.0.0.1", 7, "10.0.0.2", 8, Some(tcp_flags::SYN)),
            &mut out,
        );
        t.expire(S + 31 * S, &mut out);
        assert_eq!(
            out.len(),
            1,
            "one-sided UDP expires after 30 s, a TCP SYN after 60 s"
        );
        assert_eq!((out[0].src_port, out[0].end_reason), (1, EndReason::Idle));
        t.expire(S + 61 * S, &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn new_syn_after_close_starts_a_new_flow() {
        let mut t = table(10);
        let mut out = Vec::new();
        let (a, b) = ("10.0.0.1", "10.0.0.2");
        t.track(&packet(S, a, 1000, b, 80, Some(tcp_flags::SYN)), &mut out);
        t.track(
            &packet(S, b, 80, a, 1000, Some(tcp_flags::RST | tcp_flags::ACK)),
            &mut out,
        );
        t.track(
            &packet(2 * S, a, 1000, b, 80, Some(tcp_flags::SYN)),
            &mut out,
        );
        assert!(
            out.is_empty(),
            "a retransmitted SYN (same sequence number) stays in its flow"
        );
        let mut reuse = packet(3 * S, a, 1000, b, 80, Some(tcp_flags::SYN));
        if let Transport::Tcp(h) = &mut reuse.transport {
            h.seq = 99;
        }
        t.track(&reuse, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].end_reason, EndReason::Rst);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn long_flow_writes_interim_records_with_one_flow_id() {
        let mut t = FlowTable::new(
            FlowConfig {
                active_timeout_ns: 100 * S,
                ..FlowConfig::default()
            },
            ReassemblyConfig::default(),
            0,
            1,
        );
        let mut out = Vec::new();
        for i in 0..5 {
            t.track(
                &packet(i * 60 * S, "10.0.0.1", 1, "10.0.0.2", 2, None),
                &mut out,
            );
        }
        t.flush(&mut out);
        assert_eq!(
            out.iter().map(|r| r.end_reason).collect::<Vec<_>>(),
            [EndReason::Active, EndReason::Active, EndReason::Shutdown]
        );
        assert!(out.iter().all(|r| r.flow_id == out[0].flow_id));
        assert_eq!(out.iter().map(|r| r.pkts[0]).sum::<u64>(), 5);
    }
}
