//! The Parquet writer thread.
//!
//! Each table ([`Table`]: `flows`, `detections`, `services`) goes to
//! `OUT/<table>/date=YYYY-MM-DD/hour=HH/<sensor>-<first ts>-<seq>.parquet`,
//! partitioned by each record's time (a flow's end, a detection's time). A file is written as
//! `.<name>.inprogress` beside its final name and renamed when it is closed:
//! when its rows pass [`OutputConfig::max_file_bytes`], when its time
//! partition is one rotation interval behind the newest record and had no
//! record for a second, when more partitions are open than the cap (the
//! one written longest ago), or at shutdown. A reader therefore never sees a half-written file under a
//! `.parquet` name. Until then its rows are in a [`Journal`], written
//! after every chunk, from which the file is encoded at close, or at the
//! next start when a crash left it open ([`super::journal`]).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::eve::{EveConfig, EveReport, EveWriter};
use super::evidence::EvidenceFiles;
use super::finishing::{Finished, Finishing};
use super::journal::{in_progress_path, journal_path, recover, Journal, Recovery, Settling};
use super::schema::{
    detection_batch, detection_schema, flow_batch, flow_schema, SCHEMA_VERSION, SCHEMA_VERSION_KEY,
};
use super::services::{service_batch, service_schema, ServiceRow, Services, ServicesConfig};
use crate::detect::Detection;
use crate::evidence::EvidencePart;
use crate::flow::FlowRecord;
use crate::utc::UtcTime;

/// One output table: its folder, schema and how a record maps to a row.
pub trait Table {
    /// What a row is made from.
    type Record;
    /// Folder name under the output root.
    const NAME: &'static str;
    /// The Arrow schema.
    fn schema() -> SchemaRef;
    /// Rows for `records`.
    fn batch(
        sensor: &str,
        records: &[&Self::Record],
    ) -> Result<RecordBatch, arrow::error::ArrowError>;
    /// The time that picks a record's partition, ns since the epoch.
    fn partition_ns(record: &Self::Record) -> u64;
}

/// The `flows` table.
#[derive(Debug)]
pub struct Flows;

impl Table for Flows {
    type Record = FlowRecord;
    const NAME: &'static str = "flows";
    fn schema() -> SchemaRef {
        flow_schema()
    }
    fn batch(
        sensor: &str,
        records: &[&FlowRecord],
    ) -> Result<RecordBatch, arrow::error::ArrowError> {
        flow_batch(sensor, records)
    }
    fn partition_ns(record: &FlowRecord) -> u64 {
        record.ts_end_ns
    }
}

/// The `detections` table.
#[derive(Debug)]
pub struct Detections;

impl Table for Detections {
    type Record = Detection;
    const NAME: &'static str = "detections";
    fn schema() -> SchemaRef {
        detection_schema()
    }
    fn batch(
        sensor: &str,
        records: &[&Detection],
    ) -> Result<RecordBatch, arrow::error::ArrowError> {
        detection_batch(sensor, records)
    }
    fn partition_ns(record: &Detection) -> u64 {
        record.ts_ns
    }
}

/// The `services` table.
#[derive(Debug)]
pub struct ServicesTable;

impl Table for ServicesTable {
    type Record = ServiceRow;
    const NAME: &'static str = "services";
    fn schema() -> SchemaRef {
        service_schema()
    }
    fn batch(
        sensor: &str,
        records: &[&ServiceRow],
    ) -> Result<RecordBatch, arrow::error::ArrowError> {
        service_batch(sensor, records)
    }
    fn partition_ns(record: &ServiceRow) -> u64 {
        record.partition_ns
    }
}

/// What workers send the writer.
#[derive(Debug)]
pub enum Chunk {
    /// Flow records.
    Flows(Vec<FlowRecord>),
    /// Detections.
    Detections(Vec<Detection>),
    /// Parts of evidence captures.
    Evidence(Vec<EvidencePart>),
}

/// How long the writer waits for records before it looks after what does
/// not wait for them (settling closed files).
const QUIET: Duration = Duration::from_secs(1);

