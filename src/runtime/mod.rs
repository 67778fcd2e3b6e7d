//! Runtimes: how packet sources, workers and writers are wired together.
//!
//! [`replay`] reads capture files on the calling thread and runs one worker
//! over them; [`live`] runs one worker per DPDK lcore over NIC receive
//! queues. Either run's outcome is a [`RunSummary`] whose `Display` is the
//! readable end-of-run report.

pub mod control;
pub mod live;
pub mod privileges;
pub mod replay;
mod rules;
mod summary;
mod watch;

pub use live::{run, RunOptions};
pub use replay::{replay, ReplayOptions};
pub use summary::{DetectSummary, DpdkReport, FilesReport, LcoreReport, RunSummary, SourceReport};

/// A run that could not start or could not finish writing.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The output could not be set up or written.
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    /// The configuration does not hold together.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// An input path could not be listed.
    #[error(transparent)]
    Capture(#[from] crate::capture::CaptureError),
    /// DPDK could not be set up.
    #[error(transparent)]
    Dpdk(#[from] crate::capture::dpdk::DpdkError),
    /// Only the main lcore was given, so no core is left for a worker.
    #[error("no worker lcore: EAL gave only the main lcore {0}; give at least two (`-l 0-1`)")]
    NoWorkerLcore(u32),
    /// EAL found no port to capture from.
    #[error(
        "DPDK found no port: bind a NIC to a DPDK driver, or name a virtual device with --vdev"
    )]
    NoPorts,
    /// `dpdk.ports` names a port EAL did not find.
    #[error("no DPDK port is named {0:?}")]
    NoSuchPort(String),
    /// A rules path (`--rules`, `rules.paths`) does not exist.
    #[error("rules path {0:?} does not exist (give --rules PATH, or set rules.paths in the configuration)")]
    RulesPath(std::path::PathBuf),
    /// The control socket could not be opened.
    #[error("control.socket {path:?}: {source}")]
    Control {
        /// The socket's path.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The metrics endpoint could not be started.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    /// The rules could not be compiled.
    #[error(transparent)]
    Rules(#[from] crate::detect::EngineError),
    /// A `net_pcap` device would read a capture that is not Ethernet, which
    /// DPDK hands over as if it were.
    #[error(
        "{path:?} holds {link:?} frames (link type {}); DPDK's net_pcap reads only Ethernet: \
         use `mirador replay {path:?}`",
        link.linktype()
    )]
    PcapLinkType {
        /// The capture.
        path: std::path::PathBuf,
        /// Its first packet's link type.
        link: crate::capture::LinkType,
    },
    /// `[run] user` could not be switched to.
    #[error(transparent)]
    Privileges(#[from] privileges::PrivilegeError),
    /// A worker lcore panicked; its flows are lost.
    #[error("the worker on lcore {0} panicked")]
    WorkerPanicked(u32),
}

/// The most memory this process held resident at once, KiB: `VmHWM` of
/// `/proc/self/status`.
fn peak_resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Starts the Parquet writer and reports what it recovered of an earlier
/// run that did not finish.
fn start_writer(
    output: &crate::output::OutputConfig,
) -> Result<crate::output::writer::Started, RuntimeError> {
    let started = crate::output::ParquetWriter::start(output)?;
    let recovery = &started.2;
    for path in &recovery.files {
        tracing::warn!(path = %path.display(), "finished an output file an earlier run left open");
    }
    for path in &recovery.captures {
        tracing::warn!(path = %path.display(), "kept an evidence capture an earlier run left open, up to its last whole packet");
    }
    for path in &recovery.removed {
        tracing::warn!(path = %path.display(), "removed an unfinished output file left by an earlier run");
    }
    if !recovery.deferred.is_empty() {
        tracing::warn!(
            journals = recovery.deferred.len(),
            "the disk has no room to finish the files an earlier run left open: their journals stay for the next start"
        );
    }
    if !recovery.files.is_empty() {
        tracing::warn!(
            files = recovery.files.len(),
            rows = recovery.rows,
            "recovered the rows an earlier run had written"
        );
    }
    Ok(started)
}
