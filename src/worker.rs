//! The per-core worker: one run-to-completion pass over each batch.
//!
//! A [`Worker`] owns everything its packets touch (defragmenter, flow table,
//! output batcher) and shares nothing, so one worker per core scales without
//! locks. Every packet source (file replay now, NIC queues later) calls
//! [`Worker::process`] with a batch of [`RawPacket`]s.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::applayer::{AppEvent, AppFlow, AppLayer, AppStats, HttpLimits};
use crate::capture::RawPacket;
use crate::decode::fragment::{DefragConfig, Defragmenter};
use crate::decode::{
    self, checksum, decode_transport, tcp_flags, Carrier, DecodeError, DecodeStats, Decoded,
    DecodedPacket, Transport,
};
use crate::detect::builtin::Events;
use crate::detect::{DetectStats, Detection, Engine, FlowState, Inspector, PacketView, Sender};
use crate::evidence::{
    capture_path, Evidence, EvidenceConfig, EvidenceFlow, EvidencePart, EvidenceStats,
};
use crate::flow::{
    EndReason, FlowConfig, FlowRecord, FlowSink, FlowStats, FlowTable, RecordSink, Tracked,
};
use crate::reassembly::{ReassemblyBudget, ReassemblyConfig, StreamId, StreamSink};

/// How often, in packet time, idle flows and stale fragments are swept, ns.
const EXPIRY_INTERVAL_NS: u64 = 1_000_000_000;

/// Packet and byte counters of one worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Frames received.
    pub packets: u64,
    /// Bytes on the wire of those frames.
    pub wire_bytes: u64,
    /// Bytes captured of those frames.
    pub captured_bytes: u64,
    /// Decode outcomes.
    pub decode: DecodeStats,
    /// Inspection counters (zero without rules).
    pub detect: DetectStats,
    /// Evidence captures (zero when off).
    pub evidence: EvidenceStats,
    /// What the application parsers gave up at their limits.
    pub app: AppStats,
    /// Reassembly memory: most held at once (summed over workers) and
    /// flushes at the caps.
    pub reassembly: ReassemblyBudget,
}

impl WorkerStats {
    /// Adds another worker's counters.
    pub fn merge(&mut self, other: &WorkerStats) {
        self.packets += other.packets;
        self.wire_bytes += other.wire_bytes;
        self.captured_bytes += other.captured_bytes;
        self.decode.merge(&other.decode);
        self.detect.merge(&other.detect);
        self.evidence.merge(&other.evidence);
        self.app.merge(&other.app);
        self.reassembly.peak += other.reassembly.peak;
        self.reassembly.flushes += other.reassembly.flushes;
    }
}

/// Limits of one worker's state.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Flow table caps and timeouts.
    pub flow: FlowConfig,
    /// TCP stream reassembly.
    pub reassembly: ReassemblyConfig,
    /// Fragment reassembly caps.
    pub defrag: DefragConfig,
    /// Check transport checksums and skip packets that fail.
    pub checksum_validation: bool,
    /// What HTTP transactions keep.
    pub http: HttpLimits,
    /// Evidence captures.
    pub evidence: EvidenceConfig,
}

/// What a finished worker hands back.
#[derive(Debug)]
pub struct Finished<S> {
    /// Its output sink.
    pub sink: S,
    /// Its counters.
    pub stats: WorkerStats,
    /// Its flow table's counters.
    pub flows: FlowStats,
    /// Its inspector, with its copies of the datasets rules changed.
    pub inspector: Option<Inspector>,
}

/// What a worker's state structures hold at one moment. Everything else a
/// worker remembers (application parsers, rule and detector state of a
/// flow) sits in a flow's slot, so `flows` bounds it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StateSizes {
    /// Flows open.
    pub flows: u64,
    /// Out-of-order bytes reassembly holds.
    pub reassembly_bytes: u64,
    /// Partial IP datagrams waiting for fragments.
    pub fragments: u64,
    /// Bytes of those fragments.
    pub fragment_bytes: u64,
    /// Threshold windows of rules.
    pub thresholds: u64,
    /// Entries of the detectors' cross-flow tables (per host, per pair).
    pub detector_entries: u64,
}

