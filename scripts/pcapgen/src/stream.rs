//! Captures written as they are made, to standard output (for `mirador
//! replay -`): a pcap stream with nanosecond timestamps, packets put in
//! time order from flows that overlap, and a seeded generator of
//! addresses, names and payloads.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, BufWriter, Stdout, Write};

use crate::build::eth_ip;

/// Ethernet frames in a nanosecond pcap, written in time order: packets are
/// queued with their timestamps and written once no later flow can come
/// before them.
pub struct PcapStream {
    out: BufWriter<Stdout>,
    /// Queued (timestamp, arrival, frame); arrival keeps ties in order.
    queued: BinaryHeap<Reverse<(u64, u64, Vec<u8>)>>,
    arrivals: u64,
    /// Packets written.
    pub written: u64,
}

impl PcapStream {
    /// Standard output, with the pcap header written.
    pub fn stdout() -> io::Result<Self> {
        let mut out = BufWriter::with_capacity(1 << 20, io::stdout());
        out.write_all(&0xa1b2_3c4du32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&[0; 8])?;
        out.write_all(&65_535u32.to_le_bytes())?;
        out.write_all(&1u32.to_le_bytes())?;
        Ok(Self {
            out,
            queued: BinaryHeap::new(),
            arrivals: 0,
            written: 0,
        })
    }

    /// Queues an IP packet (framed in Ethernet) for time `ts_ns`.
    pub fn ip(&mut self, ts_ns: u64, ip: &[u8]) {
        self.queued
            .push(Reverse((ts_ns, self.arrivals, eth_ip(ip))));
        self.arrivals += 1;
    }

    /// Writes every queued packet up to `ts_ns`.
    pub fn release(&mut self, ts_ns: u64) -> io::Result<()> {
        while self.queued.peek().is_some_and(|Reverse(p)| p.0 <= ts_ns) {
            let Some(Reverse((ts, _, frame))) = self.queued.pop() else {
                break;
            };
            self.write(ts, &frame)?;
        }
        Ok(())
    }

    /// Writes everything queued and flushes.
    pub fn finish(&mut self) -> io::Result<()> {
        self.release(u64::MAX)?;
        self.out.flush()
    }

    /// Hands what is buffered to the reader.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn write(&mut self, ts_ns: u64, frame: &[u8]) -> io::Result<()> {
        self.out
            .write_all(&((ts_ns / 1_000_000_000) as u32).to_le_bytes())?;
        self.out
            .write_all(&((ts_ns % 1_000_000_000) as u32).to_le_bytes())?;
        self.out.write_all(&(frame.len() as u32).to_le_bytes())?;
        self.out.write_all(&(frame.len() as u32).to_le_bytes())?;
        self.out.write_all(frame)?;
        self.written += 1;
        Ok(())
    }
}

/// Runs a generator; a reader that went away (a closed pipe) ends it
/// quietly, as it ends `yes | head`.
pub fn until_reader_leaves(generate: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    match generate() {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// SplitMix64: small, seeded, and good enough for addresses and payloads.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (at least 1).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// A lowercase alphanumeric label of `len` characters.
    pub fn label(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| char::from(ALPHABET[self.below(ALPHABET.len() as u64) as usize]))
            .collect()
    }
}
