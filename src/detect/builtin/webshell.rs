//! Webshell managers (China Chopper and its clones, AntSword, Behinder,
//! Godzilla), by how they must talk to the shell whatever its password,
//! key, parameter names or path.
//!
//! - A one-line shell (`eval($_POST[x])`, `Execute(Request.Item[x])`)
//!   evaluates a form value, so the manager sends interpreter code as a
//!   value: the value starts with `eval(`, `assert(`, `@ini_set(`,
//!   `Execute(` ... (China Chopper, Cknife, AntSword's encoders). [`CODE`]
//! - AntSword splits two random hex markers into string literals
//!   (`echo "ab"."cd"`) and finds its output between them in the answer.
//!   [`MARKERS`]
//! - Godzilla's base64 modes frame each answer between the two halves of
//!   an MD5 in hex. [`MD5_FRAME`]
//! - Godzilla's XOR modes gzip what they send and XOR it with a key of hex
//!   digits (half an MD5), so the gzip header's fixed bytes come out as hex
//!   digits; Behinder's PHP XOR transport does the same over its fixed
//!   `assert|eval(` prologue and `{"status":"` answers. [`XOR_GZIP`],
//!   [`XOR_PROLOGUE`]
//! - Behinder's AES transports and Godzilla's AES modes encrypt with a
//!   fixed key and IV (or ECB) the same payload class again and again: one
//!   client posts block-aligned, random-looking bodies to one script that
//!   differ but start with the same ciphertext block, and gets
//!   block-aligned answers. [`ENCRYPTED`]
//!
//! Requests are POSTs; a body is read as a form, as bare base64, or as
//! binary. What spans requests is kept per (client, server, script), and
//! each signature is reported once per `report_secs` for each. Parameter
//! names (the shell's password), keys and the MD5 framing are not written:
//! excerpts start at the value, or hide the bytes that would show them.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::encoding::{base64, binary_share, distinct, form, is_hex, trim, xor_hex_key};
use super::{
    entropy, fingerprint, AppData, Detector, Events, Finding, Recent, Signature, TableUse,
};
use crate::applayer::{AppEvent, HttpStage, Transaction};

const CODE: Signature = Signature {
    sid: 9_200_601,
    msg: "MIRADOR WEBSHELL manager sends interpreter code in a form value",
    family: "webshell",
    classtype: "web-application-attack",
    priority: 1,
};

const MARKERS: Signature = Signature {
    sid: 9_200_602,
    msg: "MIRADOR WEBSHELL answer between the random markers its request set (AntSword)",
    family: "webshell",
    classtype: "web-application-attack",
    priority: 1,
};

const MD5_FRAME: Signature = Signature {
    sid: 9_200_603,
    msg: "MIRADOR WEBSHELL answer framed by the two halves of an MD5 (Godzilla base64 modes)",
    family: "webshell",
    classtype: "web-application-attack",
    priority: 1,
};

const XOR_GZIP: Signature = Signature {
    sid: 9_200_604,
    msg: "MIRADOR WEBSHELL gzip XOR-ed with a hex key (Godzilla XOR modes)",
    family: "webshell",
    classtype: "web-application-attack",
    priority: 1,
};

const XOR_PROLOGUE: Signature = Signature {
    sid: 9_200_605,
    msg: "MIRADOR WEBSHELL fixed prologue XOR-ed with a hex key (Behinder XOR transport)",
    family: "webshell",
    classtype: "web-application-attack",
    priority: 1,
};

const ENCRYPTED: Signature = Signature {
    sid: 9_200_606,
    msg: "MIRADOR WEBSHELL encrypted session: block-cipher bodies with a repeating first block to one script (Behinder, Godzilla AES)",
    family: "webshell",
    classtype: "web-application-attack",
    priority: 1,
};

const SIGNATURES: [Signature; 6] = [CODE, MARKERS, MD5_FRAME, XOR_GZIP, XOR_PROLOGUE, ENCRYPTED];

/// The gzip header's first eight bytes (magic, deflate, no flags, no time).
const GZIP: &[u8] = b"\x1f\x8b\x08\x00\x00\x00\x00\x00";
/// Plaintexts Behinder's PHP transport XORs first: its request prologue.
const PROLOGUES: &[&[u8]] = &[b"assert|eval(", b"@error_reporting(0);"];
/// Plaintext Behinder's answers start with.
const STATUS: &[u8] = b"{\"status\":\"";

/// Bytes of a cipher block.
const BLOCK: usize = 16;
/// Bytes of a body read as binary for its classification.
const SNIFF: usize = 512;
/// Share of non-text bytes above which a body is binary.
const BINARY: f64 = 0.2;
/// Share of non-text bytes a form body may hold (Cknife puts a 0x01 in).
const FORM_BINARY: f64 = 0.05;
/// Parameters of a form searched for AntSword's markers at most.
const MARKER_PARAMS: usize = 16;

