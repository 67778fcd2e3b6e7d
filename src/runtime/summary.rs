//! The end-of-run report.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::applayer::AppStats;
use crate::capture::dpdk::{PortInfo, PortStats};
use crate::capture::CaptureError;
use crate::detect::groups::Class;
use crate::detect::DetectStats;
use crate::flow::{EndReason, FlowStats};
use crate::output::journal::Recovery;
use crate::output::OutputReport;
use crate::worker::WorkerStats;

/// Everything a run did, for the closing report and for tests.
#[derive(Debug)]
pub struct RunSummary {
    /// Where the packets came from, and what that source reported.
    pub source: SourceReport,
    /// Packet counters summed over workers.
    pub worker: WorkerStats,
    /// Flow counters summed over workers.
    pub flows: FlowStats,
    /// Records lost to a full output channel.
    pub dropped_records: u64,
    /// Detections lost to a full output channel.
    pub dropped_detections: u64,
    /// Evidence parts lost to a full output channel.
    pub dropped_evidence: u64,
    /// Files and rows written, per table.
    pub output: OutputReport,
    /// Rules in force, and what inspection counted.
    pub detect: DetectSummary,
    /// Output root.
    pub output_dir: PathBuf,
    /// What the start recovered of an earlier run that did not finish.
    pub recovery: Recovery,
    /// Wall-clock duration.
    pub elapsed: Duration,
    /// Time the workers spent processing packets (reading input, polling
    /// empty queues and waiting for the writer excluded), summed.
    pub worker_busy: Duration,
    /// True when a signal stopped the run before the input ended.
    pub interrupted: bool,
    /// Most memory resident at once, KiB (`VmHWM`), when the system says.
    pub peak_resident_kib: Option<u64>,
}

/// Rules and inspection counters of a run.
#[derive(Debug, Clone, Default)]
pub struct DetectSummary {
    /// Rules loaded and compiled.
    pub rules: usize,
    /// Rules skipped for unsupported keywords.
    pub skipped: usize,
    /// Malformed rules.
    pub malformed: usize,
    /// Inspection counters summed over workers.
    pub stats: DetectStats,
}

/// The packet source of a run.
#[derive(Debug)]
pub enum SourceReport {
    /// `mirador replay`: capture files read directly.
    Files(FilesReport),
    /// `mirador run`: DPDK ports polled by worker lcores.
    Dpdk(DpdkReport),
}

/// What reading capture files found.
#[derive(Debug, Default)]
pub struct FilesReport {
    /// Capture files given (folders expanded).
    pub inputs: Vec<PathBuf>,
    /// Files that opened as captures.
    pub files_opened: usize,
    /// Problems reading the inputs, each naming file and byte offset.
    pub capture_errors: Vec<CaptureError>,
    /// Packets skipped for an unsupported pcapng interface link type.
    pub skipped_unsupported: u64,
}

/// What the DPDK ports and workers counted.
#[derive(Debug, Default)]
pub struct DpdkReport {
    /// Per port: its name, driver and receive counters.
    pub ports: Vec<(PortInfo, PortStats)>,
    /// Per worker lcore.
    pub workers: Vec<LcoreReport>,
    /// True when workers only received and freed packets (`--rx-only`).
    pub rx_only: bool,
}

/// One worker lcore's share of a DPDK run.
#[derive(Debug, Clone, Default)]
pub struct LcoreReport {
    /// The lcore.
    pub lcore: u32,
    /// `port:queue` pairs it polled.
    pub queues: Vec<String>,
    /// Packets it received.
    pub packets: u64,
    /// Bytes it received.
    pub bytes: u64,
    /// Time it spent on bursts that brought packets.
    pub busy: Duration,
    /// Time its poll loop ran.
    pub looped: Duration,
    /// Flows open when it stopped receiving.
    pub active_flows: u64,
}