/// Suffix of files still being written.
pub const IN_PROGRESS_SUFFIX: &str = ".inprogress";
/// ZSTD level of the Parquet pages. The writer makes a compressor per
/// column of each file, whose tables are allocated and cleared anew: level
/// 3's cost the writer thread more page faults than all the rest of the
/// sensor, for files 0.4% smaller than level 1's on the benign mix.
const ZSTD_LEVEL: i32 = 1;
const NANOS_PER_SEC: u64 = 1_000_000_000;
/// Files open at once per table; past it the file written to longest ago
/// is closed. An open file is its journal's writer state, a few kilobytes.
/// Records whose times jump among many hours (a replay of old captures)
/// keep their partitions open instead of reopening them as new files.
const MAX_OPEN_FILES: usize = 1024;
/// How long a partition behind the newest one stays open after its last
/// record.
const IDLE_BEFORE_CLOSE: Duration = Duration::from_secs(1);

/// Files whose rows take fewer bytes than this in Arrow's format are
/// written without compression: a ZSTD context per column costs more than
/// it saves on so few rows (the export compacts them into compressed files).
pub const SMALL_FILE_BYTES: u64 = 64 << 10;

/// How every Parquet file of the sensor is written: ZSTD pages, and the
/// schema version in the key-value metadata.
pub fn parquet_properties() -> Result<WriterProperties, parquet::errors::ParquetError> {
    compressed(SCHEMA_VERSION)
}

fn compressed(version: &str) -> Result<WriterProperties, parquet::errors::ParquetError> {
    let level = ZstdLevel::try_new(ZSTD_LEVEL)?;
    Ok(properties_builder(Compression::ZSTD(level), version).build())
}

/// The properties of a file whose rows take `bytes` in Arrow's format and
/// follow schema `version`: [`parquet_properties`], or under
/// [`SMALL_FILE_BYTES`] plain pages without compression, dictionaries,
/// page statistics or page index (the column chunks keep their
/// statistics), whose set-up costs more than it saves on so few rows.
pub fn parquet_properties_for(
    bytes: u64,
    version: &str,
) -> Result<WriterProperties, parquet::errors::ParquetError> {
    if bytes < SMALL_FILE_BYTES {
        Ok(properties_builder(Compression::UNCOMPRESSED, version)
            .set_dictionary_enabled(false)
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_offset_index_disabled(true)
            .build())
    } else {
        compressed(version)
    }
}

fn properties_builder(compression: Compression, version: &str) -> WriterPropertiesBuilder {
    WriterProperties::builder()
        .set_compression(compression)
        .set_key_value_metadata(Some(vec![KeyValue::new(
            SCHEMA_VERSION_KEY.to_owned(),
            version.to_owned(),
        )]))
}

/// Where and how output is written.
#[derive(Debug, Clone)]
pub struct OutputConfig {
    /// Output root; tables are folders below it.
    pub dir: PathBuf,
    /// Sensor name, written on every record and in file names.
    pub sensor: String,
    /// Width of a time partition (and file rotation interval), seconds.
    pub rotate_secs: u64,
    /// A file is closed once its rows pass this many bytes in Arrow's
    /// format (its journal); the Parquet file is several times smaller.
    pub max_file_bytes: u64,
    /// Chunks the channel to the writer holds before it is full.
    pub channel_chunks: usize,
    /// Detections also as EVE alert lines, when set.
    pub eve: Option<EveConfig>,
    /// How the `services` table is kept.
    pub services: ServicesConfig,
}

/// Output failures.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A file or folder could not be created, renamed or removed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Parquet encoding or writing failed.
    #[error("{path}: parquet: {source}")]
    Parquet {
        /// The file being written.
        path: PathBuf,
        /// The cause.
        source: parquet::errors::ParquetError,
    },
    /// Building an Arrow batch failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The writer thread panicked.
    #[error("the writer thread stopped unexpectedly")]
    WriterPanicked,
}

impl OutputError {
    /// True when the file system had no room (`ENOSPC`, or a quota):
    /// the error passes once space returns.
    pub fn is_out_of_space(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = cause {
            let io = error.downcast_ref::<std::io::Error>().or_else(|| {
                match error.downcast_ref::<parquet::errors::ParquetError>() {
                    Some(parquet::errors::ParquetError::External(inner)) => inner.downcast_ref(),
                    _ => None,
                }
            });
            if io.is_some_and(|e| {
                matches!(
                    e.kind(),
                    std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                )
            }) {
                return true;
            }
            cause = error.source();
        }
        false
    }
}

/// Names `path` in an I/O error of the output.
pub(super) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What the writer produced.
#[derive(Debug, Default, Clone)]
pub struct WriterReport {
    /// Files completed, in the order they were closed.
    pub files: Vec<PathBuf>,
    /// Records written.
    pub rows: u64,
    /// Records a write error (a full disk) kept out of the table.
    pub lost: u64,
}