const NANOS: u64 = 1_000_000_000;

/// `[detectors.webshell]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebshellSettings {
    /// Block-cipher request bodies to one script that make an encrypted
    /// session (with a repeated first block among them).
    pub encrypted_requests: u32,
    /// Seconds between two reports of one signature for one (client,
    /// server, script).
    pub report_secs: u64,
    /// (client, server, script) sessions remembered at most; the least
    /// recently used is forgotten beyond it.
    pub max_sessions: usize,
}

impl Default for WebshellSettings {
    fn default() -> Self {
        Self {
            encrypted_requests: 3,
            report_secs: 3_600,
            max_sessions: 65_536,
        }
    }
}

/// How a request body carries its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carrier {
    /// Form parameters, one of them holding the data as base64.
    FormParameter,
    /// The whole body is base64.
    Base64,
    /// Binary bytes, under a form content type.
    BinaryAsForm,
    /// Binary bytes.
    Binary,
}

impl Carrier {
    fn name(self) -> &'static str {
        match self {
            Self::FormParameter => "form-base64",
            Self::Base64 => "base64",
            Self::BinaryAsForm => "binary-as-form",
            Self::Binary => "binary",
        }
    }

    /// The tool that carries its encrypted data this way.
    fn tool(self, octet_stream: bool) -> &'static str {
        match self {
            Self::Base64 => "behinder",
            Self::Binary if octet_stream => "behinder",
            Self::FormParameter | Self::BinaryAsForm => "godzilla",
            Self::Binary => "unknown",
        }
    }
}

