//! Cobalt Strike, under any malleable profile, by what its protocol fixes:
//!
//! - A stager fetches its beacon from a four-character URI whose byte sum
//!   modulo 256 is 92 (x86) or 93 (x64), the "checksum8". About one such
//!   path in a hundred is that by chance, so the answer must also be what a
//!   team server sends: a 200 with a binary body. [`STAGER`]
//! - The stage it gets starts with a decoder whose key is in the clear: at
//!   some offset `p`, a key, then the stage's length XOR the key, then the
//!   stage XOR-ed in a rolling chain that starts `MZ`. That holds for any
//!   key, URI or profile. [`STAGE`]
//! - A beacon checks in with its metadata: one RSA-1024 block (128 bytes,
//!   132 when masked) in base64, base64url or NetBIOS, in a cookie, a query
//!   value, a path segment or a header, identical at every check-in. The
//!   answer is empty or AES blocks plus a 16-byte HMAC. Two check-ins with
//!   the same block, a second or more apart, make a beacon. [`METADATA`]
//! - Task output goes back as a 4-byte big-endian length, then AES blocks
//!   and the HMAC: the length is the rest of the body, which is a whole
//!   number of blocks. [`OUTPUT`]
//! - Over HTTPS, the default keystore's certificate is self-signed with
//!   every name field empty. [`CERTIFICATE`]
//! - Over HTTPS, a beacon's hello is the Windows TLS stack's and the team
//!   server's answer is Java's: a JA3 and JA3S pair from the published
//!   pairs of beacons and team servers across Windows and Java versions
//!   ([`TLS_PAIRS`]). Either hash alone is common; the two together are
//!   rare elsewhere. [`TLS_PAIR`]
//!
//! The generic [`beacon`](super::beacon) detector times the check-ins.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::encoding::{base64, netbios};
use super::{
    entropy, fingerprint, printable, AppData, Detector, Events, Finding, Recent, Signature,
    TableUse,
};
use crate::applayer::http::head::is_standard_request_header;
use crate::applayer::http::uri::percent_decode;
use crate::applayer::{AppEvent, HttpStage, Transaction};
use crate::detect::rules::entropy_of_counts;

const STAGER: Signature = Signature {
    sid: 9_200_001,
    msg: "MIRADOR C2 Cobalt Strike stager fetch (checksum8 URI)",
    family: "c2",
    classtype: "command-and-control",
    priority: 1,
};

const STAGE: Signature = Signature {
    sid: 9_200_002,
    msg: "MIRADOR C2 Cobalt Strike beacon stage in an HTTP answer (XOR-encoded PE behind its decoder)",
    family: "c2",
    classtype: "command-and-control",
    priority: 1,
};

const METADATA: Signature = Signature {
    sid: 9_200_003,
    msg: "MIRADOR C2 Cobalt Strike beacon check-ins: the same RSA-1024 metadata block again and again",
    family: "c2",
    classtype: "command-and-control",
    priority: 1,
};

const OUTPUT: Signature = Signature {
    sid: 9_200_004,
    msg: "MIRADOR C2 Cobalt Strike task output POST (length-prefixed AES blocks and HMAC)",
    family: "c2",
    classtype: "command-and-control",
    priority: 1,
};

const CERTIFICATE: Signature = Signature {
    sid: 9_200_005,
    msg: "MIRADOR C2 Cobalt Strike default keystore certificate (self-signed, every name field empty)",
    family: "c2",
    classtype: "command-and-control",
    priority: 2,
};

const TLS_PAIR: Signature = Signature {
    sid: 9_200_006,
    msg: "MIRADOR C2 Cobalt Strike TLS fingerprint pair (beacon ClientHello JA3 with team server JA3S)",
    family: "c2",
    classtype: "command-and-control",
    priority: 2,
};

