//! Output: flow records leave the workers and land in Parquet.
//!
//! Workers push [`FlowRecord`]s into a [`RecordBatcher`], which ships them in
//! chunks through a bounded channel to the writer thread ([`writer`]). The
//! writer builds Arrow record batches ([`schema`]) off the packet path and
//! writes ZSTD Parquet files in a Hive layout, rotated by record time and by
//! size, each renamed into place only once complete.

pub mod schema;
pub mod writer;

use crossbeam_channel::{Sender, TrySendError};

use crate::flow::{FlowRecord, RecordSink};
use crate::reassembly::StreamSink;
pub use writer::{OutputConfig, OutputError, ParquetWriter, WriterReport};

/// What a worker does when the writer's channel is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenFull {
    /// Drop the chunk and count its records (live capture: never stall the NIC).
    Drop,
    /// Wait for room (replay: the file waits, nothing is lost).
    Block,
}

/// A worker's side of the output channel: collects records into chunks.
#[derive(Debug)]
pub struct RecordBatcher {
    sender: Sender<Vec<FlowRecord>>,
    chunk: Vec<FlowRecord>,
    chunk_size: usize,
    when_full: WhenFull,
    dropped: u64,
}

impl RecordBatcher {
    /// A batcher sending chunks of `chunk_size` records to `sender`.
    pub fn new(sender: Sender<Vec<FlowRecord>>, chunk_size: usize, when_full: WhenFull) -> Self {
        let chunk_size = chunk_size.max(1);
        Self {
            sender,
            chunk: Vec::with_capacity(chunk_size),
            chunk_size,
            when_full,
            dropped: 0,
        }
    }

    /// Records lost because the channel was full (or the writer gone).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Sends the records collected so far.
    pub fn flush(&mut self) {
        if self.chunk.is_empty() {
            return;
        }
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(self.chunk_size));
        let n = chunk.len() as u64;
        let sent = match self.when_full {
            WhenFull::Block => self.sender.send(chunk).is_ok(),
            WhenFull::Drop => match self.sender.try_send(chunk) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
            },
        };
        if !sent {
            self.dropped += n;
        }
    }
}

impl StreamSink for RecordBatcher {}

impl RecordSink for RecordBatcher {
    fn flow_record(&mut self, record: FlowRecord) {
        self.chunk.push(record);
        if self.chunk.len() >= self.chunk_size {
            self.flush();
        }
    }
}
