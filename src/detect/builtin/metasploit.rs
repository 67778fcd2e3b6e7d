//! Metasploit's stagers and meterpreter, on raw TCP, whatever the port,
//! payload, key or session.
//!
//! - A stager reads a 4-byte little-endian length and then that many bytes
//!   of stage, which it runs: so the first bytes of a direction are a
//!   length (10 KB to 20 MB) followed by `MZ`, the stage DLL's header
//!   (metsrv's reflective loader, or Cobalt Strike's raw stager the same
//!   way). [`STAGE`]
//! - Meterpreter then frames every packet as a 4-byte XOR key, a 16-byte
//!   session GUID, 4 bytes of encryption flags, a 4-byte length and a
//!   4-byte type, all after the key XOR-ed with it. The key is in the
//!   clear, so the header decodes without a secret: flags 0 or 1, a type
//!   of request or response, and a length that leads exactly to the next
//!   packet. Three packets in a row that chain so make a session (chance
//!   about 2^-60 per packet for other bytes). [`TLV`]
//!
//! Both are read from each direction's first bytes, after a stage when one
//! was pushed; a direction whose first bytes are neither is left alone.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Detector, Events, Finding, Signature, StreamData};

const STAGE: Signature = Signature {
    sid: 9_200_701,
    msg: "MIRADOR C2 Metasploit stage pushed on connect (length-prefixed PE)",
    family: "c2",
    classtype: "trojan-activity",
    priority: 1,
};

const TLV: Signature = Signature {
    sid: 9_200_702,
    msg: "MIRADOR C2 Meterpreter packets (XOR-keyed TLV headers chaining)",
    family: "c2",
    classtype: "trojan-activity",
    priority: 1,
};

/// Stage lengths a stager takes, bytes.
const STAGE_MIN: u32 = 10_000;
const STAGE_MAX: u32 = 20_000_000;
/// Bytes of a meterpreter packet header, and of the part before its length.
const HEADER: usize = 32;
const BEFORE_LENGTH: u64 = 24;
/// Packet lengths meterpreter sends, bytes.
const LENGTH_MIN: u32 = 8;
const LENGTH_MAX: u32 = 64 << 20;
/// Packet types: request, response, and their plain (unencrypted) forms.
const TYPES: [u32; 4] = [0, 1, 10, 11];

/// `[detectors.metasploit]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetasploitSettings {
    /// Meterpreter packets chaining in a row that make a session.
    pub packets: u32,
}

impl Default for MetasploitSettings {
    fn default() -> Self {
        Self { packets: 3 }
    }
}

/// Bytes of a direction read before deciding whether a stage opens it:
/// the length and the DOS header up to its PE offset.
const OPENING: usize = 4 + 0x40;

/// The first bytes of a direction, gathered from pieces.
#[derive(Debug)]
struct Gathered {
    bytes: [u8; OPENING],
    len: usize,
}

impl Gathered {
    /// Adds what of `bytes` fits; true once full.
    fn add(&mut self, bytes: &[u8]) -> bool {
        let take = (OPENING - self.len).min(bytes.len());
        self.bytes[self.len..self.len + take].copy_from_slice(&bytes[..take]);
        self.len += take;
        self.len == OPENING
    }
}

/// Where a direction's packet chain stands. Only a direction whose first
/// bytes are a stage or a packet header keeps anything.
#[derive(Debug, Default)]
enum Chain {
    /// Its first bytes, until there are [`OPENING`] of them.
    #[default]
    Opening,
    /// The first bytes came in pieces: those so far.
    Gathering(Box<Gathered>),
    /// Following packets.
    Following(Box<Follow>),
    /// Not meterpreter, or already reported.
    Done,
}

/// A packet chain being followed.
#[derive(Debug, Default)]
struct Follow {
    /// Stream offset of the next header.
    next: u64,
    /// Packets chained so far.
    packets: u32,
    /// The bytes of a header that arrived in pieces.
    partial: Vec<u8>,
}