/// `JA3:JA3S` pairs of Cobalt Strike's beacon and team server as a
/// published network signature lists them: each JA3S is a Java TLS stack's
/// answer to the hello of a Windows one.
pub const TLS_PAIRS: &[&str] = &[
    "a0e9f5d64349fb13191bc781f81f42e1:ae4edc6faf64d08308082ad26be60767",
    "72a589da586844d7f0818ce684948eea:ae4edc6faf64d08308082ad26be60767",
    "a0e9f5d64349fb13191bc781f81f42e1:f176ba63b4d68e576b5ba345bec2c7b7",
    "d0ec4b50a944b182fc10ff51f883ccf7:ae4edc6faf64d08308082ad26be60767",
    "294b2f1dc22c6e6c3231d2fe311d504b:ae4edc6faf64d08308082ad26be60767",
    "a0e9f5d64349fb13191bc781f81f42e1:e35df3e00ca4ef31d42b34bebaa2f86e",
    "a0e9f5d64349fb13191bc781f81f42e1:fd4bc6cea4877646ccd62f0792ec0b62",
    "a0e9f5d64349fb13191bc781f81f42e1:46e8c907c5cc3cf4b4420e76da5b4dba",
    "a0e9f5d64349fb13191bc781f81f42e1:b31c0b82752ea0e2c48b8ce46e9263e5",
    "72a589da586844d7f0818ce684948eea:fd4bc6cea4877646ccd62f0792ec0b62",
    "a0e9f5d64349fb13191bc781f81f42e1:6d6b821affda5de6562d217770a7ead0",
    "a0e9f5d64349fb13191bc781f81f42e1:567bb420d39046dbfd1f68b558d86382",
    "a0e9f5d64349fb13191bc781f81f42e1:ec74a5c51106f0419184d0dd08fb05bc",
    "51c64c77e60f3980eea90869b68c58a8:ae4edc6faf64d08308082ad26be60767",
    "72a589da586844d7f0818ce684948eea:8cb68dc6ad0365d44af24b254ef70844",
    "a0e9f5d64349fb13191bc781f81f42e1:b7bd51222a09f3ad66a340710ae9c01a",
    "a0e9f5d64349fb13191bc781f81f42e1:8cb68dc6ad0365d44af24b254ef70844",
    "d0ec4b50a944b182fc10ff51f883ccf7:b31c0b82752ea0e2c48b8ce46e9263e5",
    "ce5f3254611a8c095a3d821d44539877:ae4edc6faf64d08308082ad26be60767",
    "d0ec4b50a944b182fc10ff51f883ccf7:758945630046fd37070521b8544d1fe8",
    "8916410db85077a5460817142dcbc8de:ae4edc6faf64d08308082ad26be60767",
    "a0e9f5d64349fb13191bc781f81f42e1:394441ab65754e2207b1e1b457b3641d",
    "72a589da586844d7f0818ce684948eea:1af33e1657631357c73119488045302c",
    "a0e9f5d64349fb13191bc781f81f42e1:ccc514751b175866924439bdbb5bba34",
    "a0e9f5d64349fb13191bc781f81f42e1:beb7069ae409bccfed702c17ad004223",
    "1770c51ee209c73547f5e53e366b6152:46e8c907c5cc3cf4b4420e76da5b4dba",
    "a0e9f5d64349fb13191bc781f81f42e1:1af33e1657631357c73119488045302c",
    "51c64c77e60f3980eea90869b68c58a8:1af33e1657631357c73119488045302c",
    "d0ec4b50a944b182fc10ff51f883ccf7:f176ba63b4d68e576b5ba345bec2c7b7",
    "d0ec4b50a944b182fc10ff51f883ccf7:fd4bc6cea4877646ccd62f0792ec0b62",
    "8916410db85077a5460817142dcbc8de:fd4bc6cea4877646ccd62f0792ec0b62",
    "c35a61411ee5bdf666b4d64b05c29e64:ae4edc6faf64d08308082ad26be60767",
    "d0ec4b50a944b182fc10ff51f883ccf7:6d6b821affda5de6562d217770a7ead0",
    "a0e9f5d64349fb13191bc781f81f42e1:466556e923186364e82cbdb4cad8df2c",
    "72a589da586844d7f0818ce684948eea:649d6810e8392f63dc311eecb6b7098b",
    "d0ec4b50a944b182fc10ff51f883ccf7:84aaf6d03fc8c5bfb56d1d188735b268",
    "a0e9f5d64349fb13191bc781f81f42e1:098e26e2609212ac1bfac552fbe04127",
];

/// Checksum8 of x86 stager URIs.
const X86: u32 = 92;
/// Checksum8 of x64 stager URIs.
const X64: u32 = 93;
/// A stager's answer this long is a stage whatever its content type, bytes.
const STAGE_BYTES: u64 = 50_000;
/// Offsets of the stage decoder's key searched at most, bytes (its stub
/// is some 60 to 100 bytes of code).
const DECODER_REACH: usize = 1_024;
/// The shortest text a metadata block is sent as (base64 of 128 bytes,
/// unpadded).
const MIN_BLOCK_TEXT: usize = 170;
/// Bytes of an RSA-1024 block, and of one masked (a 4-byte key before it).
const RSA_BLOCK: usize = 128;
const MASKED_BLOCK: usize = 132;
/// Bytes of an AES block and of the HMAC after the blocks.
const AES_BLOCK: usize = 16;
const HMAC: usize = 16;
const NANOS: u64 = 1_000_000_000;

