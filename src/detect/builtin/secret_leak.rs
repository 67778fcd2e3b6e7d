//! Cloud and API credentials in clear traffic: in HTTP request and answer
//! heads and text bodies, and in the first [`MAX_STREAM`] bytes of each way
//! of other TCP connections that start as text (not HTTP, not TLS).
//!
//! One pass of Aho-Corasick finds where a credential can start; its format
//! is then checked (length, alphabet, the boundaries around it):
//!
//! - AWS access key ids (`AKIA`, `ASIA` and 16 base-32 characters) with a
//!   40-character secret access key within [`NEAR`] bytes;
//! - Alibaba Cloud AccessKey ids (`LTAI` and 12 to 20 alphanumerics) with
//!   a 30-character secret near them;
//! - Tencent Cloud SecretIds (`AKID` and 32 alphanumerics) with a
//!   32-character SecretKey near them;
//! - Google API keys (`AIza` and 35 characters) that a client sends or
//!   that cross a non-HTTP connection (web pages carry browser keys by
//!   design, so HTTP answers' are not reported);
//! - GitHub tokens (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` and 36
//!   alphanumerics; `github_pat_` and 82) and Slack tokens (`xoxb-`,
//!   `xoxp-` ... with their numeric parts);
//! - PEM private keys: the `BEGIN ... PRIVATE KEY` line and at least
//!   [`MIN_PEM_BODY`] characters of base64 after it (a Google service
//!   account's when JSON of `"type": "service_account"` holds it).
//!
//! A secret must look random (a Shannon entropy of at least
//! [`MIN_ENTROPY`] bits per character): text that only describes a format
//! is not a leak. Neither is a documentation example, whose id or secret
//! says `EXAMPLE` (AWS's `AKIAIOSFODNN7EXAMPLE`). Each credential is
//! reported once per flow, masked ([`secret`](super::secret)).

use std::sync::{Arc, LazyLock};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::{Deserialize, Serialize};

use super::credentials::{text, text_like};
use super::encoding::contains_ignore_case;
use super::secret::Masker;
use super::{entropy, fingerprint, AppData, Detector, Events, Finding, Signature, StreamData};
use crate::applayer::{AppEvent, HttpStage};

const LEAK: Signature = Signature {
    sid: 9_201_301,
    msg: "MIRADOR SECRET-LEAK cloud or API credential in clear traffic",
    family: "secret-leak",
    classtype: "credential-theft",
    priority: 1,
};

/// Bytes of each way of a non-HTTP connection scanned at most.
pub const MAX_STREAM: u64 = 64 << 10;
/// How far from a key id its secret may be, bytes either side.
pub const NEAR: usize = 512;
/// Base64 characters a PEM private key has after its header, at least.
pub const MIN_PEM_BODY: usize = 64;
/// Bits per character a secret has, at least.
pub const MIN_ENTROPY: f64 = 3.0;
/// Bytes of a chunk's end kept to find credentials cut between chunks.
const CARRY: usize = 1_024;
/// Longest anchor, bytes: a new chunk is searched for anchors from this
/// far before it (an anchor cut between chunks).
const MAX_ANCHOR: usize = 16;
/// Distinct credentials reported per flow at most.
const MAX_PER_FLOW: usize = 32;

/// Where a credential can start.
const ANCHORS: &[&str] = &[
    "AKIA",
    "ASIA",
    "LTAI",
    "AKID",
    "AIza",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xoxr-",
    "xoxs-",
    // Of a PEM key's header, the part that starts with uncommon bytes.
    "PRIVATE KEY-----",
];

/// Leftmost-first, so that the SIMD literal searcher (Teddy) runs instead
/// of the automaton a byte at a time: most bytes are no anchor's start.
static FINDER: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostFirst)
        .build(ANCHORS)
        .expect("fixed patterns build")
});

/// `[detectors.secret_leak]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretLeakSettings {
    /// Scan TCP connections that are neither HTTP nor TLS, too.
    pub streams: bool,
}

impl Default for SecretLeakSettings {
    fn default() -> Self {
        Self { streams: true }
    }
}

