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
//!
//! The work is split by job:
//! - `packet`, `stream` and `events` drive the three classes of
//!   inspection (packet payloads, reassembled streams with their windows,
//!   application events) through rules and built-in detectors;
//! - `prefilter` owns the Hyperscan scratch and the candidate rules a
//!   buffer's pattern matches name;
//! - `verify` checks a candidate's conditions and matches and makes the
//!   [`Detection`];
//! - `threshold` applies `threshold` and `detection_filter`;
//! - `flow_state` owns [`FlowState`] and lets go of it;
//! - `stats` holds the counters, [`DetectStats`] and [`ScanStats`].
//!
//! This module holds the public types and [`Inspector`], the entry points
//! a worker calls.

mod events;
mod flow_state;
mod packet;
mod prefilter;
mod stats;
mod stream;
mod threshold;
mod verify;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use hyperscan::prelude::Scratch;
use rustc_hash::FxBuildHasher;

use super::app::Sender;
use super::builtin::{Builtin, Events};
use super::dataset::WorkerSets;
use super::engine::{Engine, Remap};
use crate::applayer::AppEvent;
use crate::decode::Carrier;
use crate::decode::TcpHeader;
use crate::flow::FlowRecord;
use crate::reassembly::StreamId;
use prefilter::Candidates;
pub use prefilter::{RecordedScan, ScanTarget};
use stream::WINDOW_TAIL;
use threshold::{ThresholdId, ThresholdWindow, TrackKey};

pub use flow_state::FlowState;
pub use stats::{DetectStats, ScanStats};
pub use stream::DEFAULT_WINDOW_BYTES;

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
    /// The evidence capture of its flow, relative to the output folder,
    /// when captures are on.
    pub evidence: Option<Arc<str>>,
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

/// Memory and output bounds of inspection; the limit keys of `[rules]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DetectLimits {
    /// Bytes of each TCP direction kept for inspection across segments
    /// (`stream_window_kib`).
    #[serde(rename = "stream_window_kib", with = "crate::units::kib")]
    pub window_bytes: usize,
    /// Bytes of those windows a worker keeps in all (`window_memcap_mib`);
    /// past it a direction keeps no history (counted as `windows_dropped`).
    #[serde(rename = "window_memcap_mib", with = "crate::units::mib")]
    pub window_memcap: usize,
    /// Detections one packet (or one piece of stream data) may raise, in
    /// rule order (`alerts_per_packet`); later matches are counted as
    /// `alert_overflow` and not written (Suricata's `packet-alert-max`).
    #[serde(rename = "alerts_per_packet")]
    pub alerts_per_inspection: u32,
    /// What inspection does with a TLS flow once its application data
    /// begins: `inspect` it as any bytes, `track` (rules stop reading its
    /// payload; header rules, `tls.*` keywords and the detectors go on), or
    /// `bypass` (nothing more is inspected); Suricata's
    /// `encryption-handling`.
    pub encrypted: Encrypted,
    /// `threshold` and `detection_filter` windows tracked by rule, address
    /// or address pair that a worker keeps at once; past it, ended windows
    /// and then the half that ends soonest are dropped (counted in
    /// `threshold_evictions`). Windows tracked by flow end with their flow.
    pub threshold_entries: usize,
}