/// `[detectors.cobalt]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CobaltSettings {
    /// Check-ins with one metadata block that make a beacon.
    pub checkins: u32,
    /// Seconds two counted check-ins are apart at least.
    pub min_checkin_secs: u64,
    /// Metadata blocks remembered per client and server; the least
    /// recently used is forgotten beyond it.
    pub max_beacons: usize,
}

impl Default for CobaltSettings {
    fn default() -> Self {
        Self {
            checkins: 2,
            min_checkin_secs: 1,
            max_beacons: 65_536,
        }
    }
}

/// Where a check-in carried its metadata, and in what encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Metadata {
    block: u64,
    place: &'static str,
    encoding: &'static str,
    masked: bool,
}

/// A request of a flow waiting for its answer.
#[derive(Debug)]
pub struct Pending {
    tx: u64,
    metadata: Metadata,
}

/// What one metadata block's check-ins showed.
#[derive(Debug, Default)]
struct Beacon {
    checkins: u32,
    last_ns: u64,
    reported: bool,
}

/// Cobalt Strike.
#[derive(Debug)]
pub struct CobaltStrike {
    settings: CobaltSettings,
    beacons: Recent<(IpAddr, IpAddr, u64), Beacon>,
}

impl Detector for CobaltStrike {
    const SIDS: std::ops::RangeInclusive<u32> = 9_200_000..=9_200_099;
    const SIGNATURES: &'static [Signature] =
        &[STAGER, STAGE, METADATA, OUTPUT, CERTIFICATE, TLS_PAIR];
    const EVENTS: Events = Events::HTTP_REQUEST
        .union(Events::HTTP_REQUEST_BODY)
        .union(Events::HTTP_RESPONSE)
        .union(Events::HTTP_RESPONSE_BODY)
        .union(Events::TLS_HELLO)
        .union(Events::TLS_CERTIFICATE);
    type Settings = CobaltSettings;
    type Flow = Option<Box<Pending>>;
    type Shared = ();

    fn new(settings: &CobaltSettings, _: &Arc<()>) -> Self {
        Self {
            settings: settings.clone(),
            beacons: Recent::new(settings.max_beacons),
        }
    }

    fn app(
        &mut self,
        flow: &mut Option<Box<Pending>>,
        data: &AppData<'_>,
        out: &mut impl FnMut(Finding),
    ) {
        match data.event {
            AppEvent::Http(tx, HttpStage::RequestHeaders) => {
                *flow = None;
                if tx.request.body.is_empty() && !has_body(tx) {
                    if let Some(metadata) = metadata(tx) {
                        *flow = Some(Box::new(Pending {
                            tx: tx.seq,
                            metadata,
                        }));
                    }
                }
            }
            AppEvent::Http(tx, HttpStage::RequestBody) => output(tx, out),
            AppEvent::Http(tx, HttpStage::ResponseHeaders) => {
                stager(tx, out);
                if content_length(tx) == Some(0) {
                    self.checkin(flow, tx, data, b"", out);
                }
            }
            AppEvent::Http(tx, HttpStage::ResponseBody) => {
                stage(tx, out);
                self.checkin(flow, tx, data, &tx.response.body, out);
            }
            AppEvent::TlsCertificate(cert, _)
                if cert.subject == cert.issuer && blank_name(&cert.subject) =>
            {
                let metadata = format!(
                    "tool cobalt-strike, subject {}, serial {}, sha256 {}",
                    if cert.subject.is_empty() {
                        "none"
                    } else {
                        &cert.subject
                    },
                    cert.serial,
                    cert.sha256
                );
                out(Finding::new(&CERTIFICATE, metadata, &[]));
            }
            AppEvent::TlsHello(hello) => {
                if let Some(client) = hello.client_hash.as_deref() {
                    let server = hello.fingerprint_hash.as_str();
                    if TLS_PAIRS.iter().any(|pair| {
                        pair.get(..32) == Some(client) && pair.get(33..) == Some(server)
                    }) {
                        let metadata = format!(
                            "tool cobalt-strike, ja3 {client}, ja3s {server}, server_hello {}",
                            hello.fingerprint
                        );
                        out(Finding::new(&TLS_PAIR, metadata, &[]));
                    }
                }
            }
            _ => {}
        }
    }

    fn tables(&self) -> TableUse {
        self.beacons.usage()
    }
}

