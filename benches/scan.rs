//! Detection cost on real traffic, in one run: the whole pipeline per core
//! (decode, flows, reassembly, rules) against Hyperscan alone scanning the
//! same payload bytes with every rule's fast pattern, and their ratio.
//!
//! `cargo bench --bench scan` reads `MIRADOR_BENCH_PCAP` (default
//! `../shared/pcaps/ndpi-benign-mix.pcap`) and `MIRADOR_BENCH_RULES`
//! (default `../shared/rules/et-open-2024`), replays the capture
//! `MIRADOR_BENCH_REPEAT` times (default 5) and prints the figures.

use std::path::PathBuf;
use std::time::Instant;

use hyperscan::prelude::*;
use hyperscan::Block;
use mirador::capture::{CaptureFile, LinkType, RawPacket};
use mirador::config::Config;
use mirador::decode::{decode, Decoded};
use mirador::detect::builtin::{Builtin, Shared};
use mirador::detect::rules::RuleSet;
use mirador::detect::{DetectLimits, Engine, Inspector};
use mirador::flow::FlowRecord;
use mirador::worker::Worker;

fn env_path(name: &str, default: &str) -> PathBuf {
    std::env::var_os(name).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

fn main() {
    let pcap = env_path("MIRADOR_BENCH_PCAP", "../shared/pcaps/ndpi-benign-mix.pcap");
    let rules = env_path("MIRADOR_BENCH_RULES", "../shared/rules/et-open-2024");
    let repeat: u64 = std::env::var("MIRADOR_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    if !pcap.exists() || !rules.exists() {
        eprintln!(
            "scan bench: needs {} and {} (set MIRADOR_BENCH_PCAP / MIRADOR_BENCH_RULES)",
            pcap.display(),
            rules.display()
        );
        return;
    }
    let mut file = CaptureFile::open(&pcap).expect("the capture opens");
    let mut packets: Vec<(u64, LinkType, u32, Vec<u8>)> = Vec::new();
    while let Ok(Some(p)) = file.next_packet() {
        packets.push((p.ts_ns, p.link, p.wire_len, p.data.to_vec()));
    }
    let captured: u64 = packets.iter().map(|p| p.3.len() as u64).sum();
    let payloads: Vec<Vec<u8>> = packets
        .iter()
        .filter_map(|(ts_ns, link, wire_len, data)| {
            let raw = RawPacket {
                ts_ns: *ts_ns,
                link: *link,
                wire_len: *wire_len,
                data,
            };
            match decode(raw) {
                Ok(Decoded::Packet(p)) if !p.payload.is_empty() => Some(p.payload.to_vec()),
                _ => None,
            }
        })
        .collect();
    let payload_bytes: u64 = payloads.iter().map(|p| p.len() as u64).sum();

    let config = Config::default();
    let set = RuleSet::load(std::slice::from_ref(&rules), &config.rule_vars());
    let started = Instant::now();
    let (engine, _) = Engine::compile(&set, None).expect("the rules compile");
    let compile = started.elapsed();
    let engine = std::sync::Arc::new(engine);
    let patterns: Patterns = engine
        .fast_patterns()
        .iter()
        .enumerate()
        .map(|(id, (bytes, nocase))| Pattern {
            expression: bytes.iter().map(|b| format!("\\x{b:02x}")).collect(),
            flags: if *nocase {
                CompileFlags::CASELESS
            } else {
                CompileFlags::empty()
            },
            id: Some(id),
            ext: Default::default(),
            som: None,
        })
        .collect();
    let prefilter: BlockDatabase = patterns
        .build::<Block>()
        .expect("the fast patterns compile");
    let scratch = prefilter.alloc_scratch().expect("scratch");

    let started = Instant::now();
    let mut matches = 0u64;
    for _ in 0..repeat {
        for payload in &payloads {
            let _ = prefilter.scan(payload, &scratch, |_, _, _, _| {
                matches += 1;
                Matching::Continue
            });
        }
    }
    let hs_secs = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut detections = 0;
    let span =
        packets.last().map_or(0, |p| p.0) - packets.first().map_or(0, |p| p.0) + 3_600_000_000_000;
    let (shared, _) = Shared::load(&config.detectors);
    for round in 0..repeat {
        let builtin = Builtin::new(&config.detectors, &shared);
        let detector = Inspector::new(
            std::sync::Arc::clone(&engine),
            DetectLimits::default(),
            builtin,
        );
        let mut worker = Worker::new(0, config.worker(), round, Vec::<FlowRecord>::new())
            .with_inspector(detector);
        for (ts_ns, link, wire_len, data) in &packets {
            worker.process(std::iter::once(RawPacket {
                ts_ns: ts_ns + round * span,
                link: *link,
                wire_len: *wire_len,
                data,
            }));
        }
        detections += worker.finish().stats.detect.detections;
    }
    let pipeline_secs = started.elapsed().as_secs_f64();

    let gbit = |bytes: u64, secs: f64| (bytes * repeat) as f64 * 8.0 / secs / 1e9;
    println!("capture      {} ({} packets, {captured} bytes captured, {payload_bytes} payload bytes), x{repeat}", pcap.display(), packets.len());
    println!(
        "rules        {} loaded from {}, compiled in {:.0} ms ({} fast patterns)",
        engine.rules.len(),
        rules.display(),
        compile.as_secs_f64() * 1e3,
        engine.fast_patterns().len()
    );
    println!(
        "hyperscan    {:.3} Gbit/s of payload, {:.2} s, {} prefilter matches",
        gbit(payload_bytes, hs_secs),
        hs_secs,
        matches
    );
    println!("pipeline     {:.3} Gbit/s of payload ({:.3} Gbit/s captured), {:.0} packets/s, {:.2} s, {} detections", gbit(payload_bytes, pipeline_secs), gbit(captured, pipeline_secs), (packets.len() as u64 * repeat) as f64 / pipeline_secs, pipeline_secs, detections);
    println!(
        "ratio        pipeline / hyperscan-only = {:.3} (same payload bytes)",
        hs_secs / pipeline_secs
    );
}