/// What one flow showed.
#[derive(Debug, Default)]
pub struct MetasploitFlow {
    chains: [Chain; 2],
    staged: bool,
}

/// Metasploit.
#[derive(Debug)]
pub struct Metasploit {
    settings: MetasploitSettings,
}

impl Detector for Metasploit {
    const SIDS: std::ops::RangeInclusive<u32> = 9_200_700..=9_200_799;
    const SIGNATURES: &'static [Signature] = &[STAGE, TLV];
    const EVENTS: Events = Events::STREAM;
    type Settings = MetasploitSettings;
    type Flow = MetasploitFlow;
    type Shared = ();

    fn new(settings: &MetasploitSettings, _: &Arc<()>) -> Self {
        Self {
            settings: settings.clone(),
        }
    }

    fn stream(
        &mut self,
        flow: &mut MetasploitFlow,
        data: &StreamData<'_>,
        out: &mut impl FnMut(Finding),
    ) {
        let dir = data.stream.dir;
        let gathered = match &mut flow.chains[dir] {
            Chain::Opening if data.offset == 0 && data.bytes.len() >= OPENING => None,
            Chain::Opening if data.offset == 0 => {
                let mut first = Box::new(Gathered {
                    bytes: [0; OPENING],
                    len: 0,
                });
                first.add(data.bytes);
                flow.chains[dir] = Chain::Gathering(first);
                return;
            }
            Chain::Gathering(first) if data.offset == first.len as u64 => {
                if !first.add(data.bytes) {
                    return;
                }
                Some(first.bytes)
            }
            Chain::Opening | Chain::Gathering(_) => {
                flow.chains[dir] = Chain::Done;
                return;
            }
            Chain::Following(_) => {
                self.follow(flow, data, out);
                return;
            }
            Chain::Done => return,
        };
        let first = gathered.as_ref().map_or(data.bytes, |bytes| &bytes[..]);
        let mut next = 0;
        if let Some(length) = stage_length(first) {
            next = 4 + u64::from(length);
            if !flow.staged {
                flow.staged = true;
                let metadata = format!(
                    "tool metasploit, stage_bytes {length}, arch {}, side {}",
                    arch(&first[4..]),
                    side(dir)
                );
                out(Finding::new(&STAGE, metadata, first));
            }
        }
        if next == 0 && packet_length(&first[..HEADER]).is_none() {
            // Neither a stage nor a packet: nothing to follow.
            flow.chains[dir] = Chain::Done;
            return;
        }
        flow.chains[dir] = Chain::Following(Box::new(Follow {
            next,
            ..Follow::default()
        }));
        match gathered {
            Some(first) => {
                // The first bytes, then what this piece holds past them.
                let opening = StreamData {
                    offset: 0,
                    bytes: &first,
                    ..*data
                };
                self.follow(flow, &opening, out);
                let used = (first.len() as u64 - data.offset) as usize;
                let rest = StreamData {
                    offset: first.len() as u64,
                    bytes: &data.bytes[used..],
                    ..*data
                };
                if !rest.bytes.is_empty() {
                    self.follow(flow, &rest, out);
                }
            }
            None => self.follow(flow, data, out),
        }
    }

    fn stream_done(&self, flow: &MetasploitFlow, data: &StreamData<'_>) -> bool {
        matches!(flow.chains[data.stream.dir], Chain::Done)
    }
}

