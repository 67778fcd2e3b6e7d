//! Journals: how a Parquet file is written, so that it survives a crash.
//!
//! A Parquet file is readable only once its footer is written, at close.
//! So while a file `NAME.parquet` is open its rows go to
//! `.NAME.parquet.journal`, an Arrow IPC stream appended and handed to the
//! kernel after every chunk, and nothing else. Between chunks the journal
//! holds no file handle and no buffer: an open file costs a few kilobytes
//! of IPC writer state, not a Parquet encoder per column, so a table keeps
//! many open at once. At close
//! the journal is encoded into the Parquet file in one pass, through its
//! in-progress name, renamed into place, and removed. A process that is
//! killed loses only the chunks it had not handed to the writer (a power
//! loss may also lose what the kernel had not yet written).
//!
//! At start, [`recover`] turns every journal an earlier run left into the
//! finished file it stood for, from its complete batches, and removes the
//! other unfinished files. A journal whose file exists already (the run
//! died between the rename and the removal) is dropped, so no row is
//! written twice. Names start with `.`, so readers of the tables (DuckDB's
//! `*.parquet`, Spark, the export) never see either.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;

use super::writer::{io_error, parquet_properties_for, OutputError, IN_PROGRESS_SUFFIX};
use super::{create_file, file_options};

/// Suffix of a journal, after the name of the file it stands for.
pub const JOURNAL_SUFFIX: &str = ".journal";
/// Suffix of a journal that could not be finished, kept for a person to see.
pub const FAILED_SUFFIX: &str = ".journal.failed";
/// Bytes a journal buffers while a chunk is written to it (larger writes
/// pass through).
const BUFFER_BYTES: usize = 64 << 10;

/// The journal of `path`, a Parquet file's final name.
pub fn journal_path(path: &Path) -> PathBuf {
    hidden(path, JOURNAL_SUFFIX)
}

/// The name `path` is written under until it is complete.
pub fn in_progress_path(path: &Path) -> PathBuf {
    hidden(path, IN_PROGRESS_SUFFIX)
}

/// `.NAME` + `suffix` beside `path`.
fn hidden(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}{suffix}"))
}

/// A journal's file: opened for appending when bytes come, let go at
/// each flush. It counts the bytes it took.
struct Parked {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    bytes: u64,
}

impl Write for Parked {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let out = match &mut self.out {
            Some(out) => out,
            None => {
                let file = file_options().append(true).open(&self.path)?;
                self.out
                    .insert(BufWriter::with_capacity(BUFFER_BYTES, file))
            }
        };
        let n = out.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    /// Hands what was written to the kernel and closes the file.
    fn flush(&mut self) -> std::io::Result<()> {
        match self.out.take() {
            Some(mut out) => out.flush(),
            None => Ok(()),
        }
    }
}

/// The rows of one open Parquet file, as an Arrow IPC stream.
pub struct Journal {
    writer: StreamWriter<Parked>,
    path: PathBuf,
}

impl Journal {
    /// Starts the journal of the file whose final name is `file`.
    pub fn create(file: &Path, schema: &SchemaRef) -> Result<Self, OutputError> {
        let path = journal_path(file);
        create_file(&path).map_err(io_error(&path))?;
        let parked = Parked {
            path: path.clone(),
            out: None,
            bytes: 0,
        };
        let writer = StreamWriter::try_new(parked, schema).map_err(|e| arrow_error(&path, e))?;
        let mut journal = Self { writer, path };
        journal.flush()?;
        Ok(journal)
    }

    /// Bytes appended so far.
    pub fn bytes(&self) -> u64 {
        self.writer.get_ref().bytes
    }

    /// Appends `batch`; it reaches the file at the next [`Journal::flush`].
    pub fn append(&mut self, batch: &RecordBatch) -> Result<(), OutputError> {
        self.writer
            .write(batch)
            .map_err(|e| arrow_error(&self.path, e))
    }

    /// Hands what was appended to the kernel, and lets go of the file.
    pub fn flush(&mut self) -> Result<(), OutputError> {
        self.writer.get_mut().flush().map_err(io_error(&self.path))
    }

    /// Writes the Parquet file `file` from the journal (through its
    /// in-progress name), then removes the journal; returns the rows.
    pub fn finish(mut self, file: &Path) -> Result<u64, OutputError> {
        self.writer
            .finish()
            .map_err(|e| arrow_error(&self.path, e))?;
        self.flush()?;
        drop(self.writer);
        let rows = finish_from(&self.path, file)?;
        // A journal left behind is harmless: its file exists, so the next
        // start drops it.
        if let Err(e) = fs::remove_file(&self.path) {
            tracing::warn!("{}: {e}: the next start removes it", self.path.display());
        }
        Ok(rows)
    }
}

