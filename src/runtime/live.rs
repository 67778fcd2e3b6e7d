//! Live capture through DPDK: worker lcores poll NIC receive queues and run
//! each burst to completion.
//!
//! The main lcore initialises EAL, starts every port with one queue per
//! worker (symmetric RSS, so both directions of a flow reach the same worker),
//! hands each worker lcore its (port, queue) pairs and a [`Worker`], and then
//! only watches: it logs statistics every `dpdk.stats_interval_secs`, answers
//! scrapes of the metrics endpoint (`metrics.listen`), and waits for the
//! workers. Workers publish their counters every 100 ms into a cell of
//! their own, which the main lcore reads; nothing on the packet path locks. The Parquet writer runs on a thread of the main lcore, off
//! the worker cores. Workers stop on SIGINT/SIGTERM (after draining what their
//! queues hold) or, for `net_pcap` devices reading files, when every file
//! they poll is exhausted; either way every open flow is written.
//!
//! Packet time: `net_pcap` reading files stamps each mbuf with the capture
//! time (microseconds), which the worker uses so that a DPDK run over a pcap
//! writes the same flows as a replay of it. Every other source is stamped with
//! the host clock, read once per burst from the TSC.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::control::{Command, ControlSocket, Request};
use super::summary::{DpdkReport, LcoreReport, SourceReport};
use super::watch::Published;
use super::{RunSummary, RuntimeError};
use crate::capture::dpdk::{
    self, Eal, MbufBurst, Mempool, Port, PortSetup, RxQueue, TimestampField,
};
use crate::capture::{CaptureFile, LinkType, RawPacket};
use crate::config::{Config, DpdkSection};
use crate::detect::dataset::WorkerSets;
use crate::detect::Engine;
use crate::detect::Inspector;
use crate::flow::FlowStats;
use crate::metrics::{Exposition, Labels, MetricsServer};
use crate::output::writer::WriterProgress;
use crate::output::{Chunk, RecordBatcher, WhenFull};
use crate::worker::{Worker, WorkerStats};
use crossbeam_channel::{never, select, Receiver, Sender};

/// Largest frame a chained mbuf is linearised to.
const SCRATCH_BYTES: usize = 65_536;

/// Passes over the queues a stopping worker makes at most to drain them.
const DRAIN_PASSES: usize = 1_024;

/// How `mirador run` is asked to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Settings (`dpdk` section for EAL, ports, queues and pools).
    pub config: Config,
    /// Set by a signal handler to stop.
    pub stop: Arc<AtomicBool>,
    /// Receive and free only, to measure the capture path alone.
    pub rx_only: bool,
    /// Set by a SIGHUP handler to reload the rules.
    pub reload: Arc<AtomicBool>,
}