impl RunSummary {
    /// True when not a single packet could be read from any input.
    pub fn read_nothing(&self) -> bool {
        match &self.source {
            SourceReport::Files(files) => {
                self.worker.packets == 0 && !files.capture_errors.is_empty()
            }
            SourceReport::Dpdk(_) => false,
        }
    }
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = &self.worker;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let title = match self.source {
            SourceReport::Files(_) => "replay",
            SourceReport::Dpdk(_) => "run",
        };
        writeln!(f, "mirador {title} summary")?;
        if self.interrupted {
            writeln!(f, "  stopped by signal; open flows were written")?;
        }
        match &self.source {
            SourceReport::Files(files) => write_files(f, files)?,
            SourceReport::Dpdk(dpdk) => write_dpdk(f, dpdk)?,
        }
        writeln!(
            f,
            "  packets       {} ({} bytes on the wire, {} captured)",
            w.packets, w.wire_bytes, w.captured_bytes
        )?;
        writeln!(
            f,
            "  decoded       {} IP, {} non-IP, {} errors",
            w.decode.ip,
            w.decode.not_ip,
            w.decode.total_errors()
        )?;
        for (reason, count) in w.decode.nonzero() {
            writeln!(f, "    {:<20} {count}", reason.to_string())?;
        }
        writeln!(
            f,
            "  flows         {} created, {} records, peak {} open",
            self.flows.created,
            self.flows.total_records(),
            self.flows.peak_active
        )?;
        writeln!(
            f,
            "    tracked      {} packets, {} bytes",
            self.flows.packets, self.flows.bytes
        )?;
        let reasons = [
            EndReason::Fin,
            EndReason::Rst,
            EndReason::Idle,
            EndReason::Active,
            EndReason::Evicted,
            EndReason::Shutdown,
        ];
        let by_reason: Vec<String> = reasons
            .iter()
            .map(|r| format!("{} {}", r.as_str(), self.flows.records_for(*r)))
            .collect();
        writeln!(f, "    end reasons  {}", by_reason.join(", "))?;
        writeln!(
            f,
            "    reassembly   {} bytes held at most, {} flushes at the memory caps",
            w.reassembly.peak, w.reassembly.flushes
        )?;
        if w.app != AppStats::default() {
            writeln!(
                f,
                "    limits       {} HTTP header blocks over {} KiB, {} HTTP bodies decoded up to the body limit",
                w.app.http_heads,
                crate::applayer::http::MAX_HEADER_BYTES >> 10,
                w.app.http_decoded_bodies
            )?;
        }
        let d = &self.detect;
        writeln!(
            f,
            "  rules         {} loaded, {} skipped (unsupported), {} malformed",
            d.rules, d.skipped, d.malformed
        )?;
        writeln!(
            f,
            "  detections    {} ({} packets and {} stream bytes inspected, {} rules verified, {} suppressed by thresholds, {} threshold windows evicted, {} over the per-packet limit, {} windows dropped, {} detector evictions)",
            d.stats.detections,
            d.stats.packets,
            d.stats.stream_bytes,
            d.stats.verified,
            d.stats.suppressed,
            d.stats.threshold_evictions,
            d.stats.alert_overflow,
            d.stats.windows_dropped,
            d.stats.detector_evictions
        )?;
        if d.stats.pcre_limit_hits > 0 {
            writeln!(
                f,
                "    pcre limits  {} pcre runs given up at PCRE2's match limit ({}) or depth limit ({})",
                d.stats.pcre_limit_hits,
                crate::detect::matcher::PCRE_MATCH_LIMIT,
                crate::detect::matcher::PCRE_DEPTH_LIMIT
            )?;
        }
        for (class, scan) in Class::ALL.iter().zip(&d.stats.scan) {
            if scan.scans == 0 && scan.candidates == 0 {
                continue;
            }
            writeln!(f, "    {:<12} {scan}", class.name())?;
        }
        if d.stats.encrypted_flows > 0 {
            writeln!(
                f,
                "    encrypted    {} TLS flows, {} stream bytes after their application data began",
                d.stats.encrypted_flows, d.stats.encrypted_bytes
            )?;
        }
        if !d.stats.by_family.is_empty() {
            let mut families: Vec<(&String, &u64)> = d.stats.by_family.iter().collect();
            families.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let families: Vec<String> = families.iter().map(|(f, n)| format!("{f} {n}")).collect();
            writeln!(f, "    by family    {}", families.join(", "))?;
        }
        writeln!(
            f,
            "  output        {} rows in {} file(s) under {}, {} records dropped",
            self.output.flows.rows,
            self.output.flows.files.len(),
            self.output_dir.display(),
            self.dropped_records
        )?;
        writeln!(
            f,
            "    detections   {} rows in {} file(s), {} dropped",
            self.output.detections.rows,
            self.output.detections.files.len(),
            self.dropped_detections
        )?;
        writeln!(
            f,
            "    services     {} rows in {} file(s), {} exposures, {} written early or forgotten at the cap",
            self.output.services.rows,
            self.output.services.files.len(),
            self.output.exposures,
            self.output.services_evicted
        )?;
        let lost = [
            &self.output.flows,
            &self.output.detections,
            &self.output.services,
        ]
        .map(|table| table.lost);
        if lost.iter().any(|&n| n > 0) {
            writeln!(
                f,
                "    write errors {} flow, {} detection, {} service rows not written (the log says why)",
                lost[0], lost[1], lost[2]
            )?;
        }
        if let Some(eve) = &self.output.eve {
            writeln!(
                f,
                "    eve          {} alert lines, {} dropped, {} rotations",
                eve.lines, eve.dropped, eve.rotations
            )?;
        }
        let evidence = &self.worker.evidence;
        if evidence.captures > 0 {
            let (files, packets, errors) = self.output.evidence;
            writeln!(
                f,
                "    evidence     {} capture(s), {} file(s) with {} packets, {} kept packets overwritten by newer ones, {} part(s) dropped, {} write error(s)",
                evidence.captures, files, packets, evidence.overwritten, self.dropped_evidence, errors
            )?;
        }
        let recovery = &self.recovery;
        if !recovery.files.is_empty()
            || !recovery.removed.is_empty()
            || !recovery.deferred.is_empty()
            || !recovery.captures.is_empty()
        {
            writeln!(
                f,
                "  recovered     {} file(s) with {} rows of an earlier run, {} evidence capture(s), {} unfinished file(s) removed, {} journal(s) left for the next start (disk full)",
                recovery.files.len(),
                recovery.rows,
                recovery.captures.len(),
                recovery.removed.len(),
                recovery.deferred.len()
            )?;
        }
        writeln!(
            f,
            "  throughput    {:.0} packets/s, {:.3} Gbit/s (captured bytes) in {:.3} s",
            w.packets as f64 / secs,
            w.captured_bytes as f64 * 8.0 / secs / 1e9,
            secs
        )?;
        let busy = self.worker_busy.as_secs_f64().max(1e-9);
        writeln!(
            f,
            "  worker        {:.0} packets/s, {:.3} Gbit/s while busy ({:.0}% of the run)",
            w.packets as f64 / busy,
            w.captured_bytes as f64 * 8.0 / busy / 1e9,
            100.0 * busy / secs
        )?;
        if let Some(kib) = self.peak_resident_kib {
            writeln!(f, "  memory        peak resident {kib} KiB")?;
        }
        if let SourceReport::Files(files) = &self.source {
            for error in &files.capture_errors {
                writeln!(f, "  input error   {error}")?;
            }
        }
        Ok(())
    }
}