impl CobaltStrike {
    /// A check-in's answer: empty, or what a team server's tasks are.
    fn checkin(
        &mut self,
        flow: &mut Option<Box<Pending>>,
        tx: &Transaction,
        data: &AppData<'_>,
        answer: &[u8],
        out: &mut impl FnMut(Finding),
    ) {
        let Some(pending) = flow.take_if(|p| p.tx == tx.seq) else {
            return;
        };
        if !answer.is_empty() && !decodings(answer).iter().any(|f| tasks(f.len())) {
            return;
        }
        let metadata = pending.metadata;
        let key = (data.sender.dst.ip(), data.sender.src.ip(), metadata.block);
        let beacon = self.beacons.entry(key, Beacon::default);
        let apart = self.settings.min_checkin_secs * NANOS;
        if beacon.checkins > 0 && data.ts_ns.saturating_sub(beacon.last_ns) < apart {
            return;
        }
        let interval = data.ts_ns.saturating_sub(beacon.last_ns);
        beacon.checkins += 1;
        beacon.last_ns = data.ts_ns;
        if beacon.reported || beacon.checkins < self.settings.checkins.max(2) {
            return;
        }
        beacon.reported = true;
        let metadata = format!(
            "tool cobalt-strike, place {}, encoding {}{}, checkins {}, interval_secs {:.1}, uri {}",
            metadata.place,
            metadata.encoding,
            if metadata.masked { "+mask" } else { "" },
            beacon.checkins,
            interval as f64 / NANOS as f64,
            printable(&tx.uri, 120)
        );
        out(Finding::new(&METADATA, metadata, &tx.request.start_line));
    }
}

/// The architecture a URI path asks a stager for, when it is one.
fn stager_arch(uri: &[u8]) -> Option<&'static str> {
    let path = uri.strip_prefix(b"/")?;
    let path = path.split(|&b| b == b'?').next().unwrap_or(path);
    if path.len() != 4 || !path.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    match path.iter().map(|&b| u32::from(b)).sum::<u32>() % 256 {
        X86 => Some("x86"),
        X64 => Some("x64"),
        _ => None,
    }
}

fn content_length(tx: &Transaction) -> Option<u64> {
    tx.response
        .header(b"content-length")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse().ok())
}

fn has_body(tx: &Transaction) -> bool {
    tx.request
        .header(b"content-length")
        .is_some_and(|v| v != b"0")
        || tx.request.header(b"transfer-encoding").is_some()
}

/// A GET of a checksum8 path answered 200 with a binary body.
fn stager(tx: &Transaction, out: &mut impl FnMut(Finding)) {
    if !tx.method.eq_ignore_ascii_case(b"GET") || tx.status != b"200" {
        return;
    }
    let binary = tx
        .response
        .header(b"content-type")
        .is_some_and(|t| t.eq_ignore_ascii_case(b"application/octet-stream"));
    let large = content_length(tx).is_some_and(|n| n >= STAGE_BYTES);
    if !(binary || large) {
        return;
    }
    if let Some(arch) = stager_arch(&tx.uri) {
        let metadata = format!(
            "tool cobalt-strike, arch {arch}, uri {}, answer_bytes {}",
            printable(&tx.uri, 120),
            content_length(tx).map_or_else(|| "unknown".to_owned(), |n| n.to_string())
        );
        out(Finding::new(&STAGER, metadata, &tx.request.start_line));
    }
}

/// An answer holding a stage: at an offset within reach, a key, the rest's
/// length XOR the key, and a first word that decodes to `MZ`.
fn stage(tx: &Transaction, out: &mut impl FnMut(Finding)) {
    let body = &tx.response.body;
    let total = content_length(tx).unwrap_or(body.len() as u64);
    // A stage starts with its decoder's machine code, not text.
    if total < 4_096 || super::encoding::binary_share(&body[..body.len().min(64)]) < 0.1 {
        return;
    }
    let reach = &body[..body.len().min(DECODER_REACH + 12)];
    if reach.len() < 12 {
        return;
    }
    // Where a word XOR the word two further on reads `MZ`: each byte XOR
    // the byte eight on, searched for the pair.
    let mut mixed = [0u8; DECODER_REACH + 4];
    let mixed = &mut mixed[..reach.len() - 8];
    for (i, m) in mixed.iter_mut().enumerate() {
        *m = reach[i] ^ reach[i + 8];
    }
    let word =
        |at: usize| u32::from_le_bytes([reach[at], reach[at + 1], reach[at + 2], reach[at + 3]]);
    for p in memchr::memmem::find_iter(mixed, b"MZ") {
        if p + 12 > reach.len() {
            break;
        }
        let key = word(p);
        if key == 0 {
            continue;
        }
        let size = u64::from(word(p + 4) ^ key);
        let rest = total.saturating_sub(p as u64 + 8);
        if size > rest || rest - size > 3 {
            continue;
        }
        let metadata = format!(
            "tool cobalt-strike, decoder_bytes {p}, stage_bytes {size}, uri {}",
            printable(&tx.uri, 120)
        );
        out(Finding::new(&STAGE, metadata, &body[..p.min(body.len())]));
        return;
    }
}