/// A file being written: its rows are in its journal until it closes.
struct OpenFile {
    journal: Journal,
    path: PathBuf,
    /// When records last came for it.
    written: Instant,
}

/// The files of one table, one open file per time partition.
struct TableFiles<T: Table> {
    root: PathBuf,
    sensor: String,
    rotate_ns: u64,
    max_file_bytes: u64,
    open: BTreeMap<u64, OpenFile>,
    newest_ns: u64,
    report: WriterReport,
    /// The last write failed; the next that succeeds says so.
    failing: super::FailureStreak,
    /// Closed files, until they are encoded.
    finishing: Finishing,
    /// Journals of finished files, until those are written out.
    settling: Settling,
    _table: std::marker::PhantomData<T>,
}

impl<T: Table> TableFiles<T> {
    fn new(config: &OutputConfig) -> Self {
        let root = config.dir.join(T::NAME);
        Self {
            sensor: config.sensor.clone(),
            rotate_ns: config.rotate_secs.max(1) * NANOS_PER_SEC,
            max_file_bytes: config.max_file_bytes.max(1),
            open: BTreeMap::new(),
            newest_ns: 0,
            report: WriterReport::default(),
            failing: super::FailureStreak::default(),
            finishing: Finishing::new(T::NAME, 2),
            // The table's own folder: it may be a file system of its own.
            settling: Settling::new(&root),
            root,
            _table: std::marker::PhantomData,
        }
    }

    fn partition_of(&self, ts_ns: u64) -> u64 {
        ts_ns / self.rotate_ns * self.rotate_ns
    }

    fn write(&mut self, records: &[T::Record]) -> Result<(), OutputError> {
        let mut by_partition: BTreeMap<u64, Vec<&T::Record>> = BTreeMap::new();
        for record in records {
            let ts = T::partition_ns(record);
            by_partition
                .entry(self.partition_of(ts))
                .or_default()
                .push(record);
            self.newest_ns = self.newest_ns.max(ts);
        }
        let now = Instant::now();
        for (partition, group) in by_partition {
            let batch = T::batch(&self.sensor, &group)?;
            let first_ts = group
                .iter()
                .map(|r| T::partition_ns(r))
                .min()
                .unwrap_or(partition);
            let rows = group.len() as u64;
            match self.put(partition, first_ts, &batch, now) {
                Ok(()) => {
                    self.report.rows += rows;
                    if self.failing.succeeded() {
                        tracing::info!(table = T::NAME, "writing again");
                    }
                }
                Err(e) => self.lost(partition, rows, &e),
            }
        }
        // Partitions a rotation interval behind the newest record close once
        // no record came for them a while; a capture whose times jump among
        // hours keeps writing to several.
        let horizon = self
            .partition_of(self.newest_ns)
            .saturating_sub(self.rotate_ns);
        let stale: Vec<u64> = self
            .open
            .range(..horizon)
            .filter(|(_, file)| now.duration_since(file.written) >= IDLE_BEFORE_CLOSE)
            .map(|(p, _)| *p)
            .collect();
        for partition in stale {
            self.close(partition);
        }
        self.tend(now);
        Ok(())
    }

    /// Takes back the files finished in the background and settles them
    /// when due: after each write, and when the queue is quiet.
    fn tend(&mut self, now: Instant) {
        for finished in self.finishing.collect() {
            self.finished(finished);
        }
        self.settling.settle_if_due(now);
    }

    /// Appends `batch` to `partition`'s open file, opening one if needed.
    fn put(
        &mut self,
        partition: u64,
        first_ts_ns: u64,
        batch: &RecordBatch,
        now: Instant,
    ) -> Result<(), OutputError> {
        if !self.open.contains_key(&partition) {
            // The cap holds within one write too: a batch may span many
            // partitions (a replay of captures from many hours).
            while self.open.len() >= MAX_OPEN_FILES {
                self.close_least_recent();
            }
            let file = self.create(partition, first_ts_ns)?;
            self.open.insert(partition, file);
        }
        let Some(file) = self.open.get_mut(&partition) else {
            return Ok(());
        };
        file.journal.append(batch)?;
        file.journal.flush()?;
        file.written = now;
        if file.journal.bytes() >= self.max_file_bytes {
            self.close(partition);
        }
        Ok(())
    }

