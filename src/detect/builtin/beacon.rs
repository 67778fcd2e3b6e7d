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

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Detector, Finding, Recent, Signature};
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

/// One pair's last connections: (start, client payload bytes), in start
/// order.
#[derive(Debug, Default)]
struct History {
    connections: Vec<(u64, u64)>,
    reported_ns: u64,
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

/// Values of `values` within `spread` of `center`, as a share.
fn near(values: &[u64], center: u64, spread: f64) -> (f64, Vec<u64>) {
    let close: Vec<u64> = values
        .iter()
        .copied()
        .filter(|&v| (v as f64 - center as f64).abs() <= spread * center as f64)
        .collect();
    (close.len() as f64 / values.len() as f64, close)
}

/// The rhythm of `connections` (start, bytes) in start order, when their
/// intervals and sizes are regular within `jitter` and `size_spread`.
fn rhythm(connections: &[(u64, u64)], jitter: f64, size_spread: f64) -> Option<Rhythm> {
    let mut intervals: Vec<u64> = connections.windows(2).map(|w| w[1].0 - w[0].0).collect();
    let interval = median(&mut intervals);
    let (share, regular) = near(&intervals, interval, jitter);
    let mut sizes: Vec<u64> = connections.iter().map(|c| c.1).collect();
    let size = median(&mut sizes);
    let (size_share, _) = near(&sizes, size, size_spread);
    if interval == 0 || share < REGULAR || size_share < REGULAR {
        return None;
    }
    let (shortest, longest) = (*regular.iter().min()?, *regular.iter().max()?);
    Some(Rhythm {
        interval_secs: interval as f64 / NANOS as f64,
        jitter: (longest - shortest) as f64 / longest as f64,
        median_bytes: size,
    })
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
    pairs: Recent<(IpAddr, IpAddr, u16, u8), History>,
}

impl Detector for Beacon {
    const SIDS: std::ops::RangeInclusive<u32> = 9_200_900..=9_200_999;
    const SIGNATURES: &'static [Signature] = &[BEACON];
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
        let key = (record.src, record.dst, record.dst_port, record.proto);
        let history = self.pairs.entry(key, History::default);
        let start = record.ts_start_ns;
        let at = history.connections.partition_point(|c| c.0 <= start);
        history
            .connections
            .insert(at, (start, record.payload_bytes[0]));
        if history.connections.len() > HISTORY {
            history.connections.remove(0);
        }
        let needed = (self.settings.min_connections.max(3) as usize).min(HISTORY);
        if history.connections.len() < needed {
            return;
        }
        let settings = &self.settings;
        let Some(rhythm) = rhythm(
            &history.connections,
            settings.max_jitter,
            settings.max_size_spread,
        ) else {
            return;
        };
        let report = settings.report_secs.saturating_mul(NANOS);
        if rhythm.interval_secs < settings.min_interval_secs as f64
            || history.reported_ns != 0
                && record.ts_end_ns.saturating_sub(history.reported_ns) < report
        {
            return;
        }
        history.reported_ns = record.ts_end_ns.max(1);
        let metadata = format!(
            "tool beacon, interval_secs {:.1}, jitter {:.2}, connections {}, client_bytes {}, proto {}, port {}",
            rhythm.interval_secs,
            rhythm.jitter,
            history.connections.len(),
            rhythm.median_bytes,
            if record.proto == ip_proto::TCP { "tcp" } else { "udp" },
            record.dst_port
        );
        out(Finding::new(&BEACON, metadata, &[]));
    }

    fn evicted(&self) -> u64 {
        self.pairs.evicted()
    }
}

#[cfg(test)]
mod tests {
    use super::super::variants::Random;
    use super::*;
    use crate::flow::{ConnState, EndReason};

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