/// What a request's body holds, once read.
#[derive(Debug)]
struct Request<'a> {
    /// The data carried, decoded (or the body itself), and how.
    payload: Option<(Cow<'a, [u8]>, Carrier)>,
    /// Its length on the wire when the body was cut short, bytes.
    declared_len: Option<usize>,
    /// Code in a form value: the tool it points to and the value.
    code: Option<(&'static str, Vec<u8>)>,
    /// AntSword's output markers: the first and the last.
    markers: Option<(Vec<u8>, Vec<u8>)>,
    octet_stream: bool,
}

/// The request of a flow whose answer is awaited.
#[derive(Debug)]
pub struct Pending {
    tx: u64,
    session: SessionKey,
    markers: Option<(Vec<u8>, Vec<u8>)>,
    /// The last transactions whose request and response body were read.
    request_read: Option<u64>,
    response_read: Option<u64>,
}

/// (client, server, server port, script) as a key.
type SessionKey = (IpAddr, IpAddr, u16, u64);

/// What one client's requests to one script showed.
#[derive(Debug, Default)]
struct Session {
    /// Request bodies that look block-encrypted.
    encrypted: u32,
    /// Of those, how many began with the previous one's first block and
    /// differed from it after (a new command through the same key).
    repeated_block: u32,
    first_block: Option<[u8; BLOCK]>,
    last_payload: u64,
    /// Non-empty answers that were, and were not, block-aligned.
    aligned: u32,
    unaligned: u32,
    carrier: Option<Carrier>,
    octet_stream: bool,
    /// When each signature was last reported, ns (0: never).
    reported: [u64; SIGNATURES.len()],
}

/// Webshell managers.
#[derive(Debug)]
pub struct Webshell {
    settings: WebshellSettings,
    sessions: Recent<SessionKey, Session>,
}

impl Detector for Webshell {
    const SIDS: std::ops::RangeInclusive<u32> = 9_200_600..=9_200_699;
    const SIGNATURES: &'static [Signature] = &SIGNATURES;
    const EVENTS: Events = Events::HTTP_REQUEST_BODY.union(Events::HTTP_RESPONSE_BODY);
    type Settings = WebshellSettings;
    type Flow = Option<Box<Pending>>;
    type Shared = ();

    fn new(settings: &WebshellSettings, _: &Arc<()>) -> Self {
        Self {
            settings: settings.clone(),
            sessions: Recent::new(settings.max_sessions),
        }
    }

    fn app(
        &mut self,
        flow: &mut Option<Box<Pending>>,
        data: &AppData<'_>,
        out: &mut impl FnMut(Finding),
    ) {
        let AppEvent::Http(tx, stage) = data.event else {
            return;
        };
        match stage {
            HttpStage::RequestBody => self.request(flow, tx, data, out),
            HttpStage::ResponseBody => self.response(flow, tx, data.ts_ns, out),
            _ => {}
        }
    }

    fn tables(&self) -> TableUse {
        self.sessions.usage()
    }
}

impl Webshell {
    fn request(
        &mut self,
        flow: &mut Option<Box<Pending>>,
        tx: &Transaction,
        data: &AppData<'_>,
        out: &mut impl FnMut(Finding),
    ) {
        if !tx.method.eq_ignore_ascii_case(b"POST") {
            return;
        }
        if flow
            .as_ref()
            .is_some_and(|p| p.request_read == Some(tx.seq))
        {
            // A later window of a body already read.
            return;
        }
        let script = tx.uri.split(|&b| b == b'?').next().unwrap_or(&tx.uri);
        let key = (
            data.sender.src.ip(),
            data.sender.dst.ip(),
            data.sender.dst.port(),
            fingerprint(script),
        );
        let request = read_request(tx);
        let pending = flow.get_or_insert_with(|| {
            Box::new(Pending {
                tx: tx.seq,
                session: key,
                markers: None,
                request_read: None,
                response_read: None,
            })
        });
        pending.tx = tx.seq;
        pending.session = key;
        pending.request_read = Some(tx.seq);
        pending.markers = request.markers.clone();
        let ts_ns = data.ts_ns;
        let report_ns = self.settings.report_secs.saturating_mul(NANOS);
        let threshold = self.settings.encrypted_requests;
        let session = self.sessions.entry(key, Session::default);
        let uri = super::printable(script, 120);
        if let Some((tool, value)) = &request.code {
            let metadata = format!("tool {tool}, uri {uri}, value_bytes {}", value.len());
            raise(session, &CODE, ts_ns, report_ns, metadata, value, out);
        }
        let Some((payload, carrier)) = &request.payload else {
            return;
        };
        if xor_hex_key(payload, GZIP) {
            let metadata = format!(
                "tool godzilla, mode xor, carrier {}, side request, uri {uri}",
                carrier.name()
            );
            raise(
                session,
                &XOR_GZIP,
                ts_ns,
                report_ns,
                metadata,
                &hidden(payload),
                out,
            );
        }
        if PROLOGUES.iter().any(|p| xor_hex_key(payload, p)) {
            let metadata = format!(
                "tool behinder, mode xor, carrier {}, side request, uri {uri}",
                carrier.name()
            );
            raise(
                session,
                &XOR_PROLOGUE,
                ts_ns,
                report_ns,
                metadata,
                &hidden(payload),
                out,
            );
        }
        let length = request.declared_len.unwrap_or(payload.len());
        if looks_encrypted(payload, length) {
            session.encrypted += 1;
            let mut first = [0u8; BLOCK];
            first.copy_from_slice(&payload[..BLOCK]);
            let whole = fingerprint(payload);
            if session.first_block == Some(first)
                && session.last_payload != whole
                && distinct(&first) >= 13
            {
                session.repeated_block += 1;
            }
            session.first_block = Some(first);
            session.last_payload = whole;
            session.carrier = Some(*carrier);
            session.octet_stream |= request.octet_stream;
        }
        encrypted_session(session, threshold, ts_ns, report_ns, &uri, payload, out);
    }

    fn response(
        &mut self,
        flow: &mut Option<Box<Pending>>,
        tx: &Transaction,
        ts_ns: u64,
        out: &mut impl FnMut(Finding),
    ) {
        let Some(pending) = flow.as_deref_mut() else {
            return;
        };
        if pending.tx != tx.seq || pending.response_read == Some(tx.seq) {
            return;
        }
        pending.response_read = Some(tx.seq);
        let report_ns = self.settings.report_secs.saturating_mul(NANOS);
        let threshold = self.settings.encrypted_requests;
        let Some(session) = self.sessions.entry_if_present(&pending.session) else {
            return;
        };
        let body = &tx.response.body;
        let uri = super::printable(tx.uri.split(|&b| b == b'?').next().unwrap_or(&tx.uri), 120);
        if let Some((prefix, suffix)) = &pending.markers {
            let text = trim(body);
            if text.ends_with(suffix) && contains(text, prefix) {
                let metadata = format!(
                    "tool antsword, uri {uri}, marker_bytes {}+{}, answer_bytes {}",
                    prefix.len(),
                    suffix.len(),
                    body.len()
                );
                raise(session, &MARKERS, ts_ns, report_ns, metadata, body, out);
            }
        }
        let framed = md5_framed(body);
        let payload: Option<Cow<'_, [u8]>> = match framed {
            Some((decoded, upper)) => {
                let metadata = format!(
                    "tool godzilla, mode base64, server {}, answer_bytes {}, decoded_bytes {}, block_aligned {}",
                    if upper { "java-or-csharp" } else { "php" },
                    body.len(),
                    decoded.len(),
                    decoded.len() % BLOCK == 0
                );
                raise(
                    session,
                    &MD5_FRAME,
                    ts_ns,
                    report_ns,
                    metadata,
                    &hidden(body),
                    out,
                );
                Some(Cow::Owned(decoded))
            }
            None if binary_share(&body[..body.len().min(SNIFF)]) > BINARY => {
                Some(Cow::Borrowed(body))
            }
            None => base64(body, BLOCK).map(Cow::Owned),
        };
        let Some(payload) = payload else {
            return;
        };
        if xor_hex_key(&payload, GZIP) {
            let metadata = format!("tool godzilla, mode xor, side response, uri {uri}");
            raise(
                session,
                &XOR_GZIP,
                ts_ns,
                report_ns,
                metadata,
                &hidden(&payload),
                out,
            );
        }
        if xor_hex_key(&payload, STATUS) {
            let metadata = format!("tool behinder, mode xor, side response, uri {uri}");
            raise(
                session,
                &XOR_PROLOGUE,
                ts_ns,
                report_ns,
                metadata,
                &hidden(&payload),
                out,
            );
        }
        if payload.len() >= BLOCK {
            if payload.len() % BLOCK == 0 {
                session.aligned += 1;
            } else {
                session.unaligned += 1;
            }
        }
        encrypted_session(session, threshold, ts_ns, report_ns, &uri, &payload, out);
    }
}

