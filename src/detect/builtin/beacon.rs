//! Beacons: a client that connects to one server again and again, at a
//! regular interval, sending about as much each time. This is what
//! catches command and control whose bytes say nothing (encrypted, or
//! under a profile no other detector knows): implants sleep a fixed time,
//! spread by a jitter, between check-ins of the same shape.
//!
//! When a TCP or UDP flow that carried client data ends, its start time
//! and client payload size are added to its (client, server, port,
//! protocol), which keeps the last 16. Once `min_connections` are there,
//! the intervals between their starts are measured: four in five must lie
//! within `max_jitter` of their median (an implant's jitter, and a missed
//! check-in now and then), the median must be at least
//! `min_interval_secs`, and four in five client sizes must lie within
//! `max_size_spread` of theirs. Each pair is reported once per
//! `report_secs`, with the interval and the jitter. Ports of periodic
//! infrastructure (DNS, NTP, NetBIOS, mDNS, SSDP, DHCP) and broadcast or
//! multicast destinations (discovery announcements) are left out.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxHasher;

use serde::{Deserialize, Serialize};

use super::{Detector, Events, Finding, Recent, Signature, TableUse};
use crate::decode::ip_proto;
use crate::flow::FlowRecord;

const BEACON: Signature = Signature {
    sid: 9_200_901,
    msg: "MIRADOR C2 beaconing: regular connections of one shape from a client to one server",
    family: "c2",
    classtype: "command-and-control",
    priority: 2,
};

/// Connections remembered per pair.
const HISTORY: usize = 16;
/// Share of intervals, and of sizes, that must lie near their median.
const REGULAR: f64 = 0.8;

const NANOS: u64 = 1_000_000_000;
const MILLIS: u64 = 1_000_000;

/// `[detectors.beacon]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeaconSettings {
    /// Connections that make a beacon.
    pub min_connections: u32,
    /// Shortest median interval between them, seconds.
    pub min_interval_secs: u64,
    /// How far from their median the intervals may be, as a share of it.
    pub max_jitter: f64,
    /// How far from their median the client's payload sizes may be, as a
    /// share of it.
    pub max_size_spread: f64,
    /// Server ports of periodic infrastructure, never beacons.
    pub ignore_ports: Vec<u16>,
    /// Seconds between two reports of one pair.
    pub report_secs: u64,
    /// (client, server, port, protocol) pairs remembered; the least
    /// recently used is forgotten beyond it.
    pub max_pairs: usize,
}

impl Default for BeaconSettings {
    fn default() -> Self {
        Self {
            min_connections: 8,
            min_interval_secs: 10,
            max_jitter: 0.3,
            max_size_spread: 0.25,
            ignore_ports: vec![53, 67, 68, 123, 137, 138, 1900, 5353, 5355],
            report_secs: 3_600,
            max_pairs: 65_536,
        }
    }
}

/// One pair's last connections, in start order: when each started and
/// what its client sent. Held inline and small (start times as
/// milliseconds after the first kept, sizes in 16 bits), so that a pair
/// with its key is two cache lines.
#[derive(Debug, Default)]
struct History {
    /// Start of the first connection kept, nanoseconds.
    base_ns: u64,
    /// Starts, milliseconds after `base_ns`.
    starts: [u32; HISTORY],
    /// Client payload bytes, as [`size_code`]s.
    sizes: [u16; HISTORY],
    /// When the pair was last reported, seconds (0: never).
    reported_secs: u32,
    len: u8,
}

/// A client payload size in 16 bits: exact below 32,768 bytes, else its
/// 11 leading bits and a shift, within 0.1% (sizes are compared within a
/// spread of a fraction of their median).
fn size_code(bytes: u64) -> u16 {
    let bytes = bytes.min(u64::from(u32::MAX));
    if bytes < 0x8000 {
        return bytes as u16;
    }
    let shift = 64 - bytes.leading_zeros() - 11;
    0x8000 | ((shift as u16) << 10) | ((bytes >> shift) as u16 & 0x3ff)
}

/// The size a [`size_code`] stands for.
fn code_size(code: u16) -> u64 {
    if code < 0x8000 {
        return u64::from(code);
    }
    (u64::from(code & 0x3ff) | 0x400) << ((code >> 10) & 0x1f)
}

