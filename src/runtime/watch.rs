//! What a run shows of its workers and its writer while it runs: each
//! worker's counters and state sizes as last published ([`Published`]),
//! and their rendering as metrics. Live runs publish one cell per worker
//! lcore; a replay reads its one worker between batches.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use crossbeam_channel::Sender;

use crate::flow::EndReason;
use crate::metrics::{Exposition, Labels};
use crate::output::writer::{WriterProgress, TABLES};
use crate::output::{Chunk, RecordBatcher};
use crate::worker::{StateSizes, Worker};

/// A worker's counters and state sizes at one moment.
#[derive(Debug, Default, Clone)]
pub(super) struct Published {
    pub packets: u64,
    pub bytes: u64,
    /// Time spent on received packets, in the unit of `loop_time`.
    pub busy: u64,
    /// Time the worker's loop ran.
    pub loop_time: u64,
    pub evicted_flows: u64,
    pub dropped_records: u64,
    pub decode_errors: u64,
    pub reassembly_flushes: u64,
    pub state: StateSizes,
    pub detections: BTreeMap<String, u64>,
}

impl Published {
    /// Takes what `worker` holds and counted, besides packets and time.
    pub fn read_worker(&mut self, worker: &Worker<RecordBatcher>) {
        self.state = worker.state_sizes();
        self.evicted_flows = worker.flow_stats().records_for(EndReason::Evicted);
        self.dropped_records = worker.sink().dropped();
        self.decode_errors = worker.stats().decode.total_errors();
        self.reassembly_flushes = worker.reassembly_memory().flushes;
        if let Some(families) = worker.detections_by_family() {
            self.detections.clone_from(families);
        }
    }

    /// Share of the loop's time spent on received packets.
    pub fn busy_share(&self) -> f64 {
        self.busy as f64 / self.loop_time.max(1) as f64
    }
}

/// `mirador_build_info`: the running build.
pub(super) fn render_build(out: &mut Exposition) {
    out.gauge(
        "mirador_build_info",
        "The running build.",
        [(vec![("version", env!("CARGO_PKG_VERSION").to_owned())], 1.0)],
    );
}

/// The workers' families: counters, state sizes and detections (with the
/// writer's exposures) by family.
pub(super) fn render_workers(
    out: &mut Exposition,
    workers: &[(Labels, Published)],
    progress: &WriterProgress,
) {
    let counter = |f: fn(&Published) -> u64| workers.iter().map(move |(l, p)| (l.clone(), f(p)));
    let gauge = |f: fn(&Published) -> f64| workers.iter().map(move |(l, p)| (l.clone(), f(p)));
    out.counter(
        "mirador_worker_packets",
        "Packets a worker received.",
        counter(|p| p.packets),
    );
    out.counter(
        "mirador_worker_bytes",
        "Bytes a worker received.",
        counter(|p| p.bytes),
    );
    out.gauge(
        "mirador_worker_busy_ratio",
        "Share of a worker's loop spent on received packets.",
        gauge(Published::busy_share),
    );
    out.gauge(
        "mirador_worker_open_flows",
        "Flows a worker holds open (with their application, rule and detector state).",
        gauge(|p| p.state.flows as f64),
    );
    out.counter(
        "mirador_worker_evicted_flows",
        "Flows evicted at the flow table's cap (their records written).",
        counter(|p| p.evicted_flows),
    );
    out.gauge(
        "mirador_worker_reassembly_bytes",
        "Out-of-order bytes a worker's reassembly holds.",
        gauge(|p| p.state.reassembly_bytes as f64),
    );
    out.counter(
        "mirador_worker_reassembly_flushes",
        "Times a stream gave up held bytes at a memory cap, leaving a gap.",
        counter(|p| p.reassembly_flushes),
    );
    out.gauge(
        "mirador_worker_fragments",
        "Partial IP datagrams a worker holds.",
        gauge(|p| p.state.fragments as f64),
    );
    out.gauge(
        "mirador_worker_fragment_bytes",
        "Bytes of the partial IP datagrams a worker holds.",
        gauge(|p| p.state.fragment_bytes as f64),
    );
    out.gauge(
        "mirador_worker_threshold_entries",
        "Threshold windows of rules a worker holds.",
        gauge(|p| p.state.thresholds as f64),
    );
    out.gauge(
        "mirador_worker_detector_entries",
        "Entries of the built-in detectors' cross-flow tables.",
        gauge(|p| p.state.detector_entries as f64),
    );
    out.counter(
        "mirador_worker_decode_errors",
        "Packets a worker could not decode.",
        counter(|p| p.decode_errors),
    );
    out.counter(
        "mirador_worker_dropped_records",
        "Records a worker dropped because the writer's queue was full.",
        counter(|p| p.dropped_records),
    );
    let mut families: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, published) in workers {
        for (family, count) in &published.detections {
            *families.entry(family).or_default() += count;
        }
    }
    let exposures = progress.exposures.load(Ordering::Relaxed);
    if exposures > 0 {
        *families
            .entry(crate::output::services::EXPOSED.family)
            .or_default() += exposures;
    }
    out.counter(
        "mirador_detections",
        "Detections raised, by family.",
        families
            .into_iter()
            .map(|(f, n)| (vec![("family", f.to_owned())], n)),
    );
}

/// The writer's families: its queue, rows and files by table, and EVE.
pub(super) fn render_writer(
    out: &mut Exposition,
    progress: &WriterProgress,
    queue: &Sender<Chunk>,
) {
    let per_table = |cells: &[std::sync::atomic::AtomicU64; 3]| {
        TABLES
            .iter()
            .zip(cells.iter())
            .map(|(t, c)| (vec![("table", (*t).to_owned())], c.load(Ordering::Relaxed)))
            .collect::<Vec<_>>()
    };
    out.gauge(
        "mirador_writer_queue_chunks",
        "Chunks of records waiting for the writer.",
        [(vec![], queue.len() as f64)],
    );
    out.gauge(
        "mirador_writer_queue_capacity_chunks",
        "Chunks the writer's queue holds at most.",
        [(vec![], queue.capacity().unwrap_or(0) as f64)],
    );
    out.counter(
        "mirador_writer_rows",
        "Rows written, by table.",
        per_table(&progress.rows),
    );
    out.counter(
        "mirador_writer_files",
        "Files completed, by table.",
        per_table(&progress.files),
    );
    out.gauge(
        "mirador_writer_open_files",
        "Files open, by table (one per time partition being written).",
        per_table(&progress.open_files)
            .into_iter()
            .map(|(l, n)| (l, n as f64)),
    );
    out.gauge(
        "mirador_writer_service_rows",
        "Rows of the services table being gathered.",
        [(vec![], progress.service_rows.load(Ordering::Relaxed) as f64)],
    );
    out.counter(
        "mirador_eve_lines",
        "EVE alert lines written.",
        [(vec![], progress.eve_lines.load(Ordering::Relaxed))],
    );
    out.counter(
        "mirador_eve_dropped_lines",
        "EVE alert lines lost to a socket that was absent or not reading.",
        [(vec![], progress.eve_dropped.load(Ordering::Relaxed))],
    );
}