    /// `rows` records of `partition` could not be written (a full disk):
    /// they are counted, and the partition's file, whose journal may end in
    /// a part-written batch, is closed with the batches before it.
    fn lost(&mut self, partition: u64, rows: u64, error: &OutputError) {
        if self.failing.failed() {
            tracing::warn!(
                table = T::NAME,
                "{error}: records are dropped and counted until a write succeeds"
            );
        }
        self.report.lost += rows;
        self.close(partition);
    }

    /// Closes the file written to longest ago.
    fn close_least_recent(&mut self) {
        let least = self
            .open
            .iter()
            .min_by_key(|(_, file)| file.written)
            .map(|(p, _)| *p);
        if let Some(partition) = least {
            self.close(partition);
        }
    }

    fn create(&mut self, partition: u64, first_ts_ns: u64) -> Result<OpenFile, OutputError> {
        let start = UtcTime::from_unix_secs(partition / NANOS_PER_SEC);
        let dir = self
            .root
            .join(format!("date={}", start.date()))
            .join(format!("hour={:02}", start.hour));
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let stamp = UtcTime::from_unix_secs(first_ts_ns / NANOS_PER_SEC).compact();
        let mut seq = 0;
        let path = loop {
            let name = format!("{}-{}-{:04}.parquet", self.sensor, stamp, seq);
            let path = dir.join(&name);
            if !path.exists() && !in_progress_path(&path).exists() && !journal_path(&path).exists()
            {
                break path;
            }
            seq += 1;
        };
        let journal = Journal::create(&path, &T::schema(), self.settling.spare())?;
        Ok(OpenFile {
            journal,
            path,
            written: Instant::now(),
        })
    }

    /// Closes `partition`'s file: hands it over to be finished.
    fn close(&mut self, partition: u64) {
        let Some(file) = self.open.remove(&partition) else {
            return;
        };
        let spare = self.settling.spare();
        self.finishing.push(file.journal, file.path, spare);
    }

    /// A file finished; when it could not be written (a full disk), its
    /// rows stay in its journal, which the next start finishes.
    fn finished(&mut self, finished: Finished) {
        match finished.result {
            Ok((_, journal)) => {
                self.settling.push(journal);
                self.report.files.push(finished.file);
            }
            Err(e) => tracing::warn!(
                table = T::NAME,
                "{e}: the file's rows stay in its journal for the next start"
            ),
        }
    }

    fn close_all(&mut self) {
        let partitions: Vec<u64> = self.open.keys().copied().collect();
        for partition in partitions {
            self.close(partition);
        }
        for finished in self.finishing.wait() {
            self.finished(finished);
        }
        self.settling.finish();
    }
}

/// What the writer produced, per table.
#[derive(Debug, Default, Clone)]
pub struct OutputReport {
    /// The `flows` table.
    pub flows: WriterReport,
    /// The `detections` table.
    pub detections: WriterReport,
    /// The `services` table.
    pub services: WriterReport,
    /// Exposure detections raised from it (written with the detections).
    pub exposures: u64,
    /// Its rows written early, and exposures forgotten, at their caps.
    pub services_evicted: u64,
    /// The EVE output, when on.
    pub eve: Option<EveReport>,
    /// Evidence captures completed, their packets, and write errors.
    pub evidence: (u64, u64, u64),
}

/// The writer thread and the channel that feeds it.
pub struct ParquetWriter {
    handle: JoinHandle<Result<OutputReport, OutputError>>,
    progress: Arc<WriterProgress>,
}

/// The tables, in the order [`WriterProgress`] counts them.
pub const TABLES: [&str; 3] = ["flows", "detections", "services"];

/// What the writer thread wrote so far, updated after each chunk (for the
/// metrics; the run's report comes from [`ParquetWriter::finish`]).
#[derive(Debug, Default)]
pub struct WriterProgress {
    /// Rows written per table ([`TABLES`]).
    pub rows: [AtomicU64; 3],
    /// Files completed per table.
    pub files: [AtomicU64; 3],
    /// Files open per table (one per time partition being written).
    pub open_files: [AtomicU64; 3],
    /// Rows of the `services` table being gathered.
    pub service_rows: AtomicU64,
    /// EVE lines written.
    pub eve_lines: AtomicU64,
    /// EVE lines lost to a socket that was absent or not reading.
    pub eve_dropped: AtomicU64,
    /// Exposure detections the writer raised from the `services` table.
    pub exposures: AtomicU64,
    /// Evidence packet bytes sent to the writer and not yet written.
    pub evidence_in_flight: AtomicUsize,
}

