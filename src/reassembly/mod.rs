//! TCP stream reassembly: each direction of a TCP flow as one ordered byte
//! stream.
//!
//! A [`Stream`] turns segments into in-order data at stream offsets (0 is the
//! byte after the SYN). A segment that continues the stream is handed on
//! as it is, without a copy; one that arrives early is held, copied, until the
//! bytes before it arrive. Held segments never overlap each other: an arriving
//! segment that overlaps held data is resolved by the [`OverlapPolicy`] (the
//! first bytes win by default), and conflicting overlaps (same offset,
//! different bytes) are counted, as are retransmissions (data already
//! delivered; the delivered bytes stand). When the peer acknowledges bytes
//! this side never showed, or memory runs out, or the flow ends with data
//! still held, the missing range becomes a gap: it is reported to the sink
//! and delivery resumes after it. Past the configured depth nothing more is
//! delivered. Sequence numbers wrap: offsets are 64-bit and computed relative
//! to the next expected byte.
//!
//! What consumes the stream (pattern scanning, application parsers) sits
//! behind [`StreamSink`]; this module owns ordering, overlap and gap
//! semantics and memory caps, nothing else.

use std::net::{IpAddr, SocketAddr};

use crate::decode::Carrier;

/// How overlapping bytes of held segments are resolved: which of two
/// segments sent for the same stream bytes the receiver keeps. Besides
/// `first` and `last`, the target-based policies Suricata documents (after
/// Novak and Sturges), named as in its `host-os-policy`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum OverlapPolicy {
    /// Bytes already held win.
    #[default]
    First,
    /// The latest bytes win.
    Last,
    /// BSD: a new segment starting before a held one wins.
    Bsd,
    /// BSD-right: held bytes win.
    BsdRight,
    /// Linux before 2.6: like BSD, and a new segment at the same start
    /// covering the held one wins.
    OldLinux,
    /// Linux: like BSD, and a new segment at the same start reaching past the
    /// held one wins.
    Linux,
    /// Solaris before 10: held bytes win.
    OldSolaris,
    /// Solaris: a new segment ending at or past a held one wins.
    Solaris,
    /// HP-UX 10: as BSD.
    Hpux10,
    /// HP-UX 11: as Solaris.
    Hpux11,
    /// IRIX: as BSD.
    Irix,
    /// macOS: as BSD.
    Macos,
    /// Windows: as BSD.
    Windows,
    /// Windows Vista: held bytes win.
    Vista,
    /// Windows Server 2003: as BSD.
    Windows2k3,
}

impl OverlapPolicy {
    /// True when a new segment `[start, end)` replaces the bytes of a held
    /// one `[held_start, held_end)` where the two overlap (the decision of
    /// Suricata's IDS-mode reassembly, per held segment).
    pub fn new_wins(self, start: u64, end: u64, held_start: u64, held_end: u64) -> bool {
        use OverlapPolicy::*;
        let bsd_like = matches!(
            self,
            Bsd | Hpux10 | Irix | Windows | Windows2k3 | OldLinux | Linux | Macos
        );
        let solaris_like = matches!(self, Solaris | Hpux11);
        match self {
            Last => true,
            First | BsdRight | OldSolaris | Vista => false,
            _ if start == held_start => {
                (end > held_end && self == Linux)
                    || (end >= held_end && (self == OldLinux || solaris_like))
            }
            _ if start < held_start => bsd_like || (end >= held_end && solaris_like),
            _ => end > held_end && solaris_like,
        }
    }
}

/// The overlap policy of each receiving host: the longest matching prefix
/// decides; hosts outside every prefix get the default. Configured as
/// Suricata's `host-os-policy` is: policy name to a list of prefixes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "PolicyLists", into = "PolicyLists")]
pub struct HostPolicies {
    /// (network, prefix length, policy), longest prefixes first.
    prefixes: Vec<(IpAddr, u8, OverlapPolicy)>,
}

/// A host-policy prefix that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("host policy address {0:?} is not an address or CIDR prefix")]
pub struct BadPrefix(pub String);

/// Host policies as configured: policy to prefixes.
type PolicyLists = std::collections::BTreeMap<OverlapPolicy, Vec<String>>;

impl TryFrom<PolicyLists> for HostPolicies {
    type Error = BadPrefix;

    fn try_from(lists: PolicyLists) -> Result<Self, BadPrefix> {
        let mut policies = HostPolicies::default();
        for (policy, prefixes) in lists {
            for prefix in prefixes {
                policies.add(&prefix, policy)?;
            }
        }
        Ok(policies)
    }
}

