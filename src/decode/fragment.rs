//! IPv4 and IPv6 fragment reassembly.
//!
//! The [`Defragmenter`] keeps one partial datagram per (source, destination,
//! protocol, identification). Overlapping fragments keep the bytes that
//! arrived first (the policy of most stacks and Suricata's default). Memory is
//! bounded by [`DefragConfig::memcap`]: when a new fragment would pass it, the
//! oldest partial datagrams are dropped and counted; datagrams not complete
//! within [`DefragConfig::timeout_ns`] are dropped by [`Defragmenter::expire`].

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use rustc_hash::FxBuildHasher;

use super::{DecodeError, DecodeStats, Fragment, PacketMeta};

/// Largest IP datagram, bytes.
const MAX_DATAGRAM: u32 = 65_535;

/// Limits of fragment reassembly (`[defrag]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DefragConfig {
    /// Bytes of fragment data held at most, over all datagrams, with
    /// [`DATAGRAM_OVERHEAD`] counted for each
    /// (`memcap_mib`).
    #[serde(rename = "memcap_mib", with = "crate::units::mib")]
    pub memcap: usize,
    /// How long a datagram may wait for its missing fragments, nanoseconds
    /// (`timeout_secs`).
    #[serde(rename = "timeout_secs", with = "crate::units::secs")]
    pub timeout_ns: u64,
}