/// One worker's pipeline state.
#[derive(Debug)]
pub struct Worker<S: RecordSink> {
    flows: FlowTable<FlowExt>,
    defrag: Defragmenter,
    sink: S,
    stats: WorkerStats,
    last_sweep_ns: u64,
    inspector: Option<Inspector>,
    applayer: AppLayer,
    checksum_validation: bool,
    evidence: Option<Evidence>,
    /// The detections raised since evidence last looked (see [`Tap`]).
    raised: Vec<Raised>,
}

/// What the stages after the flow table keep about one flow, in its slot:
/// the application parsers' state, the inspection's and the evidence's.
#[derive(Debug, Default)]
pub struct FlowExt {
    app: AppFlow,
    detect: FlowState,
    evidence: EvidenceFlow,
}

/// The flow table's sink: stream data goes through the application-layer
/// parsers and (with rules) the inspector before the output sink, and each
/// flow record learns its application protocol and detection count.
struct Stages<'a, S> {
    applayer: &'a mut AppLayer,
    inspector: Option<&'a mut Inspector>,
    evidence: Option<&'a mut Evidence>,
    sink: Tap<'a, S>,
    ts_ns: u64,
}

/// The worker's sink as the stages see it: each detection also notes its
/// flow and time, from which its evidence capture is named
/// ([`crate::evidence::capture_path`]), so that the worker starts exactly
/// the captures the detections name.
struct Tap<'a, S> {
    sink: &'a mut S,
    /// With evidence on, the detections of flows and their captures.
    raised: Option<&'a mut Vec<Raised>>,
}

/// A detection's flow, time, and the evidence capture it names.
type Raised = (u64, u64, Arc<str>);

impl<S: RecordSink> StreamSink for Tap<'_, S> {
    fn stream_data(&mut self, stream: &StreamId, offset: u64, bytes: &[u8]) {
        self.sink.stream_data(stream, offset, bytes);
    }

    fn stream_gap(&mut self, stream: &StreamId, offset: u64, len: u64) {
        self.sink.stream_gap(stream, offset, len);
    }

    fn stream_depth(&mut self, stream: &StreamId) {
        self.sink.stream_depth(stream);
    }
}

impl<S: RecordSink> RecordSink for Tap<'_, S> {
    fn flow_record(&mut self, record: FlowRecord) {
        self.sink.flow_record(record);
    }

    fn detection(&mut self, mut detection: Detection) {
        if let (Some(raised), true) = (self.raised.as_deref_mut(), detection.flow_id != 0) {
            let path: Arc<str> = capture_path(detection.flow_id, detection.ts_ns).into();
            detection.evidence = Some(Arc::clone(&path));
            raised.push((detection.flow_id, detection.ts_ns, path));
        }
        self.sink.detection(detection);
    }

    fn evidence(&mut self, part: EvidencePart) {
        self.sink.evidence(part);
    }
}

impl<S: RecordSink> Tap<'_, S> {
    /// Starts the captures the detections of `flow_id` raised since the
    /// last call name, and forgets any other (an ended flow's has passed).
    fn start_captures(&mut self, evidence: &mut Evidence, flow: &mut EvidenceFlow, flow_id: u64) {
        let Some(raised) = self.raised.as_deref_mut() else {
            return;
        };
        for (id, ts_ns, path) in raised.drain(..) {
            if id == flow_id {
                evidence.detected(flow, path, ts_ns, &mut |part| self.sink.evidence(part));
            }
        }
    }
}

/// Runs what an application parser saw through the inspector, when there
/// is one.
fn inspect_app<S: RecordSink>(
    inspector: Option<&mut Inspector>,
    flow: &mut FlowState,
    sink: &mut S,
    ts_ns: u64,
    sender: &Sender,
    event: &AppEvent<'_>,
    datagram: Option<&[u8]>,
) {
    if let Some(inspector) = inspector {
        inspector.inspect_app(flow, ts_ns, sender, event, datagram, &mut |d| {
            sink.detection(d)
        });
    }
}