/// The metadata block a request carries, when it carries one.
fn metadata(tx: &Transaction) -> Option<Metadata> {
    let uri = &tx.uri_raw;
    let long = |value: &[u8]| value.len() >= MIN_BLOCK_TEXT;
    if !long(uri) && !tx.request.headers.iter().any(|(_, value)| long(value)) {
        return None;
    }
    let (path, query) = match uri.iter().position(|&b| b == b'?') {
        Some(at) => (&uri[..at], &uri[at + 1..]),
        None => (&uri[..], &[][..]),
    };
    let mut found = None;
    let mut look = |place: &'static str, value: &[u8]| {
        if found.is_none() {
            found = block(value).map(|(block, encoding, masked)| Metadata {
                block,
                place,
                encoding,
                masked,
            });
        }
    };
    for (name, value) in &tx.request.headers {
        if name.eq_ignore_ascii_case(b"cookie") {
            for cookie in value.split(|&b| b == b';') {
                look("cookie", cookie);
                if let Some(at) = cookie.iter().position(|&b| b == b'=') {
                    look("cookie", &cookie[at + 1..]);
                }
            }
        } else if value.len() >= MIN_BLOCK_TEXT && !is_standard_request_header(name) {
            look("header", value);
        }
    }
    for pair in query.split(|&b| b == b'&') {
        look("query", pair);
        if let Some(at) = pair.iter().position(|&b| b == b'=') {
            look("query", &pair[at + 1..]);
        }
    }
    for segment in path.split(|&b| b == b'/') {
        look("path", segment);
    }
    found
}

/// An RSA-1024 block (or a masked one) in `value`: its fingerprint, its
/// encoding, whether masked.
fn block(value: &[u8]) -> Option<(u64, &'static str, bool)> {
    let value = super::encoding::trim(value);
    if !(MIN_BLOCK_TEXT..=264).contains(&value.len()) {
        return None;
    }
    let unescaped;
    let value = if value.contains(&b'%') {
        unescaped = percent_decode(value);
        &unescaped[..]
    } else {
        value
    };
    let (decoded, encoding) = match value.len() {
        170..=176 => {
            let url_safe = value.iter().any(|b| matches!(b, b'-' | b'_'));
            let decoded = base64(value, RSA_BLOCK)?;
            (decoded, if url_safe { "base64url" } else { "base64" })
        }
        256 | 264 => {
            let decoded = netbios(value)?;
            let upper = value[0].is_ascii_uppercase();
            (decoded, if upper { "netbiosu" } else { "netbios" })
        }
        _ => return None,
    };
    let masked = match decoded.len() {
        RSA_BLOCK => false,
        MASKED_BLOCK => true,
        _ => return None,
    };
    (entropy(&decoded) >= 6.0).then(|| {
        (
            fingerprint(&decoded[decoded.len() - RSA_BLOCK..]),
            encoding,
            masked,
        )
    })
}

/// A body as one of the output encodings reads it: decoded, and, masked,
/// XOR-ed with its first four bytes (which are then not part of it).
struct Form<'a> {
    bytes: Cow<'a, [u8]>,
    masked: bool,
    name: &'static str,
}

impl Form<'_> {
    fn len(&self) -> usize {
        self.bytes.len() - if self.masked { 4 } else { 0 }
    }

    fn byte(&self, at: usize) -> u8 {
        if self.masked {
            self.bytes[4 + at] ^ self.bytes[at % 4]
        } else {
            self.bytes[at]
        }
    }

    /// Shannon entropy of the bytes from `start`, bits per byte.
    fn entropy_from(&self, start: usize) -> f64 {
        let mut counts = [0u32; 256];
        for at in start..self.len() {
            counts[usize::from(self.byte(at))] += 1;
        }
        entropy_of_counts(&counts, self.len() - start)
    }
}

/// The forms an encoded body may stand for: as sent, base64, NetBIOS, and
/// each of these masked. Only the decodings copy.
fn decodings(body: &[u8]) -> Vec<Form<'_>> {
    let mut decoded = vec![(Cow::Borrowed(body), "raw")];
    if let Some(bytes) = base64(body, 8) {
        decoded.push((Cow::Owned(bytes), "base64"));
    }
    let text = super::encoding::trim(body);
    let nibbles = text.len() >= 8
        && (text.iter().all(|b| (b'a'..=b'p').contains(b))
            || text.iter().all(|b| (b'A'..=b'P').contains(b)));
    if let Some(bytes) = nibbles.then(|| netbios(text)).flatten() {
        decoded.push((Cow::Owned(bytes), "netbios"));
    }
    let mut forms = Vec::with_capacity(2 * decoded.len());
    for (bytes, name) in decoded {
        if bytes.len() > 4 {
            let masked_name = match name {
                "raw" => "mask",
                "base64" => "mask+base64",
                _ => "mask+netbios",
            };
            forms.push(Form {
                bytes: bytes.clone(),
                masked: true,
                name: masked_name,
            });
        }
        forms.push(Form {
            bytes,
            masked: false,
            name,
        });
    }
    forms
}