/// Captures from DPDK ports until stopped or until every file-backed source
/// is exhausted, and writes the flows.
pub fn run(options: RunOptions) -> Result<RunSummary, RuntimeError> {
    let started = Instant::now();
    let config = &options.config;
    let settings = &config.dpdk;
    check_pcap_links(&settings.eal)?;
    let eal = Eal::init(&settings.eal)?;
    let lcores = eal.worker_lcores();
    if lcores.is_empty() {
        return Err(RuntimeError::NoWorkerLcore(eal.main_lcore()));
    }
    let ports = open_ports(&eal, settings, lcores.len())?;
    if let Some(switched) = super::privileges::switch_to(&config.run.user, &config.run.group)? {
        tracing::info!(
            user = %config.run.user,
            uid = switched.uid,
            gid = switched.gid,
            "running unprivileged from here on, with no capability"
        );
    }
    let (mut rules, mut detect) = super::rules::load(config)?;
    let output = config.output()?;
    let metrics = if config.metrics.listen.is_empty() {
        None
    } else {
        let (server, scrapes) = MetricsServer::start(&config.metrics.listen)?;
        tracing::info!(address = %server.address(), "serving metrics at /metrics");
        Some((server, scrapes))
    };
    let control = if config.control.socket.as_os_str().is_empty() {
        None
    } else {
        let path = &config.control.socket;
        let started = ControlSocket::start(path).map_err(|source| RuntimeError::Control {
            path: path.clone(),
            source,
        })?;
        tracing::info!(socket = %path.display(), "taking `mirador ctl` commands");
        Some(started)
    };
    let (writer, sender, recovery) = super::start_writer(&output)?;

    let mut assignments: Vec<Vec<QueueSource>> = (0..lcores.len()).map(|_| Vec::new()).collect();
    let mut next = 0;
    for opened in &ports {
        for rx in opened.port.rx_queues() {
            assignments[next % lcores.len()].push(QueueSource {
                label: format!("{}:{}", rx.port_id(), rx.queue_id()),
                rx,
                ends_at_eof: opened.ends_at_eof,
                done: false,
            });
            next += 1;
        }
    }
    for opened in &ports {
        let info = opened.port.info_ref();
        tracing::info!(
            port = info.id,
            name = %info.name,
            driver = %info.driver,
            queues = opened.port.rx_queue_count(),
            rss = ?opened.port.rss(),
            source = if opened.ends_at_eof { "capture file (ends at its end)" } else { "live" },
            "port started"
        );
    }

    let clock = HostClock::start(eal.tsc_hz());
    let id_seed = clock.base_ns;
    let finished = Arc::new(AtomicUsize::new(0));
    let gauges: Arc<Vec<Gauge>> = Arc::new((0..lcores.len()).map(|_| Gauge::default()).collect());
    let swapped = Arc::new(AtomicU64::new(0));
    let mut reload_senders = Vec::new();
    let timestamps = eal.rx_timestamp_field();
    let mut launched = Vec::new();
    for (index, (&lcore, queues)) in lcores.iter().zip(assignments).enumerate() {
        if queues.is_empty() {
            tracing::warn!(lcore, "no receive queue left for this lcore; it stays idle");
            continue;
        }
        let labels = queues.iter().map(|q| q.label.clone()).collect();
        let batcher =
            RecordBatcher::new(sender.clone(), config.output.chunk_records, WhenFull::Drop)
                .with_evidence(config.evidence.enabled.then(|| writer.progress()));
        let mut worker = Worker::new(index as u16, config.worker(), id_seed, batcher);
        if let Some(inspector) = rules.inspector() {
            worker = worker.with_inspector(inspector);
        }
        let (reloads, reload_receiver) = crossbeam_channel::unbounded();
        reload_senders.push(reloads);
        let context = PollContext {
            reloads: reload_receiver,
            swapped: Arc::clone(&swapped),
            burst: settings.burst,
            rx_only: options.rx_only,
            clock,
            timestamps,
            stop: Arc::clone(&options.stop),
            finished: Arc::clone(&finished),
            gauges: Arc::clone(&gauges),
            index,
        };
        let handle = eal.launch(lcore, move || poll(queues, worker, context))?;
        launched.push((handle, labels, index));
    }
    // Kept only to read the writer's queue depth; dropped before the writer
    // is waited for.
    let queue = sender;
    let watch = Watch {
        ports: &ports,
        gauges: &gauges,
        launched: &launched,
        progress: writer.progress(),
        queue: &queue,
    };
    let mut rule_set = RuleSet {
        summary: detect.clone(),
        loaded: &mut rules,
        loaded_at: SystemTime::now(),
        reloads: 0,
        swapped: &swapped,
        workers: &reload_senders,
    };
    let scrapes = metrics.as_ref().map_or_else(never, |(_, r)| r.clone());
    let requests = control.as_ref().map_or_else(never, |(_, r)| r.clone());

    let interval = Duration::from_secs(settings.stats_interval_secs);
    let mut last_log = Instant::now();
    while finished.load(Ordering::Acquire) < launched.len() {
        select! {
            recv(scrapes) -> scrape => {
                if let Ok(scrape) = scrape {
                    let text = watch.render(scrape.open_metrics, &rule_set);
                    scrape.answer(text);
                }
            }
            recv(requests) -> request => {
                if let Ok(request) = request {
                    answer(request, config, &watch, &mut rule_set);
                }
            }
            default(Duration::from_millis(50)) => {}
        }
        if options.reload.swap(false, Ordering::Relaxed) {
            let _ = rule_set.reload(config);
        }
        if !interval.is_zero() && last_log.elapsed() >= interval {
            log_stats(&ports, &gauges, &launched);
            last_log = Instant::now();
        }
    }
    detect.rules = rule_set.summary.rules;
    detect.skipped = rule_set.summary.skipped;
    drop(rule_set);
    drop(watch);
    drop(queue);
    drop(metrics);
    drop(control);

    let mut totals = WorkerStats::default();
    let mut flows = FlowStats::default();
    let mut dropped_records = 0;
    let mut dropped_detections = 0;
    let mut dropped_evidence = 0;
    let mut worker_busy = Duration::ZERO;
    let mut workers = Vec::new();
    let mut datasets = Vec::new();
    for (handle, queues, _) in launched {
        let lcore = handle.lcore();
        let outcome = handle
            .join()
            .map_err(|_| RuntimeError::WorkerPanicked(lcore))?;
        totals.merge(&outcome.stats);
        datasets.extend(outcome.datasets);
        if options.rx_only {
            // Nothing reached the pipeline's counters; the receive counts stand in.
            totals.packets += outcome.packets;
            totals.wire_bytes += outcome.bytes;
            totals.captured_bytes += outcome.bytes;
        }
        flows.merge(&outcome.flows);
        dropped_records += outcome.dropped_records;
        dropped_detections += outcome.dropped_detections;
        dropped_evidence += outcome.dropped_evidence;
        worker_busy += clock.duration(outcome.busy_cycles);
        workers.push(LcoreReport {
            lcore,
            queues,
            packets: outcome.packets,
            bytes: outcome.bytes,
            busy: clock.duration(outcome.busy_cycles),
            looped: clock.duration(outcome.loop_cycles),
            active_flows: outcome.active_flows,
        });
    }
    let port_reports = ports
        .iter()
        .map(|opened| (opened.port.info_ref().clone(), opened.port.stats()))
        .collect();
    drop(ports);
    rules.save_datasets(&datasets);
    let report = writer.finish()?;
    detect.stats = totals.detect.clone();
    Ok(RunSummary {
        source: SourceReport::Dpdk(DpdkReport {
            ports: port_reports,
            workers,
            rx_only: options.rx_only,
        }),
        worker: totals,
        flows,
        dropped_records,
        dropped_detections,
        dropped_evidence,
        output: report,
        detect,
        output_dir: output.dir,
        recovery,
        elapsed: started.elapsed(),
        worker_busy,
        interrupted: options.stop.load(Ordering::Relaxed),
        peak_resident_kib: super::peak_resident_kib(),
    })
}

