//! Journals: how a Parquet file is written, so that it survives a crash.
//!
//! A Parquet file is readable only once its footer is written, at close.
//! So while a file `NAME.parquet` is open its rows go to
//! `.NAME.parquet.journal`, an Arrow IPC stream appended and handed to the
//! kernel after every chunk, and nothing else. Between chunks the journal
//! holds no file handle and no buffer: an open file costs a few kilobytes
//! of IPC writer state, not a Parquet encoder per column, so a table keeps
//! many open at once. At close the journal is encoded into the Parquet
//! file in one pass, through its in-progress name, and renamed into place.
//! The journal stays until [`Settling`] has had the file system write the
//! new files out (one `syncfs` a second for every file closed in it, on a
//! thread of its own, rather than an `fsync` each); then it is emptied and kept as a spare that a
//! later journal or Parquet file takes over by renaming it (renaming a file
//! costs the file system less than making one), or removed. A process that is killed loses only the chunks
//! it had not handed to the writer (a power loss may also lose what the
//! kernel had not yet written of the journals).
//!
//! At start, [`recover`] turns every journal an earlier run left into the
//! finished file it stood for, from its complete batches, keeps evidence
//! captures up to their last whole block, and removes the other unfinished
//! files. A journal that still holds rows finishes its
//! file again even when the file exists (the run died after the rename,
//! perhaps before the file system wrote the file out): the same rows
//! replace it, so none is written twice. A visible file that does not
//! read and has no journal rows behind it is removed. Names start with `.`, so readers of the tables (DuckDB's
//! `*.parquet`, Spark, the export) never see either.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use crossbeam_channel::{bounded, Receiver, Sender};
use parquet::arrow::ArrowWriter;

use super::evidence::recover_capture;
use super::schema::{SCHEMA_VERSION, SCHEMA_VERSION_KEY};
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
    /// Starts the journal of the file whose final name is `file`, in the
    /// file of `spare` (a settled journal) when one is given.
    pub fn create(
        file: &Path,
        schema: &SchemaRef,
        spare: Option<PathBuf>,
    ) -> Result<Self, OutputError> {
        let path = journal_path(file);
        let created = create_from(&path, spare).map_err(io_error(&path))?;
        // The schema goes out with the first batch.
        let parked = Parked {
            path: path.clone(),
            out: Some(BufWriter::with_capacity(BUFFER_BYTES, created)),
            bytes: 0,
        };
        // The stream's schema carries the version of the tables, so that a
        // later build that finishes the file stamps it with its writer's.
        let stamped = schema.as_ref().clone().with_metadata(HashMap::from([(
            SCHEMA_VERSION_KEY.to_owned(),
            SCHEMA_VERSION.to_owned(),
        )]));
        let writer = StreamWriter::try_new(parked, &stamped).map_err(|e| arrow_error(&path, e))?;
        Ok(Self { writer, path })
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
    /// in-progress name, in the file of `spare` when one is given); returns
    /// the rows and the journal, which [`Settling`] takes.
    pub fn finish(
        mut self,
        file: &Path,
        spare: Option<PathBuf>,
    ) -> Result<(u64, PathBuf), OutputError> {
        // The stream's end marker is left out, as a kill leaves it: the
        // reader ends at the last whole batch either way, and writing it
        // would open the journal once more.
        self.flush()?;
        drop(self.writer);
        let rows = finish_from(&self.path, file, spare)?;
        Ok((rows, self.path))
    }
}

/// How often [`Settling`] has the file system write out new files.
const SETTLE_EVERY: Duration = Duration::from_secs(1);
/// Settled journals kept, emptied, for new files to take over.
const MAX_SPARES: usize = 4_096;

/// The journals of files just closed, until the file system has written
/// those files out; then spares for the next journals. The writing out
/// (`syncfs`, which may take a while on a busy disk) runs on a thread of
/// its own, so the writer goes on taking records meanwhile.
#[derive(Debug)]
pub struct Settling {
    /// A folder on the file system the files are on.
    dir: PathBuf,
    waiting: Vec<PathBuf>,
    spares: Vec<PathBuf>,
    settled_at: Instant,
    /// Batches of journals to the settling thread; `None` when it could
    /// not be started (the writer settles them itself then).
    batches: Option<Sender<Vec<PathBuf>>>,
    /// The journals it settled, emptied.
    settled: Receiver<Vec<PathBuf>>,
    /// Batches sent and not yet back.
    in_flight: usize,
    thread: Option<JoinHandle<()>>,
}