/// Raises `signature` for `session` unless it was within `report_ns`.
fn raise(
    session: &mut Session,
    signature: &'static Signature,
    ts_ns: u64,
    report_ns: u64,
    metadata: String,
    bytes: &[u8],
    out: &mut impl FnMut(Finding),
) {
    let Some(index) = SIGNATURES.iter().position(|s| s.sid == signature.sid) else {
        return;
    };
    let last = session.reported[index];
    if last != 0 && ts_ns.saturating_sub(last) < report_ns {
        return;
    }
    session.reported[index] = ts_ns.max(1);
    out(Finding::new(signature, metadata, bytes));
}

/// Raises [`ENCRYPTED`] once the session shows enough of it.
fn encrypted_session(
    session: &mut Session,
    threshold: u32,
    ts_ns: u64,
    report_ns: u64,
    uri: &str,
    bytes: &[u8],
    out: &mut impl FnMut(Finding),
) {
    let answers_aligned = session.aligned > 0 && session.aligned >= 3 * session.unaligned;
    if session.encrypted < threshold.max(1) || session.repeated_block == 0 || !answers_aligned {
        return;
    }
    let carrier = session.carrier.unwrap_or(Carrier::Binary);
    let metadata = format!(
        "tool {}, carrier {}, uri {uri}, encrypted_requests {}, repeated_first_block {}, aligned_answers {}, unaligned_answers {}",
        carrier.tool(session.octet_stream),
        carrier.name(),
        session.encrypted,
        session.repeated_block,
        session.aligned,
        session.unaligned
    );
    raise(session, &ENCRYPTED, ts_ns, report_ns, metadata, bytes, out);
}

/// Reads a POST body: its form values, or its base64, or its bytes.
fn read_request(tx: &Transaction) -> Request<'_> {
    let body = &tx.request.body;
    let content_type = tx.request.header(b"content-type").unwrap_or_default();
    let has = |what: &[u8]| {
        content_type
            .windows(what.len())
            .any(|w| w.eq_ignore_ascii_case(what))
    };
    let form_type = has(b"x-www-form-urlencoded");
    let octet_stream = has(b"octet-stream");
    let declared_len = tx
        .request
        .header(b"content-length")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > body.len());
    let mut request = Request {
        payload: None,
        declared_len,
        code: None,
        markers: None,
        octet_stream,
    };
    let sniff = binary_share(&body[..body.len().min(SNIFF)]);
    if sniff > BINARY || octet_stream {
        let carrier = if form_type {
            Carrier::BinaryAsForm
        } else {
            Carrier::Binary
        };
        request.payload = Some((Cow::Borrowed(body), carrier));
        return request;
    }
    if let Some(decoded) = base64(body, BLOCK) {
        request.payload = Some((Cow::Owned(decoded), Carrier::Base64));
        request.declared_len = None;
        return request;
    }
    if !form_type || sniff > FORM_BINARY {
        return request;
    }
    request.declared_len = None;
    let params: Vec<_> = form(body).collect();
    for (_, value) in &params {
        if let Some(tool) = code_tool(value) {
            request.code = Some((tool, value.to_vec()));
            break;
        }
    }
    if let [(_, value)] = params.as_slice() {
        if let Some(decoded) = base64(value, BLOCK) {
            request.payload = Some((Cow::Owned(decoded), Carrier::FormParameter));
        }
    }
    request.markers = markers(&params);
    request
}