impl From<HostPolicies> for PolicyLists {
    fn from(policies: HostPolicies) -> Self {
        let mut lists = PolicyLists::new();
        for (net, len, policy) in policies.prefixes {
            lists
                .entry(policy)
                .or_default()
                .push(format!("{net}/{len}"));
        }
        lists
    }
}

impl HostPolicies {
    /// Adds `prefix` (`10.0.0.0/8`, `2001:db8::/32` or one address).
    pub fn add(&mut self, prefix: &str, policy: OverlapPolicy) -> Result<(), BadPrefix> {
        let bad = || BadPrefix(prefix.to_owned());
        let (addr, len) = prefix.split_once('/').unwrap_or((prefix, ""));
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = if len.is_empty() {
            max
        } else {
            len.trim().parse().map_err(|_| bad())?
        };
        if len > max {
            return Err(bad());
        }
        self.prefixes.push((addr, len, policy));
        self.prefixes.sort_by_key(|p| std::cmp::Reverse(p.1));
        Ok(())
    }

    /// The policy of `host`, if a prefix covers it.
    pub fn policy_of(&self, host: IpAddr) -> Option<OverlapPolicy> {
        let bits = |a: IpAddr| match a {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        };
        let (host_bits, width): (u128, u32) = bits(host);
        self.prefixes.iter().find_map(|&(net, len, policy)| {
            let (net_bits, net_width) = bits(net);
            let shift = width - u32::from(len);
            let same = net_width == width && (len == 0 || host_bits >> shift == net_bits >> shift);
            same.then_some(policy)
        })
    }
}

/// Limits and behaviour of reassembly (`[reassembly]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReassemblyConfig {
    /// Bytes per direction delivered at most; 0: unlimited (`depth_bytes`).
    #[serde(rename = "depth_bytes")]
    pub depth: u64,
    /// Bytes one direction may hold out of order before its earliest gap is
    /// skipped (`stream_memcap_kib`).
    #[serde(rename = "stream_memcap_kib", with = "crate::units::kib")]
    pub stream_memcap: usize,
    /// Bytes a worker may hold out of order over all its streams
    /// (`worker_memcap_mib`).
    #[serde(rename = "worker_memcap_mib", with = "crate::units::mib")]
    pub worker_memcap: usize,
    /// Overlap resolution among held bytes, for receivers no host policy
    /// names (`overlap_policy`): `first` (the bytes seen first win),
    /// `last`, or an operating system's policy (`bsd`, `linux`, `windows`
    /// ..., as in Suricata's `host-os-policy`).
    #[serde(rename = "overlap_policy")]
    pub policy: OverlapPolicy,
    /// Overlap resolution by receiving host (`host_os_policy`): policy name
    /// to a list of addresses or CIDR prefixes, e.g. `linux = ["10.0.0.0/8"]`.
    #[serde(rename = "host_os_policy")]
    pub host_policies: HostPolicies,
    /// In-order bytes are delivered as they arrive (Suricata's inline
    /// mode); otherwise only once the receiver acknowledged them (its IDS
    /// mode), so that bytes sent twice are resolved by the receiver's policy
    /// first.
    pub inline: bool,
    /// Reassemble flows whose SYN was not seen, from their first data.
    pub midstream: bool,
}

impl ReassemblyConfig {
    /// The overlap policy of bytes sent to `receiver`.
    pub fn policy_for(&self, receiver: IpAddr) -> OverlapPolicy {
        self.host_policies
            .policy_of(receiver)
            .unwrap_or(self.policy)
    }
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        Self {
            depth: 1 << 20,
            stream_memcap: 256 << 10,
            worker_memcap: 64 << 20,
            policy: OverlapPolicy::First,
            host_policies: HostPolicies::default(),
            inline: true,
            midstream: false,
        }
    }
}

/// Event counters of one stream (or summed over several).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamCounters {
    /// Segments whose bytes were all delivered already.
    pub retransmits: u32,
    /// Segments that arrived ahead of a missing one.
    pub out_of_order: u32,
    /// Segments overlapping delivered or held bytes only in part.
    pub overlaps: u32,
    /// Overlaps whose bytes differed from the ones they overlapped.
    pub conflicting_overlaps: u32,
    /// Ranges never seen and skipped.
    pub gaps: u32,
    /// Bytes in those ranges.
    pub gap_bytes: u64,
    /// True once the depth was reached.
    pub depth_reached: bool,
    /// Times held data was given up because a memory cap was reached.
    pub memcap_flushes: u32,
}