impl<S: RecordSink> FlowSink<FlowExt> for Stages<'_, S> {
    fn stream_data(&mut self, ext: &mut FlowExt, stream: &StreamId, offset: u64, bytes: &[u8]) {
        // The stream first, so that application rules see these bytes in
        // the direction's recent payload.
        if let Some(inspector) = self.inspector.as_deref_mut() {
            let clear = if inspector.encryption_matters() {
                self.applayer
                    .clear_prefix(&mut ext.app, stream.dir, offset, bytes)
            } else {
                bytes.len()
            };
            let sink = &mut self.sink;
            inspector.inspect_stream(
                &mut ext.detect,
                self.ts_ns,
                stream,
                offset,
                bytes,
                clear,
                &mut |d| sink.detection(d),
            );
        }
        let (ts_ns, sink) = (self.ts_ns, &mut self.sink);
        let mut inspector = self.inspector.as_deref_mut();
        let FlowExt { app, detect, .. } = ext;
        self.applayer
            .data(app, stream, offset, bytes, &mut |event, dir| {
                let sender = Sender::of_stream(&stream.toward(dir));
                inspect_app(
                    inspector.as_deref_mut(),
                    detect,
                    sink,
                    ts_ns,
                    &sender,
                    &event,
                    None,
                );
            });
        StreamSink::stream_data(&mut self.sink, stream, offset, bytes);
    }

    fn stream_gap(&mut self, ext: &mut FlowExt, stream: &StreamId, offset: u64, len: u64) {
        let (ts_ns, sink) = (self.ts_ns, &mut self.sink);
        let mut inspector = self.inspector.as_deref_mut();
        let FlowExt { app, detect, .. } = ext;
        self.applayer.gap(app, stream.dir, &mut |event, dir| {
            let sender = Sender::of_stream(&stream.toward(dir));
            inspect_app(
                inspector.as_deref_mut(),
                detect,
                sink,
                ts_ns,
                &sender,
                &event,
                None,
            );
        });
        if let Some(inspector) = self.inspector.as_deref_mut() {
            inspector.stream_gap(detect, stream);
        }
        StreamSink::stream_gap(&mut self.sink, stream, offset, len);
    }

    fn stream_depth(&mut self, ext: &mut FlowExt, stream: &StreamId) {
        if let Some(inspector) = self.inspector.as_deref_mut() {
            inspector.stream_done(&mut ext.detect, stream);
        }
        StreamSink::stream_depth(&mut self.sink, stream);
    }

    fn flow_record(&mut self, ext: &mut FlowExt, mut record: FlowRecord) {
        let interim = record.end_reason == EndReason::Active;
        let FlowExt {
            app,
            detect,
            evidence: kept,
        } = ext;
        record.app = if interim {
            app.summary()
        } else {
            // Bodies read to the end of the connection end here, in the
            // direction they were sent.
            let initiator = StreamId {
                flow_id: record.flow_id,
                dir: 0,
                src: SocketAddr::new(record.src, record.src_port),
                dst: SocketAddr::new(record.dst, record.dst_port),
                carrier: Carrier {
                    vlans: record.vlans,
                    tunnel: record.tunnel,
                },
            };
            let (ts_ns, sink) = (self.ts_ns, &mut self.sink);
            let mut inspector = self.inspector.as_deref_mut();
            self.applayer.end_flow(app, &mut |event, dir| {
                let sender = Sender::of_stream(&initiator.toward(dir));
                inspect_app(
                    inspector.as_deref_mut(),
                    detect,
                    sink,
                    ts_ns,
                    &sender,
                    &event,
                    None,
                );
            })
        };
        record.app_proto = record.app.protocol();
        if let Some(inspector) = self.inspector.as_deref_mut() {
            record.detections = if interim {
                detect.detections()
            } else {
                let sink = &mut self.sink;
                inspector.end_flow(detect, &record, &mut |d| sink.detection(d))
            };
        }
        if let Some(evidence) = self.evidence.as_deref_mut() {
            self.sink.start_captures(evidence, kept, record.flow_id);
            if !interim {
                let sink = &mut *self.sink.sink;
                evidence.end(kept, &mut |part| sink.evidence(part));
            }
        }
        RecordSink::flow_record(&mut self.sink, record);
    }
}

impl<S: RecordSink> Worker<S> {
    /// A worker numbered `id` that sends its records to `sink`.
    pub fn new(id: u16, config: WorkerConfig, id_seed: u64, sink: S) -> Self {
        Self {
            flows: FlowTable::new(config.flow, config.reassembly, id, id_seed),
            defrag: Defragmenter::new(config.defrag),
            sink,
            stats: WorkerStats::default(),
            last_sweep_ns: 0,
            inspector: None,
            applayer: AppLayer::new(config.http),
            checksum_validation: config.checksum_validation,
            evidence: Evidence::new(&config.evidence),
            raised: Vec::new(),
        }
    }

