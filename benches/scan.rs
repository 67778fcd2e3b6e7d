//! Detection cost on real traffic, in one run: the whole pipeline per core
//! (decode, flows, reassembly with midstream pick-up, application parsers,
//! rules) against its Hyperscan bound, and their ratio.
//!
//! The bound is Hyperscan alone making exactly the pipeline's prefilter
//! scans: a first, untimed pass records every scan the inspector makes
//! (the group database and the bytes: packet payloads, each TCP
//! direction's stream chunks through its own Hyperscan stream,
//! application buffers), and the bound replays them with a match counter
//! as the only callback. The pipeline's counters per database class are
//! printed beside it.
//!
//! `cargo bench --bench scan` reads `MIRADOR_BENCH_PCAP` (default
//! `../shared/pcaps/ndpi-benign-mix.pcap`) and `MIRADOR_BENCH_RULES`
//! (default `../shared/rules/et-open-2024`), replays the capture
//! `MIRADOR_BENCH_REPEAT` times (default 5) and prints the figures.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use hyperscan::prelude::*;
use mirador::capture::{CaptureFile, LinkType, RawPacket};
use mirador::config::Config;
use mirador::detect::builtin::{Builtin, Shared};
use mirador::detect::groups::Class;
use mirador::detect::inspect::{RecordedScan, ScanTarget};
use mirador::detect::rules::RuleSet;
use mirador::detect::{DetectLimits, DetectStats, Engine, Inspector};
use mirador::flow::FlowRecord;
use mirador::worker::Worker;

/// One packet of the capture: time (ns), link type, length on the wire,
/// captured bytes.
type Packet = (u64, LinkType, u32, Vec<u8>);