impl Default for DefragConfig {
    /// 32 MiB, and Suricata's 60 s.
    fn default() -> Self {
        Self {
            memcap: 32 << 20,
            timeout_ns: 60 * 1_000_000_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct DatagramKey {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    id: u32,
}

#[derive(Debug)]
struct Partial {
    meta: PacketMeta,
    first_ts_ns: u64,
    /// Its place in [`Defragmenter::arrivals`].
    arrival: u64,
    data: Vec<u8>,
    /// Received byte ranges, sorted and merged.
    received: Vec<(u32, u32)>,
    total_len: Option<u32>,
}

impl Partial {
    fn is_complete(&self) -> bool {
        self.total_len
            .is_some_and(|t| self.received.as_slice() == [(0, t)])
    }

    /// Copies `bytes` at `offset` into the holes only, so earlier bytes win.
    fn insert(&mut self, offset: u32, bytes: &[u8]) {
        let end = offset + bytes.len() as u32;
        if self.data.len() < end as usize {
            self.data.resize(end as usize, 0);
        }
        let mut cursor = offset;
        for &(s, e) in &self.received {
            if e <= cursor {
                continue;
            }
            if s >= end {
                break;
            }
            if s > cursor {
                let (a, b) = (cursor, s.min(end));
                self.data[a as usize..b as usize]
                    .copy_from_slice(&bytes[(a - offset) as usize..(b - offset) as usize]);
            }
            cursor = cursor.max(e);
            if cursor >= end {
                break;
            }
        }
        if cursor < end {
            self.data[cursor as usize..end as usize]
                .copy_from_slice(&bytes[(cursor - offset) as usize..]);
        }
        self.received.push((offset, end));
        self.received.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(self.received.len());
        for &(s, e) in &self.received {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.received = merged;
    }
}

/// A datagram rebuilt from its fragments.
#[derive(Debug, Clone, Copy)]
pub struct Reassembled<'a> {
    /// Meta of the first fragment, with the last fragment's time and the
    /// wire bytes of all fragments.
    pub meta: PacketMeta,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Protocol of the datagram's payload.
    pub proto: u8,
    /// The whole transport-layer datagram.
    pub data: &'a [u8],
}

/// Bytes a partial datagram costs besides its data (its map entry, its
/// received ranges, its place in the arrival queue), counted against the
/// memcap so that a flood of tiny fragments is bounded too.
pub const DATAGRAM_OVERHEAD: usize = 256;

/// Per-worker IP fragment reassembly.
#[derive(Debug)]
pub struct Defragmenter {
    config: DefragConfig,
    partial: HashMap<DatagramKey, Partial, FxBuildHasher>,
    /// Datagrams in the order their first fragment came, with their
    /// arrival number: the oldest is evicted first. Entries of datagrams
    /// that completed or expired stay until they reach the front, or until
    /// the queue is compacted (when it has grown to twice the datagrams
    /// held).
    arrivals: VecDeque<(DatagramKey, u64)>,
    /// Datagrams begun so far: each one's arrival number.
    begun: u64,
    held_bytes: usize,
    done: Vec<u8>,
}

impl Defragmenter {
    /// An empty defragmenter with the given limits.
    pub fn new(config: DefragConfig) -> Self {
        Self {
            config,
            partial: HashMap::default(),
            arrivals: VecDeque::new(),
            begun: 0,
            held_bytes: 0,
            done: Vec::new(),
        }
    }

    /// Partial datagrams held.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }

    /// Bytes held: fragment data, and [`DATAGRAM_OVERHEAD`] a datagram.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Adds a fragment; returns the datagram when this fragment completes it.
    pub fn insert(
        &mut self,
        fragment: Fragment<'_>,
        stats: &mut DecodeStats,
    ) -> Option<Reassembled<'_>> {
        let end = fragment.offset + fragment.data.len() as u32;
        if end > MAX_DATAGRAM || (fragment.more && fragment.data.is_empty()) {
            stats.count(DecodeError::FragmentInvalid);
            return None;
        }
        let key = DatagramKey {
            src: fragment.src,
            dst: fragment.dst,
            proto: fragment.proto,
            id: fragment.id,
        };
        let held = self.partial.get(&key).map(|p| p.data.len());
        let growth = (end as usize).saturating_sub(held.unwrap_or(0))
            + if held.is_none() { DATAGRAM_OVERHEAD } else { 0 };
        while self.held_bytes + growth > self.config.memcap {
            if !self.evict_oldest(&key, stats) {
                stats.count(DecodeError::FragmentMemcap);
                return None;
            }
        }
        if !self.partial.contains_key(&key) {
            if self.arrivals.len() >= 2 * self.partial.len() + 64 {
                let partial = &self.partial;
                self.arrivals
                    .retain(|(k, n)| partial.get(k).is_some_and(|p| p.arrival == *n));
            }
            self.begun += 1;
            self.arrivals.push_back((key, self.begun));
            self.held_bytes += DATAGRAM_OVERHEAD;
        }
        let partial = self.partial.entry(key).or_insert_with(|| Partial {
            meta: PacketMeta {
                wire_len: 0,
                ..fragment.meta
            },
            first_ts_ns: fragment.meta.ts_ns,
            arrival: self.begun,
            data: Vec::new(),
            received: Vec::new(),
            total_len: None,
        });
        if partial.total_len.is_some_and(|t| end > t)
            || (!fragment.more && partial.total_len.is_some_and(|t| t != end))
        {
            stats.count(DecodeError::FragmentInvalid);
            return None;
        }
        if fragment.offset == 0 {
            partial.meta.vlans = fragment.meta.vlans;
            partial.meta.tunnel = fragment.meta.tunnel;
        }
        partial.meta.ts_ns = partial.meta.ts_ns.max(fragment.meta.ts_ns);
        partial.meta.wire_len = partial.meta.wire_len.saturating_add(fragment.meta.wire_len);
        if !fragment.more {
            partial.total_len = Some(end);
        }
        let before = partial.data.len();
        partial.insert(fragment.offset, fragment.data);
        self.held_bytes += partial.data.len() - before;
        if !partial.is_complete() {
            return None;
        }
        let finished = self.partial.remove(&key)?;
        self.held_bytes -= finished.data.len() + DATAGRAM_OVERHEAD;
        self.done = finished.data;
        Some(Reassembled {
            meta: finished.meta,
            src: key.src,
            dst: key.dst,
            proto: key.proto,
            data: &self.done,
        })
    }

    /// Drops datagrams older than the timeout at time `now_ns`.
    pub fn expire(&mut self, now_ns: u64, stats: &mut DecodeStats) {
        let timeout = self.config.timeout_ns;
        let mut freed = 0;
        self.partial.retain(|_, p| {
            let keep = p.first_ts_ns.saturating_add(timeout) >= now_ns;
            if !keep {
                freed += p.data.len() + DATAGRAM_OVERHEAD;
                stats.count(DecodeError::FragmentTimeout);
            }
            keep
        });
        self.held_bytes -= freed;
    }

    /// Drops the datagram whose first fragment came first, other than
    /// `keep`; false when there is none.
    fn evict_oldest(&mut self, keep: &DatagramKey, stats: &mut DecodeStats) -> bool {
        let mut kept = None;
        let mut evicted = false;
        while let Some((key, arrival)) = self.arrivals.pop_front() {
            if key == *keep {
                kept = Some((key, arrival));
                continue;
            }
            // A datagram that completed or expired left its entry behind.
            if self.partial.get(&key).is_none_or(|p| p.arrival != arrival) {
                continue;
            }
            if let Some(p) = self.partial.remove(&key) {
                self.held_bytes -= p.data.len() + DATAGRAM_OVERHEAD;
                stats.count(DecodeError::FragmentMemcap);
                evicted = true;
                break;
            }
        }
        if let Some(entry) = kept {
            self.arrivals.push_front(entry);
        }
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Vlans;

    fn fragment(offset: u32, more: bool, data: &[u8]) -> Fragment<'_> {
        Fragment {
            meta: PacketMeta {
                ts_ns: u64::from(offset),
                wire_len: 100,
                vlans: Vlans::default(),
                tunnel: None,
            },
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            proto: 17,
            id: 9,
            offset,
            more,
            data,
        }
    }

    fn defrag(memcap: usize) -> Defragmenter {
        Defragmenter::new(DefragConfig {
            memcap,
            timeout_ns: 1_000,
        })
    }

    #[test]
    fn out_of_order_fragments_reassemble() {
        let mut d = defrag(1 << 20);
        let mut stats = DecodeStats::default();
        assert!(d.insert(fragment(8, false, b"orld!"), &mut stats).is_none());
        let whole = d
            .insert(fragment(0, true, b"hello, w"), &mut stats)
            .unwrap();
        assert_eq!(whole.data, b"hello, world!");
        assert_eq!(whole.meta.wire_len, 200);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn overlapping_fragment_keeps_first_bytes() {
        let mut d = defrag(1 << 20);
        let mut stats = DecodeStats::default();
        assert!(d
            .insert(fragment(0, true, b"AAAAAAAA"), &mut stats)
            .is_none());
        let whole = d
            .insert(fragment(4, false, b"BBBBBBBB"), &mut stats)
            .unwrap();
        assert_eq!(whole.data, b"AAAAAAAABBBB");
    }

    #[test]
    fn memcap_evicts_oldest_datagram() {
        let mut d = defrag(16 + DATAGRAM_OVERHEAD);
        let mut stats = DecodeStats::default();
        let mut first = fragment(0, true, b"01234567");
        first.id = 1;
        assert!(d.insert(first, &mut stats).is_none());
        let mut second = fragment(0, true, b"0123456789abcdef");
        second.id = 2;
        assert!(d.insert(second, &mut stats).is_none());
        assert_eq!(stats.errors[DecodeError::FragmentMemcap as usize], 1);
        assert_eq!(d.pending(), 1);
    }

    #[test]
    fn memcap_evicts_in_arrival_order_past_datagrams_that_completed() {
        let mut d = defrag(26 + 3 * DATAGRAM_OVERHEAD);
        let mut stats = DecodeStats::default();
        let datagram = |id: u32, more: bool| {
            let mut f = fragment(0, more, b"01234567");
            f.id = id;
            f
        };
        for id in 1..=3 {
            assert!(d.insert(datagram(id, true), &mut stats).is_none());
        }
        // Datagram 1 completes: its place in the queue is left behind.
        let mut last = fragment(8, false, b"89");
        last.id = 1;
        assert!(d.insert(last, &mut stats).is_some());
        assert!(d.insert(datagram(4, true), &mut stats).is_none());
        assert!(d.insert(datagram(5, true), &mut stats).is_none());
        // 2 went first, then 3; 1 was skipped as done, not counted.
        assert_eq!(stats.errors[DecodeError::FragmentMemcap as usize], 1);
        assert_eq!(d.pending(), 3);
        let mut rest = fragment(8, false, b"89");
        rest.id = 2;
        assert!(d.insert(rest, &mut stats).is_none(), "2 was evicted");
        assert_eq!(stats.errors[DecodeError::FragmentMemcap as usize], 2);
        assert!(d.held_bytes() <= 26 + 3 * DATAGRAM_OVERHEAD);
    }

    #[test]
    fn arrival_queue_stays_bounded_while_datagrams_complete() {
        let mut d = defrag(1 << 20);
        let mut stats = DecodeStats::default();
        for id in 0..10_000u32 {
            let mut first = fragment(0, true, b"01234567");
            first.id = id;
            let mut last = fragment(8, false, b"89");
            last.id = id;
            assert!(d.insert(first, &mut stats).is_none());
            assert!(d.insert(last, &mut stats).is_some());
        }
        assert_eq!(d.pending(), 0);
        assert!(d.arrivals.len() <= 64, "{}", d.arrivals.len());
    }

    #[test]
    fn incomplete_datagram_times_out() {
        let mut d = defrag(1 << 20);
        let mut stats = DecodeStats::default();
        assert!(d
            .insert(fragment(0, true, b"01234567"), &mut stats)
            .is_none());
        d.expire(5_000, &mut stats);
        assert_eq!(d.pending(), 0);
        assert_eq!(stats.errors[DecodeError::FragmentTimeout as usize], 1);
    }
}