    /// Inspects packets and streams with `inspector`'s rules and
    /// detectors.
    pub fn with_inspector(mut self, inspector: Inspector) -> Self {
        self.inspector = Some(inspector);
        self
    }

    /// Counters so far.
    pub fn stats(&self) -> &WorkerStats {
        &self.stats
    }

    /// Flow-table counters so far.
    pub fn flow_stats(&self) -> &FlowStats {
        self.flows.stats()
    }

    /// Out-of-order bytes held by reassembly now, and at most.
    pub fn reassembly_memory(&self) -> &crate::reassembly::ReassemblyBudget {
        self.flows.reassembly_memory()
    }

    /// Flows open now.
    pub fn active_flows(&self) -> usize {
        self.flows.len()
    }

    /// What each of the worker's state structures holds now.
    pub fn state_sizes(&self) -> StateSizes {
        let inspector = self.inspector.as_ref();
        StateSizes {
            flows: self.flows.len() as u64,
            reassembly_bytes: self.flows.reassembly_memory().used as u64,
            fragments: self.defrag.pending() as u64,
            fragment_bytes: self.defrag.held_bytes() as u64,
            thresholds: inspector.map_or(0, |i| i.threshold_entries() as u64),
            detector_entries: inspector.map_or(0, Inspector::detector_entries),
        }
    }

    /// Inspects with `engine` from now on (a rule reload): every open
    /// flow's inspection state is carried over first. False when the worker
    /// has no inspector to reload.
    pub fn reload(&mut self, engine: Arc<Engine>) -> bool {
        let Some(inspector) = self.inspector.as_mut() else {
            return false;
        };
        let remap = engine.remap_from(inspector.engine());
        self.flows
            .for_each_ext(|ext| inspector.carry_flow(&mut ext.detect, &remap));
        inspector.install(engine, &remap);
        true
    }

    /// Detections raised so far, by family (none without an inspector).
    pub fn detections_by_family(&self) -> Option<&std::collections::BTreeMap<String, u64>> {
        self.inspector.as_ref().map(|i| i.detections_by_family())
    }

    /// The record sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// The record sink, to flush it while traffic is quiet.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Moves time on without packets (a live source that went quiet): once
    /// `now_ns` is a second past the last sweep, idle flows and stale
    /// fragments are expired against it.
    pub fn advance_clock(&mut self, now_ns: u64) {
        if now_ns >= self.last_sweep_ns.saturating_add(EXPIRY_INTERVAL_NS) {
            self.end_flows(Some(now_ns));
            self.defrag.expire(now_ns, &mut self.stats.decode);
            self.last_sweep_ns = now_ns;
        }
    }