impl Metasploit {
    /// Follows a direction's packet chain through `data`.
    fn follow(
        &mut self,
        flow: &mut MetasploitFlow,
        data: &StreamData<'_>,
        out: &mut impl FnMut(Finding),
    ) {
        let dir = data.stream.dir;
        let Chain::Following(follow) = &mut flow.chains[dir] else {
            return;
        };
        let Follow {
            next,
            packets,
            partial,
        } = &mut **follow;
        let end = data.offset + data.bytes.len() as u64;
        let mut outcome = None;
        while *next + partial.len() as u64 >= data.offset && *next < end {
            let from = (*next + partial.len() as u64 - data.offset) as usize;
            let piece = &data.bytes[from.min(data.bytes.len())..];
            let want = HEADER - partial.len();
            partial.extend_from_slice(&piece[..piece.len().min(want)]);
            if partial.len() < HEADER {
                break;
            }
            let Some(length) = packet_length(partial) else {
                outcome = Some(None);
                break;
            };
            *next += BEFORE_LENGTH + u64::from(length);
            *packets += 1;
            partial.clear();
            if *packets >= self.settings.packets.max(1) {
                outcome = Some(Some(*packets));
                break;
            }
        }
        if outcome.is_none() && *next + (partial.len() as u64) < data.offset {
            // Bytes were lost: the chain cannot be followed.
            outcome = Some(None);
        }
        match outcome {
            Some(Some(packets)) => {
                let metadata = format!(
                    "tool meterpreter, packets {packets}, side {}, after_stage {}",
                    side(dir),
                    flow.staged
                );
                out(Finding::new(
                    &TLV,
                    metadata,
                    &data.bytes[..data.bytes.len().min(HEADER)],
                ));
                flow.chains = [Chain::Done, Chain::Done];
            }
            Some(None) => flow.chains[dir] = Chain::Done,
            None => {}
        }
    }
}

fn side(dir: usize) -> &'static str {
    if dir == 0 {
        "initiator"
    } else {
        "responder"
    }
}

/// The stage length of a direction's first bytes, when they are a length
/// and then a PE's `MZ`.
fn stage_length(bytes: &[u8]) -> Option<u32> {
    let length = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
    let pe = bytes.get(4..)?;
    if !(STAGE_MIN..=STAGE_MAX).contains(&length) || !pe.starts_with(b"MZ") {
        return None;
    }
    // Where the first bytes hold it, the PE header must be where the DOS
    // header says.
    if let Some(at) = pe.get(0x3c..0x40) {
        let at = u32::from_le_bytes(at.try_into().ok()?) as usize;
        if let Some(signature) = pe.get(at..at + 4) {
            if at >= 1_024 || signature != b"PE\0\0" {
                return None;
            }
        }
    }
    Some(length)
}

/// The stage's architecture, from metsrv's bootstrap code.
fn arch(pe: &[u8]) -> &'static str {
    if pe.starts_with(b"MZAR") {
        "x64"
    } else if pe.starts_with(b"MZ\xe8") {
        "x86"
    } else {
        "unknown"
    }
}

/// The length of the meterpreter packet whose header `header` is (32
/// bytes), when it is one.
fn packet_length(header: &[u8]) -> Option<u32> {
    let key = &header[..4];
    if key == [0; 4] {
        return None;
    }
    let word = |at: usize| {
        let mut w = [0u8; 4];
        for (i, b) in w.iter_mut().enumerate() {
            *b = header[at + i] ^ key[i];
        }
        u32::from_be_bytes(w)
    };
    let (flags, length, kind) = (word(20), word(24), word(28));
    (flags <= 1 && TYPES.contains(&kind) && (LENGTH_MIN..=LENGTH_MAX).contains(&length))
        .then_some(length)
}

#[cfg(test)]
mod tests {
    use super::super::variants::Random;
    use super::*;
    use crate::reassembly::StreamId;