impl StreamCounters {
    /// Adds another stream's counters.
    pub fn merge(&mut self, other: &StreamCounters) {
        self.retransmits += other.retransmits;
        self.out_of_order += other.out_of_order;
        self.overlaps += other.overlaps;
        self.conflicting_overlaps += other.conflicting_overlaps;
        self.gaps += other.gaps;
        self.gap_bytes += other.gap_bytes;
        self.depth_reached |= other.depth_reached;
        self.memcap_flushes += other.memcap_flushes;
    }
}

/// Which stream data belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamId {
    /// The flow.
    pub flow_id: u64,
    /// 0: from the initiator (to server), 1: from the responder.
    pub dir: usize,
    /// Sender of this direction's bytes.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// The flow's VLAN tags and tunnel.
    pub carrier: Carrier,
}

impl StreamId {
    /// This flow's stream in direction `dir`: this one, or the reverse.
    pub fn toward(&self, dir: usize) -> StreamId {
        if dir == self.dir {
            *self
        } else {
            StreamId {
                dir,
                src: self.dst,
                dst: self.src,
                ..*self
            }
        }
    }
}

/// Where in-order stream data goes. Both methods do nothing by default, for
/// sinks that take flow records only.
pub trait StreamSink {
    /// `bytes` at stream `offset` (bytes from the start of the direction).
    fn stream_data(&mut self, stream: &StreamId, offset: u64, bytes: &[u8]) {
        let _ = (stream, offset, bytes);
    }

    /// `len` bytes at `offset` were never seen; data resumes after them.
    fn stream_gap(&mut self, stream: &StreamId, offset: u64, len: u64) {
        let _ = (stream, offset, len);
    }

    /// The direction reached the reassembly depth: nothing more will come.
    fn stream_depth(&mut self, stream: &StreamId) {
        let _ = stream;
    }
}

/// One TCP segment as reassembly sees it.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    /// Sequence number of its first byte.
    pub seq: u32,
    /// Captured payload.
    pub payload: &'a [u8],
    /// It carries FIN.
    pub fin: bool,
}

/// Bytes held out of order by one worker, against its cap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReassemblyBudget {
    /// Bytes held now.
    pub used: usize,
    /// Most bytes held at once.
    pub peak: usize,
    /// Times a stream gave up held bytes at a memory cap (its own or the
    /// worker's), leaving a gap.
    pub flushes: u64,
}

#[derive(Debug, Clone)]
struct Held {
    offset: u64,
    bytes: Vec<u8>,
}

impl Held {
    fn end(&self) -> u64 {
        self.offset + self.bytes.len() as u64
    }
}

/// One direction of a TCP connection.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    /// Sequence number of stream offset 0, once known.
    base_seq: Option<u32>,
    /// Offset of the next byte expected.
    next: u64,
    /// Offset of the FIN, once seen.
    fin_at: Option<u64>,
    held: Vec<Held>,
    held_bytes: usize,
    counters: StreamCounters,
    /// The receiver's overlap policy.
    policy: OverlapPolicy,
}

impl Stream {
    /// Counters so far.
    pub fn counters(&self) -> &StreamCounters {
        &self.counters
    }

    /// Bytes held out of order.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Resolves this direction's overlaps as its receiver does.
    pub fn set_policy(&mut self, policy: OverlapPolicy) {
        self.policy = policy;
    }

    /// True once the first sequence number is known.
    pub fn is_anchored(&self) -> bool {
        self.base_seq.is_some()
    }

    /// Sequence space used so far, as Suricata's `stream_size` counts it:
    /// the in-order data bytes, one for the SYN (or, picked up midstream,
    /// the byte before the first seen) and one for a FIN reached; 0 before
    /// the stream is anchored.
    pub fn seq_span(&self) -> u64 {
        match self.base_seq {
            Some(_) => self.next + 1 + u64::from(self.fin_at.is_some_and(|fin| fin <= self.next)),
            None => 0,
        }
    }

    /// Anchors the stream at a SYN with sequence number `isn` (data starts at
    /// `isn + 1`); a later SYN for the same stream changes nothing.
    pub fn anchor_syn(&mut self, isn: u32) {
        if self.base_seq.is_none() {
            self.base_seq = Some(isn.wrapping_add(1));
        }
    }

    /// Anchors the stream at the first data byte `seq` (midstream pick-up).
    pub fn anchor_data(&mut self, seq: u32) {
        if self.base_seq.is_none() {
            self.base_seq = Some(seq);
        }
    }

    /// Stream offset of sequence number `seq`, relative to the next expected
    /// byte so that wrap-around is handled; `None` before anchoring or when
    /// it lies before the start of the stream.
    fn offset_of(&self, seq: u32) -> Option<i64> {
        let base = self.base_seq?;
        let next_seq = base.wrapping_add(self.next as u32);
        Some(self.next as i64 + i64::from(seq.wrapping_sub(next_seq) as i32))
    }

