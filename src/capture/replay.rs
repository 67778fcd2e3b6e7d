//! Replay of one or more capture files as a single packet stream.
//!
//! Files are merged by timestamp (the smallest next timestamp goes first), so a
//! directory of rotated captures replays as the traffic happened. A file that
//! fails part-way is reported and leaves the merge; what it yielded before the
//! failure stays in the stream.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::{CaptureError, CaptureFile, PacketBatch};

/// File name endings treated as capture files when a directory is given.
const CAPTURE_EXTENSIONS: [&str; 4] = ["pcap", "pcapng", "cap", "dmp"];

/// One file, its next packet waiting in the file's buffer.
struct Source {
    file: CaptureFile<File>,
    ts_ns: u64,
}

impl Source {
    /// Reads the source's next packet; it waits in [`CaptureFile::packet`].
    fn advance(&mut self) -> Result<bool, CaptureError> {
        match self.file.next_packet()? {
            Some(packet) => {
                self.ts_ns = packet.ts_ns;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// Several capture files read as one stream in timestamp order.
pub struct Replay {
    sources: Vec<Source>,
    /// (next timestamp, source index) of every source with a packet waiting.
    ready: BinaryHeap<Reverse<(u64, usize)>>,
    errors: Vec<CaptureError>,
    total_bytes: u64,
    files_opened: usize,
}

impl Replay {
    /// Expands directories into the capture files they hold (sorted by name).
    pub fn expand_paths(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, CaptureError> {
        let mut files = Vec::new();
        for input in inputs {
            if input.is_dir() {
                let entries = std::fs::read_dir(input).map_err(|e| CaptureError {
                    path: input.clone(),
                    offset: 0,
                    kind: e.into(),
                })?;
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
    /// ([`Self::take_errors`]); the others replay.
    pub fn open(files: &[PathBuf]) -> Self {
        let mut replay = Self {
            sources: Vec::with_capacity(files.len()),
            ready: BinaryHeap::with_capacity(files.len()),
            errors: Vec::new(),
            total_bytes: 0,
            files_opened: 0,
        };
        for path in files {
            replay.total_bytes += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            match CaptureFile::open(path) {
                Ok(file) => {
                    replay.files_opened += 1;
                    let mut source = Source { file, ts_ns: 0 };
                    let index = replay.sources.len();
                    match source.advance() {
                        Ok(true) => replay.ready.push(Reverse((source.ts_ns, index))),
                        Ok(false) => {}
                        Err(e) => replay.errors.push(e),
                    }
                    replay.errors.extend(source.file.take_warnings());
                    replay.sources.push(source);
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
        self.sources.iter().map(|s| s.file.offset()).sum::<u64>()
    }

    /// Packets skipped because their interface's link type is unsupported.
    pub fn skipped_unsupported(&self) -> u64 {
        self.sources
            .iter()
            .map(|s| s.file.skipped_unsupported())
            .sum()
    }

    /// Takes the errors and warnings met so far.
    pub fn take_errors(&mut self) -> Vec<CaptureError> {
        std::mem::take(&mut self.errors)
    }

    /// Clears `batch` and fills it with up to `max` packets in timestamp
    /// order. Returns false once every file is exhausted.
    pub fn fill_batch(&mut self, batch: &mut PacketBatch, max: usize) -> bool {
        batch.clear();
        while batch.len() < max {
            let Some(Reverse((_, index))) = self.ready.pop() else {
                break;
            };
            let source = &mut self.sources[index];
            if let Some(packet) = source.file.packet() {
                batch.push(packet);
            }
            match source.advance() {
                Ok(true) => self.ready.push(Reverse((source.ts_ns, index))),
                Ok(false) => {}
                Err(e) => self.errors.push(e),
            }
            self.errors.extend(source.file.take_warnings());
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