impl History {
    fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Adds a connection in start order; beyond `HISTORY` the earliest is
    /// dropped, and so is a connection older than all those kept when
    /// they are that many.
    fn add(&mut self, start_ns: u64, bytes: u64) {
        if self.len == 0 || start_ns < self.base_ns {
            self.rebase(start_ns);
        }
        let mut start = (start_ns - self.base_ns) / MILLIS;
        if start > u64::from(u32::MAX) {
            // Weeks after the first: the ones kept are too old to matter.
            self.len = 0;
            self.rebase(start_ns);
            start = 0;
        }
        let start = start as u32;
        let size = size_code(bytes);
        let n = self.len();
        let at = self.starts[..n].partition_point(|&s| s <= start);
        if n < HISTORY {
            self.starts.copy_within(at..n, at + 1);
            self.sizes.copy_within(at..n, at + 1);
            self.starts[at] = start;
            self.sizes[at] = size;
            self.len += 1;
        } else if at > 0 {
            self.starts.copy_within(1..at, 0);
            self.sizes.copy_within(1..at, 0);
            self.starts[at - 1] = start;
            self.sizes[at - 1] = size;
        }
    }

    /// Makes `start_ns` the base, when it is no later than what is kept
    /// (the offsets kept grow by the difference, or the oldest go).
    fn rebase(&mut self, start_ns: u64) {
        if self.len > 0 {
            let shift = (self.base_ns - start_ns) / MILLIS;
            let limit = u64::from(u32::MAX);
            let kept = self.starts[..self.len()]
                .iter()
                .take_while(|&&s| u64::from(s) + shift <= limit)
                .count();
            for s in &mut self.starts[..kept] {
                *s += shift as u32;
            }
            self.len = kept as u8;
        }
        self.base_ns = start_ns;
    }

    /// The intervals between consecutive starts, milliseconds.
    fn intervals(&self) -> impl Iterator<Item = u64> + '_ {
        self.starts[..self.len()]
            .windows(2)
            .map(|pair| u64::from(pair[1] - pair[0]))
    }
}

/// What the intervals of a pair's connections measure.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rhythm {
    /// Median interval, seconds.
    interval_secs: f64,
    /// Spread of the intervals near the median: (longest - shortest) /
    /// longest.
    jitter: f64,
    /// Median client payload, bytes.
    median_bytes: u64,
}

fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

/// How many of `values` lie within `spread` of `center`, as a share, and
/// the shortest and longest of those.
fn near(values: &[u64], center: u64, spread: f64) -> (f64, u64, u64) {
    let (mut count, mut lowest, mut highest) = (0, u64::MAX, 0);
    for &v in values {
        if (v as f64 - center as f64).abs() <= spread * center as f64 {
            count += 1;
            lowest = lowest.min(v);
            highest = highest.max(v);
        }
    }
    (count as f64 / values.len().max(1) as f64, lowest, highest)
}

/// The rhythm of a history's connections, when their intervals and sizes
/// are regular within `jitter` and `size_spread`.
fn rhythm(history: &History, jitter: f64, size_spread: f64) -> Option<Rhythm> {
    let n = history.len();
    if n < 2 {
        return None;
    }
    let mut intervals = [0u64; HISTORY];
    let mut sizes = [0u64; HISTORY];
    for (i, interval) in history.intervals().enumerate() {
        intervals[i] = interval;
    }
    for (i, &size) in history.sizes[..n].iter().enumerate() {
        sizes[i] = code_size(size);
    }
    let (intervals, sizes) = (&mut intervals[..n - 1], &mut sizes[..n]);
    let interval = median(intervals);
    let (share, shortest, longest) = near(intervals, interval, jitter);
    let size = median(sizes);
    let (size_share, _, _) = near(sizes, size, size_spread);
    if interval == 0 || share < REGULAR || size_share < REGULAR {
        return None;
    }
    Some(Rhythm {
        interval_secs: interval as f64 / 1_000.0,
        jitter: (longest - shortest) as f64 / longest.max(1) as f64,
        median_bytes: size,
    })
}

/// A quick bound before the medians: intervals near a median of at least
/// `min_interval_secs` are at least `(1 - max_jitter)` of it, so without
/// enough intervals that long there is no beacon.
fn long_enough(history: &History, settings: &BeaconSettings) -> bool {
    let shortest = settings.min_interval_secs as f64 * 1_000.0 * (1.0 - settings.max_jitter);
    let intervals = history.len().saturating_sub(1);
    let long = history
        .intervals()
        .filter(|&interval| interval as f64 >= shortest)
        .count();
    long as f64 >= REGULAR * intervals as f64
}