/// When `value` starts with interpreter code, the tool it points to.
fn code_tool(value: &[u8]) -> Option<&'static str> {
    let start = value
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(value.len());
    let head: Vec<u8> = value[start..]
        .iter()
        .take(48)
        .map(u8::to_ascii_lowercase)
        .collect();
    let head = head.strip_prefix(b"@").unwrap_or(&head);
    let call = |name: &[u8]| {
        head.strip_prefix(name)
            .is_some_and(|rest| rest.iter().find(|b| **b > b' ').is_some_and(|b| *b == b'('))
    };
    let code = call(b"eval")
        || call(b"assert")
        || call(b"execute")
        || call(b"executeglobal")
        || head.starts_with(b"ini_set(")
        || head.starts_with(b"error_reporting(")
        || head.starts_with(b"set_time_limit(")
        || head.starts_with(b"response.write");
    if !code {
        return None;
    }
    let lower = value.to_ascii_lowercase();
    let has = |what: &[u8]| contains(&lower, what);
    Some(
        if has(b"asoutput") || has(b"asenc") || has(b"\"ex\"&chr(101)") {
            "antsword"
        } else if has(b"->|") || has(b"base64_decode($_post[") || has(b"request.item[") {
            "china-chopper"
        } else {
            "eval-manager"
        },
    )
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A form's name and value, decoded.
type FormPair<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