/// A credential found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak<'a> {
    /// Who issued it.
    pub provider: &'static str,
    /// What it is.
    pub kind: &'static str,
    /// Its public part (a key id), when it has one.
    pub id: Option<&'a [u8]>,
    /// Its secret part.
    pub secret: &'a [u8],
}

/// What the detector keeps of a flow.
#[derive(Debug, Default)]
pub struct LeakFlow {
    /// Stream reading: not decided, reading, or done.
    stage: Stage,
    state: Option<Box<State>>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Stage {
    #[default]
    Unread,
    Reading,
    Done,
}

#[derive(Debug, Default)]
struct State {
    /// The end of the last chunk of each way.
    carry: [Vec<u8>; 2],
    /// Ways read as far as [`MAX_STREAM`].
    ended: [bool; 2],
    /// Per way, the stream offset of the first anchor kept in the carry
    /// whose credential was not whole yet: the next chunk's search starts
    /// there (else just before the chunk).
    unfinished: [Option<u64>; 2],
    /// Fingerprints of the credentials reported.
    reported: Vec<u64>,
}

/// Credentials in clear traffic.
#[derive(Debug)]
pub struct SecretLeak {
    settings: SecretLeakSettings,
    masker: Masker,
}

impl Detector for SecretLeak {
    const SIDS: std::ops::RangeInclusive<u32> = 9_201_300..=9_201_399;
    const SIGNATURES: &'static [Signature] = &[LEAK];
    const EVENTS: Events = Events::STREAM
        .union(Events::HTTP_REQUEST)
        .union(Events::HTTP_REQUEST_BODY)
        .union(Events::HTTP_RESPONSE)
        .union(Events::HTTP_RESPONSE_BODY);
    type Settings = SecretLeakSettings;
    type Flow = LeakFlow;
    type Shared = Masker;

    fn load(_: &SecretLeakSettings, masker: &Masker, _: &mut Vec<String>) -> Masker {
        masker.clone()
    }

    fn new(settings: &SecretLeakSettings, masker: &Arc<Masker>) -> Self {
        Self {
            settings: settings.clone(),
            masker: Masker::clone(masker),
        }
    }

    fn stream(
        &mut self,
        flow: &mut LeakFlow,
        data: &StreamData<'_>,
        out: &mut impl FnMut(Finding),
    ) {
        if flow.stage == Stage::Unread {
            let clear = data.offset == 0 && text_like(data.bytes);
            flow.stage = if self.settings.streams && clear {
                Stage::Reading
            } else {
                Stage::Done
            };
        }
        if flow.stage != Stage::Reading {
            return;
        }
        let dir = data.stream.dir;
        let state = flow.state.get_or_insert_with(Box::default);
        if state.ended[dir] {
            return;
        }
        let mut window = std::mem::take(&mut state.carry[dir]);
        let from = window.len();
        window.extend_from_slice(data.bytes);
        // Stream offset of the window's first byte.
        let base = data.offset - from as u64;
        let start = match state.unfinished[dir] {
            Some(at) if at >= base => (at - base) as usize,
            _ => from.saturating_sub(MAX_ANCHOR),
        };
        let keep_from = window.len().saturating_sub(CARRY);
        let unfinished = self.scan(state, &window, start, keep_from, from, "stream", out);
        state.unfinished[dir] = unfinished.map(|at| base + at as u64);
        if data.offset + data.bytes.len() as u64 >= MAX_STREAM {
            state.ended[dir] = true;
            if state.ended == [true, true] {
                flow.stage = Stage::Done;
            }
            return;
        }
        let keep = window.len().min(CARRY);
        window.drain(..window.len() - keep);
        state.carry[dir] = window;
    }

    fn stream_done(&self, flow: &LeakFlow, _: &StreamData<'_>) -> bool {
        flow.stage == Stage::Done
    }