    /// Takes one segment of this direction.
    pub fn segment(
        &mut self,
        id: &StreamId,
        segment: Segment<'_>,
        config: &ReassemblyConfig,
        budget: &mut ReassemblyBudget,
        sink: &mut impl StreamSink,
    ) {
        let Some(mut offset) = self.offset_of(segment.seq) else {
            return;
        };
        let mut data = segment.payload;
        if offset < 0 {
            let skip = offset.unsigned_abs().min(data.len() as u64) as usize;
            data = &data[skip..];
            offset = 0;
        }
        let offset = offset as u64;
        if segment.fin {
            self.fin_at.get_or_insert(offset + data.len() as u64);
        }
        if data.is_empty() {
            return;
        }
        let end = offset + data.len() as u64;
        if end <= self.next {
            self.counters.retransmits += 1;
            return;
        }
        let mut offset = offset;
        if offset < self.next {
            self.counters.overlaps += 1;
            data = &data[(self.next - offset) as usize..];
            offset = self.next;
        }
        if config.inline && offset == self.next {
            self.deliver(id, data, config, sink);
            self.drain(id, config, budget, sink);
            return;
        }
        if offset > self.contiguous_end() {
            self.counters.out_of_order += 1;
        }
        if self.depth_done(config) {
            return;
        }
        if budget.used + data.len() > config.worker_memcap {
            // No room: give up what this stream holds, and this segment with it.
            self.counters.memcap_flushes += 1;
            budget.flushes += 1;
            self.hold(offset, data, budget);
            self.flush(id, config, budget, sink);
            return;
        }
        self.hold(offset, data, budget);
        if self.held_bytes > config.stream_memcap {
            self.counters.memcap_flushes += 1;
            budget.flushes += 1;
            // Unacknowledged bytes in order go first; a gap only if that
            // is not enough.
            self.drain(id, config, budget, sink);
            if self.held_bytes > config.stream_memcap {
                self.skip_to_held(id, config, sink);
                self.drain(id, config, budget, sink);
            }
        }
    }

    /// Offset just past the bytes in order: delivered, then held without a
    /// hole.
    fn contiguous_end(&self) -> u64 {
        let mut end = self.next;
        for held in &self.held {
            if held.offset > end {
                break;
            }
            end = end.max(held.end());
        }
        end
    }

    /// The other direction acknowledged `ack`: bytes before it that this
    /// side never showed were lost to the capture, so they become a gap.
    pub fn acknowledged(
        &mut self,
        id: &StreamId,
        ack: u32,
        config: &ReassemblyConfig,
        budget: &mut ReassemblyBudget,
        sink: &mut impl StreamSink,
    ) {
        let Some(acked) = self.offset_of(ack) else {
            return;
        };
        let Ok(mut acked) = u64::try_from(acked) else {
            return;
        };
        if let Some(fin) = self.fin_at {
            // The FIN takes a sequence number of its own.
            if acked == fin + 1 {
                acked = fin;
            }
        }
        if acked <= self.next {
            return;
        }
        if config.inline {
            let until = self.held.first().map_or(acked, |h| h.offset.min(acked));
            self.gap(id, until - self.next, config, sink);
            self.drain(id, config, budget, sink);
            return;
        }
        // Acknowledged bytes are final: deliver them, and what was never
        // seen of them becomes a gap.
        while self.next < acked {
            let Some(held) = self.held.first().filter(|h| h.offset < acked) else {
                self.gap(id, acked - self.next, config, sink);
                break;
            };
            if held.offset > self.next {
                let len = held.offset - self.next;
                self.gap(id, len, config, sink);
                continue;
            }
            let (offset, upto) = (held.offset, held.end().min(acked));
            if upto > self.next {
                let range = (self.next - offset) as usize..(upto - offset) as usize;
                // Delivered from the held bytes themselves, lent out for the
                // call rather than copied.
                let bytes = std::mem::take(&mut self.held[0].bytes);
                self.deliver(id, &bytes[range], config, sink);
                self.held[0].bytes = bytes;
            }
            if self.held[0].end() <= self.next {
                let held = self.held.remove(0);
                self.held_bytes -= held.bytes.len();
                budget.used -= held.bytes.len();
            }
        }
    }