/// A 64-bit hash of a flow's (client, server, port, protocol): what a
/// pair is remembered by, in a fraction of the room of the addresses.
fn pair_key(record: &FlowRecord) -> u64 {
    let mut hasher = FxHasher::default();
    (record.src, record.dst, record.dst_port, record.proto).hash(&mut hasher);
    hasher.finish()
}

/// True for an address of one host: not multicast, nor a broadcast
/// (limited, or an IPv4 address ending in 255, as subnet broadcasts do).
fn unicast(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => !v4.is_multicast() && !v4.is_broadcast() && v4.octets()[3] != 255,
        IpAddr::V6(v6) => !v6.is_multicast(),
    }
}

/// Beacons between pairs of hosts.
#[derive(Debug)]
pub struct Beacon {
    settings: BeaconSettings,
    /// Histories by `pair_key`.
    pairs: Recent<u64, History>,
}

impl Detector for Beacon {
    const SIDS: std::ops::RangeInclusive<u32> = 9_200_900..=9_200_999;
    const SIGNATURES: &'static [Signature] = &[BEACON];
    const EVENTS: Events = Events::FLOW_END;
    type Settings = BeaconSettings;
    type Flow = ();
    type Shared = ();

    fn new(settings: &BeaconSettings, _: &Arc<()>) -> Self {
        Self {
            settings: settings.clone(),
            pairs: Recent::new(settings.max_pairs),
        }
    }

    fn end(&mut self, _: &mut (), record: &FlowRecord, out: &mut impl FnMut(Finding)) {
        if !matches!(record.proto, ip_proto::TCP | ip_proto::UDP)
            || record.payload_bytes[0] == 0
            || self.settings.ignore_ports.contains(&record.dst_port)
            || !unicast(record.dst)
        {
            return;
        }
        let key = pair_key(record);
        let history = self.pairs.entry(key, History::default);
        history.add(record.ts_start_ns, record.payload_bytes[0]);
        let needed = (self.settings.min_connections.max(3) as usize).min(HISTORY);
        let settings = &self.settings;
        let now_secs = u32::try_from(record.ts_end_ns / NANOS)
            .unwrap_or(u32::MAX)
            .max(1);
        if history.len() < needed
            || history.reported_secs != 0
                && u64::from(now_secs.saturating_sub(history.reported_secs)) < settings.report_secs
            || !long_enough(history, settings)
        {
            return;
        }
        let Some(rhythm) = rhythm(history, settings.max_jitter, settings.max_size_spread) else {
            return;
        };
        if rhythm.interval_secs < settings.min_interval_secs as f64 {
            return;
        }
        history.reported_secs = now_secs;
        let metadata = format!(
            "tool beacon, interval_secs {:.1}, jitter {:.2}, connections {}, client_bytes {}, proto {}, port {}",
            rhythm.interval_secs,
            rhythm.jitter,
            history.len(),
            rhythm.median_bytes,
            if record.proto == ip_proto::TCP { "tcp" } else { "udp" },
            record.dst_port
        );
        out(Finding::new(&BEACON, metadata, &[]));
    }

    fn tables(&self) -> TableUse {
        self.pairs.usage()
    }
}

#[cfg(test)]
mod tests {
    use super::super::variants::Random;
    use super::*;
    use crate::flow::{ConnState, EndReason};

    #[test]
    fn sizes_in_16_bits_are_exact_when_small_and_within_a_thousandth_else() {
        let mut random = Random::new(7);
        for bytes in (0..70_000).chain((0..10_000).map(|_| random.draw() >> 32)) {
            let back = code_size(size_code(bytes));
            if bytes < 0x8000 {
                assert_eq!(back, bytes);
            } else {
                assert!(
                    back <= bytes && (bytes - back) as f64 <= bytes as f64 / 1024.0,
                    "{bytes} {back}"
                );
            }
        }
        assert_eq!(
            code_size(size_code(u64::MAX)),
            code_size(size_code(u64::from(u32::MAX)))
        );
        assert_eq!(std::mem::size_of::<(u64, (History, u64))>(), 128);
    }