/// Tasks as a team server sends them: AES blocks and an HMAC.
fn tasks(length: usize) -> bool {
    length >= AES_BLOCK + HMAC && length % AES_BLOCK == 0
}

/// True when `body`, raw, as base64 or as NetBIOS, masked or not, is as
/// long as task output can be: measured before anything is decoded.
fn output_sized(body: &[u8]) -> bool {
    let fits = |n: usize| (n >= 4 && tasks(n - 4)) || (n >= 8 && tasks(n - 8));
    let text = super::encoding::trim(body);
    let base64_like = text.iter().take(64).all(|b| {
        b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'=' | b'\r' | b'\n')
    });
    let symbols = || {
        text.iter()
            .filter(|b| !matches!(b, b'=' | b'\r' | b'\n'))
            .count()
    };
    fits(body.len()) || fits(text.len() / 2) || base64_like && fits(symbols() * 3 / 4)
}

/// Task output as a beacon posts it: a 4-byte length that is the rest of
/// the body, AES blocks and an HMAC, random-looking.
fn task_output(form: &Form<'_>) -> bool {
    if form.len() < 4 {
        return false;
    }
    let length =
        u32::from_be_bytes([form.byte(0), form.byte(1), form.byte(2), form.byte(3)]) as usize;
    let rest = form.len() - 4;
    length == rest && tasks(rest) && form.entropy_from(4) >= 0.8 * (rest.min(256) as f64).log2()
}

/// A POST whose body is task output in one of the encodings.
fn output(tx: &Transaction, out: &mut impl FnMut(Finding)) {
    if !tx.method.eq_ignore_ascii_case(b"POST") {
        return;
    }
    let body = &tx.request.body;
    if body.len() > 1 << 20 || !output_sized(body) {
        return;
    }
    let forms = decodings(body);
    let Some(form) = forms.iter().find(|f| task_output(f)) else {
        return;
    };
    let metadata = format!(
        "tool cobalt-strike, encoding {}, body_bytes {}, output_bytes {}, uri {}",
        form.name,
        body.len(),
        form.len() - 4,
        printable(&tx.uri, 120)
    );
    out(Finding::new(&OUTPUT, metadata, body));
}

/// True when every attribute of a distinguished name (`C=, O=x, ...`) is
/// empty, or it has none.
fn blank_name(name: &str) -> bool {
    name.split(", ")
        .filter(|part| !part.is_empty())
        .all(|part| {
            part.split_once('=')
                .is_some_and(|(_, value)| value.trim().is_empty())
        })
}

#[cfg(test)]
mod tests {
    use super::super::variants::Random;
    use super::*;
    use crate::applayer::{AppFlow, AppLayer, HttpLimits, TlsHello};
    use crate::detect::Sender;
    use crate::reassembly::StreamId;
    use base64::Engine as _;

    #[test]
    fn checksum8_names_the_architecture() {
        // "/aaa9": 97 * 3 + 57 = 348, 348 % 256 = 92.
        assert_eq!(stager_arch(b"/aaa9"), Some("x86"));
        assert_eq!(stager_arch(b"/aaa:"), None, "not alphanumeric");
        assert_eq!(stager_arch(b"/aab9"), Some("x64"));
        assert_eq!(stager_arch(b"/aab9?x=1"), Some("x64"));
        assert_eq!(stager_arch(b"/aaa8"), None);
        assert_eq!(stager_arch(b"/aaaa9"), None, "five characters");
        assert_eq!(stager_arch(b"/"), None);
    }

    /// A beacon's client and a team server, through the HTTP parser.
    struct Wire {
        detector: CobaltStrike,
        flow: Option<Box<Pending>>,
        found: Vec<Finding>,
        ts_ns: u64,
        port: u16,
    }

    impl Wire {
        fn new() -> Self {
            Self {
                detector: CobaltStrike::new(&CobaltSettings::default(), &Arc::new(())),
                flow: None,
                found: Vec::new(),
                ts_ns: 0,
                port: 40_000,
            }
        }