    /// Runs a batch of packets through decode and flow tracking, then sweeps
    /// timeouts once packet time has moved a second (either way) since the
    /// last sweep.
    pub fn process<'a>(&mut self, packets: impl Iterator<Item = RawPacket<'a>>) {
        for packet in packets {
            self.process_packet(packet);
        }
        self.sweep_if_due();
    }

    /// Sweeps timeouts when packet time has moved a second (either way) since
    /// the last sweep; sources that hand over packets one at a time call it
    /// after each burst.
    pub fn sweep_if_due(&mut self) {
        let now = self.flows.now_ns();
        if now.abs_diff(self.last_sweep_ns) >= EXPIRY_INTERVAL_NS {
            self.end_flows(Some(now));
            self.defrag.expire(now, &mut self.stats.decode);
            self.last_sweep_ns = now;
        }
    }

    /// Decodes one packet and tracks it; timeouts wait for
    /// [`Worker::sweep_if_due`].
    pub fn process_packet(&mut self, packet: RawPacket<'_>) {
        self.stats.packets += 1;
        self.stats.wire_bytes += u64::from(packet.wire_len);
        self.stats.captured_bytes += packet.data.len() as u64;
        let naming = self.evidence.is_some();
        let mut after = AfterDecode {
            flows: &mut self.flows,
            applayer: &mut self.applayer,
            inspector: self.inspector.as_mut(),
            evidence: self.evidence.as_mut(),
            sink: &mut self.sink,
            raised: naming.then_some(&mut self.raised),
            decode: &mut self.stats.decode,
            checksum_validation: self.checksum_validation,
            frame: packet,
        };
        match decode::decode(packet) {
            Ok(Decoded::Packet(decoded)) => {
                after.decode.ip += 1;
                after.packet(&decoded);
            }
            Ok(Decoded::Fragment(fragment)) => {
                after.decode.ip += 1;
                let Some(whole) = self.defrag.insert(fragment, after.decode) else {
                    return;
                };
                let len = whole.data.len() as u32;
                match decode_transport(
                    whole.meta,
                    whole.src,
                    whole.dst,
                    whole.proto,
                    whole.data,
                    len,
                    0,
                ) {
                    Ok(Decoded::BadTransport(decoded, error)) => after.broken(&decoded, error),
                    Ok(Decoded::Packet(decoded)) => after.packet(&decoded),
                    Ok(_) => {}
                    Err(e) => after.decode.count(e),
                }
            }
            Ok(Decoded::NotIp) => after.decode.not_ip += 1,
            Ok(Decoded::BadTransport(decoded, error)) => after.broken(&decoded, error),
            Err(e) => after.decode.count(e),
        }
    }

    /// Ends the flows idle at `now_ns`, or every flow (`None`), through the
    /// later stages.
    fn end_flows(&mut self, now_ns: Option<u64>) {
        let naming = self.evidence.is_some();
        let mut stages = Stages {
            applayer: &mut self.applayer,
            inspector: self.inspector.as_mut(),
            evidence: self.evidence.as_mut(),
            sink: Tap {
                sink: &mut self.sink,
                raised: naming.then_some(&mut self.raised),
            },
            ts_ns: now_ns.unwrap_or(self.flows.now_ns()),
        };
        match now_ns {
            Some(now) => self.flows.expire(now, &mut stages),
            None => self.flows.flush(&mut stages),
        }
    }

    /// Ends every open flow and hands back the sink, the final counters
    /// and the datasets rules changed.
    pub fn finish(mut self) -> Finished<S> {
        self.end_flows(None);
        if let Some(inspector) = &self.inspector {
            self.stats.detect = inspector.stats().clone();
        }
        if let Some(evidence) = &self.evidence {
            self.stats.evidence = evidence.stats();
        }
        self.stats.app = self.applayer.stats();
        self.stats.reassembly = self.flows.reassembly_memory().clone();
        Finished {
            flows: self.flows.stats().clone(),
            sink: self.sink,
            stats: self.stats,
            inspector: self.inspector,
        }
    }
}

/// The stages after decode, borrowed from a worker apart from its
/// defragmenter (which may still hold the packet's bytes).
struct AfterDecode<'a, S> {
    flows: &'a mut FlowTable<FlowExt>,
    applayer: &'a mut AppLayer,
    inspector: Option<&'a mut Inspector>,
    evidence: Option<&'a mut Evidence>,
    sink: &'a mut S,
    /// With evidence on, the detections raised (see [`Tap`]).
    raised: Option<&'a mut Vec<Raised>>,
    decode: &'a mut DecodeStats,
    checksum_validation: bool,
    /// The frame as captured (for a reassembled datagram, its last
    /// fragment), for evidence.
    frame: RawPacket<'a>,
}

