//! Per-worker inspection: packet payloads and reassembled streams against the
//! compiled rules, producing [`Detection`]s.
//!
//! An [`Inspector`] owns what one worker needs: Hyperscan scratch for each
//! group, the candidate list and the built-in detectors. What it keeps per
//! flow is the flow's [`FlowState`] (flowbits, detection count, and for
//! each TCP direction a Hyperscan stream and an inspection window), which
//! lives in the flow's slot and is handed in with each call. The window holds the
//! stream from its start up to `window_bytes`; past that it keeps a tail
//! long enough for a fast pattern split across segments, so that a match is
//! found whatever the segmentation. Each new stream chunk is prefiltered
//! from the first byte a new match could involve, and each rule alerts at
//! most once per chunk or packet. `threshold` and `detection_filter` are
//! applied per rule and tracked key.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use hyperscan::prelude::*;
use rustc_hash::FxBuildHasher;

use super::app::Sender;
use super::builtin::{AppData, Builtin, BuiltinFlow, Events, Finding, StreamData, GID};
use super::dataset::WorkerSets;
use super::engine::{CompiledRule, Engine};
use super::groups::{Class, Group};
use super::rules::{Dsize, FlowbitOp, Protocol, Threshold, ThresholdKind, Track};
use crate::applayer::{AppEvent, HttpStage};
use crate::decode::TcpHeader;
use crate::decode::{ip_proto, Carrier};
use crate::flow::FlowRecord;
use crate::reassembly::StreamId;

/// (transaction, rule) pairs remembered per flow for body windows.
const MAX_BODY_ALERTS: usize = 64;

/// Bytes of a detection's excerpt on each side of the match end.
const EXCERPT_SIDE: usize = 64;

/// Bytes of a stream direction kept for rules that look back (absolute
/// offsets from the stream start, relative matches across segments).
pub const DEFAULT_WINDOW_BYTES: usize = 16 << 10;

/// Bytes kept once a window is full.
const WINDOW_TAIL: usize = 4 << 10;

/// One rule match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// Time of the packet that completed the match, ns since the epoch.
    pub ts_ns: u64,
    /// The flow.
    pub flow_id: u64,
    /// IANA protocol.
    pub proto: u8,
    /// Sender of the matching data.
    pub src: IpAddr,
    /// Receiver.
    pub dst: IpAddr,
    /// Sender's port.
    pub src_port: u16,
    /// Receiver's port.
    pub dst_port: u16,
    /// VLAN tags and tunnel of the flow.
    pub carrier: Carrier,
    /// Generator id.
    pub gid: u32,
    /// Signature id.
    pub sid: u32,
    /// Revision.
    pub rev: u32,
    /// `msg`.
    pub msg: Arc<str>,
    /// `classtype`.
    pub classtype: Option<String>,
    /// Priority (1 highest).
    pub priority: u8,
    /// Threat family.
    pub family: Arc<str>,
    /// True when the data went from the flow's initiator to its responder.
    pub to_server: bool,
    /// Stream offset of the match end (TCP stream matches), bytes.
    pub stream_offset: Option<u64>,
    /// Bytes around the match end.
    pub excerpt: Vec<u8>,
    /// Application protocol of what matched (`http`, `dns`, `tls`), when
    /// an application rule or detector matched it.
    pub app_proto: Option<&'static str>,
    /// The rule's `metadata`.
    pub metadata: Arc<str>,
}

/// Counters of one detector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetectStats {
    /// Packet payloads inspected.
    pub packets: u64,
    /// Stream bytes inspected.
    pub stream_bytes: u64,
    /// Application events inspected (HTTP transaction stages, DNS
    /// questions, TLS hellos).
    pub app_events: u64,
    /// Rules verified after their prefilter matched (or having none).
    pub verified: u64,
    /// Detections emitted.
    pub detections: u64,
    /// Matches a threshold or detection filter kept quiet.
    pub suppressed: u64,
    /// Stream windows given up because the windows' memory cap was reached
    /// (later matches in those directions see only new data).
    pub windows_dropped: u64,
    /// Matches past the alert limit of one inspection, not written
    /// (Suricata's `alert_queue_overflow`).
    pub alert_overflow: u64,
    /// Entries the built-in detectors' cross-flow tables (per host, per
    /// host pair) evicted at their caps.
    pub detector_evictions: u64,
    /// Threshold windows dropped at the `threshold_entries` cap.
    pub threshold_evictions: u64,
    /// TLS flows whose encrypted part began.
    pub encrypted_flows: u64,
    /// Stream bytes of encrypted parts that rules did not read.
    pub encrypted_bytes: u64,
    /// Detections by threat family.
    pub by_family: std::collections::BTreeMap<String, u64>,
    /// Prefilter and verification counters per class of database
    /// ([`Class::ALL`] order).
    pub scan: [ScanStats; 6],
}

/// What the prefilter of one class of database did, and what it let
/// through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Buffers scanned.
    pub scans: u64,
    /// Bytes scanned.
    pub bytes: u64,
    /// Pattern matches reported.
    pub matches: u64,
    /// Rules handed on to be checked (matched, or without a pattern).
    pub candidates: u64,
    /// Candidates whose header, flow or flowbit conditions failed.
    pub header_rejects: u64,
    /// Candidates whose matches were run over the buffer.
    pub verified: u64,
    /// Bytes of the buffers those ran over.
    pub verified_bytes: u64,
}

