//! Entry points shared by the fuzz targets (`fuzz/`) and the regression test
//! that replays every input the fuzzers ever found (`tests/fuzz_regressions.rs`).
//!
//! Each function takes arbitrary bytes and drives a stage that parses wire or
//! file data; the only requirement is that it returns.

use std::path::Path;

use crate::capture::{CaptureFile, LinkType, RawPacket};
use crate::decode::fragment::DefragConfig;
use crate::flow::{FlowConfig, FlowRecord};
use crate::worker::{Worker, WorkerConfig};

/// Link types a fuzzed frame may claim, picked by its first byte.
const LINKS: [LinkType; 6] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIp,
    LinkType::Ipv4,
    LinkType::Ipv6,
];

/// Reads `data` as a capture file to its end or first error.
pub fn read_capture(data: &[u8]) -> usize {
    let Ok(mut file) = CaptureFile::new(Path::new("fuzz"), data) else {
        return 0;
    };
    let mut packets = 0;
    while let Ok(Some(packet)) = file.next_packet() {
        packets += packet.data.len().min(1);
    }
    packets
}

/// Splits `data` into frames (a length byte pair, a link-type byte, then the
/// frame) and runs them through a worker with small caps, then flushes it.
pub fn run_pipeline(data: &[u8]) -> usize {
    let config = WorkerConfig {
        flow: FlowConfig {
            max_flows: 8,
            active_timeout_ns: 1_000,
            ..FlowConfig::default()
        },
        defrag: DefragConfig {
            memcap: 4_096,
            timeout_ns: 10_000,
        },
    };
    let mut worker = Worker::new(0, config, 0, Vec::<FlowRecord>::new());
    let mut rest = data;
    let mut ts_ns = 0u64;
    while rest.len() >= 3 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let link = LINKS[usize::from(rest[2]) % LINKS.len()];
        ts_ns += u64::from(rest[2]) * 100;
        let frame = &rest[3..(3 + len).min(rest.len())];
        rest = &rest[3 + frame.len()..];
        let packet = RawPacket {
            ts_ns,
            link,
            wire_len: frame.len() as u32,
            data: frame,
        };
        worker.process(std::iter::once(packet));
    }
    let (records, _, _) = worker.finish();
    records.len()
}

/// Parses `data` (as lossy UTF-8) as a rule file with the default variables.
pub fn parse_rules(data: &[u8]) -> usize {
    let text = String::from_utf8_lossy(data);
    let vars = crate::detect::rules::Vars::default();
    text.lines()
        .map(|line| crate::detect::rules::parse::parse_rule(line, &vars, None))
        .filter(|parsed| parsed.result.is_ok())
        .count()
}