/// A started port and how its input ends.
struct OpenPort {
    port: Port,
    /// `net_pcap` reading files (not looping): an empty receive means the
    /// file is exhausted.
    ends_at_eof: bool,
}

/// Fails when a `net_pcap` device's `rx_pcap` file is not Ethernet: DPDK
/// would hand its frames over as Ethernet, and nothing would decode. Only
/// regular files are read ahead of DPDK (a FIFO's bytes would be taken).
fn check_pcap_links(eal: &[String]) -> Result<(), RuntimeError> {
    let files = dpdk::vdev_args(eal)
        .into_iter()
        .filter(|(name, _)| name.starts_with("net_pcap") || name.starts_with("eth_pcap"))
        .flat_map(|(_, params)| {
            params
                .split(',')
                .filter_map(|kv| kv.strip_prefix("rx_pcap="))
                .map(std::path::PathBuf::from)
                .filter(|path| !path.exists() || path.is_file())
                .collect::<Vec<_>>()
        });
    for path in files {
        let mut file = CaptureFile::open(&path)?;
        if let Some(packet) = file.next_packet()? {
            if packet.link != LinkType::Ethernet {
                let link = packet.link;
                return Err(RuntimeError::PcapLinkType { path, link });
            }
        }
    }
    Ok(())
}

