//! Output: flow records leave the workers and land in Parquet.
//!
//! Workers push [`FlowRecord`]s and [`Detection`]s into a [`RecordBatcher`],
//! which ships them in chunks through a bounded channel to the writer thread
//! ([`writer`]). The
//! writer builds Arrow record batches ([`schema`]) off the packet path and
//! writes ZSTD Parquet files in a Hive layout, rotated by record time and by
//! size, each renamed into place only once complete, with a [`journal`]
//! that lets the next start finish what a crash left; closed files are
//! encoded on a thread of their own ([`finishing`]). From the flow records
//! it also gathers the `services` table and raises the exposure findings
//! ([`services`]). Detections can also leave as Suricata EVE alert lines
//! ([`eve`]).

pub mod eve;
pub mod evidence;
pub mod finishing;
pub mod journal;
pub mod schema;
pub mod services;
pub mod writer;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};

use crate::detect::Detection;
use crate::evidence::EvidencePart;
use crate::flow::{FlowRecord, RecordSink};
use crate::reassembly::StreamSink;
pub use writer::{
    Chunk, OutputConfig, OutputError, OutputReport, ParquetWriter, WriterProgress, WriterReport,
};

/// Whether a writer's writes are failing (a full disk): the first failure
/// of a streak and the first success after one are each worth a log line.
#[derive(Debug, Default)]
pub(crate) struct FailureStreak(bool);

impl FailureStreak {
    /// Records a failure; true when it begins a streak.
    pub(crate) fn failed(&mut self) -> bool {
        !std::mem::replace(&mut self.0, true)
    }

    /// Records a success; true when it ends a streak.
    pub(crate) fn succeeded(&mut self) -> bool {
        std::mem::take(&mut self.0)
    }
}

/// Mode of every file the sensor writes: its owner writes, its group reads,
/// others nothing (traffic records and captures are sensitive).
pub const FILE_MODE: u32 = 0o640;

/// Creates (or truncates) a file the sensor writes, with [`FILE_MODE`].
pub fn create_file(path: &Path) -> std::io::Result<File> {
    file_options().truncate(true).open(path)
}

/// Options that create a file for writing with [`FILE_MODE`].
pub fn file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create(true).mode(FILE_MODE);
    options
}

/// Packet bytes of evidence a worker collects before handing them to the
/// writer: captures are not held back, and the packets waiting stay few.
const EVIDENCE_CHUNK_BYTES: usize = 256 << 10;
/// Evidence packet bytes on their way to the writer at most, per writer.
pub const EVIDENCE_IN_FLIGHT: usize = 2 << 20;
/// How long a blocking worker waits for room for evidence before it
/// drops (and counts) the parts: the writer may be gone.
const EVIDENCE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What a worker does when the writer's channel is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenFull {
    /// Drop the chunk and count its records (live capture: never stall the NIC).
    Drop,
    /// Wait for room (replay: the file waits, nothing is lost).
    Block,
}

/// A worker's side of the output channel: collects records and detections
/// into chunks.
#[derive(Debug)]
pub struct RecordBatcher {
    sender: Sender<Chunk>,
    flows: Vec<FlowRecord>,
    detections: Vec<Detection>,
    evidence_parts: Vec<EvidencePart>,
    /// Packet bytes of `evidence_parts`.
    evidence_bytes: usize,
    chunk_size: usize,
    when_full: WhenFull,
    dropped: u64,
    dropped_detections: u64,
    dropped_evidence: u64,
    /// With evidence on, the writer's progress: evidence bytes in flight
    /// are bounded.
    evidence: Option<Arc<WriterProgress>>,
}

impl RecordBatcher {
    /// A batcher sending chunks of `chunk_size` records to `sender`.
    pub fn new(sender: Sender<Chunk>, chunk_size: usize, when_full: WhenFull) -> Self {
        let chunk_size = chunk_size.max(1);
        Self {
            sender,
            flows: Vec::with_capacity(chunk_size),
            detections: Vec::new(),
            evidence_parts: Vec::new(),
            evidence_bytes: 0,
            chunk_size,
            when_full,
            dropped: 0,
            dropped_detections: 0,
            dropped_evidence: 0,
            evidence: None,
        }
    }

    /// With evidence on (`progress`, the writer's): its evidence bytes on
    /// their way to the writer stay under [`EVIDENCE_IN_FLIGHT`].
    pub fn with_evidence(mut self, progress: Option<Arc<WriterProgress>>) -> Self {
        self.evidence = progress;
        self
    }

    /// Evidence parts lost because the channel was full.
    pub fn dropped_evidence(&self) -> u64 {
        self.dropped_evidence
    }

    /// Flow records lost because the channel was full (or the writer gone).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Detections lost the same way.
    pub fn dropped_detections(&self) -> u64 {
        self.dropped_detections
    }

    /// Sends what was collected so far.
    pub fn flush(&mut self) {
        if !self.flows.is_empty() {
            let chunk = std::mem::replace(&mut self.flows, Vec::with_capacity(self.chunk_size));
            let n = chunk.len() as u64;
            if !self.send(Chunk::Flows(chunk)) {
                self.dropped += n;
            }
        }
        if !self.detections.is_empty() {
            let chunk = std::mem::take(&mut self.detections);
            let n = chunk.len() as u64;
            if !self.send(Chunk::Detections(chunk)) {
                self.dropped_detections += n;
            }
        }
        if !self.evidence_parts.is_empty() {
            let bytes = std::mem::take(&mut self.evidence_bytes);
            let chunk = std::mem::take(&mut self.evidence_parts);
            let n = chunk.len() as u64;
            if !self.reserve_evidence(bytes) || !self.send(Chunk::Evidence(chunk)) {
                self.dropped_evidence += n;
            }
        }
    }

    /// Counts `bytes` of evidence in flight once there is room for them:
    /// waiting for the writer (`block`) or giving up (`drop`).
    fn reserve_evidence(&self, bytes: usize) -> bool {
        let Some(progress) = &self.evidence else {
            return false;
        };
        let in_flight = &progress.evidence_in_flight;
        let deadline = std::time::Instant::now() + EVIDENCE_WAIT;
        loop {
            let now = in_flight.load(Ordering::Relaxed);
            if now == 0 || now + bytes <= EVIDENCE_IN_FLIGHT {
                in_flight.fetch_add(bytes, Ordering::Relaxed);
                return true;
            }
            if self.when_full == WhenFull::Drop || std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    fn send(&self, chunk: Chunk) -> bool {
        match self.when_full {
            WhenFull::Block => self.sender.send(chunk).is_ok(),
            WhenFull::Drop => match self.sender.try_send(chunk) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
            },
        }
    }
}

impl StreamSink for RecordBatcher {}

impl RecordSink for RecordBatcher {
    fn flow_record(&mut self, record: FlowRecord) {
        self.flows.push(record);
        if self.flows.len() >= self.chunk_size {
            self.flush();
        }
    }

    fn detection(&mut self, detection: Detection) {
        self.detections.push(detection);
        if self.detections.len() >= self.chunk_size {
            self.flush();
        }
    }
    fn evidence(&mut self, part: EvidencePart) {
        self.evidence_bytes += part.packets.iter().map(|p| p.data.len()).sum::<usize>();
        self.evidence_parts.push(part);
        if self.evidence_parts.len() >= self.chunk_size
            || self.evidence_bytes >= EVIDENCE_CHUNK_BYTES
        {
            self.flush();
        }
    }
}