    fn app(&mut self, flow: &mut LeakFlow, data: &AppData<'_>, out: &mut impl FnMut(Finding)) {
        let AppEvent::Http(tx, stage) = data.event else {
            return;
        };
        let (place, parts): (&str, [&[u8]; 2]) = match stage {
            HttpStage::RequestHeaders => {
                ("http request head", [&tx.uri_raw, &tx.request.header_block])
            }
            HttpStage::RequestBody => ("http request body", [&tx.request.body, b""]),
            HttpStage::ResponseHeaders => ("http answer head", [&tx.response.header_block, b""]),
            HttpStage::ResponseBody => ("http answer body", [&tx.response.body, b""]),
        };
        for part in parts {
            // Bodies that are not text (images, archives) are not read.
            let head = &part[..part.len().min(64)];
            if !part.is_empty() && text(head) && FINDER.is_match(part) {
                let state = flow.state.get_or_insert_with(Box::default);
                self.scan(state, part, 0, part.len(), 0, place, out);
            }
        }
    }
}

impl SecretLeak {
    /// Reports the credentials of `bytes` whose anchor is at `start` or
    /// after and that end past `from` (those before were in the last
    /// chunk), each once per flow; returns where the first anchor at
    /// `keep_from` or after that made no credential is.
    #[allow(clippy::too_many_arguments)]
    fn scan(
        &self,
        state: &mut State,
        bytes: &[u8],
        start: usize,
        keep_from: usize,
        from: usize,
        place: &str,
        out: &mut impl FnMut(Finding),
    ) -> Option<usize> {
        find_from(bytes, start, keep_from, |leak, end| {
            // Web pages carry browser API keys by design (restricted to
            // their sites): only a key a client sends is one out of place.
            let browser_key = leak.kind == "api key" && place.starts_with("http answer");
            let key = fingerprint(leak.secret);
            if browser_key
                || end <= from
                || state.reported.contains(&key)
                || state.reported.len() >= MAX_PER_FLOW
            {
                return;
            }
            state.reported.push(key);
            let mut metadata = format!("provider {}, kind {}", leak.provider, leak.kind);
            if let Some(id) = leak.id {
                metadata.push_str(&format!(", id {}", self.masker.mask(id)));
            }
            metadata.push_str(&format!(
                ", secret {}, place {place}",
                self.masker.mask(leak.secret)
            ));
            out(Finding::new(&LEAK, metadata, &[]));
        })
    }
}

/// Calls `found` with each credential of `bytes` and the offset where it
/// ends.
pub fn find<'a>(bytes: &'a [u8], found: impl FnMut(Leak<'a>, usize)) {
    find_from(bytes, 0, bytes.len(), found);
}

/// Calls `found` with each credential of `bytes` whose anchor is at
/// `start` or after (what precedes is context: a secret before its id),
/// and the offset where it ends; returns where the first anchor at
/// `keep_from` or after that made no credential is.
fn find_from<'a>(
    bytes: &'a [u8],
    start: usize,
    keep_from: usize,
    mut found: impl FnMut(Leak<'a>, usize),
) -> Option<usize> {
    let mut unfinished = None;
    let input = aho_corasick::Input::new(bytes).span(start.min(bytes.len())..bytes.len());
    for anchor in FINDER.find_iter(input) {
        let at = anchor.start();
        if at > 0 && word(bytes[at - 1]) {
            continue;
        }
        let leak = match ANCHORS[anchor.pattern()] {
            "AKIA" | "ASIA" => paired(
                bytes,
                at,
                20,
                base32_upper,
                40,
                aws_secret,
                "aws",
                "access key",
            ),
            "LTAI" => alibaba(bytes, at),
            "AKID" => paired(
                bytes,
                at,
                36,
                |b| b.is_ascii_alphanumeric(),
                32,
                |b| b.is_ascii_alphanumeric(),
                "tencent",
                "secret id",
            ),
            "AIza" => token(bytes, at, 39, |b| {
                b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
            })
            .map(|t| {
                (
                    t.len(),
                    Leak {
                        provider: "google",
                        kind: "api key",
                        id: None,
                        secret: t,
                    },
                )
            }),
            "github_pat_" => {
                token(bytes, at, 93, |b| b.is_ascii_alphanumeric() || b == b'_').map(|t| {
                    (
                        t.len(),
                        Leak {
                            provider: "github",
                            kind: "token",
                            id: None,
                            secret: t,
                        },
                    )
                })
            }
            "PRIVATE KEY-----" => private_key(bytes, at),
            slack if slack.starts_with("xox") => slack_token(bytes, at),
            _ => token(bytes, at + 4, 36, |b| b.is_ascii_alphanumeric()).map(|_| {
                (
                    40,
                    Leak {
                        provider: "github",
                        kind: "token",
                        id: None,
                        secret: &bytes[at..at + 40],
                    },
                )
            }),
        };
        match leak {
            Some((len, leak)) => {
                let example = |part: &[u8]| contains_ignore_case(part, b"example");
                if !example(leak.secret)
                    && !leak.id.is_some_and(example)
                    && random_looking(leak.secret)
                {
                    found(leak, at + len);
                }
            }
            None if at >= keep_from => {
                unfinished.get_or_insert(at);
            }
            None => {}
        }
    }
    unfinished
}

/// A character of a token: what stops one being found inside a longer.
fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'/' || b == b'+'
}