fn open_ports(
    eal: &Eal,
    settings: &DpdkSection,
    workers: usize,
) -> Result<Vec<OpenPort>, RuntimeError> {
    let vdevs = dpdk::vdev_args(&settings.eal);
    let pool = Arc::new(Mempool::new(
        eal,
        "mirador_rx",
        settings.mempool_mbufs,
        settings.mempool_cache,
        settings.mbuf_data_room,
        -1,
    )?);
    let mut ports = Vec::new();
    let mut named = Vec::new();
    let mut descriptors = 0u64;
    for id in eal.port_ids() {
        let info = Port::info(eal, id)?;
        if !settings.ports.is_empty() && !settings.ports.contains(&info.name) {
            continue;
        }
        named.push(info.name.clone());
        let params = vdevs.get(&info.name);
        let has = |key: &str| params.is_some_and(|p| p.split(',').any(|kv| kv.starts_with(key)));
        let ends_at_eof = info.driver == "net_pcap" && has("rx_pcap=") && !has("infinite_rx=1");
        let rx_queues = match settings.rx_queues {
            0 if params.is_some() => info.max_rx_queues,
            0 => u16::try_from(workers).unwrap_or(u16::MAX),
            n => n,
        };
        descriptors += u64::from(rx_queues) * u64::from(settings.ring_size);
        let setup = PortSetup {
            rx_queues,
            ring_size: settings.ring_size,
        };
        let port = Port::start(eal, info, setup, Arc::clone(&pool))?;
        ports.push(OpenPort { port, ends_at_eof });
    }
    if let Some(missing) = settings.ports.iter().find(|name| !named.contains(name)) {
        return Err(RuntimeError::NoSuchPort(missing.clone()));
    }
    if ports.is_empty() {
        return Err(RuntimeError::NoPorts);
    }
    let in_flight =
        (workers as u64) * (u64::from(settings.burst) + u64::from(settings.mempool_cache));
    if u64::from(settings.mempool_mbufs) < descriptors + in_flight {
        tracing::warn!(
            mbufs = settings.mempool_mbufs,
            needed = descriptors + in_flight,
            "the packet pool is smaller than the receive rings plus what workers hold; \
             drivers that fill their rings will count rx_nombuf (raise dpdk.mempool_mbufs)"
        );
    }
    Ok(ports)
}

/// The host clock read from the TSC: one `SystemTime` reading at start, then
/// cycles.
#[derive(Debug, Clone, Copy)]
struct HostClock {
    base_ns: u64,
    base_cycles: u64,
    ns_per_cycle: f64,
    cycles_per_sec: u64,
}

impl HostClock {
    fn start(tsc_hz: u64) -> Self {
        let base_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        let tsc_hz = tsc_hz.max(1);
        Self {
            base_ns,
            base_cycles: dpdk::tsc_cycles(),
            ns_per_cycle: 1e9 / tsc_hz as f64,
            cycles_per_sec: tsc_hz,
        }
    }

    fn now_ns(&self, cycles: u64) -> u64 {
        self.base_ns + (cycles.saturating_sub(self.base_cycles) as f64 * self.ns_per_cycle) as u64
    }

    fn duration(&self, cycles: u64) -> Duration {
        Duration::from_nanos((cycles as f64 * self.ns_per_cycle) as u64)
    }
}

/// The cell a worker publishes its counters into, on its own cache line.
/// The worker only ever `try_lock`s it (a busy cell skips one publication),
/// every 100 ms; the main lcore reads it for the log and the metrics.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Gauge(Mutex<Published>);

