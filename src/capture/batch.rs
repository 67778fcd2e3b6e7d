//! A reusable batch of captured packets.
//!
//! The batch owns one byte arena and one descriptor vector, both cleared (not
//! freed) between batches, so filling a batch allocates nothing once it has
//! grown to its working size.

use super::LinkType;

/// One captured frame as the pipeline sees it.
#[derive(Debug, Clone, Copy)]
pub struct RawPacket<'a> {
    /// Capture time, nanoseconds since the Unix epoch (UTC).
    pub ts_ns: u64,
    /// Link-layer type of `data`.
    pub link: LinkType,
    /// Length of the frame on the wire, bytes (may exceed `data.len()` when the
    /// capture was cut at a snap length).
    pub wire_len: u32,
    /// The captured bytes, starting at the link-layer header.
    pub data: &'a [u8],
}

#[derive(Debug, Clone, Copy)]
struct Descriptor {
    ts_ns: u64,
    link: LinkType,
    wire_len: u32,
    start: usize,
    end: usize,
}

/// A batch of packets stored back to back in one arena.
#[derive(Debug, Default)]
pub struct PacketBatch {
    bytes: Vec<u8>,
    packets: Vec<Descriptor>,
}

impl PacketBatch {
    /// An empty batch with room for `packets` packets of `bytes` bytes in all.
    pub fn with_capacity(packets: usize, bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            packets: Vec::with_capacity(packets),
        }
    }

    /// Removes every packet, keeping the storage.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.packets.clear();
    }

    /// Appends a copy of one packet.
    pub fn push(&mut self, packet: RawPacket<'_>) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(packet.data);
        self.packets.push(Descriptor {
            ts_ns: packet.ts_ns,
            link: packet.link,
            wire_len: packet.wire_len,
            start,
            end: self.bytes.len(),
        });
    }

    /// Number of packets in the batch.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// True when the batch holds no packet.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Captured bytes held, summed over the packets.
    pub fn captured_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// The packets, in the order they were pushed.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = RawPacket<'_>> + '_ {
        self.packets.iter().map(|d| RawPacket {
            ts_ns: d.ts_ns,
            link: d.link,
            wire_len: d.wire_len,
            data: &self.bytes[d.start..d.end],
        })
    }
}