/// Characters from the start of `bytes` that `keep` accepts.
fn run(bytes: &[u8], keep: impl Fn(u8) -> bool) -> usize {
    bytes.iter().position(|&b| !keep(b)).unwrap_or(bytes.len())
}

/// The token of exactly `len` characters of `alphabet` at `at`, bounded
/// on both sides.
fn token(bytes: &[u8], at: usize, len: usize, alphabet: impl Fn(u8) -> bool) -> Option<&[u8]> {
    let t = bytes.get(at..at + len)?;
    let next = bytes.get(at + len).copied();
    (t.iter().all(|&b| alphabet(b)) && !next.is_some_and(|b| alphabet(b) || word(b))).then_some(t)
}

fn base32_upper(b: u8) -> bool {
    b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)
}

fn aws_secret(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'/' || b == b'+'
}

/// A key id at `at` and a secret of `secret_len` characters within
/// [`NEAR`] bytes of it (not the id itself).
#[allow(clippy::too_many_arguments)]
fn paired<'a>(
    bytes: &'a [u8],
    at: usize,
    id_len: usize,
    id_alphabet: impl Fn(u8) -> bool,
    secret_len: usize,
    secret_alphabet: impl Fn(u8) -> bool + Copy,
    provider: &'static str,
    kind: &'static str,
) -> Option<(usize, Leak<'a>)> {
    let id = token(bytes, at, id_len, id_alphabet)?;
    let lo = at.saturating_sub(NEAR);
    let hi = (at + id_len + NEAR).min(bytes.len());
    let mut i = lo;
    while i < hi {
        let len = run(&bytes[i..hi], secret_alphabet);
        let starts_token = i == 0 || !word(bytes[i - 1]);
        let candidate = &bytes[i..i + len];
        if len == secret_len
            && starts_token
            && !(at..at + id_len).contains(&i)
            && random_looking(candidate)
        {
            let mixed = candidate.iter().any(u8::is_ascii_lowercase)
                && candidate.iter().any(u8::is_ascii_uppercase);
            let next = bytes.get(i + len).copied();
            if mixed && !next.is_some_and(word) {
                let end = (i + len).max(at + id_len) - at;
                return Some((
                    end,
                    Leak {
                        provider,
                        kind,
                        id: Some(id),
                        secret: candidate,
                    },
                ));
            }
        }
        i += len.max(1);
    }
    None
}

/// An Alibaba Cloud AccessKey id (`LTAI` and 12 to 20 alphanumerics) and
/// its secret.
fn alibaba(bytes: &[u8], at: usize) -> Option<(usize, Leak<'_>)> {
    let len = run(&bytes[at..], |b| b.is_ascii_alphanumeric());
    if !(16..=24).contains(&len) {
        return None;
    }
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    paired(bytes, at, len, alnum, 30, alnum, "alibaba", "access key")
}

/// A Slack token: `xox?-` and dash-separated parts, 30 characters or more.
fn slack_token(bytes: &[u8], at: usize) -> Option<(usize, Leak<'_>)> {
    let len = run(&bytes[at..], |b| b.is_ascii_alphanumeric() || b == b'-');
    let t = &bytes[at..at + len];
    let parts = t.split(|&b| b == b'-').count();
    (len >= 30 && parts >= 4).then_some((
        len,
        Leak {
            provider: "slack",
            kind: "token",
            id: None,
            secret: t,
        },
    ))
}