impl ScanStats {
    fn merge(&mut self, other: &ScanStats) {
        self.scans += other.scans;
        self.bytes += other.bytes;
        self.matches += other.matches;
        self.candidates += other.candidates;
        self.header_rejects += other.header_rejects;
        self.verified += other.verified;
        self.verified_bytes += other.verified_bytes;
    }
}

/// What inspection does with a TLS flow once its encrypted part begins
/// (Suricata's `encryption-handling`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encrypted {
    /// Its bytes are inspected like any others.
    Inspect,
    /// Rules stop reading its payload: the stream and packet contents.
    /// Rules on headers, flags and flowbits, the `tls.*` keywords and the
    /// built-in detectors go on. The packet that carries the first
    /// encrypted bytes is still inspected.
    #[default]
    Track,
    /// Nothing of it is inspected any more; its record is still written.
    Bypass,
}

/// Where a flow stands as to encryption.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Clear,
    /// The packet under way carried the first encrypted bytes.
    Began,
    Encrypted,
}

/// Memory and output bounds of one detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectLimits {
    /// Bytes of each stream direction kept for matches across segments.
    pub window_bytes: usize,
    /// Bytes of those windows kept over all flows.
    pub window_memcap: usize,
    /// Detections one packet or one piece of stream data may raise; later
    /// matches are counted in `alert_overflow` (Suricata's
    /// `packet-alert-max`).
    pub alerts_per_inspection: u32,
    /// What happens to encrypted TLS payload.
    pub encrypted: Encrypted,
    /// Thresholds tracked by rule, address or address pair kept at once;
    /// past it, ended windows and then the half that ends soonest are
    /// dropped (counted in `threshold_evictions`). Those tracked by flow
    /// live and end with their flow.
    pub threshold_entries: usize,
}

impl Default for DetectLimits {
    fn default() -> Self {
        Self {
            window_bytes: 16 << 10,
            window_memcap: 256 << 20,
            alerts_per_inspection: 15,
            encrypted: Encrypted::default(),
            threshold_entries: 65_536,
        }
    }
}

impl DetectStats {
    /// Adds another detector's counters.
    pub fn merge(&mut self, other: &DetectStats) {
        self.packets += other.packets;
        self.stream_bytes += other.stream_bytes;
        self.app_events += other.app_events;
        self.verified += other.verified;
        self.detections += other.detections;
        self.suppressed += other.suppressed;
        self.windows_dropped += other.windows_dropped;
        self.alert_overflow += other.alert_overflow;
        self.detector_evictions += other.detector_evictions;
        self.threshold_evictions += other.threshold_evictions;
        self.encrypted_flows += other.encrypted_flows;
        self.encrypted_bytes += other.encrypted_bytes;
        for (family, count) in &other.by_family {
            *self.by_family.entry(family.clone()).or_default() += count;
        }
        for (mine, theirs) in self.scan.iter_mut().zip(&other.scan) {
            mine.merge(theirs);
        }
    }
}

/// What a packet inspection needs to know about the packet and its flow.
#[derive(Debug, Clone, Copy)]
pub struct PacketView<'a> {
    /// Capture time, ns.
    pub ts_ns: u64,
    /// The flow.
    pub flow_id: u64,
    /// From initiator to responder.
    pub to_server: bool,
    /// TCP handshake completed (other protocols: both sides seen).
    pub established: bool,
    /// This direction's TCP stream is reassembled (stream rules cover it).
    pub reassembled: bool,
    /// IANA protocol.
    pub proto: u8,
    /// Sender.
    pub src: IpAddr,
    /// Receiver.
    pub dst: IpAddr,
    /// Sender's port.
    pub src_port: u16,
    /// Receiver's port.
    pub dst_port: u16,
    /// VLAN tags and tunnel.
    pub carrier: Carrier,
    /// False when the TCP/UDP/ICMP header is broken: only `ip` rules apply.
    pub transport_valid: bool,
    /// Transport payload as captured.
    pub payload: &'a [u8],
    /// Transport payload length from the headers, bytes.
    pub payload_len: u32,
    /// TCP: the sequence space the initiator and the responder have used.
    pub stream_sizes: Option<[u64; 2]>,
    /// The TCP header, for TCP.
    pub tcp: Option<TcpHeader>,
    /// The ICMP type, code and the header's last four bytes, for ICMP.
    pub icmp: Option<(u8, u8, u32)>,
}

/// What inspection keeps about one flow, in the flow's slot. A flow that
/// ends must be handed to [`Inspector::end_flow`], which closes its
/// Hyperscan streams.
#[derive(Default)]
pub struct FlowState {
    /// Hyperscan stream of each TCP direction, once it carried data.
    scanners: [Option<hyperscan::Stream>; 2],
    windows: [Vec<u8>; 2],
    /// Stream offset of each window's first byte.
    bases: [u64; 2],
    bits: Vec<bool>,
    detections: u32,
    /// Each direction's first packet was checked against the IP-only rules.
    ip_only_checked: [bool; 2],
    /// The windows of thresholds tracked `by_flow`.
    thresholds: Vec<(ThresholdId, ThresholdWindow)>,
    /// Whether its encrypted part began.
    phase: Phase,
    /// (transaction, rule) that alerted on a body, shown in windows.
    body_alerts: Vec<(u64, u32)>,
    /// What the built-in detectors keep about the flow.
    builtin: BuiltinFlow,
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

/// What a threshold shared by flows counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TrackKey {
    Rule,
    Addr(IpAddr),
    Pair(IpAddr, IpAddr),
}