        /// One exchange on a connection of its own, `secs` after the last.
        fn exchange(&mut self, secs: u64, request: &[u8], response: &[u8]) {
            self.ts_ns += secs * NANOS;
            self.port += 1;
            let mut applayer = AppLayer::new(HttpLimits::default());
            let mut app = AppFlow::default();
            let stream = StreamId {
                flow_id: u64::from(self.port),
                dir: 0,
                src: format!("10.0.0.9:{}", self.port).parse().unwrap(),
                dst: "198.51.100.4:443".parse().unwrap(),
                carrier: Default::default(),
            };
            self.flow = None;
            for (dir, bytes) in [(0, request), (1, response)] {
                let id = stream.toward(dir);
                let (detector, flow, found, ts_ns) = (
                    &mut self.detector,
                    &mut self.flow,
                    &mut self.found,
                    self.ts_ns,
                );
                applayer.data(&mut app, &id, 0, bytes, &mut |event, sent| {
                    let sender = Sender::of_stream(&stream.toward(sent));
                    let data = AppData {
                        ts_ns,
                        sender: &sender,
                        event: &event,
                    };
                    detector.app(flow, &data, &mut |f| found.push(f));
                });
            }
        }

        fn sids(&self) -> Vec<u32> {
            self.found.iter().map(|f| f.signature.sid).collect()
        }
    }