/// A PEM private key: its header line, then base64.
fn pem(bytes: &[u8], at: usize) -> Option<(usize, Leak<'_>)> {
    let rest = &bytes[at..];
    let header_end = memchr::memmem::find(&rest[..rest.len().min(80)], b"PRIVATE KEY-----")? + 16;
    let start = header_end + run(&rest[header_end..], |b| matches!(b, b'\r' | b'\n' | b' '));
    let body = &rest[start..];
    let mut count = 0;
    let mut end = 0;
    for (i, &b) in body.iter().enumerate() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'=' => count += 1,
            b'\r' | b'\n' | b'\\' | b' ' => {}
            _ => break,
        }
        end = i + 1;
        if count >= MIN_PEM_BODY {
            break;
        }
    }
    let kind = std::str::from_utf8(&rest[11..header_end - 5]).unwrap_or("PRIVATE KEY");
    (count >= MIN_PEM_BODY).then(|| {
        let kind = match kind.trim() {
            "RSA PRIVATE KEY" => "rsa private key",
            "EC PRIVATE KEY" => "ec private key",
            "OPENSSH PRIVATE KEY" => "openssh private key",
            "ENCRYPTED PRIVATE KEY" => "encrypted private key",
            _ => "private key",
        };
        (
            start + end,
            Leak {
                provider: "pem",
                kind,
                id: None,
                secret: &body[..end],
            },
        )
    })
}

/// The key whose header's `PRIVATE KEY-----` is at `at`: PEM, or a Google
/// service account's when it is the `private_key` of JSON whose `type` is
/// `service_account`.
fn private_key(bytes: &[u8], at: usize) -> Option<(usize, Leak<'_>)> {
    let from = at.saturating_sub(32);
    let begin = from + memchr::memmem::rfind(&bytes[from..at], b"-----BEGIN ")?;
    let (len, leak) = pem(bytes, begin)?;
    let end = begin + len - at;
    let before = &bytes[begin.saturating_sub(4 * NEAR)..begin];
    let account = memchr::memmem::find(before, b"\"service_account\"").is_some()
        && memchr::memmem::find(before, b"\"private_key\"").is_some();
    Some(if account {
        (
            end,
            Leak {
                provider: "google",
                kind: "service account key",
                ..leak
            },
        )
    } else {
        (end, leak)
    })
}

/// Random enough to be a secret rather than words or a placeholder.
fn random_looking(secret: &[u8]) -> bool {
    entropy(secret) >= MIN_ENTROPY
}

#[cfg(test)]
mod tests {
    use super::super::variants::Random;
    use super::*;

    const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const AWS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+";

    fn leaks(text: &str) -> Vec<(String, String)> {
        let mut all = Vec::new();
        find(text.as_bytes(), |leak, _| {
            all.push((
                leak.provider.to_string(),
                String::from_utf8_lossy(leak.secret).into_owned(),
            ))
        });
        all
    }

    /// A random string of `len` from `alphabet` with both cases and a
    /// digit, as real secrets have.
    fn secret(random: &mut Random, alphabet: &[u8], len: usize) -> String {
        loop {
            let s = random.string(alphabet, len);
            if s.bytes().any(|b| b.is_ascii_lowercase())
                && s.bytes().any(|b| b.is_ascii_uppercase())
            {
                return s;
            }
        }
    }

    #[test]
    fn generated_cloud_keys_with_their_secrets_are_found_in_any_setting() {
        let mut random = Random::new(17);
        for round in 0..200 {
            let aws_id = format!("{}{}", ["AKIA", "ASIA"][round % 2], random.string(B32, 16));
            let aws_secret = secret(&mut random, AWS, 40);
            let ali_id = format!("LTAI{}", random.string(ALNUM, 12 + round % 9));
            let ali_secret = secret(&mut random, ALNUM, 30);
            let tc_id = format!("AKID{}", random.string(ALNUM, 32));
            let tc_secret = secret(&mut random, ALNUM, 32);
            let settings = [
                format!("aws_access_key_id = {aws_id}\naws_secret_access_key = {aws_secret}\n"),
                format!("{{\"AccessKeyId\":\"{ali_id}\",\"AccessKeySecret\":\"{ali_secret}\"}}"),
                format!("SecretId={tc_id}&SecretKey={tc_secret}&Region=ap-guangzhou"),
            ];
            let expected = [
                ("aws", &aws_secret),
                ("alibaba", &ali_secret),
                ("tencent", &tc_secret),
            ];
            for (text, (provider, secret)) in settings.iter().zip(expected) {
                assert_eq!(
                    leaks(text),
                    [(provider.to_string(), secret.clone())],
                    "{text}"
                );
            }
            // An id alone is not a leak of a pair.
            assert!(leaks(&format!("key {aws_id} rotated")).is_empty());
        }
    }