/// One rule's threshold: (gid, sid, kind).
type ThresholdId = (u32, u32, ThresholdKind);

/// The matches a threshold counted in its current window.
#[derive(Debug, Clone, Copy)]
struct ThresholdWindow {
    /// When the window ends, ns.
    end_ns: u64,
    count: u32,
}

impl ThresholdWindow {
    fn new(threshold: &Threshold, ts_ns: u64) -> Self {
        let span = (u64::from(threshold.seconds) * 1_000_000_000).max(1);
        Self {
            end_ns: ts_ns.saturating_add(span),
            count: 0,
        }
    }

    /// Counts a match at `ts_ns`; true when it alerts.
    fn tick(&mut self, threshold: &Threshold, ts_ns: u64) -> bool {
        if ts_ns >= self.end_ns {
            *self = Self::new(threshold, ts_ns);
        }
        self.count += 1;
        let count = threshold.count.max(1);
        match threshold.kind {
            ThresholdKind::Limit => self.count <= count,
            ThresholdKind::Threshold => {
                let hit = self.count >= count;
                if hit {
                    self.count = 0;
                }
                hit
            }
            ThresholdKind::Both => self.count == count,
            ThresholdKind::DetectionFilter => self.count > threshold.count,
        }
    }
}

/// The match context of one buffer.
#[derive(Clone, Copy)]
struct Context {
    ts_ns: u64,
    flow_id: u64,
    proto: u8,
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    carrier: Carrier,
    to_server: bool,
    established: bool,
    payload_len: Option<u32>,
    /// The packet's TCP flags (packets only).
    tcp_flags: Option<u8>,
    /// The packet's ICMP type and code (packets only).
    icmp: Option<(u8, u8)>,
    /// The TCP sequence space of initiator and responder (packets only).
    stream_sizes: Option<[u64; 2]>,
    stream_base: Option<u64>,
    transport_valid: bool,
    app_proto: Option<&'static str>,
}

/// The match context of a packet's payload.
fn packet_context(packet: &PacketView<'_>) -> Context {
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
        }
    }
}

/// One worker's inspection state: the shared rules and the worker's own
/// state, kept apart so that inspecting a packet borrows the rules without
/// touching the shared reference count.
pub struct Inspector {
    engine: Arc<Engine>,
    /// True when rules are loaded: every packet is then inspected.
    rules: bool,
    state: Inspection,
}

/// What a detector owns besides the rules.
struct Inspection {
    scratch: Option<Scratch>,
    candidates: Candidates,
    /// Thresholds tracked by rule, address or address pair (those by flow
    /// are in the flow's state), at most `limits.threshold_entries`.
    thresholds: HashMap<(ThresholdId, TrackKey), ThresholdWindow, FxBuildHasher>,
    limits: DetectLimits,
    /// Bytes held in stream windows now.
    window_memory: usize,
    /// Detections raised by the inspection under way.
    raised: u32,
    builtin: Builtin,
    /// This worker's copies of the datasets rules change.
    sets: WorkerSets,
    stats: DetectStats,
}

impl std::fmt::Debug for Inspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inspector")
            .field("rules", &self.engine.rules.len())
            .field("stats", &self.state.stats)
            .finish()
    }
}

/// One scratch sized for every database.
fn scratch_for(engine: &Engine) -> Option<Scratch> {
    /// Allocates the scratch for `db`, or grows it to fit.
    fn fit<M: Mode>(scratch: &mut Option<Scratch>, db: &Database<M>) -> Option<()> {
        match scratch.as_mut() {
            Some(s) => db.realloc_scratch(s).ok().map(drop),
            None => db.alloc_scratch().ok().map(|s| *scratch = Some(s)),
        }
    }
    let mut scratch = None;
    let blocks = engine.packet.iter().flat_map(|p| &p.groups);
    let apps = engine.app.iter().map(|(_, g)| g);
    for db in blocks.chain(apps).filter_map(|g| g.database.as_ref()) {
        fit(&mut scratch, db)?;
    }
    for db in engine
        .stream
        .groups
        .iter()
        .filter_map(|g| g.database.as_ref())
    {
        fit(&mut scratch, db)?;
    }
    scratch
}

/// Closes a Hyperscan stream (its matches at close are of no interest).
fn close(stream: hyperscan::Stream, scratch: Option<&Scratch>) {
    if let Some(scratch) = scratch {
        let _ = stream.close(scratch, |_, _, _, _| Matching::Continue);
    }
}