    fn encode(random: &mut Random, block: &[u8], how: usize) -> (String, &'static str) {
        let masked: Vec<u8> = {
            let key = random.bytes(4);
            let mut m = key.clone();
            m.extend(block.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
            m
        };
        let netbios = |bytes: &[u8], base: u8| -> String {
            bytes
                .iter()
                .flat_map(|b| [char::from(base + (b >> 4)), char::from(base + (b & 15))])
                .collect()
        };
        match how % 5 {
            0 => (
                base64::engine::general_purpose::STANDARD.encode(block),
                "base64",
            ),
            1 => (
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(block),
                "base64url",
            ),
            2 => (netbios(block, b'a'), "netbios"),
            3 => (netbios(block, b'A'), "netbiosu"),
            _ => (
                base64::engine::general_purpose::STANDARD.encode(&masked),
                "base64",
            ),
        }
    }

    fn response(body: &[u8]) -> Vec<u8> {
        let mut bytes = format!("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }

    #[test]
    fn beacons_are_found_whatever_the_profile() {
        let mut random = Random::new(8);
        for round in 0..60 {
            let mut wire = Wire::new();
            let block = random.bytes(RSA_BLOCK);
            let (token, encoding) = encode(&mut random, &block, round);
            let uri = format!("/{}/{}", random.word(5), random.word(3));
            let request = match round % 3 {
                0 => format!(
                    "GET {uri} HTTP/1.1\r\nHost: cdn\r\nCookie: {}={token}\r\n\r\n",
                    random.word(6)
                ),
                1 => format!(
                    "GET {uri}?{}={token} HTTP/1.1\r\nHost: cdn\r\n\r\n",
                    random.word(2)
                ),
                _ => format!(
                    "GET {uri} HTTP/1.1\r\nHost: cdn\r\nX-{}: {token}\r\n\r\n",
                    random.word(8)
                ),
            };
            let blocks = random.between(2, 4);
            let task = random.bytes(AES_BLOCK * blocks + HMAC);
            wire.exchange(0, request.as_bytes(), &response(b""));
            assert!(wire.found.is_empty());
            wire.exchange(
                30 + random.draw() % 60,
                request.as_bytes(),
                &response(&task),
            );
            assert_eq!(wire.sids(), [9_200_003], "round {round}");
            assert!(
                wire.found[0]
                    .metadata
                    .contains(&format!("encoding {encoding}")),
                "{}",
                wire.found[0].metadata
            );
            let mut output = ((AES_BLOCK * 3 + HMAC) as u32).to_be_bytes().to_vec();
            output.extend(random.bytes(AES_BLOCK * 3 + HMAC));
            let mut post = format!(
                "POST /{}?{}={} HTTP/1.1\r\nHost: cdn\r\nContent-Length: {}\r\n\r\n",
                random.word(4),
                random.word(2),
                random.draw(),
                output.len()
            )
            .into_bytes();
            post.extend(&output);
            wire.exchange(0, &post, &response(b""));
            assert_eq!(wire.sids(), [9_200_003, 9_200_004]);
        }
    }

    #[test]
    fn session_cookies_and_ordinary_posts_are_not_beacons() {
        let mut random = Random::new(9);
        let mut wire = Wire::new();
        let cookie = base64::engine::general_purpose::STANDARD.encode(random.bytes(RSA_BLOCK));
        for _ in 0..5 {
            // A page: the same session cookie, answers of any length.
            let request =
                format!("GET /index.html HTTP/1.1\r\nHost: shop\r\nCookie: sid={cookie}\r\n\r\n");
            wire.exchange(
                5,
                request.as_bytes(),
                &response(&random.bytes_of(1_000, 3_000)),
            );
        }
        for len in [36usize, 68, 100, 500] {
            let mut body = random.bytes(len);
            body[..4].copy_from_slice(&(len as u32).to_be_bytes());
            let mut post =
                format!("POST /api HTTP/1.1\r\nHost: shop\r\nContent-Length: {len}\r\n\r\n")
                    .into_bytes();
            post.extend(&body);
            wire.exchange(1, &post, &response(b"{}"));
        }
        assert!(wire.found.is_empty(), "{:?}", wire.found);
    }

    #[test]
    fn a_stage_is_found_by_its_decoder_whatever_the_key() {
        let mut random = Random::new(10);
        for _ in 0..20 {
            let stub = random.bytes_of(40, 200);
            let pe_len = random.between(4_096, 20_000);
            let mut pe = b"MZ".to_vec();
            pe.extend(random.bytes(pe_len - 2));
            let mut key = random.draw() as u32 | 1;
            let mut body = stub.clone();
            body.extend(key.to_le_bytes());
            body.extend(((pe_len as u32) ^ key).to_le_bytes());
            for word in pe.chunks(4) {
                let mut w = [0u8; 4];
                w[..word.len()].copy_from_slice(word);
                let cipher = u32::from_le_bytes(w) ^ key;
                body.extend(cipher.to_le_bytes());
                key = cipher;
            }
            let mut wire = Wire::new();
            wire.exchange(
                0,
                format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", random.word(8)).as_bytes(),
                &response(&body),
            );
            assert_eq!(wire.sids(), [9_200_002]);
            let mut plain = Wire::new();
            plain.exchange(
                0,
                b"GET /setup.exe HTTP/1.1\r\nHost: x\r\n\r\n",
                &response(&[&b"MZ"[..], &random.bytes(9_000)].concat()),
            );
            assert!(plain.found.is_empty());
        }
    }

    #[test]
    fn blank_names() {
        assert!(blank_name("C=, ST=, L=, O=, OU=, CN="));
        assert!(blank_name(""));
        assert!(!blank_name("C=, ST=, L=, O=, OU=, CN=Major Cobalt Strike"));
        assert!(!blank_name("CN=www.example.com"));
    }

    /// The detector's findings on a ServerHello of `ja3s` after a
    /// ClientHello of `ja3` (none when the client's was not read).
    fn server_hello(ja3: Option<&str>, ja3s: &str) -> Vec<Finding> {
        let mut detector = CobaltStrike::new(&CobaltSettings::default(), &Arc::new(()));
        let hello = TlsHello {
            from_client: false,
            sni: None,
            fingerprint: "771,49200,65281-23".into(),
            fingerprint_hash: ja3s.into(),
            client_hash: ja3.map(String::from),
        };
        let event = AppEvent::TlsHello(&hello);
        let sender = Sender {
            flow_id: 1,
            dir: 1,
            proto: 6,
            src: "198.51.100.4:443".parse().unwrap(),
            dst: "10.0.0.9:40000".parse().unwrap(),
            carrier: Default::default(),
        };
        let data = AppData {
            ts_ns: 0,
            sender: &sender,
            event: &event,
        };
        let mut found = Vec::new();
        detector.app(&mut None, &data, &mut |f| found.push(f));
        found
    }

    #[test]
    fn a_listed_pair_is_a_team_server_and_either_half_alone_is_not() {
        let mut random = Random::new(6);
        assert!(!TLS_PAIRS.is_empty());
        for pair in TLS_PAIRS {
            let (ja3, ja3s) = pair.split_once(':').expect("JA3:JA3S");
            assert!([ja3, ja3s]
                .iter()
                .all(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit())));
            let found = server_hello(Some(ja3), ja3s);
            assert_eq!(found.len(), 1, "{ja3}:{ja3s}");
            assert_eq!(found[0].signature.sid, 9_200_006);
            assert!(found[0]
                .metadata
                .contains(&format!("ja3 {ja3}, ja3s {ja3s}")));
            let other = random.string(b"0123456789abcdef", 32);
            assert!(server_hello(Some(ja3), &other).is_empty(), "{ja3} alone");
            assert!(server_hello(Some(&other), ja3s).is_empty(), "{ja3s} alone");
            assert!(
                server_hello(None, ja3s).is_empty(),
                "{ja3s} without a client"
            );
        }
    }
}