fn arrow_error(path: &Path, source: arrow::error::ArrowError) -> OutputError {
    OutputError::Parquet {
        path: path.to_owned(),
        source: source.into(),
    }
}

/// What [`recover`] found of an earlier run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Files finished from journals.
    pub files: Vec<PathBuf>,
    /// Rows in them.
    pub rows: u64,
    /// Unfinished files removed that no journal stood for (evidence
    /// captures, and journals without a complete batch).
    pub removed: Vec<PathBuf>,
}

impl Recovery {
    /// Adds what another folder's recovery found.
    pub fn extend(&mut self, other: Recovery) {
        self.files.extend(other.files);
        self.rows += other.rows;
        self.removed.extend(other.removed);
    }
}

/// Finishes the files an earlier run left under `dir` from their journals,
/// and removes every other unfinished file there.
pub fn recover(dir: &Path) -> Result<Recovery, OutputError> {
    let mut recovery = Recovery::default();
    if !dir.exists() {
        return Ok(recovery);
    }
    let mut journals = Vec::new();
    let mut unfinished = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in fs::read_dir(&folder).map_err(io_error(&folder))? {
            let path = entry.map_err(io_error(&folder))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                pending.push(path);
            } else if let Some(file) = hidden_name(name, JOURNAL_SUFFIX) {
                journals.push(path.with_file_name(file));
            } else if hidden_name(name, IN_PROGRESS_SUFFIX).is_some() {
                unfinished.push(path);
            }
        }
    }
    journals.sort();
    for file in journals {
        let journal = journal_path(&file);
        if !file.exists() {
            match finish_from(&journal, &file) {
                Ok(0) => recovery.removed.push(journal.clone()),
                Ok(rows) => {
                    recovery.files.push(file.clone());
                    recovery.rows += rows;
                }
                // One journal that cannot be finished keeps neither the
                // others nor the sensor from starting; it stays, set aside.
                Err(e) => {
                    let aside = hidden(&file, FAILED_SUFFIX);
                    tracing::error!("{e}: journal kept as {}", aside.display());
                    fs::rename(&journal, &aside).map_err(io_error(&aside))?;
                    continue;
                }
            }
        }
        let temp = in_progress_path(&file);
        unfinished.retain(|p| p != &temp);
        if temp.exists() {
            fs::remove_file(&temp).map_err(io_error(&temp))?;
        }
        fs::remove_file(&journal).map_err(io_error(&journal))?;
    }
    for path in unfinished {
        fs::remove_file(&path).map_err(io_error(&path))?;
        recovery.removed.push(path);
    }
    recovery.removed.sort();
    Ok(recovery)
}

/// `NAME` of a file named `.NAME` + `suffix`.
fn hidden_name<'a>(name: &'a str, suffix: &str) -> Option<&'a str> {
    name.strip_prefix('.')?
        .strip_suffix(suffix)
        .filter(|n| !n.is_empty())
}

/// Writes the complete batches of `journal` to `file` (through its
/// in-progress name); returns the rows written, and writes nothing when
/// there are none.
/// Encoded bytes a row group is closed at: what encoding a file holds in
/// memory at once.
const ROW_GROUP_BYTES: usize = 4 << 20;
/// Rows a row group is closed at: bounds the dictionaries being built too,
/// which the encoded size leaves out.
const ROW_GROUP_ROWS: usize = 16_384;