impl Inspector {
    /// An inspector over `engine` within `limits`, with the built-in
    /// detectors `builtin`.
    pub fn new(engine: Arc<Engine>, limits: DetectLimits, builtin: Builtin) -> Self {
        let state = Inspection {
            scratch: scratch_for(&engine),
            candidates: Candidates::new(engine.rules.len()),
            thresholds: HashMap::default(),
            limits: DetectLimits {
                window_bytes: limits.window_bytes.max(WINDOW_TAIL * 2),
                ..limits
            },
            window_memory: 0,
            raised: 0,
            builtin,
            sets: WorkerSets::new(&engine.datasets),
            stats: DetectStats::default(),
        };
        Self {
            rules: !engine.rules.is_empty(),
            engine,
            state,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> DetectStats {
        DetectStats {
            detector_evictions: self.state.builtin.evicted(),
            ..self.state.stats.clone()
        }
    }

    /// This worker's copies of the datasets rules change, for saving.
    pub fn into_datasets(mut self) -> WorkerSets {
        std::mem::take(&mut self.state.sets)
    }

    /// True when packets of `kind` are inspected: by rules, or by a
    /// built-in detector that reads them.
    #[inline]
    pub fn reads_packet(&self, kind: Events) -> bool {
        self.rules || self.state.builtin.reads(kind)
    }

    /// Inspects one packet payload of `flow`, of the kinds `kind`, with the
    /// packet rules and the detectors that read it.
    pub fn inspect_packet(
        &mut self,
        flow: &mut FlowState,
        kind: Events,
        packet: &PacketView<'_>,
        out: &mut impl FnMut(Detection),
    ) {
        self.state
            .inspect_packet(&self.engine, flow, kind, packet, out);
    }

    /// True when where a TLS flow's encrypted part begins changes what is
    /// inspected (`rules.encrypted` is not `inspect`).
    #[inline]
    pub fn encryption_matters(&self) -> bool {
        self.state.limits.encrypted != Encrypted::Inspect
    }

    /// Inspects new in-order stream data of one TCP direction of `flow`,
    /// whose first `clear` bytes come before the flow's encrypted part.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn inspect_stream(
        &mut self,
        flow: &mut FlowState,
        ts_ns: u64,
        stream: &StreamId,
        offset: u64,
        bytes: &[u8],
        clear: usize,
        out: &mut impl FnMut(Detection),
    ) {
        let policy = self.state.limits.encrypted;
        let clear = if self.encryption_matters() {
            clear.min(bytes.len())
        } else {
            bytes.len()
        };
        let (clear_bytes, encrypted) = bytes.split_at(clear);
        if !clear_bytes.is_empty() {
            self.state.stats.stream_bytes += clear_bytes.len() as u64;
            if self.rules || self.state.builtin.streaming(&flow.builtin, stream.dir) {
                let rules = self.rules;
                self.state.inspect_stream(
                    &self.engine,
                    flow,
                    (ts_ns, stream, offset),
                    clear_bytes,
                    rules,
                    out,
                );
            }
        }
        if encrypted.is_empty() {
            return;
        }
        self.state.encrypted(flow, encrypted.len());
        if policy == Encrypted::Track && self.state.builtin.streaming(&flow.builtin, stream.dir) {
            let at = (ts_ns, stream, offset + clear as u64);
            self.state
                .inspect_stream(&self.engine, flow, at, encrypted, false, out);
        }
    }

    /// Inspects what an application parser saw on `flow`, sent from
    /// `sender`'s source to its destination in `datagram` (none: in the
    /// TCP stream, whose recent bytes stand for the payload).
    pub fn inspect_app(
        &mut self,
        flow: &mut FlowState,
        ts_ns: u64,
        sender: &Sender,
        event: &AppEvent<'_>,
        datagram: Option<&[u8]>,
        out: &mut impl FnMut(Detection),
    ) {
        self.state
            .inspect_app(&self.engine, flow, ts_ns, sender, event, datagram, out);
    }

    /// Bytes of a direction were never seen: what is kept no longer leads
    /// into what comes next.
    pub fn stream_gap(&mut self, flow: &mut FlowState, stream: &StreamId) {
        self.state.stream_gap(flow, stream);
    }

    /// A direction passed the reassembly depth: its Hyperscan stream and
    /// window are let go.
    pub fn stream_done(&mut self, flow: &mut FlowState, stream: &StreamId) {
        self.state.stream_gap(flow, stream);
    }

    /// The flow ended with `record`: the built-in detectors see it end,
    /// its Hyperscan streams are closed and its windows' memory given back.
    /// Returns how many detections it had.
    pub fn end_flow(
        &mut self,
        flow: &mut FlowState,
        record: &FlowRecord,
        out: &mut impl FnMut(Detection),
    ) -> u32 {
        self.state.end_flow(flow, record, out)
    }
}

impl Inspection {
    fn inspect_packet(
        &mut self,
        engine: &Engine,
        flow: &mut FlowState,
        kind: Events,
        packet: &PacketView<'_>,
        out: &mut impl FnMut(Detection),
    ) {
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
            self.collect_packet(class, group, packet.payload);
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
        let checked = &mut flow.ip_only_checked[usize::from(!packet.to_server)];
        if !std::mem::replace(checked, true) {
            self.stats.scan[class.index()].candidates += engine.ip_only.len() as u64;
            for &rule in &engine.ip_only {
                let compiled = &engine.rules[rule as usize];
                let run = || Some((0, packet.payload));
                self.verify(engine, compiled, flow, context, (class, 0), run, out);
            }
        }
    }

