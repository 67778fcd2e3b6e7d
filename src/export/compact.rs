//! Compaction: a day's hourly files of one table rewritten as a few large
//! files per sensor, sorted by time.
//!
//! Hours are read in order and each hour's rows are sorted by the table's
//! time column (the one that chose their hour), so the parts come out sorted
//! with one hour in memory at a time. A part is closed once its encoded size
//! reaches the target.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use arrow::array::{Array, StringArray};
use arrow::compute::{concat_batches, sort_to_indices, take_record_batch};
use arrow::record_batch::RecordBatch;
use md5::{Digest as _, Md5};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::reader::{FileReader, SerializedFileReader};
use sha2::{Digest, Sha256};

use super::{io, ExportError};
use crate::output::writer::parquet_properties;

/// One compacted file.
#[derive(Debug, Clone)]
pub struct Part {
    /// `part-N.parquet`.
    pub name: String,
    /// Where it is staged.
    pub path: PathBuf,
    /// Rows, as its footer says.
    pub rows: u64,
    /// Bytes.
    pub bytes: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// MD5, hex (what S3 gives as the ETag of a single upload).
    pub md5: String,
}

/// One table's day for one sensor, compacted.
#[derive(Debug, Clone)]
pub struct Compacted {
    /// The table.
    pub table: &'static str,
    /// The sensor.
    pub sensor: String,
    /// The parts, in time order.
    pub parts: Vec<Part>,
    /// Rows of the inputs (and of the parts).
    pub rows: u64,
    /// The hourly files read.
    pub sources: Vec<PathBuf>,
}

/// The column that partitions a table by time.
fn time_column(table: &str) -> &'static str {
    match table {
        "flows" => "ts_end",
        "services" => "hour",
        _ => "ts",
    }
}

/// A sensor's parts in the making.
struct SensorParts {
    dir: PathBuf,
    writer: Option<(ArrowWriter<File>, PathBuf)>,
    parts: Vec<Part>,
    input_rows: u64,
    sources: Vec<PathBuf>,
}

/// Compacts `day` (`OUT/TABLE/date=D`) into `staging`, parts of about
/// `target_bytes`.
pub fn compact(
    table: &'static str,
    day: &Path,
    staging: &Path,
    target_bytes: u64,
) -> Result<Vec<Compacted>, ExportError> {
    if staging.exists() {
        fs::remove_dir_all(staging).map_err(io(staging))?;
    }
    let mut sensors: BTreeMap<String, SensorParts> = BTreeMap::new();
    for hour in sorted_entries(day, |name| name.starts_with("hour="))? {
        let mut by_sensor: BTreeMap<String, Vec<RecordBatch>> = BTreeMap::new();
        let mut hour_sources: BTreeMap<String, Vec<(PathBuf, u64)>> = BTreeMap::new();
        for file in sorted_entries(&hour, |name| {
            name.ends_with(".parquet") && !name.starts_with('.')
        })? {
            let (rows, batches) = read_file(&file)?;
            let sensor = batches.iter().find_map(sensor_of).unwrap_or_default();
            hour_sources
                .entry(sensor.clone())
                .or_default()
                .push((file, rows));
            by_sensor.entry(sensor).or_default().extend(batches);
        }
        for (sensor, sources) in hour_sources {
            let index = sensors.len();
            let state = sensors
                .entry(sensor.clone())
                .or_insert_with(|| SensorParts {
                    dir: staging.join(format!("sensor-{index}")),
                    writer: None,
                    parts: Vec::new(),
                    input_rows: 0,
                    sources: Vec::new(),
                });
            for (path, rows) in sources {
                state.input_rows += rows;
                state.sources.push(path);
            }
            let batches = by_sensor.remove(&sensor).unwrap_or_default();
            let Some(first) = batches.first() else {
                continue;
            };
            let arrow_error = |source| ExportError::Arrow {
                path: state.dir.clone(),
                source,
            };
            let all = concat_batches(&first.schema(), &batches).map_err(arrow_error)?;
            let time =
                all.column_by_name(time_column(table))
                    .ok_or_else(|| ExportError::Arrow {
                        path: hour.clone(),
                        source: arrow::error::ArrowError::SchemaError(format!(
                            "no {} column",
                            time_column(table)
                        )),
                    })?;
            let order = sort_to_indices(time, None, None).map_err(arrow_error)?;
            let sorted = take_record_batch(&all, &order).map_err(arrow_error)?;
            state.write(&sorted, target_bytes)?;
        }
    }
    let mut compacted = Vec::new();
    for (sensor, mut state) in sensors {
        state.close()?;
        let rows: u64 = state.parts.iter().map(|p| p.rows).sum();
        if rows != state.input_rows {
            return Err(ExportError::RowCount {
                table: table.to_owned(),
                sensor,
                expected: state.input_rows,
                got: rows,
            });
        }
        compacted.push(Compacted {
            table,
            sensor,
            parts: state.parts,
            rows,
            sources: state.sources,
        });
    }
    Ok(compacted)
}

