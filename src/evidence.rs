//! Evidence captures: the packets behind a detection, kept by the worker.
//!
//! Each worker holds the recent packets of all its flows in one circular
//! arena of `worker_memcap` bytes, so memory is bounded and the oldest
//! packets are the ones overwritten. Each flow keeps, in its slot
//! ([`EvidenceFlow`]), the positions of its last packets in the arena,
//! within `packets` and `bytes`. When a flow raises a detection, its
//! packets from the flow's start (as far as the arena still holds them)
//! are handed to the writer as the start of a capture, and the flow's next
//! `after_packets` packets (or those of the next `after_secs`) follow, each
//! as it comes; the writer puts them in one pcapng file per flow and hour of detection,
//! [`capture_path`]. Nothing here waits: parts go out through the worker's
//! record sink like any record.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::capture::LinkType;
use crate::utc::UtcTime;

const NANOS_PER_SEC: u64 = 1_000_000_000;
/// Width of the folders captures are filed under (`date=/hour=`).
const PARTITION_NS: u64 = 3_600 * NANOS_PER_SEC;

/// `[evidence]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvidenceConfig {
    /// Keep packets and write a capture for each flow that raises a
    /// detection.
    pub enabled: bool,
    /// Packets of one flow kept before its detection, at most.
    pub packets: usize,
    /// Bytes of one flow kept before its detection, at most, KiB.
    pub flow_kib: usize,
    /// Bytes of packets one worker keeps for all its flows, MiB; past it
    /// the oldest are overwritten.
    pub worker_memcap_mib: usize,
    /// Packets of the flow written after its detection.
    pub after_packets: u32,
    /// Seconds after the detection that its flow's packets are written,
    /// within `after_packets`.
    pub after_secs: u64,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            packets: 64,
            flow_kib: 256,
            worker_memcap_mib: 64,
            after_packets: 32,
            after_secs: 10,
        }
    }
}

/// Where the capture of flow `flow_id` for a detection at `ts_ns` is
/// written, relative to the output folder.
pub fn capture_path(flow_id: u64, ts_ns: u64) -> String {
    let start = UtcTime::from_unix_secs(ts_ns / PARTITION_NS * PARTITION_NS / NANOS_PER_SEC);
    // As the tables show flow ids: a signed 64-bit integer.
    format!(
        "evidence/date={}/hour={:02}/{}.pcapng",
        start.date(),
        start.hour,
        flow_id as i64
    )
}

/// One packet of a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidencePacket {
    /// Capture time, ns since the epoch.
    pub ts_ns: u64,
    /// Length on the wire.
    pub wire_len: u32,
    /// The captured bytes, from the link-layer header.
    pub data: Vec<u8>,
}

/// A piece of one capture, for the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidencePart {
    /// The file, relative to the output folder ([`capture_path`]).
    pub path: Arc<str>,
    /// Link type of the packets.
    pub link: LinkType,
    /// Packets, in order.
    pub packets: Vec<EvidencePacket>,
    /// The capture starts with this part (its kept packets).
    pub first: bool,
    /// The capture is complete with this part.
    pub last: bool,
}

/// Counters of a worker's evidence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvidenceStats {
    /// Captures started.
    pub captures: u64,
    /// Packets handed to the writer.
    pub packets: u64,
    /// Kept packets the arena overwrote with newer ones before a capture
    /// took them.
    pub overwritten: u64,
}

impl EvidenceStats {
    /// Adds another worker's counters.
    pub fn merge(&mut self, other: &EvidenceStats) {
        self.captures += other.captures;
        self.packets += other.packets;
        self.overwritten += other.overwritten;
    }
}

/// Where a packet sits in the arena.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Position in the arena's byte sequence (not modulo its size).
    pos: u64,
    len: u32,
    wire_len: u32,
    ts_ns: u64,
}

/// What one flow keeps for evidence, in its slot.
#[derive(Debug, Default)]
pub struct EvidenceFlow {
    entries: VecDeque<Entry>,
    bytes: usize,
    /// The capture under way: its file, packets still wanted, and until
    /// when.
    open: Option<(Arc<str>, u32, u64)>,
    /// The file of the last capture started.
    captured: Option<Arc<str>>,
    /// Link type of the flow's frames.
    link: Option<LinkType>,
}

