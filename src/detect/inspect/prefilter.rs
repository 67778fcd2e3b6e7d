//! The Hyperscan side of inspection: one worker's scratch, the
//! [`Candidates`] a buffer's pattern matches name, and the scans of packet
//! payloads and of each TCP direction's Hyperscan stream (opened here on
//! first use, closed with [`close`]) that fill it, with the counters of
//! [`ScanStats`](super::ScanStats). The application class scans its
//! event's buffers itself, into the same candidates; verifying the
//! candidates is the verify module's job.

use hyperscan::prelude::*;

use super::{FlowState, Inspection};
use crate::detect::engine::Engine;
use crate::detect::groups::{Class, Group};
use crate::reassembly::StreamId;

/// One scratch sized for every database.
pub(super) fn scratch_for(engine: &Engine) -> Option<Scratch> {
    /// Allocates the scratch for `db`, or grows it to fit.
    fn fit<M: Mode>(scratch: &mut Option<Scratch>, db: &Database<M>) -> Option<()> {
        match scratch.as_mut() {
            Some(s) => db.realloc_scratch(s).ok().map(drop),
            None => db.alloc_scratch().ok().map(|s| *scratch = Some(s)),
        }
    }
    let mut scratch = None;
    let blocks = engine.packet.iter().flat_map(|p| &p.groups);
    let apps = engine.app.iter().map(|(_, g)| g);
    for db in blocks.chain(apps).filter_map(|g| g.database.as_ref()) {
        fit(&mut scratch, db)?;
    }
    for db in engine
        .stream
        .groups
        .iter()
        .filter_map(|g| g.database.as_ref())
    {
        fit(&mut scratch, db)?;
    }
    scratch
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

    /// Lists the rules of pattern `id` of `group` not listed yet.
    pub(super) fn note<D>(&mut self, group: &Group<D>, id: u32) {
        for &rule in group.rules_of(id) {
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

    /// Candidates of a packet group for one payload.
    pub(super) fn collect_packet(
        &mut self,
        class: Class,
        group: &Group<BlockDatabase>,
        payload: &[u8],
    ) {
        self.begin_candidates();
        if let (Some(db), Some(scratch), false) = (
            group.database.as_ref(),
            self.scratch.as_ref(),
            payload.is_empty(),
        ) {
            let counters = &mut self.stats.scan[class.index()];
            counters.scans += 1;
            counters.bytes += payload.len() as u64;
            let found = &mut self.candidates;
            let _ = db.scan(payload, scratch, |id, _, _, _| {
                counters.matches += 1;
                found.note(group, id);
                Matching::Continue
            });
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
                let counters = &mut self.stats.scan[Class::Stream.index()];
                counters.scans += 1;
                counters.bytes += bytes.len() as u64;
                let found = &mut self.candidates;
                let _ = scanner.scan(bytes, scratch, |id, _, _, _| {
                    counters.matches += 1;
                    found.note(group, id);
                    Matching::Continue
                });
            }
        }
        self.end_candidates(Class::Stream, &group.always);
    }
}
