//! Finishing: closed files encoded from their journals into Parquet on
//! threads of their own, so that the writer goes on appending meanwhile.
//!
//! Encoding a file takes longer than appending its rows, and a replay of
//! captures spread over many hours closes a file for nearly every chunk
//! it writes. A table hands each closed [`Journal`] to its [`Finishing`]
//! and takes back what finished at its next write; at most
//! [`MAX_IN_FLIGHT`] wait, beyond which the writer waits until one is done.
//! Until a file is finished its rows are in its journal, as when the writer
//! encoded it itself, so a crash meanwhile loses nothing more.

use std::path::PathBuf;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use super::journal::Journal;
use super::writer::OutputError;

/// Closed files handed over and not yet taken back, at most.
pub const MAX_IN_FLIGHT: usize = 64;

/// A closed file to finish.
struct Job {
    journal: Journal,
    file: PathBuf,
    spare: Option<PathBuf>,
}

/// A file the thread finished, or could not.
#[derive(Debug)]
pub struct Finished {
    /// Its final name.
    pub file: PathBuf,
    /// Its rows and its journal, which settling takes; or why its rows
    /// stay in its journal for the next start.
    pub result: Result<(u64, PathBuf), OutputError>,
}

impl Job {
    fn run(self) -> Finished {
        let result = self.journal.finish(&self.file, self.spare);
        Finished {
            file: self.file,
            result,
        }
    }
}

/// The finishing threads of one table.
#[derive(Debug)]
pub struct Finishing {
    /// Jobs to the thread; `None` when it could not be started or stopped
    /// (the writer finishes files itself then).
    jobs: Option<Sender<Job>>,
    done: Receiver<Finished>,
    /// Finished files the thread gave when there was none.
    inline: Vec<Finished>,
    in_flight: usize,
    threads: Vec<JoinHandle<()>>,
}

impl Finishing {
    /// Starts `threads` threads, named `mirador-finish-TABLE`.
    pub fn new(table: &str, threads: usize) -> Self {
        let (jobs, queue) = bounded::<Job>(MAX_IN_FLIGHT);
        let (finished, done) = unbounded();
        let mut started = Vec::new();
        for _ in 0..threads {
            let (queue, finished) = (queue.clone(), finished.clone());
            let thread = std::thread::Builder::new()
                .name(format!("mirador-finish-{table}"))
                .spawn(move || {
                    for job in queue {
                        if finished.send(job.run()).is_err() {
                            break;
                        }
                    }
                });
            match thread {
                Ok(thread) => started.push(thread),
                Err(e) => tracing::warn!("finishing thread: {e}"),
            }
        }
        if started.is_empty() {
            tracing::warn!("the writer finishes {table} files itself");
        }
        Self {
            jobs: (!started.is_empty()).then_some(jobs),
            done,
            inline: Vec::new(),
            in_flight: 0,
            threads: started,
        }
    }

    /// Hands `journal` over to be finished as `file` (in the file of
    /// `spare` when one is given), first waiting until one is done when
    /// [`MAX_IN_FLIGHT`] wait.
    pub fn push(&mut self, journal: Journal, file: PathBuf, spare: Option<PathBuf>) {
        if self.in_flight >= MAX_IN_FLIGHT {
            self.wait_one();
        }
        let job = Job {
            journal,
            file,
            spare,
        };
        let Some(jobs) = &self.jobs else {
            self.inline.push(job.run());
            return;
        };
        match jobs.send(job) {
            Ok(()) => self.in_flight += 1,
            Err(returned) => {
                self.jobs = None;
                self.inline.push(returned.into_inner().run());
            }
        }
    }

    /// What finished since the last call, without waiting.
    pub fn collect(&mut self) -> Vec<Finished> {
        let mut finished = std::mem::take(&mut self.inline);
        while let Ok(file) = self.done.try_recv() {
            self.in_flight -= 1;
            finished.push(file);
        }
        finished
    }

    /// Waits until every file handed over is finished; returns them.
    pub fn wait(&mut self) -> Vec<Finished> {
        while self.in_flight > 0 {
            self.wait_one();
        }
        self.collect()
    }

    fn wait_one(&mut self) {
        match self.done.recv() {
            Ok(file) => {
                self.in_flight -= 1;
                self.inline.push(file);
            }
            // The thread is gone: the journals of its files stay for the
            // next start.
            Err(_) => {
                self.in_flight = 0;
                self.jobs = None;
            }
        }
    }
}

impl Drop for Finishing {
    fn drop(&mut self) {
        self.jobs = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;

    use super::*;

    #[test]
    fn every_file_handed_over_comes_back_finished() {
        let dir = std::env::temp_dir().join(format!("mirador-finishing-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let mut finishing = Finishing::new("test", 2);
        let count = MAX_IN_FLIGHT + 10;
        for i in 0..count {
            let file = dir.join(format!("{i}.parquet"));
            let mut journal = Journal::create(&file, &schema, None).unwrap();
            let rows = Int64Array::from_iter_values(0..=i as i64);
            let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(rows)]).unwrap();
            journal.append(&batch).unwrap();
            journal.flush().unwrap();
            finishing.push(journal, file, None);
        }
        let mut finished = finishing.collect();
        finished.extend(finishing.wait());
        assert_eq!(finished.len(), count);
        for done in finished {
            let (rows, _) = done.result.unwrap();
            let name = done.file.file_stem().unwrap().to_str().unwrap();
            assert_eq!(rows, name.parse::<u64>().unwrap() + 1);
            let file = std::fs::File::open(&done.file).unwrap();
            let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
            let written = parquet::file::reader::FileReader::metadata(&reader)
                .file_metadata()
                .num_rows();
            assert_eq!(written as u64, rows);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
