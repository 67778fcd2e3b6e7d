//! The Parquet writer thread.
//!
//! Files go to `OUT/flows/date=YYYY-MM-DD/hour=HH/<sensor>-<first ts>-<seq>.parquet`,
//! partitioned by each record's end time. A file is written as
//! `.<name>.inprogress` beside its final name and renamed when it is closed:
//! when it passes [`OutputConfig::max_file_bytes`], when its time partition is
//! one rotation interval behind the newest record, or at shutdown. A reader
//! therefore never sees a half-written file under a `.parquet` name. At
//! start, in-progress files left by a crash are reported and removed.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::schema::{flow_batch, flow_schema, FLOW_SCHEMA_VERSION, SCHEMA_VERSION_KEY};
use crate::flow::FlowRecord;
use crate::utc::UtcTime;

/// Suffix of files still being written.
pub const IN_PROGRESS_SUFFIX: &str = ".inprogress";
/// ZSTD level of the Parquet pages: a good ratio at low cost.
const ZSTD_LEVEL: i32 = 3;
const NANOS_PER_SEC: u64 = 1_000_000_000;
/// Files open at once per table; past it the oldest partition's file is
/// closed (each open file holds its column encoders, about a megabyte).
const MAX_OPEN_FILES: usize = 8;

/// Where and how output is written.
#[derive(Debug, Clone)]
pub struct OutputConfig {
    /// Output root; tables are folders below it.
    pub dir: PathBuf,
    /// Sensor name, written on every record and in file names.
    pub sensor: String,
    /// Width of a time partition (and file rotation interval), seconds.
    pub rotate_secs: u64,
    /// A file is closed once it grows past this many bytes.
    pub max_file_bytes: u64,
    /// Chunks the channel to the writer holds before it is full.
    pub channel_chunks: usize,
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

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
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
}

/// Removes in-progress files left under `dir` by an earlier run that did not
/// finish; returns their paths.
pub fn remove_stale(dir: &Path) -> Result<Vec<PathBuf>, OutputError> {
    let mut removed = Vec::new();
    if !dir.exists() {
        return Ok(removed);
    }
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in fs::read_dir(&folder).map_err(io_error(&folder))? {
            let path = entry.map_err(io_error(&folder))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.') && n.ends_with(IN_PROGRESS_SUFFIX))
            {
                fs::remove_file(&path).map_err(io_error(&path))?;
                removed.push(path);
            }
        }
    }
    removed.sort();
    Ok(removed)
}

struct OpenFile {
    writer: ArrowWriter<File>,
    temp: PathBuf,
    path: PathBuf,
}

/// The files of one table, one open file per time partition.
struct TableFiles {
    root: PathBuf,
    sensor: String,
    rotate_ns: u64,
    max_file_bytes: u64,
    open: BTreeMap<u64, OpenFile>,
    newest_ns: u64,
    report: WriterReport,
}

impl TableFiles {
    fn partition_of(&self, ts_ns: u64) -> u64 {
        ts_ns / self.rotate_ns * self.rotate_ns
    }