/// One worker's evidence: the arena of recent packets and the counters.
#[derive(Debug)]
pub struct Evidence {
    config: EvidenceConfig,
    arena: Vec<u8>,
    /// Bytes ever written to the arena.
    written: u64,
    stats: EvidenceStats,
}

impl Evidence {
    /// A worker's evidence store, when `config` turns it on.
    pub fn new(config: &EvidenceConfig) -> Option<Self> {
        config.enabled.then(|| Self {
            config: config.clone(),
            arena: vec![0; (config.worker_memcap_mib << 20).max(1 << 16)],
            written: 0,
            stats: EvidenceStats::default(),
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> EvidenceStats {
        self.stats
    }

    /// Bytes the arena holds.
    pub fn memory(&self) -> usize {
        self.arena.len()
    }

    /// One frame of `flow`: written to its capture under way, else kept.
    /// Parts ready for the writer go to `out`.
    pub fn packet(
        &mut self,
        flow: &mut EvidenceFlow,
        link: LinkType,
        ts_ns: u64,
        wire_len: u32,
        data: &[u8],
        out: &mut impl FnMut(EvidencePart),
    ) {
        flow.link = Some(link);
        let Some((path, wanted, until)) = &mut flow.open else {
            self.keep(flow, ts_ns, wire_len, data);
            return;
        };
        // Straight to the writer: what a capture wants after its detection
        // is never held here.
        *wanted = wanted.saturating_sub(1);
        let last = *wanted == 0 || ts_ns >= *until;
        out(EvidencePart {
            path: Arc::clone(path),
            link,
            packets: vec![EvidencePacket {
                ts_ns,
                wire_len,
                data: data.to_vec(),
            }],
            first: false,
            last,
        });
        self.stats.packets += 1;
        if last {
            flow.open = None;
        }
    }

    /// `flow` raised a detection at `ts_ns` that names the capture `path`
    /// ([`capture_path`]): the capture starts, unless it was started
    /// already.
    pub fn detected(
        &mut self,
        flow: &mut EvidenceFlow,
        path: Arc<str>,
        ts_ns: u64,
        out: &mut impl FnMut(EvidencePart),
    ) {
        if flow.captured.as_deref() == Some(&*path) {
            return;
        }
        self.end(flow, out);
        flow.captured = Some(Arc::clone(&path));
        self.stats.captures += 1;
        let size = self.arena.len() as u64;
        let mut packets = Vec::with_capacity(flow.entries.len());
        for entry in flow.entries.drain(..) {
            if entry.pos + size < self.written {
                self.stats.overwritten += 1;
                continue;
            }
            let at = (entry.pos % size) as usize;
            packets.push(EvidencePacket {
                ts_ns: entry.ts_ns,
                wire_len: entry.wire_len,
                data: self.arena[at..at + entry.len as usize].to_vec(),
            });
        }
        flow.bytes = 0;
        self.stats.packets += packets.len() as u64;
        let last = self.config.after_packets == 0;
        out(EvidencePart {
            path: Arc::clone(&path),
            link: flow.link.unwrap_or(LinkType::Ethernet),
            packets,
            first: true,
            last,
        });
        if !last {
            let until = ts_ns.saturating_add(self.config.after_secs.saturating_mul(NANOS_PER_SEC));
            flow.open = Some((path, self.config.after_packets, until));
        }
    }

    /// The capture under way of `flow` is complete (the flow ends, or
    /// another capture starts).
    pub fn end(&mut self, flow: &mut EvidenceFlow, out: &mut impl FnMut(EvidencePart)) {
        if let Some((path, _, _)) = flow.open.take() {
            out(EvidencePart {
                path,
                link: flow.link.unwrap_or(LinkType::Ethernet),
                packets: Vec::new(),
                first: false,
                last: true,
            });
        }
    }

    fn keep(&mut self, flow: &mut EvidenceFlow, ts_ns: u64, wire_len: u32, data: &[u8]) {
        let size = self.arena.len() as u64;
        let len = data.len().min(self.arena.len());
        // Room first: the flow's oldest beyond its caps, and what the arena
        // overwrote since (useless, and it would hold memory).
        while let Some(oldest) = flow.entries.front() {
            let full = flow.entries.len() >= self.config.packets.max(1)
                || flow.bytes + len > self.config.flow_kib << 10;
            let overwritten = oldest.pos + size < self.written;
            if !full && !overwritten {
                break;
            }
            self.stats.overwritten += u64::from(overwritten);
            flow.bytes -= oldest.len as usize;
            flow.entries.pop_front();
        }
        let mut pos = self.written;
        if pos % size + len as u64 > size {
            // Never split a packet: the arena's tail is skipped.
            pos = pos.next_multiple_of(size);
        }
        let at = (pos % size) as usize;
        self.arena[at..at + len].copy_from_slice(&data[..len]);
        self.written = pos + len as u64;
        flow.entries.push_back(Entry {
            pos,
            len: len as u32,
            wire_len,
            ts_ns,
        });
        flow.bytes += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(packets: usize, memcap_mib: usize, after: u32) -> EvidenceConfig {
        EvidenceConfig {
            enabled: true,
            packets,
            worker_memcap_mib: memcap_mib,
            after_packets: after,
            ..EvidenceConfig::default()
        }
    }

    #[test]
    fn a_detection_writes_the_kept_packets_then_the_next_ones() {
        let mut evidence = Evidence::new(&config(3, 1, 2)).unwrap();
        let mut flow = EvidenceFlow::default();
        let mut parts = Vec::new();
        for i in 0..10u8 {
            let mut out = |p| parts.push(p);
            evidence.packet(
                &mut flow,
                LinkType::Ethernet,
                u64::from(i),
                100,
                &[i; 100],
                &mut out,
            );
            // Packet 5 raises a detection, then 6 and 8 (the same capture).
            if [5, 6, 8].contains(&i) {
                evidence.detected(
                    &mut flow,
                    capture_path(7, u64::from(i)).into(),
                    u64::from(i),
                    &mut out,
                );
            }
        }
        // The kept packets (3, 4, 5), then one part per packet after; the
        // last ends it.
        assert_eq!(parts.len(), 3);
        assert!(parts
            .iter()
            .all(|p| &*p.path == "evidence/date=1970-01-01/hour=00/7.pcapng"));
        assert_eq!(
            parts.iter().map(|p| (p.first, p.last)).collect::<Vec<_>>(),
            [(true, false), (false, false), (false, true)]
        );
        let firsts: Vec<u8> = parts
            .iter()
            .flat_map(|p| &p.packets)
            .map(|p| p.data[0])
            .collect();
        assert_eq!(firsts, [3, 4, 5, 6, 7]);
        assert_eq!(evidence.stats().captures, 1);
    }

    #[test]
    fn the_arena_overwrites_the_oldest_packets_of_any_flow() {
        // 64 KiB arena (the floor), 1000-byte packets: 65 fit.
        let mut evidence = Evidence::new(&config(1000, 0, 0)).unwrap();
        assert_eq!(evidence.memory(), 1 << 16);
        let (mut old, mut busy) = (EvidenceFlow::default(), EvidenceFlow::default());
        let data = [1u8; 1000];
        let mut parts = Vec::new();
        let mut out = |p| parts.push(p);
        evidence.packet(&mut old, LinkType::Ethernet, 0, 1000, &data, &mut out);
        for i in 0..100 {
            evidence.packet(&mut busy, LinkType::Ethernet, i, 1000, &data, &mut out);
        }
        assert!(
            busy.entries.len() <= 66,
            "what the arena overwrote is let go"
        );
        let pruned = evidence.stats().overwritten;
        assert!(pruned >= 34, "{pruned}");
        evidence.detected(&mut old, capture_path(1, 200).into(), 200, &mut out);
        evidence.detected(&mut busy, capture_path(2, 200).into(), 200, &mut out);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.first && p.last));
        assert!(
            parts[0].packets.is_empty(),
            "the old flow's packet was overwritten"
        );
        assert_eq!(parts[1].packets.len(), 65);
        // Of the 101 packets kept, the 65 newest survive.
        assert_eq!(evidence.stats().overwritten, 101 - 65);
    }
}