fn finish_from(journal: &Path, file: &Path) -> Result<u64, OutputError> {
    let input = File::open(journal).map_err(io_error(journal))?;
    let bytes = input.metadata().map_err(io_error(journal))?.len();
    // A journal cut before its schema holds no row.
    let Ok(reader) = StreamReader::try_new(BufReader::new(input), None) else {
        return Ok(0);
    };
    let schema = reader.schema();
    let mut out: Option<ArrowWriter<File>> = None;
    let temp = in_progress_path(file);
    let mut rows = 0u64;
    // The batch a kill cut short ends the stream.
    for batch in reader.map_while(Result::ok) {
        if batch.num_rows() == 0 {
            continue;
        }
        let writer = match out.as_mut() {
            Some(writer) => writer,
            None => {
                let props =
                    parquet_properties_for(bytes).map_err(|source| OutputError::Parquet {
                        path: temp.clone(),
                        source,
                    })?;
                let created = create_file(&temp).map_err(io_error(&temp))?;
                let writer = ArrowWriter::try_new(created, schema.clone(), Some(props)).map_err(
                    |source| OutputError::Parquet {
                        path: temp.clone(),
                        source,
                    },
                )?;
                out.insert(writer)
            }
        };
        writer
            .write(&batch)
            .and_then(|()| {
                // A row group is buffered whole: close it at a bounded size.
                if writer.in_progress_size() >= ROW_GROUP_BYTES
                    || writer.in_progress_rows() >= ROW_GROUP_ROWS
                {
                    writer.flush()
                } else {
                    Ok(())
                }
            })
            .map_err(|source| OutputError::Parquet {
                path: temp.clone(),
                source,
            })?;
        rows += batch.num_rows() as u64;
    }
    let Some(writer) = out else {
        return Ok(0);
    };
    let written = writer.into_inner().map_err(|source| OutputError::Parquet {
        path: temp.clone(),
        source,
    })?;
    written.sync_all().map_err(io_error(&temp))?;
    fs::rename(&temp, file).map_err(io_error(file))?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]))
    }

    fn batch(from: i64, rows: i64) -> RecordBatch {
        let column = Int64Array::from_iter_values(from..from + rows);
        RecordBatch::try_new(schema(), vec![Arc::new(column)]).unwrap()
    }

    fn parquet_values(path: &Path) -> Vec<i64> {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        reader
            .flat_map(|b| {
                let b = b.unwrap();
                let column = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                (0..column.len())
                    .map(|i| column.value(i))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn a_journal_cut_mid_batch_recovers_its_complete_batches() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hour=01/s-1.parquet");
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        let mut journal = Journal::create(&file, &schema()).unwrap();
        for i in 0..3 {
            journal.append(&batch(i * 10, 10)).unwrap();
            journal.flush().unwrap();
        }
        drop(journal);
        // The kill cut the third batch short; a Parquet file had begun.
        let path = journal_path(&file);
        let len = fs::metadata(&path).unwrap().len();
        let cut = File::options().write(true).open(&path).unwrap();
        cut.set_len(len - 20).unwrap();
        fs::write(in_progress_path(&file), b"PAR1 no footer").unwrap();

        let recovery = recover(dir.path()).unwrap();
        assert_eq!(recovery.files, std::slice::from_ref(&file));
        assert_eq!(recovery.rows, 20);
        assert!(recovery.removed.is_empty());
        assert_eq!(parquet_values(&file), (0..20).collect::<Vec<_>>());
        let left: Vec<_> = fs::read_dir(file.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "journal and in-progress file are gone");
    }

    #[test]
    fn a_journal_of_a_finished_file_is_dropped_and_strays_removed() {
        let dir = tempfile::tempdir().unwrap();
        let done = dir.path().join("done.parquet");
        fs::write(&done, b"finished").unwrap();
        let mut journal = Journal::create(&done, &schema()).unwrap();
        journal.append(&batch(0, 5)).unwrap();
        journal.flush().unwrap();
        drop(journal);
        let empty = dir.path().join("empty.parquet");
        Journal::create(&empty, &schema()).unwrap().flush().unwrap();
        let stray = dir.path().join("evidence/.7.pcapng.inprogress");
        fs::create_dir_all(stray.parent().unwrap()).unwrap();
        fs::write(&stray, b"x").unwrap();

        let recovery = recover(dir.path()).unwrap();
        assert!(recovery.files.is_empty());
        assert_eq!(recovery.rows, 0);
        assert_eq!(recovery.removed, [journal_path(&empty), stray]);
        assert_eq!(fs::read(&done).unwrap(), b"finished", "not written twice");
        assert!(!journal_path(&done).exists() && !empty.exists());
    }

    #[test]
    fn a_journal_that_cannot_be_finished_is_set_aside_and_the_rest_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let (stuck, fine) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
        for file in [&stuck, &fine] {
            let mut journal = Journal::create(file, &schema()).unwrap();
            journal.append(&batch(0, 3)).unwrap();
            journal.flush().unwrap();
        }
        // The stuck file's in-progress name is taken by a folder.
        fs::create_dir(in_progress_path(&stuck)).unwrap();

        let recovery = recover(dir.path()).unwrap();
        assert_eq!(recovery.files, std::slice::from_ref(&fine));
        assert_eq!(parquet_values(&fine), [0, 1, 2]);
        assert!(!stuck.exists() && !journal_path(&stuck).exists());
        assert!(hidden(&stuck, FAILED_SUFFIX).exists());
    }

    #[test]
    fn small_files_are_written_uncompressed_and_large_ones_with_zstd() {
        let dir = tempfile::tempdir().unwrap();
        let compression = |rows: i64| {
            let file = dir.path().join(format!("{rows}.parquet"));
            let mut journal = Journal::create(&file, &schema()).unwrap();
            journal.append(&batch(0, rows)).unwrap();
            assert_eq!(journal.finish(&file).unwrap(), rows as u64);
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(File::open(&file).unwrap()).unwrap();
            reader.metadata().row_group(0).column(0).compression()
        };
        assert_eq!(compression(100), parquet::basic::Compression::UNCOMPRESSED);
        // 8 bytes a row: past SMALL_FILE_BYTES.
        assert!(matches!(
            compression(20_000),
            parquet::basic::Compression::ZSTD(_)
        ));
    }
}