    fn write(&mut self, records: &[FlowRecord]) -> Result<(), OutputError> {
        let mut by_partition: BTreeMap<u64, Vec<&FlowRecord>> = BTreeMap::new();
        for record in records {
            by_partition
                .entry(self.partition_of(record.ts_end_ns))
                .or_default()
                .push(record);
            self.newest_ns = self.newest_ns.max(record.ts_end_ns);
        }
        for (partition, group) in by_partition {
            let batch = flow_batch(&self.sensor, &group)?;
            if !self.open.contains_key(&partition) {
                let first_ts = group.iter().map(|r| r.ts_end_ns).min().unwrap_or(partition);
                let file = self.create(partition, first_ts)?;
                self.open.insert(partition, file);
            }
            let Some(file) = self.open.get_mut(&partition) else {
                continue;
            };
            file.writer
                .write(&batch)
                .map_err(|source| OutputError::Parquet {
                    path: file.temp.clone(),
                    source,
                })?;
            self.report.rows += group.len() as u64;
            let size = (file.writer.bytes_written() + file.writer.in_progress_size()) as u64;
            if size >= self.max_file_bytes {
                self.close(partition)?;
            }
        }
        let horizon = self
            .partition_of(self.newest_ns)
            .saturating_sub(self.rotate_ns);
        let stale: Vec<u64> = self.open.range(..horizon).map(|(p, _)| *p).collect();
        for partition in stale {
            self.close(partition)?;
        }
        while self.open.len() > MAX_OPEN_FILES {
            let Some(oldest) = self.open.keys().next().copied() else {
                break;
            };
            self.close(oldest)?;
        }
        Ok(())
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
        let (path, temp) = loop {
            let name = format!("{}-{}-{:04}.parquet", self.sensor, stamp, seq);
            let path = dir.join(&name);
            let temp = dir.join(format!(".{name}{IN_PROGRESS_SUFFIX}"));
            if !path.exists() && !temp.exists() {
                break (path, temp);
            }
            seq += 1;
        };
        let file = File::create(&temp).map_err(io_error(&temp))?;
        let level = ZstdLevel::try_new(ZSTD_LEVEL).map_err(|source| OutputError::Parquet {
            path: temp.clone(),
            source,
        })?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_key_value_metadata(Some(vec![KeyValue::new(
                SCHEMA_VERSION_KEY.to_owned(),
                FLOW_SCHEMA_VERSION.to_owned(),
            )]))
            .build();
        let writer = ArrowWriter::try_new(file, flow_schema(), Some(props)).map_err(|source| {
            OutputError::Parquet {
                path: temp.clone(),
                source,
            }
        })?;
        Ok(OpenFile { writer, temp, path })
    }

    fn close(&mut self, partition: u64) -> Result<(), OutputError> {
        let Some(mut file) = self.open.remove(&partition) else {
            return Ok(());
        };
        file.writer
            .finish()
            .map_err(|source| OutputError::Parquet {
                path: file.temp.clone(),
                source,
            })?;
        file.writer
            .inner()
            .sync_all()
            .map_err(io_error(&file.temp))?;
        drop(file.writer);
        fs::rename(&file.temp, &file.path).map_err(io_error(&file.path))?;
        self.report.files.push(file.path);
        Ok(())
    }

    fn close_all(&mut self) -> Result<(), OutputError> {
        let partitions: Vec<u64> = self.open.keys().copied().collect();
        let mut first_error = None;
        for partition in partitions {
            if let Err(e) = self.close(partition) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The writer thread and the channel that feeds it.
pub struct ParquetWriter {
    handle: JoinHandle<Result<WriterReport, OutputError>>,
}

impl ParquetWriter {
    /// Starts the writer thread for the `flows` table under `config.dir`.
    /// Returns the writer, the sender workers clone, and the stale
    /// in-progress files that were removed.
    pub fn start(
        config: &OutputConfig,
    ) -> Result<(Self, Sender<Vec<FlowRecord>>, Vec<PathBuf>), OutputError> {
        let root = config.dir.join("flows");
        let stale = remove_stale(&root)?;
        fs::create_dir_all(&root).map_err(io_error(&root))?;
        let (sender, receiver) = bounded(config.channel_chunks.max(1));
        let files = TableFiles {
            root,
            sensor: config.sensor.clone(),
            rotate_ns: config.rotate_secs.max(1) * NANOS_PER_SEC,
            max_file_bytes: config.max_file_bytes.max(1),
            open: BTreeMap::new(),
            newest_ns: 0,
            report: WriterReport::default(),
        };
        let handle = std::thread::Builder::new()
            .name("mirador-parquet".into())
            .spawn(move || run(files, receiver))
            .map_err(io_error(&config.dir))?;
        Ok((Self { handle }, sender, stale))
    }

    /// Waits for the writer to drain the channel (every sender must be
    /// dropped first) and close its files.
    pub fn finish(self) -> Result<WriterReport, OutputError> {
        self.handle
            .join()
            .map_err(|_| OutputError::WriterPanicked)?
    }
}

fn run(
    mut files: TableFiles,
    receiver: Receiver<Vec<FlowRecord>>,
) -> Result<WriterReport, OutputError> {
    let mut first_error = None;
    for chunk in receiver {
        if first_error.is_some() {
            continue;
        }
        if let Err(e) = files.write(&chunk) {
            first_error = Some(e);
        }
    }
    let closed = files.close_all();
    match first_error {
        Some(e) => Err(e),
        None => closed.map(|()| files.report),
    }
}