impl Gauge {
    /// A copy of what was last published.
    fn read(&self) -> Published {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// One receive queue as a worker polls it.
struct QueueSource {
    rx: RxQueue,
    label: String,
    ends_at_eof: bool,
    done: bool,
}

/// Everything a worker lcore needs besides its queues and pipeline.
struct PollContext {
    /// Rule sets to swap in, from reloads.
    reloads: Receiver<Arc<Engine>>,
    /// Swaps done over all workers.
    swapped: Arc<AtomicU64>,
    burst: u16,
    rx_only: bool,
    clock: HostClock,
    timestamps: Option<TimestampField>,
    stop: Arc<AtomicBool>,
    finished: Arc<AtomicUsize>,
    gauges: Arc<Vec<Gauge>>,
    index: usize,
}

/// What a worker lcore hands back.
struct PollOutcome {
    stats: WorkerStats,
    flows: FlowStats,
    datasets: Option<WorkerSets>,
    dropped_records: u64,
    dropped_detections: u64,
    dropped_evidence: u64,
    packets: u64,
    bytes: u64,
    busy_cycles: u64,
    loop_cycles: u64,
    active_flows: u64,
}

/// A worker lcore's loop: receive a burst from each queue in turn and run it
/// through the pipeline, until stopped (then drain) or out of input.
fn poll(
    mut queues: Vec<QueueSource>,
    mut worker: Worker<RecordBatcher>,
    context: PollContext,
) -> PollOutcome {
    let mut burst = MbufBurst::default();
    let mut scratch = vec![0u8; SCRATCH_BYTES];
    let clock = context.clock;
    let gauge = &context.gauges[context.index];
    let live_clock = queues.iter().all(|q| !q.ends_at_eof);
    let (mut packets, mut bytes, mut busy_cycles) = (0u64, 0u64, 0u64);
    let loop_start = dpdk::tsc_cycles();
    let publish_every = clock.cycles_per_sec / 10;
    let mut last_publish = loop_start;
    let mut drain_passes = None;
    loop {
        let mut received = 0;
        for queue in queues.iter_mut().filter(|q| !q.done) {
            let begin = dpdk::tsc_cycles();
            let n = queue.rx.rx_burst(&mut burst, context.burst);
            if n == 0 {
                queue.done = queue.ends_at_eof;
                continue;
            }
            received += n;
            packets += n as u64;
            if context.rx_only {
                bytes += burst.iter().map(|m| u64::from(m.pkt_len())).sum::<u64>();
                burst.clear();
            } else {
                let host_ns = clock.now_ns(begin);
                for (index, mbuf) in burst.iter().enumerate() {
                    if let Some(next) = burst.get(index + 1) {
                        next.prefetch();
                    }
                    let ts_ns = match (queue.ends_at_eof, context.timestamps) {
                        (true, Some(field)) => mbuf.timestamp(field).map(|us| us * 1_000),
                        _ => None,
                    }
                    .unwrap_or(host_ns);
                    let wire_len = mbuf.pkt_len();
                    bytes += u64::from(wire_len);
                    worker.process_packet(RawPacket {
                        ts_ns,
                        link: LinkType::Ethernet,
                        wire_len,
                        data: mbuf.contiguous(&mut scratch),
                    });
                }
                burst.clear();
                worker.sweep_if_due();
            }
            busy_cycles += dpdk::tsc_cycles() - begin;
        }
        if queues.iter().all(|q| q.done) {
            break;
        }
        match drain_passes.as_mut() {
            Some(passes) => {
                *passes += 1;
                if received == 0 || *passes >= DRAIN_PASSES {
                    break;
                }
                continue;
            }
            None if context.stop.load(Ordering::Relaxed) => drain_passes = Some(0),
            None => {}
        }
        let now = dpdk::tsc_cycles();
        if now.wrapping_sub(last_publish) >= publish_every {
            last_publish = now;
            for engine in context.reloads.try_iter() {
                worker.reload(engine);
                context.swapped.fetch_add(1, Ordering::Release);
            }
            if live_clock && !context.rx_only {
                worker.advance_clock(clock.now_ns(now));
            }
            if received == 0 {
                worker.sink_mut().flush();
            }
            publish(
                false,
                gauge,
                &worker,
                packets,
                bytes,
                busy_cycles,
                now - loop_start,
            );
        }
    }
    let loop_cycles = dpdk::tsc_cycles() - loop_start;
    let active_flows = worker.active_flows() as u64;
    publish(
        true,
        gauge,
        &worker,
        packets,
        bytes,
        busy_cycles,
        loop_cycles,
    );
    let finished = worker.finish();
    let mut batcher = finished.sink;
    batcher.flush();
    let outcome = PollOutcome {
        stats: finished.stats,
        flows: finished.flows,
        datasets: finished.inspector.map(Inspector::into_datasets),
        dropped_records: batcher.dropped(),
        dropped_detections: batcher.dropped_detections(),
        dropped_evidence: batcher.dropped_evidence(),
        packets,
        bytes,
        busy_cycles,
        loop_cycles,
        active_flows,
    };
    drop(batcher);
    context.finished.fetch_add(1, Ordering::Release);
    outcome
}

fn publish(
    wait: bool,
    gauge: &Gauge,
    worker: &Worker<RecordBatcher>,
    packets: u64,
    bytes: u64,
    busy_cycles: u64,
    loop_cycles: u64,
) {
    let mut cell = match gauge.0.try_lock() {
        Ok(cell) => cell,
        Err(std::sync::TryLockError::WouldBlock) if !wait => return,
        Err(_) => gauge
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    };
    cell.packets = packets;
    cell.bytes = bytes;
    cell.busy = busy_cycles;
    cell.loop_time = loop_cycles;
    cell.read_worker(worker);
}

fn log_stats<T>(ports: &[OpenPort], gauges: &[Gauge], launched: &[(T, Vec<String>, usize)]) {
    for opened in ports {
        let info = opened.port.info_ref();
        let stats = opened.port.stats();
        tracing::info!(
            port = %info.name,
            rx_packets = stats.rx_packets,
            rx_bytes = stats.rx_bytes,
            imissed = stats.imissed,
            rx_nombuf = stats.rx_nombuf,
            ierrors = stats.ierrors,
            per_queue = ?stats.queues,
            "port"
        );
    }
    for (_, queues, index) in launched {
        let worker = gauges[*index].read();
        tracing::info!(
            worker = index,
            queues = %queues.join(" "),
            packets = worker.packets,
            bytes = worker.bytes,
            busy_pct = format!("{:.1}", 100.0 * worker.busy_share()),
            active_flows = worker.state.flows,
            dropped_records = worker.dropped_records,
            decode_errors = worker.decode_errors,
            "worker"
        );
    }
}

/// What the main lcore reads to answer a scrape.
struct Watch<'a, T> {
    ports: &'a [OpenPort],
    gauges: &'a [Gauge],
    launched: &'a [(T, Vec<String>, usize)],
    progress: Arc<WriterProgress>,
    queue: &'a Sender<Chunk>,
}

impl<T> Watch<'_, T> {
    fn render(&self, open_metrics: bool, rules: &RuleSet<'_>) -> String {
        let mut out = Exposition::new(open_metrics);
        super::watch::render_build(&mut out);
        self.render_ports(&mut out);
        self.render_workers(&mut out);
        rules.render(&mut out);
        super::watch::render_writer(&mut out, &self.progress, self.queue);
        out.finish()
    }

