//! Replay of one or more capture files, or a capture streamed on standard
//! input, as a single packet stream.
//!
//! Files are merged by timestamp (the smallest next timestamp goes first), so a
//! directory of rotated captures replays as the traffic happened. A file that
//! fails part-way is reported and leaves the merge; what it yielded before the
//! failure stays in the stream.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::file::{not_opened, Input, STDIN};
use super::{CaptureError, CaptureFile, PacketBatch};

/// File name endings treated as capture files when a directory is given.
const CAPTURE_EXTENSIONS: [&str; 4] = ["pcap", "pcapng", "cap", "dmp"];

/// Reads a file's next packet, which then waits in [`CaptureFile::packet`];
/// its timestamp, or `None` at the end.
fn advance(file: &mut Input) -> Result<Option<u64>, CaptureError> {
    Ok(file.next_packet()?.map(|packet| packet.ts_ns))
}

/// Several capture files read as one stream in timestamp order.
pub struct Replay {
    /// The files, each with its next packet waiting.
    sources: Vec<Input>,
    /// (next timestamp, source index) of every source with a packet waiting.
    ready: BinaryHeap<Reverse<(u64, usize)>>,
    /// The source whose packet went into the last batch, to be read on.
    taken: Option<usize>,
    /// The source reading standard input, if one does.
    stdin: Option<usize>,
    errors: Vec<CaptureError>,
    total_bytes: u64,
    files_opened: usize,
}

impl Replay {
    /// Expands directories into the capture files they hold (sorted by name).
    pub fn expand_paths(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, CaptureError> {
        let mut files = Vec::new();
        for input in inputs {
            if input.as_os_str() != STDIN && input.is_dir() {
                let entries = std::fs::read_dir(input).map_err(not_opened(input))?;
                let mut found: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.is_file() && has_capture_extension(p))
                    .collect();
                found.sort();
                files.extend(found);
            } else {
                files.push(input.clone());
            }
        }
        Ok(files)
    }

    /// Opens every file. Files that can't be opened are kept as errors
    /// ([`Self::take_errors`]); the others replay. Standard input ends
    /// early once `stop` is set while it waits.
    pub fn open(files: &[PathBuf], stop: &Arc<AtomicBool>) -> Self {
        let mut replay = Self {
            sources: Vec::with_capacity(files.len()),
            ready: BinaryHeap::with_capacity(files.len()),
            errors: Vec::new(),
            total_bytes: 0,
            files_opened: 0,
            taken: None,
            stdin: None,
        };
        for path in files {
            replay.total_bytes += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            match CaptureFile::open_input(path, stop) {
                Ok(mut file) => {
                    replay.files_opened += 1;
                    let index = replay.sources.len();
                    match advance(&mut file) {
                        Ok(Some(ts_ns)) => replay.ready.push(Reverse((ts_ns, index))),
                        Ok(None) => {}
                        Err(e) => replay.errors.push(e),
                    }
                    replay.errors.extend(file.take_warnings());
                    if path.as_os_str() == STDIN {
                        replay.stdin = Some(replay.sources.len());
                    }
                    replay.sources.push(file);
                }
                Err(e) => replay.errors.push(e),
            }
        }
        replay
    }

    /// Number of files that opened as captures.
    pub fn files_opened(&self) -> usize {
        self.files_opened
    }

    /// Bytes of all input files together.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Bytes read so far over all files.
    pub fn bytes_read(&self) -> u64 {
        self.sources.iter().map(CaptureFile::offset).sum::<u64>()
    }

    /// Packets skipped because their interface's link type is unsupported.
    pub fn skipped_unsupported(&self) -> u64 {
        self.sources
            .iter()
            .map(CaptureFile::skipped_unsupported)
            .sum()
    }

    /// Takes the errors and warnings met so far.
    pub fn take_errors(&mut self) -> Vec<CaptureError> {
        std::mem::take(&mut self.errors)
    }

    /// Clears `batch` and fills it with up to `max` packets in timestamp
    /// order. Returns false once every file is exhausted. Standard input
    /// is waited on only for a batch's first packet: a batch ends early
    /// rather than hold the packets that arrived while more are awaited.
    pub fn fill_batch(&mut self, batch: &mut PacketBatch, max: usize) -> bool {
        batch.clear();
        while batch.len() < max {
            if let Some(index) = self.taken.take() {
                let file = &mut self.sources[index];
                if !batch.is_empty() && self.stdin == Some(index) && !file.next_is_buffered() {
                    self.taken = Some(index);
                    break;
                }
                match advance(file) {
                    Ok(Some(ts_ns)) => self.ready.push(Reverse((ts_ns, index))),
                    Ok(None) => {}
                    Err(e) => self.errors.push(e),
                }
                self.errors.extend(file.take_warnings());
            }
            let Some(Reverse((_, index))) = self.ready.pop() else {
                break;
            };
            if let Some(packet) = self.sources[index].packet() {
                batch.push(packet);
            }
            self.taken = Some(index);
        }
        !batch.is_empty()
    }
}

fn has_capture_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| CAPTURE_EXTENSIONS.iter().any(|c| c.eq_ignore_ascii_case(e)))
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("files", &self.sources.len())
            .field("errors", &self.errors.len())
            .finish()
    }
}
