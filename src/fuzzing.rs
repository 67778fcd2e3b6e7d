//! Entry points shared by the fuzz targets (`fuzz/`) and the regression test
//! that replays every input the fuzzers ever found (`tests/fuzz_regressions.rs`).
//!
//! Each function takes arbitrary bytes and drives a stage that parses wire or
//! file data; the only requirement is that it returns.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::capture::{CaptureFile, LinkType, RawPacket};
use crate::decode::fragment::DefragConfig;
use crate::detect::builtin::{Builtin, DetectorsConfig, Shared};
use crate::detect::rules::parse::parse_rule;
use crate::detect::rules::{RuleSet, Vars};
use crate::detect::{DetectLimits, Engine, Inspector};
use crate::flow::{FlowConfig, FlowRecord};
use crate::worker::{Worker, WorkerConfig};

/// Rules over every kind of buffer, so that fuzzed traffic reaches the
/// application-rule paths as well as the packet and stream ones.
const RULES: &[&str] = &[
    r#"alert tcp any any -> any any (content:"GET"; sid:1;)"#,
    r#"alert udp any any -> any any (content:"|00 01|"; sid:2;)"#,
    r#"alert http any any -> any any (http.uri; content:"/a"; http.method; content:"GET"; sid:3;)"#,
    r#"alert http any any -> any any (file_data; content:"EICAR"; sid:4;)"#,
    r#"alert http any any -> any any (http.header; content:"gzip"; content:"HTTP"; urilen:>1; sid:5;)"#,
    r#"alert dns any any -> any any (dns.query; dotprefix; content:".com"; endswith; sid:6;)"#,
    r#"alert tls any any -> any any (tls.sni; content:"a"; ja3.hash; bsize:32; sid:7;)"#,
    r#"alert http any any -> any any (http.request_body; url_decode; pcre:"/x=\d+/"; isdataat:1,relative; sid:8;)"#,
    r#"alert tcp any any -> any any (content:"|00|"; byte_jump:2,0,relative,align,post_offset -1; byte_test:1,>,0x10,0,relative; sid:9;)"#,
    r#"alert udp any any -> any any (byte_jump:4,1,little,from_end,multiplier 3; byte_test:3,!=,7,0,relative,string,dec; sid:10;)"#,
    r#"alert http any any -> any any (http.request_body; xor:offset 1,extract 1 0; pcrexform:"(.*)"; content:"pass"; entropy:value >2; sid:11;)"#,
    r#"alert http any any -> any any (http.user_agent; dataset:set,agents; sid:12;)"#,
    r#"alert tls any any -> any any (tls.certs; content:"|30 82|"; startswith; xor:"0102"; sid:13;)"#,
    r#"alert tcp any any -> any any (flags:S+,12; sid:14;)"#,
    r#"alert tcp any any -> any any (content:"="; base64_decode:bytes 40,offset 1,relative; base64_data; content:"a"; pcre:"/b/R"; sid:16;)"#,
    r#"alert icmp any any -> any any (itype:>3; icode:0; dsize:>8; sid:15;)"#,
];

/// The built-in detectors with their default settings.
fn builtin() -> Builtin {
    Builtin::new(&DetectorsConfig::default(), &Shared::default())
}

/// The compiled [`RULES`], built once per process.
fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    Arc::clone(ENGINE.get_or_init(|| {
        let vars = Vars::default();
        let set = RuleSet {
            rules: RULES
                .iter()
                .map(|text| {
                    parse_rule(text, &vars, None)
                        .result
                        .expect("fuzz rules parse")
                })
                .collect(),
            ..RuleSet::default()
        };
        let (engine, rejected) = Engine::compile(&set, None).expect("fuzz rules compile");
        assert!(rejected.is_empty());
        Arc::new(engine)
    }))
}