    /// Runs the stream rules (with `rules`) and the built-in detectors over
    /// new stream data at (time, stream, offset).
    fn inspect_stream(
        &mut self,
        engine: &Engine,
        flow: &mut FlowState,
        at: (u64, &StreamId, u64),
        bytes: &[u8],
        rules: bool,
        out: &mut impl FnMut(Detection),
    ) {
        let (ts_ns, stream, offset) = at;
        let context = || Context {
            ts_ns,
            flow_id: stream.flow_id,
            proto: ip_proto::TCP,
            src: stream.src.ip(),
            dst: stream.dst.ip(),
            src_port: stream.src.port(),
            dst_port: stream.dst.port(),
            carrier: stream.carrier,
            to_server: stream.dir == 0,
            established: true,
            payload_len: None,
            tcp_flags: None,
            icmp: None,
            stream_sizes: None,
            stream_base: None,
            transport_valid: true,
            app_proto: None,
        };
        // Without rules, no window is kept: only the built-in detectors
        // read the stream.
        if rules {
            self.stream_rules(engine, flow, &mut context(), stream, offset, bytes, out);
        }
        let mut found = Vec::new();
        let data = StreamData {
            ts_ns,
            stream,
            offset,
            bytes,
        };
        self.builtin
            .stream(&mut flow.builtin, &data, &mut |f| found.push(f));
        self.raise_findings(flow, found, context, out);
    }