    fn render_ports(&self, out: &mut Exposition) {
        let stats: Vec<_> = self
            .ports
            .iter()
            .map(|p| (p.port.info_ref().name.clone(), p.port.stats()))
            .collect();
        let port = |name: &String| vec![("port", name.clone())];
        let per_port =
            |f: fn(&dpdk::PortStats) -> u64| stats.iter().map(move |(name, s)| (port(name), f(s)));
        out.counter(
            "mirador_port_rx_packets",
            "Packets the port received.",
            per_port(|s| s.rx_packets),
        );
        out.counter(
            "mirador_port_rx_bytes",
            "Bytes the port received.",
            per_port(|s| s.rx_bytes),
        );
        out.counter(
            "mirador_port_imissed",
            "Packets the device dropped for want of a free descriptor.",
            per_port(|s| s.imissed),
        );
        out.counter(
            "mirador_port_rx_nombuf",
            "Receive failures for want of an mbuf.",
            per_port(|s| s.rx_nombuf),
        );
        out.counter(
            "mirador_port_ierrors",
            "Erroneous packets received.",
            per_port(|s| s.ierrors),
        );
        let per_queue = |pick: fn(&(u64, u64)) -> u64| {
            stats.iter().flat_map(move |(name, s)| {
                s.queues.iter().enumerate().map(move |(q, counts)| {
                    (
                        vec![("port", name.clone()), ("queue", q.to_string())],
                        pick(counts),
                    )
                })
            })
        };
        out.counter(
            "mirador_queue_rx_packets",
            "Packets received per receive queue (the first 16).",
            per_queue(|c| c.0),
        );
        out.counter(
            "mirador_queue_rx_bytes",
            "Bytes received per receive queue (the first 16).",
            per_queue(|c| c.1),
        );
    }