impl Settling {
    /// Journals of files under `dir`.
    pub fn new(dir: &Path) -> Self {
        let (batches, queue) = bounded::<Vec<PathBuf>>(1);
        let (done, settled) = bounded(1);
        let folder = dir.to_owned();
        let thread = std::thread::Builder::new()
            .name("mirador-settle".into())
            .spawn(move || {
                for batch in queue {
                    if done.send(write_out(&folder, batch)).is_err() {
                        break;
                    }
                }
            });
        let (batches, thread) = match thread {
            Ok(thread) => (Some(batches), Some(thread)),
            Err(e) => {
                tracing::warn!("settling thread: {e}: the writer settles its files itself");
                (None, None)
            }
        };
        Self {
            dir: dir.to_owned(),
            waiting: Vec::new(),
            spares: Vec::new(),
            settled_at: Instant::now(),
            batches,
            settled,
            in_flight: 0,
            thread,
        }
    }

    /// The journal of a file just finished.
    pub fn push(&mut self, journal: PathBuf) {
        self.waiting.push(journal);
    }

    /// A settled journal for a new file to take over.
    pub fn spare(&mut self) -> Option<PathBuf> {
        self.collect();
        self.spares.pop()
    }

    /// Hands the waiting journals over to be settled when the last batch
    /// went a while ago and is back.
    pub fn settle_if_due(&mut self, now: Instant) {
        self.collect();
        if !self.waiting.is_empty()
            && self.in_flight == 0
            && now.duration_since(self.settled_at) >= SETTLE_EVERY
        {
            self.send();
        }
    }

    /// Settles every waiting journal and waits until it is done.
    pub fn settle(&mut self) {
        if !self.waiting.is_empty() {
            self.send();
        }
        while self.in_flight > 0 {
            match self.settled.recv() {
                Ok(batch) => {
                    self.in_flight -= 1;
                    self.take_back(batch);
                }
                Err(_) => self.in_flight = 0,
            }
        }
    }

    /// Settles what waits and removes the spares: the run is ending.
    pub fn finish(&mut self) {
        self.settle();
        for journal in self.spares.drain(..) {
            remove_journal(&journal);
        }
    }

    fn send(&mut self) {
        self.settled_at = Instant::now();
        let batch = std::mem::take(&mut self.waiting);
        match &self.batches {
            Some(batches) => match batches.send(batch) {
                Ok(()) => self.in_flight += 1,
                // The thread is gone: its journals stay for the next start.
                Err(_) => self.batches = None,
            },
            None => {
                let settled = write_out(&self.dir, batch);
                self.take_back(settled);
            }
        }
    }

    /// Takes back what the thread settled.
    fn collect(&mut self) {
        while let Ok(batch) = self.settled.try_recv() {
            self.in_flight -= 1;
            self.take_back(batch);
        }
    }

    fn take_back(&mut self, settled: Vec<PathBuf>) {
        for journal in settled {
            if self.spares.len() < MAX_SPARES {
                self.spares.push(journal);
            } else {
                remove_journal(&journal);
            }
        }
    }
}

