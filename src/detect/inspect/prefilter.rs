//! The Hyperscan side of inspection: the [`Candidates`] a buffer's
//! pattern matches name, and the scans of packet payloads and of each TCP
//! direction's Hyperscan stream (opened here on first use, closed with
//! [`close`]) that fill it, with the counters of
//! [`ScanStats`](super::ScanStats). The application class scans its
//! event's buffers itself, into the same candidates; verifying the
//! candidates is the verify module's job. On request every scan is
//! recorded ([`RecordedScan`]) so that a bench can make the same scans
//! with Hyperscan alone.

use hyperscan::prelude::*;

use super::{FlowState, Inspection, PacketView, ScanStats};
use crate::detect::engine::Engine;
use crate::detect::groups::{Class, Group};
use crate::reassembly::StreamId;

/// Which database a prefilter scan went to, in terms that find it again
/// in the [`Engine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanTarget {
    /// The packet group of `class` for this direction and these ports.
    Packet {
        /// The class of payload.
        class: Class,
        /// From initiator to responder.
        to_server: bool,
        /// Sender's port.
        src_port: u16,
        /// Receiver's port.
        dst_port: u16,
    },
    /// The stream group of one direction of a flow, scanned through that
    /// direction's Hyperscan stream.
    Stream {
        /// The flow.
        flow_id: u64,
        /// From initiator to responder.
        to_server: bool,
        /// Sender's port.
        src_port: u16,
        /// Receiver's port.
        dst_port: u16,
    },
    /// The application group at this index of [`Engine::app`].
    App(usize),
}

/// One prefilter scan as the pipeline made it: the database and the bytes.
/// Recorded only on request ([`super::Inspector::record_scans`]), for the
/// scan bench's Hyperscan-only bound.
#[derive(Debug, Clone)]
pub struct RecordedScan {
    /// The database.
    pub target: ScanTarget,
    /// The bytes scanned.
    pub bytes: Vec<u8>,
}

impl RecordedScan {
    pub(super) fn new(target: ScanTarget, bytes: &[u8]) -> Self {
        Self {
            target,
            bytes: bytes.to_vec(),
        }
    }
}

/// Closes a Hyperscan stream (its matches at close are of no interest).
pub(super) fn close(stream: hyperscan::Stream, scratch: Option<&Scratch>) {
    if let Some(scratch) = scratch {
        let _ = stream.close(scratch, |_, _, _, _| Matching::Continue);
    }
}

/// The rules one buffer is verified against, each listed once however many
/// of its patterns matched: a rule's stamp holds the generation (the
/// buffer) that last listed it.
pub(super) struct Candidates {
    /// The rules, by index.
    pub(super) list: Vec<u32>,
    stamps: Vec<u32>,
    generation: u32,
}

impl Candidates {
    /// Room for the stamps of `rules` rules.
    pub(super) fn new(rules: usize) -> Self {
        Self {
            list: Vec::new(),
            stamps: vec![0; rules],
            generation: 0,
        }
    }

    /// Starts a new list: a new generation of stamps, nothing in it.
    fn begin(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamps.iter_mut().for_each(|s| *s = 0);
            self.generation = 1;
        }
        self.list.clear();
    }

    /// Lists the rules of pattern `id` of `group` that a match ending at
    /// `end` can be for, when not listed yet.
    pub(super) fn note<D>(&mut self, group: &Group<D>, id: u32, end: u64) {
        for rule in group.rules_ending(id, end) {
            if self.stamps[rule as usize] != self.generation {
                self.stamps[rule as usize] = self.generation;
                self.list.push(rule);
            }
        }
    }

    /// Adds the rules listed in `always` and puts the list in rule order.
    fn finish(&mut self, always: &[u32]) {
        self.list.extend_from_slice(always);
        if self.list.len() > 1 {
            self.list.sort_unstable();
        }
    }
}

impl Inspection {
    /// Starts an inspection: no candidate, no detection raised yet.
    pub(super) fn begin_candidates(&mut self) {
        self.candidates.begin();
        self.raised = 0;
    }

    /// Ends the candidates of a buffer of `class`: adds the rules verified
    /// on every buffer of its group (`always`) and counts them.
    pub(super) fn end_candidates(&mut self, class: Class, always: &[u32]) {
        self.candidates.finish(always);
        self.stats.scan[class.index()].candidates += self.candidates.list.len() as u64;
    }