/// Link types a fuzzed frame may claim, picked by its first byte.
const LINKS: [LinkType; 8] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIp,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::Loopback,
    LinkType::CiscoHdlc,
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
/// frame) and runs them through a worker with small caps, rules over every
/// buffer and the built-in detectors, then flushes it.
pub fn run_pipeline(data: &[u8]) -> usize {
    let config = WorkerConfig {
        flow: FlowConfig {
            max_flows: 8,
            active_timeout_ns: 1_000,
            ..FlowConfig::default()
        },
        reassembly: Default::default(),
        defrag: DefragConfig {
            memcap: 4_096,
            timeout_ns: 10_000,
        },
        // Half the inputs also go through checksum validation.
        checksum_validation: data.len() % 2 == 1,
        http: crate::applayer::HttpLimits {
            request_body: 256,
            response_body: 256,
            decompress_layers: 2,
        },
        // Evidence at its smallest: the arena wraps, rings overflow.
        evidence: crate::evidence::EvidenceConfig {
            enabled: true,
            packets: 4,
            flow_kib: 1,
            worker_memcap_mib: 0,
            after_packets: 2,
            after_secs: 1,
        },
    };
    let limits = DetectLimits {
        window_bytes: 1 << 10,
        window_memcap: 64 << 10,
        ..DetectLimits::default()
    };
    let mut worker = Worker::new(0, config, 0, Vec::<FlowRecord>::new())
        .with_inspector(Inspector::new(engine(), limits, builtin()));
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
    worker.finish().sink.len()
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

/// The byte at stream offset `offset` of the model stream: every segment the
/// reassembly fuzzer sends is cut from it, so no overlap conflicts.
fn model_byte(offset: u64) -> u8 {
    (offset.wrapping_mul(7) % 251) as u8
}

/// Checks delivery against the model stream.
#[derive(Default)]
struct ModelCheck {
    next: u64,
}

impl crate::reassembly::StreamSink for ModelCheck {
    fn stream_data(&mut self, _: &crate::reassembly::StreamId, offset: u64, bytes: &[u8]) {
        assert_eq!(offset, self.next, "data arrives in order, without holes");
        for (i, &b) in bytes.iter().enumerate() {
            assert_eq!(
                b,
                model_byte(offset + i as u64),
                "byte at {}",
                offset + i as u64
            );
        }
        self.next += bytes.len() as u64;
    }

    fn stream_gap(&mut self, _: &crate::reassembly::StreamId, offset: u64, len: u64) {
        assert_eq!(offset, self.next, "gaps arrive in order");
        assert!(len > 0);
        self.next += len;
    }
}

/// Drives one reassembled stream with segments (and acknowledgments) taken
/// from `data`, five bytes each: a kind byte, a 16-bit offset, a length byte
/// and a spare. Panics when delivery breaks order, differs from the model
/// stream or memory is left held.
pub fn reassemble_model(data: &[u8]) -> u64 {
    use crate::reassembly::{
        OverlapPolicy, ReassemblyBudget, ReassemblyConfig, Segment, Stream, StreamId,
    };
    let Some((&first, rest)) = data.split_first() else {
        return 0;
    };
    let config = ReassemblyConfig {
        depth: if first & 1 == 0 { 0 } else { 20_000 },
        stream_memcap: 4_096,
        worker_memcap: 16_384,
        policy: [
            OverlapPolicy::First,
            OverlapPolicy::Last,
            OverlapPolicy::Linux,
            OverlapPolicy::Solaris,
        ][usize::from(first >> 3 & 3)],
        inline: first & 4 == 0,
        ..ReassemblyConfig::default()
    };
    let isn = u32::MAX - u32::from(first) * 97;
    let id = StreamId {
        flow_id: 1,
        dir: 0,
        src: ([10, 0, 0, 1], 1000).into(),
        dst: ([10, 0, 0, 2], 80).into(),
        carrier: Default::default(),
    };
    let mut stream = Stream::default();
    stream.anchor_syn(isn);
    stream.set_policy(config.policy);
    let mut budget = ReassemblyBudget::default();
    let mut check = ModelCheck::default();
    let payload: Vec<u8> = (0..70_000u64).map(model_byte).collect();
    for chunk in rest.chunks_exact(5) {
        let offset = u64::from(u16::from_le_bytes([chunk[1], chunk[2]]));
        let len = usize::from(chunk[3]) * 4;
        let seq = isn.wrapping_add(1).wrapping_add(offset as u32);
        match chunk[0] % 4 {
            0..=2 => {
                let bytes = &payload[offset as usize..offset as usize + len];
                let segment = Segment {
                    seq,
                    payload: bytes,
                    fin: chunk[4] == 0xff,
                };
                stream.segment(&id, segment, &config, &mut budget, &mut check);
            }
            _ => stream.acknowledged(&id, seq, &config, &mut budget, &mut check),
        }
        assert!(
            budget.used <= config.worker_memcap + 1_024,
            "held {}",
            budget.used
        );
    }
    stream.flush(&id, &config, &mut budget, &mut check);
    assert_eq!(budget.used, 0, "nothing held after the flush");
    check.next
}