impl WriterProgress {
    fn update(&self, tables: &Tables) {
        let reports = [
            (&tables.flows.report, tables.flows.open.len()),
            (&tables.detections.report, tables.detections.open.len()),
            (&tables.services.report, tables.services.open.len()),
        ];
        for (i, (report, open)) in reports.into_iter().enumerate() {
            self.rows[i].store(report.rows, Ordering::Relaxed);
            self.files[i].store(report.files.len() as u64, Ordering::Relaxed);
            self.open_files[i].store(open as u64, Ordering::Relaxed);
        }
        self.service_rows
            .store(tables.gathered.len() as u64, Ordering::Relaxed);
        self.exposures.store(tables.exposures, Ordering::Relaxed);
        if let Some(eve) = &tables.eve {
            self.eve_lines.store(eve.report().lines, Ordering::Relaxed);
            self.eve_dropped
                .store(eve.report().dropped, Ordering::Relaxed);
        }
    }
}

/// What starting the writer gives: the writer, the sender workers clone, and
/// what it recovered of an earlier run that did not finish.
pub type Started = (ParquetWriter, Sender<Chunk>, Recovery);

impl ParquetWriter {
    /// Starts the writer thread for every table under `config.dir`.
    pub fn start(config: &OutputConfig) -> Result<Started, OutputError> {
        let tables = Tables {
            flows: TableFiles::new(config),
            detections: TableFiles::new(config),
            services: TableFiles::new(config),
            gathered: Services::new(config.services.clone(), config.rotate_secs),
            exposures: 0,
            eve: None,
            evidence: EvidenceFiles::new(&config.dir),
        };
        let mut recovery = recover(&tables.flows.root)?;
        recovery.extend(recover(&tables.detections.root)?);
        recovery.extend(recover(&tables.services.root)?);
        recovery.extend(recover(&config.dir.join("evidence"))?);
        fs::create_dir_all(&tables.flows.root).map_err(io_error(&tables.flows.root))?;
        let eve = config
            .eve
            .clone()
            .map(|eve| EveWriter::open(eve, &config.dir))
            .transpose()?;
        let tables = Tables { eve, ..tables };
        let sensor = config.sensor.clone();
        let (sender, receiver) = bounded(config.channel_chunks.max(1));
        let progress = Arc::new(WriterProgress::default());
        let published = Arc::clone(&progress);
        let handle = std::thread::Builder::new()
            .name("mirador-parquet".into())
            .spawn(move || run(tables, &sensor, receiver, &published))
            .map_err(io_error(&config.dir))?;
        Ok((Self { handle, progress }, sender, recovery))
    }

    /// What the writer wrote so far.
    pub fn progress(&self) -> Arc<WriterProgress> {
        Arc::clone(&self.progress)
    }

    /// Waits for the writer to drain the channel (every sender must be
    /// dropped first) and close its files.
    pub fn finish(self) -> Result<OutputReport, OutputError> {
        self.handle
            .join()
            .map_err(|_| OutputError::WriterPanicked)?
    }
}

/// What the writer thread writes to.
struct Tables {
    flows: TableFiles<Flows>,
    detections: TableFiles<Detections>,
    services: TableFiles<ServicesTable>,
    gathered: Services,
    /// Exposure detections raised.
    exposures: u64,
    eve: Option<EveWriter>,
    evidence: EvidenceFiles,
}

impl Tables {
    fn flows(&mut self, sensor: &str, records: &[FlowRecord]) -> Result<(), OutputError> {
        self.flows.write(records)?;
        let (mut exposures, mut rows) = (Vec::new(), Vec::new());
        for record in records {
            self.gathered.observe(record, &mut exposures, &mut rows);
        }
        rows.extend(self.gathered.ready());
        self.services(&rows)?;
        self.exposures += exposures.len() as u64;
        self.detections(sensor, &exposures)
    }

    fn services(&mut self, rows: &[ServiceRow]) -> Result<(), OutputError> {
        if rows.is_empty() {
            return Ok(());
        }
        fs::create_dir_all(&self.services.root).map_err(io_error(&self.services.root))?;
        self.services.write(rows)
    }

    fn detections(&mut self, sensor: &str, records: &[Detection]) -> Result<(), OutputError> {
        if records.is_empty() {
            return Ok(());
        }
        fs::create_dir_all(&self.detections.root).map_err(io_error(&self.detections.root))?;
        self.detections.write(records)?;
        match self.eve.as_mut() {
            Some(eve) => eve.write(sensor, records),
            None => Ok(()),
        }
    }
}