    #[test]
    fn history_keeps_the_latest_connections_in_start_order() {
        let mut history = History::default();
        let at = |ms: u64| 5_000 * MILLIS + ms * MILLIS;
        for start in (0..HISTORY as u64 + 4).rev() {
            history.add(at(start * 10 + 100), start);
        }
        let starts = |h: &History| {
            h.starts[..h.len()]
                .iter()
                .map(|&s| h.base_ns / MILLIS + u64::from(s))
                .collect::<Vec<_>>()
        };
        assert_eq!(history.len(), HISTORY);
        assert!(starts(&history).windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(starts(&history)[0], 5_140, "the earliest four were dropped");
        history.add(at(5), 1);
        assert_eq!(starts(&history)[0], 5_140, "older than all kept: not added");
        history.add(at(145), 7);
        assert_eq!(
            (&starts(&history)[..2], history.sizes[0]),
            (&[5_145, 5_150][..], 7)
        );
        let mut late = History::default();
        late.add(at(1_000), 1);
        late.add(at(0), 2);
        assert_eq!(starts(&late), [5_000, 6_000], "an earlier start rebases");
        late.add(at(0) + 60 * 86_400 * NANOS, 3);
        assert_eq!(late.len(), 1, "weeks later, the old ones are gone");
    }

    fn record(start_ns: u64, bytes: u64, port: u16) -> FlowRecord {
        FlowRecord {
            flow_id: start_ns,
            worker: 0,
            ts_start_ns: start_ns,
            ts_end_ns: start_ns + NANOS / 10,
            proto: ip_proto::TCP,
            src: "10.0.0.7".parse().unwrap(),
            dst: "203.0.113.50".parse().unwrap(),
            src_port: 50_000,
            dst_port: port,
            vlans: Default::default(),
            tunnel: None,
            app_proto: None,
            pkts: [5, 5],
            bytes: [500, 500],
            payload_bytes: [bytes, 100],
            tcp_flags: [0, 0],
            history: Default::default(),
            state: ConnState::SF,
            end_reason: EndReason::Fin,
            reassembly: Default::default(),
            detections: 0,
            app: Default::default(),
        }
    }

    fn run(records: &[FlowRecord]) -> Vec<Finding> {
        let mut beacon = Beacon::new(&BeaconSettings::default(), &Arc::new(()));
        let mut found = Vec::new();
        for r in records {
            beacon.end(&mut (), r, &mut |f| found.push(f));
        }
        found
    }

    #[test]
    fn check_ins_with_any_sleep_and_jitter_are_beacons() {
        let mut random = Random::new(41);
        for _ in 0..100 {
            let sleep = random.between(15, 3_600) as u64 * NANOS;
            let jitter = random.between(0, 25) as u64;
            let size = random.between(100, 5_000) as u64;
            let mut t = random.draw() * NANOS;
            let mut records = Vec::new();
            for _ in 0..8 {
                records.push(record(t, size + random.between(0, 10) as u64, 443));
                // Cobalt Strike's jitter: the sleep less up to `jitter` percent.
                t += sleep - sleep * random.between(0, jitter as usize + 1) as u64 / 100;
            }
            let found = run(&records);
            assert_eq!(found.len(), 1, "sleep {} jitter {jitter}", sleep / NANOS);
            let interval: f64 = found[0]
                .metadata
                .split("interval_secs ")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let expected = sleep as f64 / NANOS as f64;
            assert!(
                (interval - expected).abs() <= expected * 0.3,
                "{interval} for {expected}"
            );
        }
    }

    #[test]
    fn irregular_or_unlike_connections_are_not_beacons() {
        let mut random = Random::new(42);
        let mut t = 0;
        let irregular: Vec<FlowRecord> = (0..16)
            .map(|_| {
                t += random.between(1, 600) as u64 * NANOS;
                record(t, 500, 443)
            })
            .collect();
        assert!(run(&irregular).is_empty());
        let sizes: Vec<FlowRecord> = (0..12)
            .map(|i| record(i * 60 * NANOS, random.between(100, 50_000) as u64, 443))
            .collect();
        assert!(run(&sizes).is_empty());
        let fast: Vec<FlowRecord> = (0..12).map(|i| record(i * 2 * NANOS, 500, 443)).collect();
        assert!(run(&fast).is_empty(), "a burst is not a beacon");
        let ntp: Vec<FlowRecord> = (0..12).map(|i| record(i * 64 * NANOS, 48, 123)).collect();
        assert!(run(&ntp).is_empty());
        let announce: Vec<FlowRecord> = (0..12)
            .map(|i| FlowRecord {
                dst: "255.255.255.255".parse().unwrap(),
                ..record(i * 10 * NANOS, 175, 10_001)
            })
            .collect();
        assert!(run(&announce).is_empty(), "a discovery broadcast");
    }
}