fn env_path(name: &str, default: &str) -> PathBuf {
    std::env::var_os(name).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// Replays `packets` through one worker with `engine`, shifted by
/// `shift_ns` so that rounds do not share flows; `record` keeps the
/// inspector's scans. Returns its detection counters and the scans.
fn pipeline(
    config: &Config,
    shared: &Shared,
    engine: &Arc<Engine>,
    packets: &[Packet],
    (round, shift_ns): (u64, u64),
    record: bool,
) -> (DetectStats, Vec<RecordedScan>) {
    let builtin = Builtin::new(&config.detectors, shared);
    let mut inspector = Inspector::new(Arc::clone(engine), DetectLimits::default(), builtin);
    if record {
        inspector.record_scans();
    }
    let mut worker =
        Worker::new(0, config.worker(), round, Vec::<FlowRecord>::new()).with_inspector(inspector);
    for (ts_ns, link, wire_len, data) in packets {
        worker.process(std::iter::once(RawPacket {
            ts_ns: ts_ns + shift_ns,
            link: *link,
            wire_len: *wire_len,
            data,
        }));
    }
    let finished = worker.finish();
    let scans = finished
        .inspector
        .map(|mut inspector| inspector.take_scans())
        .unwrap_or_default();
    (finished.stats.detect, scans)
}

/// Makes `scans` again with Hyperscan alone: each in its group's database,
/// stream chunks through one Hyperscan stream per flow direction. Adds the
/// seconds each class took to `secs` and returns the matches reported.
fn bound(
    engine: &Engine,
    scratch: &Scratch,
    scans: &[RecordedScan],
    secs: &mut [f64; Class::ALL.len()],
) -> u64 {
    let mut matches = 0u64;
    let mut count = |_, _, _, _| {
        matches += 1;
        Matching::Continue
    };
    let mut streams: HashMap<(u64, bool), hyperscan::Stream> = HashMap::new();
    for scan in scans {
        let started = Instant::now();
        let class = match scan.target {
            ScanTarget::Packet { class, .. } => class,
            ScanTarget::Stream { .. } => Class::Stream,
            ScanTarget::App(_) => Class::App,
        };
        match scan.target {
            ScanTarget::Packet {
                class,
                to_server,
                src_port,
                dst_port,
            } => {
                let group = engine.packet[class.index()].lookup(to_server, src_port, dst_port);
                if let Some(db) = &group.database {
                    let _ = db.scan(&scan.bytes, scratch, &mut count);
                }
            }
            ScanTarget::Stream {
                flow_id,
                to_server,
                src_port,
                dst_port,
            } => {
                let group = engine.stream.lookup(to_server, src_port, dst_port);
                let Some(db) = &group.database else { continue };
                let stream = streams
                    .entry((flow_id, to_server))
                    .or_insert_with(|| db.open_stream().expect("a Hyperscan stream"));
                let _ = stream.scan(&scan.bytes, scratch, &mut count);
            }
            ScanTarget::App(index) => {
                if let Some(db) = &engine.app[index].group.database {
                    let _ = db.scan(&scan.bytes, scratch, &mut count);
                }
            }
        }
        secs[class.index()] += started.elapsed().as_secs_f64();
    }
    for (_, stream) in streams {
        let _ = stream.close(scratch, &mut count);
    }
    matches
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
    let mut packets: Vec<Packet> = Vec::new();
    while let Ok(Some(p)) = file.next_packet() {
        packets.push((p.ts_ns, p.link, p.wire_len, p.data.to_vec()));
    }
    let captured: u64 = packets.iter().map(|p| p.3.len() as u64).sum();

    let mut config = Config::default();
    config.reassembly.midstream = true;
    let set = RuleSet::load(std::slice::from_ref(&rules), &config.rule_vars());
    let started = Instant::now();
    let (engine, _) = Engine::compile(&set, None).expect("the rules compile");
    let compile = started.elapsed();
    let engine = Arc::new(engine);
    let (shared, _) = Shared::load(&config.detectors);
    let span =
        packets.last().map_or(0, |p| p.0) - packets.first().map_or(0, |p| p.0) + 3_600_000_000_000;

    let (_, scans) = pipeline(&config, &shared, &engine, &packets, (0, 0), true);
    let scanned: u64 = scans.iter().map(|s| s.bytes.len() as u64).sum();
    let scratch = engine.scratch().expect("the rules have patterns");
    let started = Instant::now();
    let mut matches = 0;
    let mut class_secs = [0.0; Class::ALL.len()];
    for _ in 0..repeat {
        matches += bound(&engine, &scratch, &scans, &mut class_secs);
    }
    let hs_secs = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut stats = DetectStats::default();
    for round in 0..repeat {
        let (round_stats, _) = pipeline(
            &config,
            &shared,
            &engine,
            &packets,
            (round, round * span),
            false,
        );
        stats.merge(&round_stats);
    }
    let pipeline_secs = started.elapsed().as_secs_f64();

    let gbit = |bytes: u64, secs: f64| (bytes * repeat) as f64 * 8.0 / secs / 1e9;
    println!(
        "capture      {} ({} packets, {captured} bytes captured), x{repeat}, midstream on",
        pcap.display(),
        packets.len()
    );
    println!(
        "rules        {} loaded from {}, compiled in {:.0} ms",
        engine.rules.len(),
        rules.display(),
        compile.as_secs_f64() * 1e3
    );
    println!(
        "hyperscan    the pipeline's {} scans of {scanned} bytes per round in their group databases: {:.3} Gbit/s of scanned bytes, {:.2} s, {} matches",
        scans.len(),
        gbit(scanned, hs_secs),
        hs_secs,
        matches
    );
    println!(
        "pipeline     {:.3} Gbit/s captured, {:.0} packets/s, {:.2} s, {} detections",
        gbit(captured, pipeline_secs),
        (packets.len() as u64 * repeat) as f64 / pipeline_secs,
        pipeline_secs,
        stats.detections
    );
    for ((class, scan), secs) in Class::ALL.iter().zip(&stats.scan).zip(class_secs) {
        println!(
            "  {:<11} {secs:.3} s in Hyperscan alone; {scan}",
            class.name()
        );
    }
    println!(
        "ratio        pipeline / hyperscan bound = {:.3} (the same scans)",
        hs_secs / pipeline_secs
    );
}