    fn render_workers(&self, out: &mut Exposition) {
        let workers: Vec<(Labels, Published)> = self
            .launched
            .iter()
            .map(|(_, _, index)| {
                (
                    vec![("worker", index.to_string())],
                    self.gauges[*index].read(),
                )
            })
            .collect();
        super::watch::render_workers(out, &workers, &self.progress);
    }
}

/// The rules that run, and how they got there.
struct RuleSet<'a> {
    summary: super::DetectSummary,
    /// The set the workers run (its datasets are saved at the end).
    loaded: &'a mut super::rules::LoadedRules,
    loaded_at: SystemTime,
    reloads: u64,
    /// Rule sets the workers took so far (swapped, or, without an
    /// inspector, set aside).
    swapped: &'a AtomicU64,
    /// Each worker's inbox of rule sets.
    workers: &'a [Sender<Arc<Engine>>],
}

/// How long a reload waits for every worker to swap.
const SWAP_TIMEOUT: Duration = Duration::from_secs(10);

impl RuleSet<'_> {
    /// Loads the rules again and hands them to every worker, which swaps
    /// at its next burst boundary; waits for the swaps. A set that fails
    /// to load leaves the running one.
    fn reload(&mut self, config: &Config) -> Result<String, String> {
        let started = Instant::now();
        if !self.loaded.has_inspector() {
            return Err(
                "this run started without rules or built-in detectors, so its workers \
                        inspect nothing; restart it to load rules"
                    .into(),
            );
        }
        let (engine, summary) = super::rules::reload(config).map_err(|error| {
            tracing::error!("rule reload failed, the running rules stay: {error}");
            error.to_string()
        })?;
        // A worker that ended has dropped its inbox: nothing to wait for.
        let sent = self
            .workers
            .iter()
            .filter(|worker| worker.send(Arc::clone(&engine)).is_ok())
            .count();
        let target = self.swapped.load(Ordering::Acquire) + sent as u64;
        self.loaded.replace_engine(engine);
        let deadline = Instant::now() + SWAP_TIMEOUT;
        while self.swapped.load(Ordering::Acquire) < target && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let swapped = self.swapped.load(Ordering::Acquire) >= target;
        self.summary.rules = summary.rules;
        self.summary.skipped = summary.skipped;
        self.loaded_at = SystemTime::now();
        self.reloads += 1;
        let message = format!(
            "{} rules loaded, {} skipped, in {} ms{}",
            summary.rules,
            summary.skipped,
            started.elapsed().as_millis(),
            if swapped {
                ""
            } else {
                "; not every worker has swapped yet"
            }
        );
        tracing::info!("rules reloaded: {message}");
        Ok(message)
    }

    fn render(&self, out: &mut Exposition) {
        let rules = &self.summary;
        let loaded_at = self
            .loaded_at
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        out.gauge(
            "mirador_rules_loaded",
            "Rules of the running set.",
            [(vec![], rules.rules as f64)],
        );
        out.gauge(
            "mirador_rules_skipped",
            "Rules skipped for keywords outside the supported subset.",
            [(vec![], rules.skipped as f64)],
        );
        out.gauge(
            "mirador_rules_malformed",
            "Rules that did not parse or compile at the start.",
            [(vec![], rules.malformed as f64)],
        );
        out.gauge(
            "mirador_rules_loaded_timestamp_seconds",
            "When the running rule set was loaded (its age is time() minus this).",
            [(vec![], loaded_at)],
        );
        out.counter(
            "mirador_rules_reloads",
            "Rule reloads since the start.",
            [(vec![], self.reloads)],
        );
    }
}

/// Does what a `mirador ctl` request asks.
fn answer<T>(request: Request, config: &Config, watch: &Watch<'_, T>, rules: &mut RuleSet<'_>) {
    let text = match request.command {
        Command::Reload => match rules.reload(config) {
            Ok(message) => format!("ok {message}\n"),
            Err(error) => format!("error {error}; the running rules stay\n"),
        },
        Command::Stats => format!("ok\n{}", watch.render(false, rules)),
        Command::Version => format!("ok mirador {}\n", env!("CARGO_PKG_VERSION")),
    };
    request.answer(text);
}