    /// The secrets found in `text` sent on a connection in chunks of
    /// `sizes` (cycled).
    fn streamed(text: &str, sizes: &[usize]) -> Vec<String> {
        let mut detector = SecretLeak::new(&SecretLeakSettings::default(), &Arc::default());
        let mut flow = LeakFlow::default();
        let id = crate::reassembly::StreamId {
            flow_id: 1,
            dir: 0,
            src: "10.0.0.1:40000".parse().unwrap(),
            dst: "10.0.0.2:6379".parse().unwrap(),
            carrier: Default::default(),
        };
        let mut found = Vec::new();
        let (mut offset, mut sizes) = (0, sizes.iter().cycle());
        while offset < text.len() {
            let end = (offset + sizes.next().unwrap()).min(text.len());
            let data = StreamData {
                ts_ns: 0,
                stream: &id,
                offset: offset as u64,
                bytes: &text.as_bytes()[offset..end],
            };
            detector.stream(&mut flow, &data, &mut |f| found.push(f.metadata));
            offset = end;
        }
        found
    }

    #[test]
    fn credentials_cut_between_chunks_are_found_once() {
        let mut random = Random::new(23);
        let aws_id = format!("AKIA{}", random.string(B32, 16));
        let aws_secret = secret(&mut random, AWS, 40);
        let body: String = (0..6)
            .map(|_| format!("{}\n", random.string(ALNUM, 64)))
            .collect();
        let texts = [
            format!("SET cfg \"id={aws_id} then some words of padding, secret={aws_secret}\"\r\n"),
            format!("SET cfg \"secret={aws_secret} and later on, id={aws_id}\"\r\n"),
            format!("SET key \"-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----\"\r\n"),
        ];
        for text in &texts {
            assert_eq!(streamed(text, &[text.len()]).len(), 1, "{text}");
            for cut in 1..text.len() {
                let found = streamed(text, &[cut, text.len()]);
                assert_eq!(found.len(), 1, "cut at {cut} of {text:?}: {found:?}");
            }
            for sizes in [[1, 2, 3], [5, 7, 11], [13, 1, 64]] {
                assert_eq!(streamed(text, &sizes).len(), 1, "{sizes:?}");
            }
        }
    }

    #[test]
    fn no_anchor_is_longer_than_the_overlap_searched() {
        assert!(ANCHORS.iter().all(|a| a.len() <= MAX_ANCHOR));
    }

    #[test]
    fn tokens_and_private_keys() {
        let mut random = Random::new(5);
        let google = format!("AIza{}", random.string(ALNUM, 35));
        let github = format!("ghp_{}", random.string(ALNUM, 36));
        let fine = format!("github_pat_{}", random.string(ALNUM, 82));
        let slack = format!(
            "xoxb-{}-{}-{}",
            random.string(b"0123456789", 12),
            random.string(b"0123456789", 13),
            random.string(ALNUM, 24)
        );
        let body: String = (0..3).map(|_| random.string(AWS, 64) + "\n").collect();
        let pem = format!("-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----\n");
        let account = format!(
            "{{\"type\": \"service_account\", \"project_id\": \"p\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{}\\n\"}}",
            random.string(AWS, 80)
        );
        let text = format!("key={google}&token={github} {fine}\nSLACK={slack}\n{pem}\n{account}");
        let providers: Vec<String> = leaks(&text).into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            providers,
            ["google", "github", "github", "slack", "pem", "google"]
        );
    }

    #[test]
    fn examples_placeholders_and_descriptions_are_not_leaks() {
        for text in [
            "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "AKIAXXXXXXXXXXXXXXXX secret XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
            "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",
            "an access key id starts with AKIA and has 20 characters",
            "token ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "xoxb-not-a-token",
        ] {
            assert!(leaks(text).is_empty(), "{text}: {:?}", leaks(text));
        }
    }
}