impl Drop for Settling {
    fn drop(&mut self) {
        self.batches = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Has the file system under `dir` write out what it holds, then empties
/// the journals of `batch` (their rows are in their files now) and gives
/// back those emptied. When the write-out fails, none is: they keep their
/// rows for the next start.
fn write_out(dir: &Path, batch: Vec<PathBuf>) -> Vec<PathBuf> {
    let synced = File::open(dir)
        .and_then(|dir| nix::unistd::syncfs(dir.as_raw_fd()).map_err(std::io::Error::from));
    if let Err(e) = synced {
        tracing::warn!(
            "{}: {e}: finished files were not written out; their journals stay",
            dir.display()
        );
        return Vec::new();
    }
    let mut emptied = Vec::with_capacity(batch.len());
    for journal in batch {
        // A journal that cannot be emptied is removed instead.
        if create_file(&journal).is_ok() {
            emptied.push(journal);
        } else {
            remove_journal(&journal);
        }
    }
    emptied
}

/// Creates `path` empty for writing, in the file of `spare` (a settled
/// journal, already empty) when one is given: a rename, where creating a
/// file would make the file system find a new inode. The spare is not
/// truncated again: a file truncated to nothing is written out at its
/// close (ext4's `auto_da_alloc`, XFS alike), which costs more than the
/// writing.
fn create_from(path: &Path, spare: Option<PathBuf>) -> std::io::Result<File> {
    if let Some(spare) = spare {
        if fs::rename(&spare, path).is_ok() {
            return file_options().open(path);
        }
    }
    create_file(path)
}

/// A journal left behind is harmless: its file exists and reads, so the
/// next start drops it.
fn remove_journal(journal: &Path) {
    if let Err(e) = fs::remove_file(journal) {
        tracing::warn!("{}: {e}: the next start removes it", journal.display());
    }
}

/// True when `file` is a Parquet file whose footer reads.
fn reads(file: &Path) -> bool {
    File::open(file)
        .ok()
        .and_then(|f| parquet::file::reader::SerializedFileReader::new(f).ok())
        .is_some()
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
    /// Journals left for the next start: the disk had no room for their
    /// files.
    pub deferred: Vec<PathBuf>,
    /// Evidence captures kept up to their last whole block.
    pub captures: Vec<PathBuf>,
}

impl Recovery {
    /// Adds what another folder's recovery found.
    pub fn extend(&mut self, other: Recovery) {
        self.files.extend(other.files);
        self.rows += other.rows;
        self.removed.extend(other.removed);
        self.deferred.extend(other.deferred);
        self.captures.extend(other.captures);
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
    let mut settling = Settling::new(dir);
    for file in journals {
        let journal = journal_path(&file);
        // A journal that still holds rows stands for a file that may not
        // have been written out: finishing it again replaces the file with
        // the same rows, so none is written twice.
        match finish_from(&journal, &file, None) {
            Ok(0) => {
                if file.exists() {
                    remove_unreadable(&file, &mut recovery)?;
                } else {
                    recovery.removed.push(journal.clone());
                }
            }
            Ok(rows) => {
                recovery.files.push(file.clone());
                recovery.rows += rows;
            }
            // A full disk is no fault of the journal: it stays for the
            // next start.
            Err(e) if e.is_out_of_space() => {
                tracing::warn!("{e}: the journal stays for the next start");
                recovery.deferred.push(journal);
                continue;
            }
            // One journal that cannot be finished keeps neither the
            // others nor the sensor from starting; it stays, set aside.
            Err(e) => {
                let aside = hidden(&file, FAILED_SUFFIX);
                tracing::error!("{e}: journal kept as {}", aside.display());
                fs::rename(&journal, &aside).map_err(io_error(&aside))?;
                remove_unreadable(&file, &mut recovery)?;
                continue;
            }
        }
        let temp = in_progress_path(&file);
        unfinished.retain(|p| p != &temp);
        if temp.exists() {
            fs::remove_file(&temp).map_err(io_error(&temp))?;
        }
        settling.push(journal);
    }
    // The journals go once the files they stood for are written out.
    settling.finish();
    for path in unfinished {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let capture = hidden_name(name, IN_PROGRESS_SUFFIX)
            .filter(|n| n.ends_with(".pcapng"))
            .map(|n| path.with_file_name(n));
        if let Some(capture) = capture {
            match recover_capture(&path, &capture) {
                Ok(Some(_)) => {
                    recovery.captures.push(capture);
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("{}: {e}: removed", path.display()),
            }
        }
        fs::remove_file(&path).map_err(io_error(&path))?;
        recovery.removed.push(path);
    }
    recovery.removed.sort();
    Ok(recovery)
}

/// Removes `file` when it exists and does not read (a power loss after
/// its rename): no visible file is left that readers cannot open.
fn remove_unreadable(file: &Path, recovery: &mut Recovery) -> Result<(), OutputError> {
    if file.exists() && !reads(file) {
        fs::remove_file(file).map_err(io_error(file))?;
        recovery.removed.push(file.to_owned());
    }
    Ok(())
}

/// `NAME` of a file named `.NAME` + `suffix`.
fn hidden_name<'a>(name: &'a str, suffix: &str) -> Option<&'a str> {
    name.strip_prefix('.')?
        .strip_suffix(suffix)
        .filter(|n| !n.is_empty())
}

/// Encoded bytes a row group is closed at: what encoding a file holds in
/// memory at once.
const ROW_GROUP_BYTES: usize = 4 << 20;
/// Rows a row group is closed at: bounds the dictionaries being built too,
/// which the encoded size leaves out.
const ROW_GROUP_ROWS: usize = 16_384;

/// Writes the complete batches of `journal` to `file` (through its
/// in-progress name); returns the rows written, and writes nothing when
/// there are none. A file it could not finish is removed, so that it takes
/// no room; the journal keeps its rows.
fn finish_from(
    journal: &Path,
    file: &Path,
    mut spare: Option<PathBuf>,
) -> Result<u64, OutputError> {
    let rows = encode(journal, file, &mut spare);
    if rows.is_err() {
        let _ = fs::remove_file(in_progress_path(file));
    }
    // A spare the file did not take is not kept for nothing.
    if let Some(unused) = spare {
        remove_journal(&unused);
    }
    rows
}

/// [`finish_from`]'s work; the file takes `spare` once it has rows.
fn encode(journal: &Path, file: &Path, spare: &mut Option<PathBuf>) -> Result<u64, OutputError> {
    let input = File::open(journal).map_err(io_error(journal))?;
    let bytes = input.metadata().map_err(io_error(journal))?.len();
    // A journal cut before its schema holds no row.
    let Ok(reader) = StreamReader::try_new(BufReader::new(input), None) else {
        return Ok(0);
    };
    // The version the journal's writer stamped (journals of builds before
    // the stamp: this one's), and the columns without it.
    let stamped = reader.schema();
    let version = stamped
        .metadata()
        .get(SCHEMA_VERSION_KEY)
        .map_or(SCHEMA_VERSION, String::as_str)
        .to_owned();
    let schema = Arc::new(Schema::new(stamped.fields().clone()));
    let mut out: Option<ArrowWriter<File>> = None;
    let temp = in_progress_path(file);
    let mut rows = 0u64;
    // The batch a kill cut short ends the stream.
    for batch in reader.map_while(Result::ok) {
        if batch.num_rows() == 0 {
            continue;
        }
        let batch = RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
            .map_err(|e| arrow_error(&temp, e))?;
        let writer = match out.as_mut() {
            Some(writer) => writer,
            None => {
                let props = parquet_properties_for(bytes, &version).map_err(|source| {
                    OutputError::Parquet {
                        path: temp.clone(),
                        source,
                    }
                })?;
                let created = create_from(&temp, spare.take()).map_err(io_error(&temp))?;
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
    drop(written);
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
        let mut journal = Journal::create(&file, &schema(), None).unwrap();
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
    fn a_recovered_file_carries_the_version_its_journal_was_written_under() {
        let dir = tempfile::tempdir().unwrap();
        let version = |file: &Path| {
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(File::open(file).unwrap()).unwrap();
            let pairs = reader
                .metadata()
                .file_metadata()
                .key_value_metadata()
                .unwrap();
            let stamped = pairs.iter().filter(|kv| kv.key == SCHEMA_VERSION_KEY);
            stamped
                .filter_map(|kv| kv.value.clone())
                .collect::<Vec<_>>()
        };
        // A journal an older build left, stamped "1"; one of a build before
        // the stamp.
        let older = dir.path().join("older.parquet");
        let unstamped = dir.path().join("unstamped.parquet");
        for (file, metadata) in [
            (
                &older,
                HashMap::from([(SCHEMA_VERSION_KEY.to_owned(), "1".to_owned())]),
            ),
            (&unstamped, Default::default()),
        ] {
            let schema = schema().as_ref().clone().with_metadata(metadata);
            let mut writer =
                StreamWriter::try_new(File::create(journal_path(file)).unwrap(), &schema).unwrap();
            writer.write(&batch(0, 3)).unwrap();
            writer.finish().unwrap();
        }
        let recovery = recover(dir.path()).unwrap();
        assert_eq!(recovery.rows, 6);
        assert_eq!(version(&older), ["1"]);
        assert_eq!(version(&unstamped), [SCHEMA_VERSION]);
    }

    /// A journal of `rows` rows, finished into `file` when `finish`; left
    /// as a journal otherwise.
    fn journal_of(file: &Path, rows: i64, finish: bool) -> PathBuf {
        let mut journal = Journal::create(file, &schema(), None).unwrap();
        journal.append(&batch(0, rows)).unwrap();
        journal.flush().unwrap();
        if finish {
            journal.finish(file, None).unwrap().1
        } else {
            journal_path(file)
        }
    }

    #[test]
    fn a_journal_of_a_finished_file_finishes_it_again_and_strays_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let done = dir.path().join("done.parquet");
        journal_of(&done, 5, true);
        let written = fs::read(&done).unwrap();
        let empty = dir.path().join("empty.parquet");
        Journal::create(&empty, &schema(), None)
            .unwrap()
            .flush()
            .unwrap();
        let stray = dir.path().join("evidence/.7.pcapng.inprogress");
        fs::create_dir_all(stray.parent().unwrap()).unwrap();
        fs::write(&stray, b"x").unwrap();

        let recovery = recover(dir.path()).unwrap();
        assert_eq!(recovery.files, std::slice::from_ref(&done));
        assert_eq!(recovery.rows, 5);
        assert_eq!(recovery.removed, [journal_path(&empty), stray]);
        assert_eq!(fs::read(&done).unwrap(), written, "replaced by the same");
        assert_eq!(parquet_values(&done), [0, 1, 2, 3, 4], "not written twice");
        assert!(!journal_path(&done).exists() && !empty.exists());
    }

    #[test]
    fn a_journal_that_cannot_be_finished_is_set_aside_and_the_rest_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let (stuck, fine) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
        for file in [&stuck, &fine] {
            let mut journal = Journal::create(file, &schema(), None).unwrap();
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
    fn a_file_that_does_not_read_is_finished_again_from_its_journal() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lost.parquet");
        journal_of(&file, 4, true);
        // A power loss wrote the rename but not the file's bytes.
        fs::write(&file, b"").unwrap();
        let recovery = recover(dir.path()).unwrap();
        assert_eq!(recovery.files, std::slice::from_ref(&file));
        assert_eq!(parquet_values(&file), [0, 1, 2, 3]);
        assert!(!journal_path(&file).exists());
    }

    #[test]
    fn a_file_that_does_not_read_with_an_empty_journal_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gone.parquet");
        fs::write(&file, b"PAR1").unwrap();
        Journal::create(&file, &schema(), None).unwrap();
        let recovery = recover(dir.path()).unwrap();
        assert_eq!(recovery.removed, std::slice::from_ref(&file));
        assert!(!file.exists() && !journal_path(&file).exists());
    }

    #[test]
    fn settled_journals_are_taken_over_by_the_next_files_then_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut settling = Settling::new(dir.path());
        let first = dir.path().join("1.parquet");
        settling.push(journal_of(&first, 3, true));
        assert!(settling.spare().is_none(), "not before it is settled");
        settling.settle();
        let spare = settling.spare().unwrap();
        assert_eq!(spare, journal_path(&first));

        let second = dir.path().join("hour=02/2.parquet");
        fs::create_dir_all(second.parent().unwrap()).unwrap();
        let mut journal = Journal::create(&second, &schema(), Some(spare.clone())).unwrap();
        assert!(!spare.exists(), "renamed, not copied");
        journal.append(&batch(10, 2)).unwrap();
        let (rows, used) = journal.finish(&second, None).unwrap();
        assert_eq!((rows, parquet_values(&second)), (2, vec![10, 11]));
        assert_eq!(
            parquet_values(&first),
            [0, 1, 2],
            "the first file is untouched"
        );
        settling.push(used);
        settling.settle();
        let spare = settling.spare().unwrap();
        assert_eq!(fs::metadata(&spare).unwrap().len(), 0, "a spare is emptied");
        let third = dir.path().join("3.parquet");
        let mut journal = Journal::create(&third, &schema(), None).unwrap();
        journal.append(&batch(20, 1)).unwrap();
        let (_, used) = journal.finish(&third, Some(spare.clone())).unwrap();
        assert!(!spare.exists(), "the Parquet file took the spare");
        assert_eq!(parquet_values(&third), [20]);
        settling.push(used.clone());
        settling.finish();
        assert!(!used.exists());
        assert!(recover(dir.path()).unwrap().files.is_empty());
    }

    #[test]
    fn small_files_are_written_uncompressed_and_large_ones_with_zstd() {
        let dir = tempfile::tempdir().unwrap();
        let compression = |rows: i64| {
            let file = dir.path().join(format!("{rows}.parquet"));
            let mut journal = Journal::create(&file, &schema(), None).unwrap();
            journal.append(&batch(0, rows)).unwrap();
            assert_eq!(journal.finish(&file, None).unwrap().0, rows as u64);
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