impl<S: RecordSink> AfterDecode<'_, S> {
    /// Checksum (when validated), flow tracking, reassembly, application
    /// parsing and (with rules) inspection of one packet.
    fn packet(&mut self, packet: &DecodedPacket<'_>) {
        if self.checksum_validation && !checksum::transport_ok(packet) {
            self.decode.count(DecodeError::BadChecksum);
            return;
        }
        let mut stages = Stages {
            applayer: &mut *self.applayer,
            inspector: self.inspector.as_deref_mut(),
            evidence: self.evidence.as_deref_mut(),
            sink: Tap {
                sink: &mut *self.sink,
                raised: self.raised.as_deref_mut(),
            },
            ts_ns: packet.meta.ts_ns,
        };
        let (tracked, ext) = self.flows.track(packet, &mut stages);
        let mut tap = Tap {
            sink: &mut *self.sink,
            raised: self.raised.as_deref_mut(),
        };
        let FlowExt {
            app,
            detect,
            evidence: kept,
        } = ext;
        if let Transport::Udp { src_port, dst_port } = packet.transport {
            let payload = packet.payload;
            let sender = Sender {
                flow_id: tracked.flow_id,
                dir: usize::from(!tracked.to_server),
                proto: packet.proto,
                src: SocketAddr::new(packet.src, src_port),
                dst: SocketAddr::new(packet.dst, dst_port),
                carrier: packet.meta.carrier(),
            };
            let (inspector, sink) = (&mut self.inspector, &mut tap);
            let ts_ns = packet.meta.ts_ns;
            self.applayer
                .datagram(app, (src_port, dst_port), packet.payload, &mut |event| {
                    inspect_app(
                        inspector.as_deref_mut(),
                        detect,
                        sink,
                        ts_ns,
                        &sender,
                        &event,
                        Some(payload),
                    );
                });
        }
        if let Some(inspector) = self.inspector.as_deref_mut() {
            inspect(inspector, &mut tap, detect, packet, Some(tracked));
        }
        if let Some(evidence) = self.evidence.as_deref_mut() {
            let (frame, sink) = (self.frame, &mut *tap.sink);
            evidence.packet(
                kept,
                frame.link,
                frame.ts_ns,
                frame.wire_len,
                frame.data,
                &mut |part| sink.evidence(part),
            );
            tap.start_captures(evidence, kept, tracked.flow_id);
        }
    }

    /// An IP packet whose transport header is broken: counted, tracked in
    /// no flow, and still inspected by `ip` rules, as in Suricata.
    fn broken(&mut self, packet: &DecodedPacket<'_>, error: DecodeError) {
        self.decode.count(error);
        if let Some(inspector) = self.inspector.as_deref_mut() {
            inspect(
                inspector,
                self.sink,
                &mut FlowState::default(),
                packet,
                None,
            );
        }
        // No flow, no capture: such detections name none either.
    }
}

/// The kinds a packet is, for the detectors that read packets.
#[inline]
fn packet_kind(packet: &DecodedPacket<'_>, tracked: Option<Tracked>) -> Events {
    let mut kind = Events::NONE;
    match packet.transport {
        Transport::Tcp(h) if h.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN => {
            kind = kind.union(Events::TCP_SYN);
        }
        Transport::Icmp { .. } => kind = kind.union(Events::ICMP),
        Transport::Udp { .. } if packet.payload.first() == Some(&0x30) => {
            kind = kind.union(Events::BER_DATAGRAM)
        }
        _ => {}
    }
    if tracked.is_some_and(|t| t.opened) {
        kind = kind.union(Events::FIRST_PACKET);
    }
    kind
}

/// Runs the packet rules and the detectors that read it over a packet of
/// flow `tracked` (none: the transport header is broken, only `ip` rules
/// apply).
#[inline]
fn inspect<S: RecordSink>(
    inspector: &mut Inspector,
    sink: &mut S,
    flow: &mut FlowState,
    packet: &DecodedPacket<'_>,
    tracked: Option<Tracked>,
) {
    let kind = packet_kind(packet, tracked);
    if inspector.reads_packet(kind) {
        inspect_packet(inspector, sink, flow, packet, tracked, kind);
    }
}

/// Inspects a packet of the kinds `kind`.
#[inline(never)]
fn inspect_packet<S: RecordSink>(
    inspector: &mut Inspector,
    sink: &mut S,
    flow: &mut FlowState,
    packet: &DecodedPacket<'_>,
    tracked: Option<Tracked>,
    kind: Events,
) {
    let view = PacketView {
        ts_ns: packet.meta.ts_ns,
        flow_id: tracked.map_or(0, |t| t.flow_id),
        to_server: tracked.is_none_or(|t| t.to_server),
        established: tracked.is_some_and(|t| t.established),
        reassembled: tracked.is_some_and(|t| t.reassembled),
        proto: packet.proto,
        src: packet.src,
        dst: packet.dst,
        src_port: packet.src_port(),
        dst_port: packet.dst_port(),
        carrier: packet.meta.carrier(),
        transport_valid: tracked.is_some(),
        payload: packet.payload,
        payload_len: packet.payload_len,
        stream_sizes: tracked.and_then(|t| t.stream_sizes),
        tcp: match packet.transport {
            Transport::Tcp(header) => Some(header),
            _ => None,
        },
        icmp: match packet.transport {
            Transport::Icmp {
                icmp_type,
                code,
                rest,
            } => Some((icmp_type, code, rest)),
            _ => None,
        },
    };
    inspector.inspect_packet(flow, kind, &view, &mut |d| sink.detection(d));
}