/// AntSword's markers: hex strings split in two literals joined by `.`
/// (PHP) or `&` (ASP), found in the form's values as sent or as base64
/// (after the two characters AntSword puts before its arguments). The
/// first is the prefix of the answer, the last its suffix.
fn markers(params: &[FormPair<'_>]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut found = Vec::new();
    for (_, value) in params.iter().take(MARKER_PARAMS) {
        split_literals(value, &mut found);
        if found.len() < 2 && value.len() >= 32 {
            for skip in [0, 2] {
                if let Some(decoded) = value.get(skip..).and_then(|v| base64(v, 16)) {
                    split_literals(&decoded, &mut found);
                }
            }
        }
    }
    match found.as_slice() {
        [first, .., last] => Some((first.clone(), last.clone())),
        _ => None,
    }
}

/// Adds to `found` each `"hex"."hex"` or `"hex"&"hex"` in `code`, joined.
fn split_literals(code: &[u8], found: &mut Vec<Vec<u8>>) {
    let hex_run = |at: usize| {
        code[at..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count()
    };
    let quotes = |mut at: usize| {
        while code.get(at) == Some(&b'"') {
            at += 1;
        }
        at
    };
    let mut i = 0;
    while i < code.len() && found.len() < 8 {
        if code[i] != b'"' {
            i += 1;
            continue;
        }
        let first = quotes(i);
        let first_len = hex_run(first);
        let mut at = quotes(first + first_len);
        if first_len == 0 || at == first + first_len {
            i = first.max(i + 1);
            continue;
        }
        while code.get(at) == Some(&b' ') {
            at += 1;
        }
        if !matches!(code.get(at), Some(b'.' | b'&')) {
            i = at;
            continue;
        }
        at += 1;
        while code.get(at) == Some(&b' ') {
            at += 1;
        }
        let second = quotes(at);
        let second_len = hex_run(second);
        if second == at || second_len == 0 || code.get(second + second_len) != Some(&b'"') {
            i = at;
            continue;
        }
        let mut joined = code[first..first + first_len].to_vec();
        joined.extend_from_slice(&code[second..second + second_len]);
        if joined.len() >= 5 {
            found.push(joined);
        }
        i = second + second_len;
    }
}

/// A Godzilla answer: 16 hex digits, base64 (line breaks allowed), 16 hex
/// digits of the same case; the base64 decoded and whether the digits are
/// upper case.
fn md5_framed(body: &[u8]) -> Option<(Vec<u8>, bool)> {
    let text = trim(body);
    if text.len() < 2 * BLOCK + 8 {
        return None;
    }
    let (head, rest) = text.split_at(BLOCK);
    let (middle, tail) = rest.split_at(rest.len() - BLOCK);
    if !is_hex(head) || !is_hex(tail) || is_hex(middle) {
        return None;
    }
    let case = |half: &[u8]| {
        let upper = half.iter().any(u8::is_ascii_uppercase);
        let lower = half.iter().any(u8::is_ascii_lowercase);
        match (upper, lower) {
            (true, true) => None,
            (true, false) => Some(Some(true)),
            (false, true) => Some(Some(false)),
            (false, false) => Some(None),
        }
    };
    let (head_case, tail_case) = (case(head)?, case(tail)?);
    if let (Some(a), Some(b)) = (head_case, tail_case) {
        if a != b {
            return None;
        }
    }
    let decoded = base64(middle, 4)?;
    Some((decoded, head_case.or(tail_case).unwrap_or(false)))
}

/// True when `payload` (of `length` bytes on the wire) is block-aligned
/// and random-looking: entropy near that of random bytes of its size.
fn looks_encrypted(payload: &[u8], length: usize) -> bool {
    if payload.len() < 2 * BLOCK || length % BLOCK != 0 {
        return false;
    }
    let sample = &payload[..payload.len().min(4_096)];
    let most = (sample.len().min(256) as f64).log2();
    entropy(sample) >= 0.8 * most
}

/// `bytes` with its first block hidden: where keys and MD5 framing show.
fn hidden(bytes: &[u8]) -> Vec<u8> {
    let mut shown = bytes[..bytes.len().min(super::EXCERPT)].to_vec();
    for b in shown.iter_mut().take(BLOCK) {
        *b = b'*';
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::super::variants::{Random, LETTERS};
    use super::*;
    use crate::applayer::{AppFlow, AppLayer, HttpLimits};
    use crate::detect::Sender;
    use crate::reassembly::StreamId;

    const NAME: &[u8] = LETTERS;

    /// A keyed block cipher stand-in: ECB over a keyed mix, deterministic
    /// as AES with a fixed key and IV is, which is what the detector sees.
    fn encrypt(key: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut padded = plain.to_vec();
        let pad = BLOCK - padded.len() % BLOCK;
        padded.extend(std::iter::repeat_n(pad as u8, pad));
        padded
            .chunks(BLOCK)
            .flat_map(|block| {
                let mut state = fingerprint(key) ^ fingerprint(block);
                (0..BLOCK).map(move |_| {
                    state = state.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ 0x5851_f42d;
                    (state >> 24) as u8
                })
            })
            .collect()
    }

    fn xor(key: &[u8], plain: &[u8]) -> Vec<u8> {
        plain
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[(i + 1) & 15])
            .collect()
    }

    fn gzip_of(random: &mut Random, len: usize) -> Vec<u8> {
        let mut data = GZIP.to_vec();
        data.extend_from_slice(&[0, 3]);
        data.extend(random.bytes(len));
        data
    }

    fn b64(bytes: &[u8]) -> Vec<u8> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into_bytes()
    }

    fn url_encode(bytes: &[u8]) -> Vec<u8> {
        bytes
            .iter()
            .flat_map(|&b| match b {
                b'+' | b'/' | b'=' | b'&' | b'%' => format!("%{b:02X}").into_bytes(),
                _ => vec![b],
            })
            .collect()
    }

    /// One client's exchanges with one script, through the HTTP parser.
    struct Session {
        detector: Webshell,
        flow: Option<Box<Pending>>,
        applayer: AppLayer,
        app: AppFlow,
        offsets: [u64; 2],
        found: Vec<Finding>,
        uri: Vec<u8>,
        ts_ns: u64,
    }

    impl Session {
        fn new(random: &mut Random) -> Self {
            let mut uri = b"/".to_vec();
            uri.extend(random.text(NAME, 6));
            uri.extend_from_slice(
                [&b".php"[..], b".jsp", b".aspx", b""][random.draw() as usize % 4],
            );
            Self {
                detector: Webshell::new(&WebshellSettings::default(), &Arc::new(())),
                flow: None,
                applayer: AppLayer::new(HttpLimits::default()),
                app: AppFlow::default(),
                offsets: [0; 2],
                found: Vec::new(),
                uri,
                ts_ns: 0,
            }
        }

        fn exchange(&mut self, content_type: &[u8], body: Vec<u8>, answer: Vec<u8>) {
            let mut request = format!(
                "POST {} HTTP/1.1\r\nHost: victim\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
                String::from_utf8_lossy(&self.uri),
                String::from_utf8_lossy(content_type),
                body.len()
            )
            .into_bytes();
            request.extend(body);
            let mut response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                answer.len()
            )
            .into_bytes();
            response.extend(answer);
            for (dir, bytes) in [(0, request), (1, response)] {
                self.ts_ns += 1_000_000_000;
                let stream = StreamId {
                    flow_id: 1,
                    dir: 0,
                    src: "10.1.1.1:50000".parse().unwrap(),
                    dst: "10.2.2.2:80".parse().unwrap(),
                    carrier: Default::default(),
                }
                .toward(dir);
                let (detector, flow, found, ts_ns) = (
                    &mut self.detector,
                    &mut self.flow,
                    &mut self.found,
                    self.ts_ns,
                );
                self.applayer.data(
                    &mut self.app,
                    &stream,
                    self.offsets[dir],
                    &bytes,
                    &mut |event, sent| {
                        let sender = Sender::of_stream(&stream.toward(sent));
                        let data = AppData {
                            ts_ns,
                            sender: &sender,
                            event: &event,
                        };
                        detector.app(flow, &data, &mut |f| found.push(f));
                    },
                );
                self.offsets[dir] += bytes.len() as u64;
            }
        }

        fn sids(&self) -> Vec<u32> {
            let mut sids: Vec<u32> = self.found.iter().map(|f| f.signature.sid).collect();
            sids.sort_unstable();
            sids.dedup();
            sids
        }
    }

    const FORM: &[u8] = b"application/x-www-form-urlencoded";

    #[test]
    fn chopper_and_antsword_code_is_found_whatever_the_password_and_markers() {
        let mut random = Random::new(1);
        for round in 0..50 {
            let mut session = Session::new(&mut random);
            let password = random.text_of(NAME, 1, 10);
            let (m1, m2, m3, m4) = (
                random.text_of(super::super::variants::HEX, 3, 4),
                random.text_of(super::super::variants::HEX, 3, 4),
                random.text_of(super::super::variants::HEX, 3, 4),
                random.text_of(super::super::variants::HEX, 3, 4),
            );
            let s = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
            let code = match round % 3 {
                0 => format!(
                    "@ini_set(\"display_errors\", \"0\");@set_time_limit(0);function asenc($out){{return $out;}};function asoutput(){{$output=ob_get_contents();ob_end_clean();echo \"{}\".\"{}\";echo @asenc($output);echo \"{}\".\"{}\";}}ob_start();system('id');asoutput();die();",
                    s(&m1), s(&m2), s(&m3), s(&m4)
                ),
                1 => format!(
                    "eval(\"Ex\"&cHr(101)&\"cute(\"\"Server.ScriptTimeout=3600:Response.Write(\"\"{}\"\"&\"\"{}\"\"):Response.Write(\"\"{}\"\"&\"\"{}\"\"):Response.End\"\")\")",
                    s(&m1), s(&m2), s(&m3), s(&m4)
                ),
                _ => "@eval\u{1}(base64_decode($_POST[action]));".to_owned(),
            };
            let mut body = s(&password).into_bytes();
            body.push(b'=');
            body.extend(url_encode(code.as_bytes()));
            body.extend_from_slice(b"&");
            body.extend(random.text(NAME, 1));
            body.extend(random.text(super::super::variants::HEX, 13));
            body.push(b'=');
            body.extend(url_encode(&b64(b"/var/www/html")));
            let mut answer = if round % 3 == 2 {
                b"->|".to_vec()
            } else {
                [m1.clone(), m2.clone()].concat()
            };
            answer.extend_from_slice(b"uid=33(www-data)\n");
            if round % 3 == 2 {
                answer.extend_from_slice(b"|<-");
            } else {
                answer.extend([m3.clone(), m4.clone()].concat());
            }
            session.exchange(FORM, body.clone(), answer.clone());
            session.exchange(FORM, body, answer);
            let expected: &[u32] = if round % 3 == 2 {
                &[9_200_601]
            } else {
                &[9_200_601, 9_200_602]
            };
            assert_eq!(
                session.sids(),
                expected,
                "round {round}: {:?}",
                session.found
            );
            assert_eq!(session.found.len(), expected.len(), "once per session");
            let tool = if round % 3 == 2 {
                "china-chopper"
            } else {
                "antsword"
            };
            assert!(
                session.found[0].metadata.contains(&format!("tool {tool}")),
                "{}",
                session.found[0].metadata
            );
            let excerpt = &session.found[0].excerpt;
            assert!(
                !contains(excerpt, &password) || password.len() < 3,
                "the password is not shown"
            );
        }
    }

    #[test]
    fn godzilla_base64_and_raw_modes_are_found_whatever_the_key() {
        let mut random = Random::new(2);
        for round in 0..40 {
            let mut session = Session::new(&mut random);
            let key = random.hex_key();
            let pass = random.text_of(NAME, 2, 8);
            let frame = random.text(super::super::variants::HEX, 32);
            let frame = if round % 2 == 0 {
                frame.to_ascii_uppercase()
            } else {
                frame
            };
            for _ in 0..3 {
                let len = 40 + random.draw() as usize % 200;
                let request = xor(&key, &gzip_of(&mut random, len));
                let reply = xor(&key, &gzip_of(&mut random, len / 2));
                if round % 4 < 2 {
                    let mut body = pass.clone();
                    body.push(b'=');
                    body.extend(url_encode(&b64(&request)));
                    let answer = [&frame[..16], &b64(&reply)[..], &frame[16..]].concat();
                    session.exchange(FORM, body, answer);
                } else {
                    session.exchange(FORM, request, reply);
                }
            }
            let expected: &[u32] = if round % 4 < 2 {
                &[9_200_603, 9_200_604]
            } else {
                &[9_200_604]
            };
            assert_eq!(session.sids(), expected, "round {round}");
            for finding in &session.found {
                assert!(
                    !contains(&finding.excerpt, &key[1..9]),
                    "the key is not shown"
                );
                assert!(
                    !contains(&finding.excerpt, &frame[..16]),
                    "the framing is not shown"
                );
            }
        }
    }

    #[test]
    fn aes_sessions_of_behinder_and_godzilla_are_found_whatever_the_key() {
        let mut random = Random::new(3);
        for round in 0..40 {
            let mut session = Session::new(&mut random);
            let key = random.bytes(16);
            let class = random.bytes_of(600, 3_000);
            for _ in 0..4 {
                let mut plain = class.clone();
                plain.extend(random.text_of(NAME, 20, 100));
                let cipher = encrypt(&key, &plain);
                let answer = encrypt(&key, &random.text_of(NAME, 10, 200));
                match round % 3 {
                    0 => session.exchange(b"application/octet-stream", cipher, answer),
                    1 => session.exchange(b"text/html;charset=utf-8", b64(&cipher), b64(&answer)),
                    _ => {
                        let mut body = random.text(NAME, 4);
                        body.push(b'=');
                        body.extend(url_encode(&b64(&cipher)));
                        session.exchange(FORM, body, b64(&answer));
                    }
                }
            }
            assert_eq!(session.sids(), [9_200_606], "round {round}");
            let tool = ["behinder", "behinder", "godzilla"][round % 3];
            assert!(
                session.found[0].metadata.contains(&format!("tool {tool}")),
                "{}",
                session.found[0].metadata
            );
        }
    }

    #[test]
    fn behinder_xor_is_found_whatever_the_key() {
        let mut random = Random::new(4);
        for _ in 0..40 {
            let mut session = Session::new(&mut random);
            let key = random.hex_key();
            let mut plain = b"assert|eval(base64_decode('".to_vec();
            plain.extend(b64(&random.bytes(300)));
            plain.extend_from_slice(b"'));");
            let answer = xor(&key, b"{\"status\":\"c3VjY2Vzcw==\",\"msg\":\"aGVsbG8=\"}");
            session.exchange(b"text/html;charset=utf-8", b64(&xor(&key, &plain)), answer);
            assert_eq!(session.sids(), [9_200_605]);
        }
    }

    #[test]
    fn ordinary_posts_are_not_webshells() {
        let mut random = Random::new(5);
        let mut session = Session::new(&mut random);
        let token = random.text(super::super::variants::HEX, 40);
        let bodies: Vec<(&[u8], Vec<u8>)> = vec![
            (FORM, b"username=john&password=seasonedcop&login=Login".to_vec()),
            (FORM, [&b"tokenCSRF="[..], &token, b"&content=%3Cp%3Eeval%28x%29+is+bad%3C%2Fp%3E"].concat()),
            (b"multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"f\"; filename=\"shell.png\"\r\n\r\nGIF89a\r\n<?php eval($_POST['cmd'])?>\r\n--x--\r\n".to_vec()),
            (b"application/json", br#"{"query":"mutation { login }","variables":{"a":1}}"#.to_vec()),
            (b"application/octet-stream", b"\x002; \x00\x00\x00\x08".iter().copied().chain(random.bytes(40)).collect()),
            (FORM, b"q=aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ%3D".to_vec()),
        ];
        for (content_type, body) in bodies {
            for _ in 0..4 {
                session.exchange(content_type, body.clone(), b"<html>ok</html>".to_vec());
            }
        }
        for _ in 0..6 {
            // Encrypted uploads, each its own: no repeated first block.
            session.exchange(
                b"application/octet-stream",
                random.bytes(1_024),
                random.bytes(64),
            );
            // Media with fixed headers: not random-looking first blocks.
            let png = [
                &b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"[..],
                &random.bytes(1_008),
            ]
            .concat();
            session.exchange(b"application/octet-stream", png, Vec::new());
        }
        assert!(session.found.is_empty(), "{:?}", session.found);
        assert_eq!(
            md5_framed(b"0123456789abcdef0123456789abcdef0123456789abcdef"),
            None
        );
    }
}