    /// A meterpreter packet of `tlv` bytes under a random key.
    fn packet(random: &mut Random, guid: &[u8], kind: u32, tlv: &[u8]) -> Vec<u8> {
        let mut key = random.bytes(4);
        if key == [0; 4] {
            key[0] = 1;
        }
        let mut plain = guid.to_vec();
        plain.extend(1u32.to_be_bytes());
        plain.extend(((tlv.len() + 8) as u32).to_be_bytes());
        plain.extend(kind.to_be_bytes());
        plain.extend_from_slice(tlv);
        let mut bytes = key.clone();
        bytes.extend(plain.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        bytes
    }

    fn feed(
        flow: &mut MetasploitFlow,
        dir: usize,
        bytes: &[u8],
        pieces: usize,
        offset: &mut u64,
    ) -> Vec<Finding> {
        let mut detector = Metasploit::new(&MetasploitSettings::default(), &Arc::new(()));
        let stream = StreamId {
            flow_id: 1,
            dir: 0,
            src: "10.0.0.5:49215".parse().unwrap(),
            dst: "10.0.0.50:4444".parse().unwrap(),
            carrier: Default::default(),
        }
        .toward(dir);
        let mut found = Vec::new();
        for piece in bytes.chunks(bytes.len().div_ceil(pieces.max(1)).max(1)) {
            let data = StreamData {
                ts_ns: 0,
                stream: &stream,
                offset: *offset,
                bytes: piece,
            };
            detector.stream(flow, &data, &mut |f| found.push(f));
            *offset += piece.len() as u64;
        }
        found
    }

    #[test]
    fn staged_sessions_are_found_whatever_the_keys_and_sizes() {
        let mut random = Random::new(21);
        for round in 0..40 {
            let guid = random.bytes(16);
            let stage_len = random.between(STAGE_MIN as usize, 200_000);
            let mut stage = (stage_len as u32).to_le_bytes().to_vec();
            stage.extend_from_slice(if round % 2 == 0 {
                b"MZ\xe8\x00\x00\x00\x00[REU"
            } else {
                b"MZARUH\x89\xe5"
            });
            stage.resize(4 + stage_len, 0);
            let e_lfanew = random.between(0x40, 0x200);
            stage[4 + 0x3c..4 + 0x40].copy_from_slice(&(e_lfanew as u32).to_le_bytes());
            stage[4 + e_lfanew..4 + e_lfanew + 4].copy_from_slice(b"PE\0\0");
            let mut server = stage;
            let mut client = Vec::new();
            for _ in 0..3 {
                let tlv = random.bytes_of(20, 300);
                server.extend(packet(&mut random, &guid, 0, &tlv));
                let tlv = random.bytes_of(20, 300);
                client.extend(packet(&mut random, &guid, 1, &tlv));
            }
            let mut flow = MetasploitFlow::default();
            let mut offset = 0;
            // The handler writes the length on its own, then the stage.
            let mut found = feed(&mut flow, 1, &server[..4], 1, &mut offset);
            let pieces = random.between(1, 40);
            found.extend(feed(&mut flow, 1, &server[4..], pieces, &mut offset));
            let sids: Vec<u32> = found.iter().map(|f| f.signature.sid).collect();
            assert_eq!(sids, [9_200_701, 9_200_702], "round {round}");
            assert!(found[0]
                .metadata
                .contains(&format!("stage_bytes {stage_len}")));
            // The other direction alone, cut anywhere.
            let mut flow = MetasploitFlow::default();
            let found = feed(&mut flow, 0, &client, random.between(1, 60), &mut 0);
            assert_eq!(found.len(), 1);
            assert!(
                found[0].metadata.contains("packets 3"),
                "{}",
                found[0].metadata
            );
        }
    }

    #[test]
    fn other_binary_streams_are_not_meterpreter() {
        let mut random = Random::new(22);
        for _ in 0..200 {
            let mut flow = MetasploitFlow::default();
            let bytes = random.bytes_of(100, 5_000);
            assert!(feed(&mut flow, 0, &bytes, 3, &mut 0).is_empty());
        }
        let mut flow = MetasploitFlow::default();
        assert!(
            feed(&mut flow, 1, &[0u8; 4_096], 2, &mut 0).is_empty(),
            "zeros"
        );
        let mut flow = MetasploitFlow::default();
        let mut download = 50_000u32.to_le_bytes().to_vec();
        download.extend_from_slice(b"PK\x03\x04");
        assert!(feed(&mut flow, 1, &download, 1, &mut 0).is_empty());
        let mut flow = MetasploitFlow::default();
        assert!(feed(
            &mut flow,
            1,
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-msdownload\r\n\r\nMZ\x90\x00",
            1,
            &mut 0
        )
        .is_empty());
    }
}