    /// Adds new stream bytes to the direction's window and runs the stream
    /// rules over it.
    #[allow(clippy::too_many_arguments)]
    fn stream_rules(
        &mut self,
        engine: &Engine,
        flow: &mut FlowState,
        context: &mut Context,
        stream: &StreamId,
        offset: u64,
        bytes: &[u8],
        out: &mut impl FnMut(Detection),
    ) {
        let window_bytes = self.limits.window_bytes;
        let state = &mut *flow;
        let window = &mut state.windows[stream.dir];
        self.window_memory -= window.len();
        if window.is_empty() {
            state.bases[stream.dir] = offset;
        }
        if window.len() + bytes.len() > window_bytes {
            let keep = WINDOW_TAIL.min(window.len());
            let drop = window.len() - keep;
            window.drain(..drop);
            state.bases[stream.dir] += drop as u64;
        }
        let old_len = window.len();
        window.extend_from_slice(bytes);
        let base = state.bases[stream.dir];
        let buffer = std::mem::take(window);
        context.stream_base = Some(base);
        self.collect_stream(engine, flow, stream, bytes);
        let candidates = std::mem::take(&mut self.candidates.list);
        for &rule in &candidates {
            let compiled = &engine.rules[rule as usize];
            let buffer = buffer.as_slice();
            // Positions count from the stream's first byte kept; when that
            // finds nothing new, from the start of the new data (as for a
            // packet), so that `depth` anchors at a message that starts a
            // later segment.
            let run = || {
                let program = &compiled.program;
                program
                    .run_past(buffer, old_len)
                    .or_else(|| {
                        (old_len > 0)
                            .then(|| program.run(&buffer[old_len..]))
                            .flatten()
                            .map(|end| end + old_len)
                    })
                    .map(|end| (end, buffer))
            };
            let checked = (Class::Stream, buffer.len());
            self.verify(engine, compiled, flow, context, checked, run, out);
        }
        self.candidates.list = candidates;
        if self.window_memory + buffer.len() > self.limits.window_memcap {
            // Over the cap: this direction keeps no history.
            self.stats.windows_dropped += 1;
            flow.windows[stream.dir] = Vec::new();
        } else {
            self.window_memory += buffer.len();
            flow.windows[stream.dir] = buffer;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn inspect_app(
        &mut self,
        engine: &Engine,
        flow: &mut FlowState,
        ts_ns: u64,
        sender: &Sender,
        event: &AppEvent<'_>,
        datagram: Option<&[u8]>,
        out: &mut impl FnMut(Detection),
    ) {
        self.stats.app_events += 1;
        let context = Context {
            ts_ns,
            flow_id: sender.flow_id,
            proto: sender.proto,
            src: sender.src.ip(),
            dst: sender.dst.ip(),
            src_port: sender.src.port(),
            dst_port: sender.dst.port(),
            carrier: sender.carrier,
            to_server: event.to_server(),
            established: true,
            payload_len: None,
            tcp_flags: None,
            icmp: None,
            stream_sizes: None,
            stream_base: None,
            transport_valid: true,
            app_proto: Some(match event {
                AppEvent::Http(..) => "http",
                AppEvent::DnsQuery { .. } | AppEvent::DnsAnswer(_) => "dns",
                AppEvent::TlsHello(_) | AppEvent::TlsCertificate(..) => "tls",
            }),
        };
        if !engine.rules.is_empty() {
            self.app_rules(engine, flow, &context, sender, event, datagram, out);
        }
        let mut found = Vec::new();
        let data = AppData {
            ts_ns,
            sender,
            event,
        };
        self.builtin
            .app(&mut flow.builtin, &data, &mut |f| found.push(f));
        self.raise_findings(flow, found, || context, out);
    }

    /// Runs the application rules over what a parser saw.
    #[allow(clippy::too_many_arguments)]
    fn app_rules(
        &mut self,
        engine: &Engine,
        flow: &mut FlowState,
        context: &Context,
        sender: &Sender,
        event: &AppEvent<'_>,
        datagram: Option<&[u8]>,
        out: &mut impl FnMut(Detection),
    ) {
        self.begin_candidates();
        if let Some(scratch) = self.scratch.as_ref() {
            let counters = &mut self.stats.scan[Class::App.index()];
            for (buffer, group) in &engine.app {
                let (Some(db), Some(bytes)) = (group.database.as_ref(), event.inspected(buffer))
                else {
                    continue;
                };
                counters.scans += 1;
                counters.bytes += bytes.len() as u64;
                let found = &mut self.candidates;
                let _ = db.scan(&*bytes, scratch, |id, _, _, _| {
                    counters.matches += 1;
                    found.note(group, id);
                    Matching::Continue
                });
            }
        }
        self.end_candidates(Class::App, &engine.app_always);
        let stage = event.stage();
        let dir = sender.dir;
        let window = match datagram {
            Some(_) => Vec::new(),
            None => std::mem::take(&mut flow.windows[dir]),
        };
        let payload = datagram.unwrap_or(&window);
        let candidates = std::mem::take(&mut self.candidates.list);
        let mut sets = std::mem::take(&mut self.sets);
        for &rule in &candidates {
            let compiled = &engine.rules[rule as usize];
            let Some(program) = compiled.app.as_ref().filter(|p| p.runs_at(stage)) else {
                continue;
            };
            // A body is shown in windows: a rule alerts once per message.
            let body_of = match event {
                AppEvent::Http(tx, HttpStage::RequestBody | HttpStage::ResponseBody) => {
                    Some((tx.seq, rule))
                }
                _ => None,
            };
            if body_of.is_some_and(|key| flow.body_alerts.contains(&key)) {
                continue;
            }
            let sets = &mut sets;
            let run = || {
                let matched = program.run(event, Some(payload))?;
                // Lookups last, so that `set` adds only what the rule's
                // other matches passed.
                for (inspected, set, op) in &compiled.datasets {
                    let value = event.inspected(inspected)?;
                    if !sets.apply(&engine.datasets, *set, *op, &value) {
                        return None;
                    }
                }
                Some(matched)
            };
            let checked = (Class::App, payload.len());
            if self.verify(engine, compiled, flow, context, checked, run, out) {
                if let Some(key) = body_of {
                    let alerts = &mut flow.body_alerts;
                    if alerts.len() >= MAX_BODY_ALERTS {
                        alerts.remove(0);
                    }
                    alerts.push(key);
                }
            }
        }
        self.candidates.list = candidates;
        self.sets = sets;
        if datagram.is_none() {
            flow.windows[dir] = window;
        }
    }

    /// Bytes of `flow`'s encrypted part arrived: the first time, the flow
    /// is counted and its stream windows and Hyperscan streams let go.
    fn encrypted(&mut self, flow: &mut FlowState, bytes: usize) {
        self.stats.encrypted_bytes += bytes as u64;
        if flow.phase == Phase::Clear {
            flow.phase = Phase::Began;
            self.stats.encrypted_flows += 1;
            self.release_streams(flow);
        }
    }

    /// Lets go of both directions' windows and Hyperscan streams.
    fn release_streams(&mut self, flow: &mut FlowState) {
        self.window_memory -= flow.windows.iter().map(Vec::len).sum::<usize>();
        flow.windows = Default::default();
        for scanner in flow.scanners.iter_mut().filter_map(Option::take) {
            close(scanner, self.scratch.as_ref());
        }
    }

    /// Lets go of a direction's window and Hyperscan stream.
    fn stream_gap(&mut self, flow: &mut FlowState, stream: &StreamId) {
        self.window_memory -= flow.windows[stream.dir].len();
        flow.windows[stream.dir] = Vec::new();
        if let Some(scanner) = flow.scanners[stream.dir].take() {
            close(scanner, self.scratch.as_ref());
        }
    }

    fn end_flow(
        &mut self,
        flow: &mut FlowState,
        record: &FlowRecord,
        out: &mut impl FnMut(Detection),
    ) -> u32 {
        let mut found = Vec::new();
        self.builtin
            .end(&mut flow.builtin, record, &mut |f| found.push(f));
        let context = || Context {
            ts_ns: record.ts_end_ns,
            flow_id: record.flow_id,
            proto: record.proto,
            src: record.src,
            dst: record.dst,
            src_port: record.src_port,
            dst_port: record.dst_port,
            carrier: Carrier {
                vlans: record.vlans,
                tunnel: record.tunnel,
            },
            to_server: true,
            established: true,
            payload_len: None,
            tcp_flags: None,
            icmp: None,
            stream_sizes: None,
            stream_base: None,
            transport_valid: true,
            app_proto: record.app_proto,
        };
        self.raise_findings(flow, found, context, out);
        self.release_streams(flow);
        flow.detections
    }

    /// Counts a detection of `family` on `flow`.
    fn count(&mut self, flow: &mut FlowState, family: &str) {
        self.stats.detections += 1;
        flow.detections += 1;
        match self.stats.by_family.get_mut(family) {
            Some(count) => *count += 1,
            None => {
                self.stats.by_family.insert(family.to_owned(), 1);
            }
        }
    }

    /// Writes what the built-in detectors found, addressed like rules'
    /// detections in the context `context` makes (made only when they found
    /// something).
    fn raise_findings(
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

    /// Starts an inspection: no candidate, no detection raised yet.
    fn begin_candidates(&mut self) {
        self.candidates.begin();
        self.raised = 0;
    }

    /// Ends the candidates of a buffer of `class`: adds the rules verified
    /// on every buffer of its group (`always`) and counts them.
    fn end_candidates(&mut self, class: Class, always: &[u32]) {
        self.candidates.finish(always);
        self.stats.scan[class.index()].candidates += self.candidates.list.len() as u64;
    }

    /// Candidates of a packet group for one payload.
    fn collect_packet(&mut self, class: Class, group: &Group<BlockDatabase>, payload: &[u8]) {
        self.begin_candidates();
        if let (Some(db), Some(scratch), false) = (
            group.database.as_ref(),
            self.scratch.as_ref(),
            payload.is_empty(),
        ) {
            let counters = &mut self.stats.scan[class.index()];
            counters.scans += 1;
            counters.bytes += payload.len() as u64;
            let found = &mut self.candidates;
            let _ = db.scan(payload, scratch, |id, _, _, _| {
                counters.matches += 1;
                found.note(group, id);
                Matching::Continue
            });
        }
        self.end_candidates(class, &group.always);
    }

    /// Candidates of the stream group of a direction for its new bytes,
    /// through its Hyperscan stream (opened here on first use).
    fn collect_stream(
        &mut self,
        engine: &Engine,
        flow: &mut FlowState,
        stream: &StreamId,
        bytes: &[u8],
    ) {
        self.begin_candidates();
        let group = engine
            .stream
            .lookup(stream.dir == 0, stream.src.port(), stream.dst.port());
        if let (Some(db), Some(scratch)) = (group.database.as_ref(), self.scratch.as_ref()) {
            let scanner = &mut flow.scanners[stream.dir];
            if scanner.is_none() {
                *scanner = db.open_stream().ok();
            }
            if let Some(scanner) = scanner.as_ref() {
                let counters = &mut self.stats.scan[Class::Stream.index()];
                counters.scans += 1;
                counters.bytes += bytes.len() as u64;
                let found = &mut self.candidates;
                let _ = scanner.scan(bytes, scratch, |id, _, _, _| {
                    counters.matches += 1;
                    found.note(group, id);
                    Matching::Continue
                });
            }
        }
        self.end_candidates(Class::Stream, &group.always);
    }

    /// Checks a candidate rule's header, flow and flowbit conditions, then
    /// its matches (`run`: the end of the match and the buffer it is in),
    /// and raises the detection; true when it did. `checked` is the class
    /// of the candidate's database and the bytes its matches run over.
    #[allow(clippy::too_many_arguments)]
    fn verify<B: AsRef<[u8]>>(
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

    /// Applies `threshold` and `detection_filter`: true when this match alerts.
    fn threshold_allows(
        &mut self,
        compiled: &CompiledRule,
        flow: &mut FlowState,
        context: &Context,
    ) -> bool {
        let rule = &compiled.rule;
        let mut allow = true;
        for threshold in [rule.threshold, rule.detection_filter]
            .into_iter()
            .flatten()
        {
            let id = (rule.gid, rule.sid, threshold.kind);
            let key = match threshold.track {
                Track::ByRule => TrackKey::Rule,
                Track::BySrc => TrackKey::Addr(context.src),
                Track::ByDst => TrackKey::Addr(context.dst),
                Track::ByBoth => TrackKey::Pair(context.src, context.dst),
                Track::ByFlow => {
                    let windows = &mut flow.thresholds;
                    let at = match windows.iter().position(|(i, _)| *i == id) {
                        Some(at) => at,
                        None => {
                            windows.push((id, ThresholdWindow::new(&threshold, context.ts_ns)));
                            windows.len() - 1
                        }
                    };
                    allow &= windows[at].1.tick(&threshold, context.ts_ns);
                    continue;
                }
            };
            if !self.thresholds.contains_key(&(id, key)) {
                self.make_threshold_room(context.ts_ns);
            }
            let window = self
                .thresholds
                .entry((id, key))
                .or_insert_with(|| ThresholdWindow::new(&threshold, context.ts_ns));
            allow &= window.tick(&threshold, context.ts_ns);
        }
        allow
    }

    /// Keeps the shared thresholds under their cap before one is added:
    /// windows that ended go first, then the half that ends soonest, each
    /// counted as evicted.
    fn make_threshold_room(&mut self, now_ns: u64) {
        let cap = self.limits.threshold_entries.max(1);
        if self.thresholds.len() < cap {
            return;
        }
        let before = self.thresholds.len();
        self.thresholds.retain(|_, w| w.end_ns > now_ns);
        if self.thresholds.len() >= cap {
            let mut ends: Vec<u64> = self.thresholds.values().map(|w| w.end_ns).collect();
            let half = ends.len() / 2;
            let (_, &mut cut, _) = ends.select_nth_unstable(half);
            self.thresholds.retain(|_, w| w.end_ns > cut);
        }
        self.stats.threshold_evictions += (before - self.thresholds.len()) as u64;
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
    let bit_count = engine.flowbit_count;
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

/// The rules one buffer is verified against, each listed once however many
/// of its patterns matched: a rule's stamp holds the generation (the
/// buffer) that last listed it.
struct Candidates {
    /// The rules, by index.
    list: Vec<u32>,
    stamps: Vec<u32>,
    generation: u32,
}

impl Candidates {
    /// Room for the stamps of `rules` rules.
    fn new(rules: usize) -> Self {
        Self {
            list: Vec::new(),
            stamps: vec![0; rules],
            generation: 0,
        }
    }

    /// Starts a new list: a new generation of stamps, nothing in it.
    fn begin(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamps.iter_mut().for_each(|s| *s = 0);
            self.generation = 1;
        }
        self.list.clear();
    }

    /// Lists the rules of pattern `id` of `group` not listed yet.
    fn note<D>(&mut self, group: &Group<D>, id: u32) {
        for &rule in group.rules_of(id) {
            if self.stamps[rule as usize] != self.generation {
                self.stamps[rule as usize] = self.generation;
                self.list.push(rule);
            }
        }
    }

    /// Adds the rules listed in `always` and puts the list in rule order.
    fn finish(&mut self, always: &[u32]) {
        self.list.extend_from_slice(always);
        if self.list.len() > 1 {
            self.list.sort_unstable();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rules::{RuleSet, Vars};

    fn builtin() -> Builtin {
        Builtin::new(&Default::default(), &Default::default())
    }

    fn inspector(rules: &str, limits: DetectLimits) -> Inspector {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.rules");
        std::fs::write(&path, rules).unwrap();
        let set = RuleSet::load(&[path], &Vars::default());
        let (engine, rejected) = Engine::compile(&set, None).unwrap();
        assert!(rejected.is_empty() && !engine.rules.is_empty());
        Inspector::new(Arc::new(engine), limits, builtin())
    }

    fn record() -> FlowRecord {
        FlowRecord::example()
    }

    fn stream(flow_id: u64) -> StreamId {
        StreamId {
            flow_id,
            dir: 0,
            src: "10.0.0.1:1000".parse().unwrap(),
            dst: "10.0.0.2:80".parse().unwrap(),
            carrier: Default::default(),
        }
    }

    #[test]
    fn split_pattern_is_found_once_across_chunks() {
        let mut d = inspector(
            "alert tcp any any -> any any (content:\"SECRET\"; sid:1;)\n",
            DetectLimits {
                window_memcap: 1 << 20,
                ..DetectLimits::default()
            },
        );
        let mut flow = FlowState::default();
        let mut found = Vec::new();
        d.inspect_stream(
            &mut flow,
            1,
            &stream(1),
            0,
            b"xxSEC",
            usize::MAX,
            &mut |x| found.push(x),
        );
        d.inspect_stream(
            &mut flow,
            2,
            &stream(1),
            5,
            b"RETyy",
            usize::MAX,
            &mut |x| found.push(x),
        );
        d.inspect_stream(&mut flow, 3, &stream(1), 10, b"zz", usize::MAX, &mut |x| {
            found.push(x)
        });
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].stream_offset, Some(8));
        assert_eq!(d.end_flow(&mut flow, &record(), &mut |_| {}), 1);
        assert_eq!(d.state.window_memory, 0);
    }

    #[test]
    fn window_memory_stays_under_its_cap_and_drops_are_counted() {
        let rules =
            "alert tcp any any -> any any (content:\"abc\"; content:\"xyz\"; distance:0; sid:1;)\n";
        let mut d = inspector(
            rules,
            DetectLimits {
                window_memcap: 4_096,
                ..DetectLimits::default()
            },
        );
        let mut flows: Vec<FlowState> = (0..100).map(|_| FlowState::default()).collect();
        let mut found = 0;
        for (id, flow) in flows.iter_mut().enumerate() {
            let id = id as u64;
            d.inspect_stream(
                flow,
                1,
                &stream(id),
                0,
                &[b'.'; 100],
                usize::MAX,
                &mut |_| found += 1,
            );
            assert!(d.state.window_memory <= 4_096);
        }
        assert!(d.stats().windows_dropped > 0);
        // A match inside one chunk needs no history.
        d.inspect_stream(
            &mut flows[99],
            2,
            &stream(99),
            100,
            b"abc...xyz",
            usize::MAX,
            &mut |_| found += 1,
        );
        assert_eq!(found, 1);
        for flow in &mut flows {
            d.end_flow(flow, &record(), &mut |_| {});
        }
        assert_eq!(d.state.window_memory, 0);
    }

    #[test]
    fn shared_thresholds_stay_under_their_cap_and_flow_ones_live_in_the_flow() {
        let rules = concat!(
            "alert tcp any any -> any any (content:\"SRC\"; ",
            "threshold: type limit, track by_src, count 1, seconds 60; sid:1;)\n",
            "alert tcp any any -> any any (content:\"FLOW\"; ",
            "threshold: type limit, track by_flow, count 1, seconds 60; sid:2;)\n",
        );
        let mut d = inspector(
            rules,
            DetectLimits {
                threshold_entries: 8,
                ..DetectLimits::default()
            },
        );
        let mut sids = Vec::new();
        for host in 0..20u8 {
            let mut flow = FlowState::default();
            let mut from = stream(u64::from(host));
            from.src = std::net::SocketAddr::from(([10, 1, 0, host], 1000));
            for (i, chunk) in [b"SRC FLOW ", b"SRC FLOW "].iter().enumerate() {
                let offset = (i * chunk.len()) as u64;
                d.inspect_stream(&mut flow, 1, &from, offset, *chunk, usize::MAX, &mut |x| {
                    sids.push(x.sid)
                });
            }
            assert!(d.state.thresholds.len() <= 8);
            assert_eq!(flow.thresholds.len(), 1);
            d.end_flow(&mut flow, &record(), &mut |_| {});
        }
        // One alert of each per source and per flow, whatever was evicted.
        assert_eq!(sids.iter().filter(|&&s| s == 1).count(), 20);
        assert_eq!(sids.iter().filter(|&&s| s == 2).count(), 20);
        assert!(d.stats().threshold_evictions >= 12);
    }

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
