//! The end-of-run report.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::capture::CaptureError;
use crate::flow::{EndReason, FlowStats};
use crate::output::WriterReport;
use crate::worker::WorkerStats;

/// Everything a run did, for the closing report and for tests.
#[derive(Debug)]
pub struct RunSummary {
    /// Capture files given (folders expanded).
    pub inputs: Vec<PathBuf>,
    /// Files that opened as captures.
    pub files_opened: usize,
    /// Problems reading the inputs, each naming file and byte offset.
    pub capture_errors: Vec<CaptureError>,
    /// Packets skipped for an unsupported pcapng interface link type.
    pub skipped_unsupported: u64,
    /// Packet counters summed over workers.
    pub worker: WorkerStats,
    /// Flow counters summed over workers.
    pub flows: FlowStats,
    /// Records lost to a full output channel.
    pub dropped_records: u64,
    /// Files and rows written.
    pub output: WriterReport,
    /// Output root.
    pub output_dir: PathBuf,
    /// Unfinished files of an earlier run that were removed at start.
    pub stale_removed: Vec<PathBuf>,
    /// Wall-clock duration.
    pub elapsed: Duration,
    /// Time the worker spent processing packets (reading input and waiting
    /// for the writer excluded).
    pub worker_busy: Duration,
    /// True when a signal stopped the run before the input ended.
    pub interrupted: bool,
}

impl RunSummary {
    /// True when not a single packet could be read from any input.
    pub fn read_nothing(&self) -> bool {
        self.worker.packets == 0 && !self.capture_errors.is_empty()
    }
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = &self.worker;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        writeln!(f, "mirador replay summary")?;
        if self.interrupted {
            writeln!(f, "  stopped by signal; open flows were written")?;
        }
        writeln!(
            f,
            "  inputs        {} file(s), {} readable",
            self.inputs.len(),
            self.files_opened
        )?;
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
        if self.skipped_unsupported > 0 {
            writeln!(
                f,
                "  skipped       {} packets of unsupported link types",
                self.skipped_unsupported
            )?;
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
            "  output        {} rows in {} file(s) under {}, {} records dropped",
            self.output.rows,
            self.output.files.len(),
            self.output_dir.display(),
            self.dropped_records
        )?;
        if !self.stale_removed.is_empty() {
            writeln!(
                f,
                "  removed       {} unfinished file(s) of an earlier run",
                self.stale_removed.len()
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
        for error in &self.capture_errors {
            writeln!(f, "  input error   {error}")?;
        }
        Ok(())
    }
}