fn run(
    mut tables: Tables,
    sensor: &str,
    receiver: Receiver<Chunk>,
    progress: &WriterProgress,
) -> Result<OutputReport, OutputError> {
    let mut first_error = None;
    loop {
        let chunk = match receiver.recv_timeout(QUIET) {
            Ok(chunk) => chunk,
            Err(RecvTimeoutError::Timeout) => {
                // Files closed before the queue went quiet are finished
                // and settled too.
                let now = Instant::now();
                tables.flows.tend(now);
                tables.detections.tend(now);
                tables.services.tend(now);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let evidence_bytes = match &chunk {
            Chunk::Evidence(parts) => parts
                .iter()
                .flat_map(|p| &p.packets)
                .map(|p| p.data.len())
                .sum(),
            _ => 0,
        };
        if first_error.is_none() {
            let written = match chunk {
                Chunk::Flows(records) => tables.flows(sensor, &records),
                Chunk::Detections(records) => tables.detections(sensor, &records),
                Chunk::Evidence(parts) => {
                    // A capture that cannot be written is counted; the
                    // tables go on.
                    for part in parts {
                        tables.evidence.write(part);
                    }
                    Ok(())
                }
            };
            if let Err(e) = written {
                first_error = Some(e);
            }
        }
        progress
            .evidence_in_flight
            .fetch_sub(evidence_bytes, Ordering::Relaxed);
        progress.update(&tables);
    }
    let rest = tables.gathered.drain();
    let drained = if first_error.is_none() {
        tables.services(&rest)
    } else {
        Ok(())
    };
    tables.evidence.close_all();
    tables.flows.close_all();
    tables.detections.close_all();
    tables.services.close_all();
    let closed = drained;
    let eve = tables.eve.map(EveWriter::finish).transpose();
    match first_error {
        Some(e) => Err(e),
        None => closed.and(eve).map(|eve| OutputReport {
            flows: tables.flows.report,
            detections: tables.detections.report,
            services: tables.services.report,
            exposures: tables.exposures,
            services_evicted: tables.gathered.evicted,
            eve,
            evidence: (
                tables.evidence.files,
                tables.evidence.packets,
                tables.evidence.errors,
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::detect::Detection;

    #[test]
    fn a_full_disk_is_told_apart_from_other_failures() {
        let io = |code| std::io::Error::from_raw_os_error(code);
        let path = PathBuf::from("x.parquet");
        let parquet = |code| OutputError::Parquet {
            path: path.clone(),
            source: parquet::errors::ParquetError::External(Box::new(io(code))),
        };
        assert!(parquet(nix::libc::ENOSPC).is_out_of_space());
        assert!(io_error(&path)(io(nix::libc::EDQUOT)).is_out_of_space());
        assert!(!parquet(nix::libc::EIO).is_out_of_space());
        assert!(!io_error(&path)(io(nix::libc::ENOENT)).is_out_of_space());
    }

    fn detection(hour: u64) -> Detection {
        Detection {
            ts_ns: (1_709_294_400 + hour * 3_600) * NANOS_PER_SEC,
            flow_id: hour,
            proto: 6,
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            carrier: Default::default(),
            src_port: 1000,
            dst_port: 80,
            gid: 1,
            sid: 1,
            rev: 1,
            msg: Arc::from("m"),
            classtype: None,
            priority: 3,
            family: Arc::from("other"),
            to_server: true,
            stream_offset: None,
            excerpt: Vec::new(),
            app_proto: None,
            metadata: Arc::from(""),
            evidence: None,
        }
    }

    #[test]
    fn a_batch_over_many_partitions_keeps_few_files_open() {
        let dir = tempfile::tempdir().unwrap();
        let config = OutputConfig {
            dir: dir.path().to_owned(),
            sensor: "t".into(),
            rotate_secs: 3_600,
            max_file_bytes: u64::MAX,
            channel_chunks: 4,
            eve: None,
            services: ServicesConfig {
                home_net: crate::detect::rules::AddressSpec::Any,
                max_endpoints: 16,
            },
        };
        let mut table = TableFiles::<Detections>::new(&config);
        let hours = 2 * MAX_OPEN_FILES as u64;
        let records: Vec<Detection> = (0..hours).rev().map(detection).collect();
        table.write(&records).unwrap();
        assert!(table.open.len() <= MAX_OPEN_FILES);
        table.close_all();
        assert_eq!(table.report.rows, hours);
        assert_eq!(table.report.files.len() as u64, hours, "one file per hour");
    }
}
