//! Replay of capture files through one worker.
//!
//! With `metrics.listen` set, a replay serves the same worker and writer
//! metrics as a live run (no port families): scrapes are answered between
//! batches, so a scrape while standard input is idle waits for its next
//! packet.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::summary::{FilesReport, SourceReport};
use super::watch::Published;
use super::{RunSummary, RuntimeError};
use crate::capture::{PacketBatch, Replay};
use crate::config::Config;
use crate::detect::Inspector;
use crate::metrics::{Exposition, MetricsServer};
use crate::output::RecordBatcher;
use crate::worker::Worker;

/// Bytes of packet data a batch is sized for up front.
const BATCH_BYTES_HINT: usize = 1 << 20;

/// What to replay and how.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Capture files or folders of them.
    pub inputs: Vec<PathBuf>,
    /// Settings.
    pub config: Config,
    /// Draw a progress bar on standard error.
    pub progress: bool,
    /// Set (by a signal handler) to stop early; open flows are still written.
    pub stop: Arc<AtomicBool>,
}

/// Replays the inputs in timestamp order and writes their flows.
pub fn replay(options: ReplayOptions) -> Result<RunSummary, RuntimeError> {
    let started = Instant::now();
    let config = &options.config;
    let files = Replay::expand_paths(&options.inputs)?;
    let output = config.output()?;
    let (writer, sender, recovery) = super::start_writer(&output)?;
    let metrics = if config.metrics.listen.is_empty() {
        None
    } else {
        let (server, scrapes) = MetricsServer::start(&config.metrics.listen)?;
        tracing::info!(address = %server.address(), "serving metrics at /metrics");
        Some((server, scrapes, sender.clone()))
    };
    let mut source = Replay::open(&files, &options.stop);
    let id_seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    let (rules, mut detect) = super::rules::load(config)?;
    let batcher = RecordBatcher::new(sender, config.output.chunk_records, config.replay.when_full)
        .with_evidence(config.evidence.enabled.then(|| writer.progress()));
    let mut worker = Worker::new(0, config.worker(), id_seed, batcher);
    if let Some(inspector) = rules.inspector() {
        worker = worker.with_inspector(inspector);
    }

    let progress = if options.progress {
        let bar =
            ProgressBar::with_draw_target(Some(source.total_bytes()), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };

    let batch_packets = config.replay.batch_packets.max(1);
    let mut batch = PacketBatch::with_capacity(batch_packets, BATCH_BYTES_HINT);
    let mut interrupted = false;
    let mut busy = Duration::ZERO;
    while source.fill_batch(&mut batch, batch_packets) {
        let batch_started = Instant::now();
        worker.process(batch.iter());
        busy += batch_started.elapsed();
        progress.set_position(source.bytes_read());
        if let Some((_, scrapes, queue)) = &metrics {
            for scrape in scrapes.try_iter() {
                let mut published = Published {
                    packets: worker.stats().packets,
                    bytes: worker.stats().wire_bytes,
                    busy: busy.as_nanos() as u64,
                    loop_time: started.elapsed().as_nanos() as u64,
                    ..Published::default()
                };
                published.read_worker(&worker);
                let mut out = Exposition::new(scrape.open_metrics);
                super::watch::render_build(&mut out);
                let workers = [(vec![("worker", "0".to_owned())], published)];
                let written = writer.progress();
                super::watch::render_workers(&mut out, &workers, &written);
                super::watch::render_writer(&mut out, &written, queue);
                scrape.answer(out.finish());
            }
        }
        if options.stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
    }
    // Standard input ends early when stopped while it waits.
    interrupted |= options.stop.load(Ordering::Relaxed);
    progress.finish_and_clear();
    drop(metrics);

    let capture_errors = source.take_errors();
    let skipped_unsupported = source.skipped_unsupported();
    let finished = worker.finish();
    let datasets = finished.inspector.map(Inspector::into_datasets);
    rules.save_datasets(datasets.as_slice());
    let (mut batcher, worker_stats, flow_stats) = (finished.sink, finished.stats, finished.flows);
    detect.stats = worker_stats.detect.clone();
    batcher.flush();
    let dropped_records = batcher.dropped();
    let dropped_detections = batcher.dropped_detections();
    let dropped_evidence = batcher.dropped_evidence();
    drop(batcher);
    let report = writer.finish()?;
    Ok(RunSummary {
        source: SourceReport::Files(FilesReport {
            inputs: files,
            files_opened: source.files_opened(),
            capture_errors,
            skipped_unsupported,
        }),
        worker: worker_stats,
        flows: flow_stats,
        dropped_records,
        dropped_detections,
        dropped_evidence,
        output: report,
        detect,
        output_dir: output.dir,
        recovery,
        elapsed: started.elapsed(),
        worker_busy: busy,
        interrupted,
        peak_resident_kib: super::peak_resident_kib(),
    })
}