impl Default for DetectLimits {
    fn default() -> Self {
        Self {
            window_bytes: DEFAULT_WINDOW_BYTES,
            window_memcap: 256 << 20,
            alerts_per_inspection: 15,
            encrypted: Encrypted::default(),
            threshold_entries: 65_536,
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
    /// Every prefilter scan, when recording (the scan bench's bound).
    recorded: Option<Vec<RecordedScan>>,
    /// The latest packet or stream time inspected, ns: the clock threshold
    /// windows run on.
    clock_ns: u64,
    limits: DetectLimits,
    /// Bytes held in stream windows now.
    window_memory: usize,
    /// Detections raised by the inspection under way.
    raised: u32,
    builtin: Builtin,
    /// This worker's copies of the datasets rules change.
    sets: WorkerSets,
    /// The rule generation: 1, and one more at each reload.
    generation: u32,
    /// IP-only rules that reloads added, each with the generation that
    /// added it, by rule index: a flow direction checked at an earlier
    /// generation is checked against these. At most one entry per rule.
    ip_only_added: Vec<(u32, u32)>,
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

impl Inspector {
    /// An inspector over `engine` within `limits`, with the built-in
    /// detectors `builtin`.
    pub fn new(engine: Arc<Engine>, limits: DetectLimits, builtin: Builtin) -> Self {
        let state = Inspection {
            scratch: engine.scratch(),
            candidates: Candidates::new(engine.rules.len()),
            thresholds: HashMap::default(),
            clock_ns: 0,
            recorded: None,
            generation: 1,
            ip_only_added: Vec::new(),
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

    /// Detections raised so far, by family.
    pub fn detections_by_family(&self) -> &std::collections::BTreeMap<String, u64> {
        &self.state.stats.by_family
    }

    /// Counters so far.
    pub fn stats(&self) -> DetectStats {
        DetectStats {
            detector_evictions: self.state.builtin.tables().evicted,
            pcre_limit_hits: crate::detect::matcher::pcre_limit_hits(),
            ..self.state.stats.clone()
        }
    }

    /// Threshold windows held now.
    pub fn threshold_entries(&self) -> usize {
        self.state.thresholds.len()
    }

    /// Entries the built-in detectors' cross-flow tables hold now.
    pub fn detector_entries(&self) -> u64 {
        self.state.builtin.tables().entries
    }

    /// From now on, keeps a copy of every prefilter scan (database and
    /// bytes): for benches that replay exactly the pipeline's scans.
    pub fn record_scans(&mut self) {
        self.state.recorded.get_or_insert_with(Vec::new);
    }

    /// The scans recorded since [`Inspector::record_scans`], in order;
    /// recording stops.
    pub fn take_scans(&mut self) -> Vec<RecordedScan> {
        self.state.recorded.take().unwrap_or_default()
    }

    /// The rules it inspects with.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Carries one flow's state over to the rules of a reload (`remap`
    /// from [`Engine::remap_from`]), before [`Inspector::install`]: its
    /// Hyperscan streams, compiled for the old rules, close (the windows
    /// stay, and the next bytes open new streams); its flowbits follow
    /// their names, its thresholds and body alerts their rules, and what
    /// belonged to rules that are gone is dropped.
    pub fn carry_flow(&mut self, flow: &mut FlowState, remap: &Remap) {
        for scanner in flow.scanners.iter_mut().filter_map(Option::take) {
            prefilter::close(scanner, self.state.scratch.as_ref());
        }
        // Only flows that set a flowbit keep a vector; verification sizes
        // it as it needs.
        let set: Vec<usize> = flow
            .bits
            .iter()
            .enumerate()
            .filter(|(_, set)| **set)
            .filter_map(|(old, _)| remap.bits.get(old).copied().flatten())
            .map(usize::from)
            .collect();
        flow.bits = Vec::new();
        if let Some(&top) = set.iter().max() {
            flow.bits.resize(top + 1, false);
            for bit in set {
                flow.bits[bit] = true;
            }
        }
        flow.thresholds
            .retain(|((gid, sid, _), _)| remap.sids.contains(&(*gid, *sid)));
        flow.body_alerts = flow
            .body_alerts
            .iter()
            .filter_map(|&(tx, rule)| Some((tx, (*remap.rules.get(rule as usize)?)?)))
            .collect();
    }

    /// Inspects with `engine` from now on (a reload), once every flow was
    /// carried over with [`Inspector::carry_flow`]. Thresholds of rules
    /// that remain, the datasets' values, the detectors and the counters
    /// stay.
    pub fn install(&mut self, engine: Arc<Engine>, remap: &Remap) {
        let state = &mut self.state;
        state.scratch = engine.scratch();
        state.candidates = Candidates::new(engine.rules.len());
        state
            .thresholds
            .retain(|((gid, sid, _), _), _| remap.sids.contains(&(*gid, *sid)));
        state.sets =
            std::mem::take(&mut state.sets).carried_over(&self.engine.datasets, &engine.datasets);
        // Earlier reloads' additions keep their generations under their
        // new indices; this one's come with the next generation.
        state.generation += 1;
        let generation = state.generation;
        let moved = state.ip_only_added.iter().filter_map(|&(rule, added)| {
            Some((remap.rules.get(rule as usize).copied().flatten()?, added))
        });
        let new = remap.ip_only_added.iter().map(|&rule| (rule, generation));
        let mut added: Vec<(u32, u32)> = moved.chain(new).collect();
        added.sort_unstable();
        state.ip_only_added = added;
        self.rules = !engine.rules.is_empty();
        self.engine = engine;
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

/// What the submodules' tests share: an inspector over rule text, a flow's
/// record and a TCP stream.
#[cfg(test)]
pub(super) mod testing {
    use super::*;
    use crate::detect::rules::{RuleSet, Vars};

    fn builtin() -> Builtin {
        Builtin::new(&Default::default(), &Default::default())
    }

    /// The engine of `rules`, every one of which must compile.
    pub(super) fn engine(rules: &str) -> Arc<Engine> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.rules");
        std::fs::write(&path, rules).unwrap();
        let set = RuleSet::load(&[path], &Vars::default());
        let (engine, rejected) = Engine::compile(&set, None).unwrap();
        assert!(rejected.is_empty() && !engine.rules.is_empty());
        Arc::new(engine)
    }

    pub(super) fn inspector(rules: &str, limits: DetectLimits) -> Inspector {
        Inspector::new(engine(rules), limits, builtin())
    }

    pub(super) fn record() -> FlowRecord {
        FlowRecord::example()
    }

    pub(super) fn stream(flow_id: u64) -> StreamId {
        StreamId {
            flow_id,
            dir: 0,
            src: "10.0.0.1:1000".parse().unwrap(),
            dst: "10.0.0.2:80".parse().unwrap(),
            carrier: Default::default(),
        }
    }
}