impl SensorParts {
    fn write(&mut self, batch: &RecordBatch, target_bytes: u64) -> Result<(), ExportError> {
        if self.writer.is_none() {
            fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
            let path = self.dir.join(format!("part-{}.parquet", self.parts.len()));
            let file = crate::output::create_file(&path).map_err(io(&path))?;
            let parquet_error = |source| ExportError::Parquet {
                path: path.clone(),
                source,
            };
            let props = parquet_properties().map_err(parquet_error)?;
            let writer =
                ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(parquet_error)?;
            self.writer = Some((writer, path));
        }
        if let Some((writer, path)) = self.writer.as_mut() {
            writer.write(batch).map_err(|source| ExportError::Parquet {
                path: path.clone(),
                source,
            })?;
            let size = writer.bytes_written() + writer.in_progress_size();
            if size as u64 >= target_bytes {
                self.close()?;
            }
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), ExportError> {
        let Some((writer, path)) = self.writer.take() else {
            return Ok(());
        };
        writer.close().map_err(|source| ExportError::Parquet {
            path: path.clone(),
            source,
        })?;
        let rows = footer_rows(&path)?;
        let (sha256, md5, bytes) = digests(&path)?;
        self.parts.push(Part {
            name: format!("part-{}.parquet", self.parts.len()),
            path,
            rows,
            bytes,
            sha256,
            md5,
        });
        Ok(())
    }
}

fn sensor_of(batch: &RecordBatch) -> Option<String> {
    let column = batch.column_by_name("sensor")?;
    let strings = column.as_any().downcast_ref::<StringArray>()?;
    (!strings.is_empty() && strings.is_valid(0)).then(|| strings.value(0).to_owned())
}

/// Rows (from the footer) and batches of one file.
fn read_file(path: &Path) -> Result<(u64, Vec<RecordBatch>), ExportError> {
    let parquet_error = |source| ExportError::Parquet {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io(path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error)?;
    let rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let reader = builder.build().map_err(parquet_error)?;
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| ExportError::Arrow {
            path: path.to_owned(),
            source,
        })?;
    Ok((rows, batches))
}

/// The row count a written file's footer states.
fn footer_rows(path: &Path) -> Result<u64, ExportError> {
    let file = File::open(path).map_err(io(path))?;
    let reader = SerializedFileReader::new(file).map_err(|source| ExportError::Parquet {
        path: path.to_owned(),
        source,
    })?;
    Ok(u64::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0))
}

/// SHA-256 and MD5 (hex) and the size of a file.
fn digests(path: &Path) -> Result<(String, String, u64), ExportError> {
    let mut file = File::open(path).map_err(io(path))?;
    let (mut sha, mut md5) = (Sha256::new(), Md5::new());
    let mut buffer = vec![0; 1 << 20];
    let mut bytes = 0;
    loop {
        let n = file.read(&mut buffer).map_err(io(path))?;
        if n == 0 {
            break;
        }
        sha.update(&buffer[..n]);
        md5.update(&buffer[..n]);
        bytes += n as u64;
    }
    let hex = |digest: &[u8]| digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok((hex(&sha.finalize()), hex(&md5.finalize()), bytes))
}

fn sorted_entries(dir: &Path, keep: impl Fn(&str) -> bool) -> Result<Vec<PathBuf>, ExportError> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(&keep))
        .map(|e| e.path())
        .collect();
    entries.sort();
    Ok(entries)
}