fn write_files(f: &mut fmt::Formatter<'_>, files: &FilesReport) -> fmt::Result {
    writeln!(
        f,
        "  inputs        {} file(s), {} readable",
        files.inputs.len(),
        files.files_opened
    )?;
    if files.skipped_unsupported > 0 {
        writeln!(
            f,
            "  skipped       {} packets of unsupported link types",
            files.skipped_unsupported
        )?;
    }
    Ok(())
}

fn write_dpdk(f: &mut fmt::Formatter<'_>, dpdk: &DpdkReport) -> fmt::Result {
    if dpdk.rx_only {
        writeln!(
            f,
            "  mode          rx-only: packets received and freed, not processed"
        )?;
    }
    for (info, stats) in &dpdk.ports {
        writeln!(
            f,
            "  port {} {} ({})  rx {} packets {} bytes, imissed {}, rx_nombuf {}, ierrors {}",
            info.id,
            info.name,
            info.driver,
            stats.rx_packets,
            stats.rx_bytes,
            stats.imissed,
            stats.rx_nombuf,
            stats.ierrors
        )?;
        for (queue, (packets, bytes)) in stats.queues.iter().enumerate() {
            writeln!(f, "    queue {queue}      {packets} packets {bytes} bytes")?;
        }
    }
    for w in &dpdk.workers {
        let looped = w.looped.as_secs_f64().max(1e-9);
        let busy = w.busy.as_secs_f64().max(1e-9);
        writeln!(
            f,
            "  lcore {:<7} {} packets, {:.0}% busy, {:.0} packets/s {:.3} Gbit/s while busy, {} flows open at stop; queues {}",
            w.lcore,
            w.packets,
            100.0 * w.busy.as_secs_f64() / looped,
            w.packets as f64 / busy,
            w.bytes as f64 * 8.0 / busy / 1e9,
            w.active_flows,
            w.queues.join(" ")
        )?;
    }
    Ok(())
}