    /// The flow is ending: everything held is delivered, gaps and all.
    pub fn flush(
        &mut self,
        id: &StreamId,
        config: &ReassemblyConfig,
        budget: &mut ReassemblyBudget,
        sink: &mut impl StreamSink,
    ) {
        while !self.held.is_empty() {
            self.skip_to_held(id, config, sink);
            self.drain(id, config, budget, sink);
        }
    }

    fn depth_done(&self, config: &ReassemblyConfig) -> bool {
        config.depth > 0 && self.next >= config.depth
    }

    fn deliver(
        &mut self,
        id: &StreamId,
        data: &[u8],
        config: &ReassemblyConfig,
        sink: &mut impl StreamSink,
    ) {
        let mut shown = data;
        if config.depth > 0 {
            let room = config.depth.saturating_sub(self.next);
            if room < data.len() as u64 {
                shown = &data[..room as usize];
            }
        }
        if !shown.is_empty() {
            sink.stream_data(id, self.next, shown);
        }
        if shown.len() < data.len() && !self.counters.depth_reached {
            self.counters.depth_reached = true;
            sink.stream_depth(id);
        }
        self.next += data.len() as u64;
    }

    /// Skips `len` bytes never seen; past the depth nothing is reported,
    /// as nothing there is inspected.
    fn gap(
        &mut self,
        id: &StreamId,
        len: u64,
        config: &ReassemblyConfig,
        sink: &mut impl StreamSink,
    ) {
        if len == 0 {
            return;
        }
        if !self.depth_done(config) {
            self.counters.gaps += 1;
            self.counters.gap_bytes += len;
            sink.stream_gap(id, self.next, len);
        }
        self.next += len;
    }

    fn skip_to_held(
        &mut self,
        id: &StreamId,
        config: &ReassemblyConfig,
        sink: &mut impl StreamSink,
    ) {
        if let Some(first) = self.held.first() {
            let len = first.offset.saturating_sub(self.next);
            self.gap(id, len, config, sink);
        }
    }

    /// Delivers held segments that the stream has reached.
    fn drain(
        &mut self,
        id: &StreamId,
        config: &ReassemblyConfig,
        budget: &mut ReassemblyBudget,
        sink: &mut impl StreamSink,
    ) {
        while self.held.first().is_some_and(|h| h.offset <= self.next) {
            let held = self.held.remove(0);
            self.held_bytes -= held.bytes.len();
            budget.used -= held.bytes.len();
            if held.end() > self.next {
                let from = (self.next - held.offset) as usize;
                self.deliver(id, &held.bytes[from..], config, sink);
            }
        }
    }

    /// Keeps a segment not delivered yet, resolving its overlaps with what
    /// is held by the stream's policy.
    fn hold(&mut self, offset: u64, data: &[u8], budget: &mut ReassemblyBudget) {
        let end = offset + data.len() as u64;
        let mut overlapped = false;
        let mut conflicting = false;
        for held in &mut self.held {
            let (lo, hi) = (held.offset.max(offset), held.end().min(end));
            if lo >= hi {
                continue;
            }
            overlapped = true;
            let (theirs, ours) = (
                (lo - held.offset) as usize..(hi - held.offset) as usize,
                (lo - offset) as usize..(hi - offset) as usize,
            );
            if held.bytes[theirs.clone()] != data[ours.clone()] {
                conflicting = true;
                if self.policy.new_wins(offset, end, held.offset, held.end()) {
                    held.bytes[theirs].copy_from_slice(&data[ours]);
                }
            }
        }
        if overlapped {
            self.counters.overlaps += 1;
            if conflicting {
                self.counters.conflicting_overlaps += 1;
            }
        }
        // Then the parts of [offset, end) no held segment covers.
        let mut pieces = Vec::new();
        let mut cursor = offset;
        for held in &self.held {
            if held.end() <= cursor || held.offset >= end {
                continue;
            }
            if held.offset > cursor {
                pieces.push((cursor, held.offset));
            }
            cursor = cursor.max(held.end());
        }
        if cursor < end {
            pieces.push((cursor, end));
        }
        let before = self.held_bytes;
        for (lo, hi) in pieces {
            let bytes = data[(lo - offset) as usize..(hi - offset) as usize].to_vec();
            self.held_bytes += bytes.len();
            self.held.push(Held { offset: lo, bytes });
        }
        self.held.sort_by_key(|h| h.offset);
        budget.used = budget.used + self.held_bytes - before;
        budget.peak = budget.peak.max(budget.used);
    }

    /// Gives back everything held (the flow is gone without a flush).
    pub fn release(&mut self, budget: &mut ReassemblyBudget) {
        budget.used -= self.held_bytes;
        self.held.clear();
        self.held_bytes = 0;
    }
}

#[cfg(test)]
mod tests;