    /// Candidates of a packet group for a packet's payload.
    pub(super) fn collect_packet(
        &mut self,
        class: Class,
        group: &Group<BlockDatabase>,
        packet: &PacketView<'_>,
    ) {
        self.begin_candidates();
        let payload = packet.payload;
        if let (Some(scratch), false) = (self.scratch.as_ref(), payload.is_empty()) {
            if let Some(recorded) = self.recorded.as_mut() {
                let target = ScanTarget::Packet {
                    class,
                    to_server: packet.to_server,
                    src_port: packet.src_port,
                    dst_port: packet.dst_port,
                };
                recorded.push(RecordedScan::new(target, payload));
            }
            let counters = &mut self.stats.scan[class.index()];
            scan_block(group, payload, scratch, counters, &mut self.candidates);
        }
        self.end_candidates(class, &group.always);
    }

    /// Candidates of the stream group of a direction for its new bytes,
    /// through its Hyperscan stream (opened here on first use).
    pub(super) fn collect_stream(
        &mut self,
        engine: &Engine,
        flow: &mut FlowState,
        stream: &StreamId,
        bytes: &[u8],
    ) {
        self.begin_candidates();
        let group = engine
            .stream
            .lookup(stream.dir == 0, stream.src.port(), stream.dst.port());
        if let (Some(db), Some(scratch)) = (group.database.as_ref(), self.scratch.as_ref()) {
            let scanner = &mut flow.scanners[stream.dir];
            if scanner.is_none() {
                *scanner = db.open_stream().ok();
            }
            if let Some(scanner) = scanner.as_ref() {
                if let Some(recorded) = self.recorded.as_mut() {
                    let target = ScanTarget::Stream {
                        flow_id: stream.flow_id,
                        to_server: stream.dir == 0,
                        src_port: stream.src.port(),
                        dst_port: stream.dst.port(),
                    };
                    recorded.push(RecordedScan::new(target, bytes));
                }
                let counters = &mut self.stats.scan[Class::Stream.index()];
                counters.scans += 1;
                counters.bytes += bytes.len() as u64;
                let found = &mut self.candidates;
                let _ = scanner.scan(bytes, scratch, |id, _, end, _| {
                    counters.matches += 1;
                    found.note(group, id, end);
                    Matching::Continue
                });
            }
        }
        self.end_candidates(Class::Stream, &group.always);
    }
}

/// Scans `bytes` with a block group's database, when it has one: counts
/// the scan and its matches in `counters` and lists the rules the matches
/// can be for in `found`.
pub(super) fn scan_block(
    group: &Group<BlockDatabase>,
    bytes: &[u8],
    scratch: &Scratch,
    counters: &mut ScanStats,
    found: &mut Candidates,
) {
    let Some(db) = group.database.as_ref() else {
        return;
    };
    counters.scans += 1;
    counters.bytes += bytes.len() as u64;
    let _ = db.scan(bytes, scratch, |id, _, end, _| {
        counters.matches += 1;
        found.note(group, id, end);
        Matching::Continue
    });
}

#[cfg(test)]
mod tests {
    use super::ScanTarget;
    use crate::detect::inspect::testing::{inspector, stream};
    use crate::detect::inspect::{DetectLimits, FlowState};

    #[test]
    fn recorded_scans_are_the_stream_chunks_in_order_until_taken() {
        let mut d = inspector(
            "alert tcp any any -> any any (content:\"needle\"; sid:1;)\n",
            DetectLimits::default(),
        );
        let mut flow = FlowState::default();
        let id = stream(7);
        let mut alerts = 0;
        d.record_scans();
        for (offset, chunk) in [(0, &b"hay nee"[..]), (7, &b"dle hay"[..])] {
            d.inspect_stream(&mut flow, 1, &id, offset, chunk, usize::MAX, &mut |_| {
                alerts += 1
            });
        }
        let scans = d.take_scans();
        assert_eq!(alerts, 1);
        let chunks: Vec<&[u8]> = scans.iter().map(|s| s.bytes.as_slice()).collect();
        assert_eq!(chunks, [&b"hay nee"[..], &b"dle hay"[..]]);
        let expected = ScanTarget::Stream {
            flow_id: 7,
            to_server: true,
            src_port: 1000,
            dst_port: 80,
        };
        assert!(scans.iter().all(|s| s.target == expected));
        d.inspect_stream(&mut flow, 1, &id, 14, b" more", usize::MAX, &mut |_| {});
        assert!(d.take_scans().is_empty());
    }
}
