//! HTTP/1.x over reassembled TCP: requests and responses paired into
//! transactions, with the buffers rules inspect and the first exchange's
//! summary for the flow record.
//!
//! Each direction is read as a sequence of messages: a start line and
//! header block (bounded by [`MAX_HEADER_BYTES`]), then a body framed by
//! `Transfer-Encoding: chunked`, `Content-Length` or the end of the
//! connection. Parsing is lenient the way servers and browsers are (bare
//! LF line ends, folded headers, white space around names and chunk
//! sizes), since what an attacker's peer accepts is what must be seen; it
//! is written here rather than taken from `httparse` because that parser
//! refuses such messages by design. Requests open [`Transaction`]s that
//! responses complete in order (pipelining); every stage of a transaction
//! is handed to the caller as it completes ([`HttpStage`]). Bodies are
//! de-chunked, decompressed ([`body`]) and kept up to a limit. A direction
//! whose first bytes do not look like HTTP is given up at once, so other
//! protocols cost a few byte comparisons.

pub mod body;
pub mod head;
pub mod uri;

use std::collections::VecDeque;

use body::{trim, ChunkProgress, Chunked};
use head::Origin;

/// Bytes of a start line and header block read at most before giving up.
pub const MAX_HEADER_BYTES: usize = 16 << 10;

/// Headers kept at most per message.
pub(crate) const MAX_HEADERS: usize = 128;

/// Transactions kept waiting for their response; older ones are dropped.
const MAX_PENDING: usize = 32;

/// Request methods a client direction may start with: those of the IANA
/// HTTP method registry (WebDAV's among them), but HTTP/2's `PRI` preface.
const METHODS: [&[u8]; 39] = [
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
    b"ACL ",
    b"BASELINE-CONTROL ",
    b"BIND ",
    b"CHECKIN ",
    b"CHECKOUT ",
    b"COPY ",
    b"LABEL ",
    b"LINK ",
    b"LOCK ",
    b"MERGE ",
    b"MKACTIVITY ",
    b"MKCALENDAR ",
    b"MKCOL ",
    b"MKREDIRECTREF ",
    b"MKWORKSPACE ",
    b"MOVE ",
    b"ORDERPATCH ",
    b"PROPFIND ",
    b"PROPPATCH ",
    b"QUERY ",
    b"REBIND ",
    b"REPORT ",
    b"SEARCH ",
    b"UNBIND ",
    b"UNCHECKOUT ",
    b"UNLINK ",
    b"UNLOCK ",
    b"UPDATE ",
    b"UPDATEREDIRECTREF ",
    b"VERSION-CONTROL ",
];

/// True when `first` (a direction's first bytes) starts like an HTTP
/// request or status line.
pub fn looks_like_http(first: &[u8]) -> bool {
    METHODS.iter().any(|m| first.starts_with(m))
        || first.len() >= 5 && first[..5].eq_ignore_ascii_case(b"HTTP/")
}

/// Bounds on what one transaction keeps (`[http]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpLimits {
    /// Request body bytes kept for inspection (`request_body_limit_kib`).
    #[serde(rename = "request_body_limit_kib", with = "crate::units::kib")]
    pub request_body: usize,
    /// Response body bytes kept, after decompression
    /// (`response_body_limit_kib`).
    #[serde(rename = "response_body_limit_kib", with = "crate::units::kib")]
    pub response_body: usize,
    /// Content-coding layers (gzip, deflate, lzma) undone at most.
    pub decompress_layers: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            request_body: 100 << 10,
            response_body: 100 << 10,
            decompress_layers: 2,
        }
    }
}

/// What the first request and response said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpSummary {
    /// Request method.
    pub method: Option<String>,
    /// Request target as sent.
    pub uri: Option<String>,
    /// `Host` header.
    pub host: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// Response status code.
    pub status: Option<u16>,
}

impl HttpSummary {
    /// True once a request was parsed: the flow speaks HTTP.
    pub fn is_http(&self) -> bool {
        self.method.is_some()
    }
}

/// A point in a transaction's life at which its buffers are inspected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HttpStage {
    /// Request line and headers read.
    RequestHeaders,
    /// Request body read (or its kept part full).
    RequestBody,
    /// Status line and headers read.
    ResponseHeaders,
    /// Response body read and decoded (or its kept part full).
    ResponseBody,
}

/// One side of a transaction: a request or a response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The start line, without its line end.
    pub start_line: Vec<u8>,
    /// Headers as (name, value), trimmed, folded lines joined.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Headers as `Name: value\r\n` lines.
    pub header_block: Vec<u8>,
    /// The header block as sent, with the empty line ending it.
    pub raw_headers: Vec<u8>,
    /// The header names as rules see them: `\r\n` before each, and
    /// `\r\n\r\n` at the end.
    pub header_names: Vec<u8>,
    /// The body, de-chunked and (responses) decompressed, up to the limit.
    pub body: Vec<u8>,
}

impl Message {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// A request and its response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transaction {
    /// Its number in the flow, from 0.
    pub seq: u64,
    /// Request method.
    pub method: Vec<u8>,
    /// Request target as sent.
    pub uri_raw: Vec<u8>,
    /// Request target normalised ([`uri::normalize`]).
    pub uri: Vec<u8>,
    /// Request protocol (`HTTP/1.1`; empty for HTTP/0.9).
    pub request_protocol: Vec<u8>,
    /// Host name from the `Host` header: lower case, port removed.
    pub host: Vec<u8>,
    /// The request.
    pub request: Message,
    /// Response protocol.
    pub response_protocol: Vec<u8>,
    /// Status code as sent.
    pub status: Vec<u8>,
    /// Reason phrase.
    pub status_message: Vec<u8>,
    /// The response.
    pub response: Message,
    request_done: bool,
    response_started: bool,
    response_done: bool,
}

/// How a body is delimited.
#[derive(Debug, Clone)]
enum Framing {
    Length(u64),
    Chunked(Chunked),
    UntilClose,
    /// A body a status says should not be there (204, 304) but a length or
    /// chunking announces: read when the next bytes are not a status line.
    Unexpected(Box<Framing>),
}

#[derive(Debug, Clone, Default)]
enum Phase {
    /// Reading a start line and headers.
    #[default]
    Head,
    /// Reading a body.
    Body(Framing),
    /// Not (or no longer) parsed: not HTTP, a gap, or a protocol switch.
    Stopped,
}

#[derive(Debug, Clone, Default)]
struct Side {
    phase: Phase,
    head: Vec<u8>,
    /// Wire body bytes kept for the message being read (compressed ones
    /// included), and whether its body stage was already handed on.
    kept: Vec<u8>,
    body_seen: bool,
    body_given: bool,
    /// The body is handed on in windows as it arrives (it is not
    /// compressed): bytes kept that no window has shown yet.
    windowed: bool,
    fresh: usize,
}

/// Bytes of a body window that the next window repeats, so that a pattern
/// across the edge is still seen whole.
const WINDOW_OVERLAP: usize = 4 << 10;

/// Parser state of one flow.
#[derive(Debug, Clone, Default)]
pub struct HttpFlow {
    /// Transactions opened so far.
    opened: u64,
    /// Stream direction of the client; parser state is indexed by role
    /// (0: the client, 1: the server).
    client: Option<usize>,
    sides: [Side; 2],
    txs: VecDeque<Transaction>,
    summary: HttpSummary,
    limited: HttpLimited,
}

/// What a flow's HTTP parser gave up at its limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpLimited {
    /// Header blocks longer than [`MAX_HEADER_BYTES`]: their direction is
    /// parsed no further.
    pub heads: u32,
    /// Compressed response bodies whose decoded bytes reached the body
    /// limit (decompression bombs among them): decoding stopped there.
    pub decoded_bodies: u32,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Where a status line starts in `head` after lines of junk: an `HTTP/` at
/// the start of a line (white space and NULs before it allowed).
fn status_line_start(head: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = head[from..]
        .windows(5)
        .position(|w| w.eq_ignore_ascii_case(b"HTTP/"))
    {
        let at = from + at;
        let line_start = head[..at]
            .iter()
            .rposition(|&b| b == b'\n' || b == b'\r')
            .map_or(0, |i| i + 1);
        if head[line_start..at]
            .iter()
            .all(|&b| matches!(b, b' ' | b'\t' | 0))
        {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn tokens(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| *b == b' ' || *b == b'\t')
        .filter(|t| !t.is_empty())
}

/// The `Content-Length`, when it is a number and nothing else.
fn content_length(message: &Message) -> Option<u64> {
    let value = head::trim_controls(message.header(b"content-length")?);
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// The body a message's headers announce: chunked, or a length; `None`
/// when neither is given, or the length is 0.
fn announced_body(message: &Message) -> Option<Framing> {
    if is_chunked(message) {
        return Some(Framing::Chunked(Chunked::default()));
    }
    content_length(message)
        .filter(|&n| n > 0)
        .map(Framing::Length)
}

fn is_chunked(message: &Message) -> bool {
    message.headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case(b"transfer-encoding")
            && v.windows(7).any(|w| w.eq_ignore_ascii_case(b"chunked"))
    })
}

fn host_name(value: &[u8]) -> Vec<u8> {
    let value = trim(value);
    let end = if value.first() == Some(&b'[') {
        value
            .iter()
            .position(|&b| b == b']')
            .map_or(value.len(), |i| i + 1)
    } else {
        value.iter().position(|&b| b == b':').unwrap_or(value.len())
    };
    value[..end].to_ascii_lowercase()
}

impl HttpFlow {
    /// What was learnt so far.
    pub fn summary(&self) -> &HttpSummary {
        &self.summary
    }

    /// What the parser gave up at its limits so far.
    pub fn limited(&self) -> HttpLimited {
        self.limited
    }

    /// True when neither direction will be parsed any more.
    pub fn is_done(&self) -> bool {
        self.sides.iter().all(|s| matches!(s.phase, Phase::Stopped))
    }

    /// The stream direction of the client, once known.
    pub fn client(&self) -> Option<usize> {
        self.client
    }

    /// Settles which direction is the client's from the first bytes seen:
    /// the one that sends a request, or the other one of a direction that
    /// answers (a flow picked up midstream may start with its response);
    /// otherwise the flow's initiator.
    pub fn orient(&mut self, dir: usize, first: &[u8]) -> usize {
        *self.client.get_or_insert_with(|| {
            let probe = &first[..first.len().min(5)];
            if !probe.is_empty() && probe.eq_ignore_ascii_case(&b"HTTP/"[..probe.len()]) {
                1 - dir
            } else if METHODS.iter().any(|m| first.starts_with(m)) {
                dir
            } else {
                0
            }
        })
    }

    /// Takes in-order bytes of stream direction `dir`, handing each
    /// transaction stage that completes to `on`.
    pub fn data(
        &mut self,
        dir: usize,
        mut input: &[u8],
        limits: &HttpLimits,
        on: &mut impl FnMut(&Transaction, HttpStage),
    ) {
        let role = usize::from(self.orient(dir, input) != dir);
        while !input.is_empty() {
            match &mut self.sides[role].phase {
                Phase::Stopped => return,
                Phase::Head => input = self.head(role, input, limits, on),
                Phase::Body(_) => input = self.body(role, input, limits, on),
            }
        }
    }

    /// Bytes were lost, or the direction ended: a body being read ends
    /// with what it has, and nothing more is parsed.
    pub fn close(
        &mut self,
        dir: usize,
        limits: &HttpLimits,
        on: &mut impl FnMut(&Transaction, HttpStage),
    ) {
        let Some(client) = self.client else {
            return;
        };
        let role = usize::from(client != dir);
        if matches!(self.sides[role].phase, Phase::Head) && !self.sides[role].head.is_empty() {
            // A head cut short still has its start line and the headers
            // read so far (as Suricata inspects a request line at once).
            let head = std::mem::take(&mut self.sides[role].head);
            let probe = &head[..head.len().min(5)];
            if role == 0 {
                self.start_request(head::parse(&head, Origin::Request), on);
            } else if probe.eq_ignore_ascii_case(&b"HTTP/"[..probe.len()]) {
                self.start_response(head::parse(&head, Origin::Response), on, None);
            } else if self.txs.iter().any(|t| !t.response_started) {
                self.start_response(Message::default(), on, Some(Framing::UntilClose));
                self.body(1, &head, limits, on);
            }
        }
        if matches!(self.sides[role].phase, Phase::Body(_)) {
            self.end_body(role, limits, on);
        }
        let side = &mut self.sides[role];
        side.phase = Phase::Stopped;
        side.head = Vec::new();
    }

    fn stop(&mut self, role: usize) {
        let side = &mut self.sides[role];
        side.phase = Phase::Stopped;
        side.head = Vec::new();
        side.kept = Vec::new();
    }

    /// Reads head bytes; returns the input not used.
    fn head<'a>(
        &mut self,
        role: usize,
        mut input: &'a [u8],
        limits: &HttpLimits,
        on: &mut impl FnMut(&Transaction, HttpStage),
    ) -> &'a [u8] {
        let origin = if role == 0 {
            Origin::Request
        } else {
            Origin::Response
        };
        let known = self.summary.is_http();
        let side = &mut self.sides[role];
        if side.head.is_empty() {
            // Line ends between messages (and, before a status line, the
            // white space and NULs servers are known to send).
            let skip = input
                .iter()
                .take_while(|&&b| match origin {
                    Origin::Request => matches!(b, b'\r' | b'\n'),
                    Origin::Response => matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0),
                })
                .count();
            input = &input[skip..];
            if input.is_empty() {
                return input;
            }
        }
        let before = side.head.len();
        let room = MAX_HEADER_BYTES.saturating_sub(before);
        side.head.extend_from_slice(&input[..input.len().min(room)]);
        let mut dropped = 0;
        let looks_http = if role == 0 {
            known
                || METHODS
                    .iter()
                    .any(|m| side.head.starts_with(m) || m.starts_with(&side.head))
        } else {
            let probe = &side.head[..side.head.len().min(5)];
            let status_line = probe.eq_ignore_ascii_case(&b"HTTP/"[..probe.len()]);
            if !status_line && known {
                // Lines of junk before the status line are skipped.
                if let Some(at) = status_line_start(&side.head) {
                    side.head.drain(..at);
                    dropped = at;
                }
            }
            status_line || dropped > 0
        };
        if !looks_http {
            let awaiting = self.txs.iter().any(|t| !t.response_started);
            let side = &mut self.sides[role];
            if role == 1 && known && awaiting {
                if head::first_line(&side.head, origin).is_none()
                    && side.head.len() < MAX_HEADER_BYTES
                {
                    return &input[input.len()..];
                }
                // No status line: an HTTP/0.9 answer, all body.
                let head = std::mem::take(&mut side.head);
                self.start_response(Message::default(), on, Some(Framing::UntilClose));
                self.body(1, &head, limits, on);
                return &input[input.len()..];
            }
            self.stop(role);
            return &[];
        }
        let side = &mut self.sides[role];
        let mut end = head::end_of_head(&side.head, origin);
        if end.is_none() && role == 0 {
            // HTTP/0.9 request: a request line without a protocol ends it.
            if let Some(line) = head::first_line(&side.head, origin) {
                if tokens(line).count() == 2 {
                    end = side.head.iter().position(|&b| b == b'\n').map(|nl| nl + 1);
                }
            }
        }
        let Some(end) = end else {
            if side.head.len() >= MAX_HEADER_BYTES {
                self.limited.heads += 1;
                self.stop(role);
                return &[];
            }
            return &input[input.len()..];
        };
        let head = std::mem::take(&mut side.head);
        let used = (end + dropped).saturating_sub(before);
        let message = head::parse(&head[..end], origin);
        if role == 0 {
            self.start_request(message, on);
        } else {
            self.start_response(message, on, None);
        }
        &input[used.min(input.len())..]
    }

    fn start_request(&mut self, message: Message, on: &mut impl FnMut(&Transaction, HttpStage)) {
        let line = message.start_line.clone();
        let mut parts = tokens(&line);
        let method = parts.next().unwrap_or_default().to_vec();
        let rest: Vec<&[u8]> = parts.collect();
        let (uri_raw, protocol) = match rest.as_slice() {
            [] => (Vec::new(), Vec::new()),
            [uri] => (uri.to_vec(), Vec::new()),
            [middle @ .., last] if last.len() >= 5 && last[..5].eq_ignore_ascii_case(b"HTTP/") => {
                (middle.join(&b' '), last.to_vec())
            }
            all => (all.join(&b' '), Vec::new()),
        };
        let framing = announced_body(&message);
        let tx = Transaction {
            seq: self.opened,
            uri: uri::normalize(&uri_raw),
            host: message.header(b"host").map(host_name).unwrap_or_default(),
            method,
            uri_raw,
            request_protocol: protocol,
            request: message,
            ..Transaction::default()
        };
        if self.summary.method.is_none() {
            self.summary.method = Some(text(&tx.method));
            self.summary.uri = Some(text(&tx.uri_raw));
            self.summary.host = tx.request.header(b"host").map(text);
            self.summary.user_agent = tx.request.header(b"user-agent").map(text);
        }
        if self.txs.len() >= MAX_PENDING {
            self.txs.pop_front();
        }
        self.opened += 1;
        self.txs.push_back(tx);
        let tx = self.txs.back_mut().expect("just pushed");
        on(tx, HttpStage::RequestHeaders);
        match framing {
            Some(framing) => self.begin_body(0, framing),
            None => {
                tx.request_done = true;
                self.retire();
            }
        }
    }

    fn start_response(
        &mut self,
        message: Message,
        on: &mut impl FnMut(&Transaction, HttpStage),
        framing: Option<Framing>,
    ) {
        let line = message.start_line.clone();
        let mut parts = line.splitn(3, |b| *b == b' ' || *b == b'\t');
        let protocol = parts.next().unwrap_or_default().to_vec();
        let status = trim(parts.next().unwrap_or_default()).to_vec();
        let reason = trim(parts.next().unwrap_or_default()).to_vec();
        let code: Option<u16> = std::str::from_utf8(&status)
            .ok()
            .and_then(|s| s.parse().ok());
        if code.is_some_and(|c| (100..200).contains(&c) && c != 101) {
            // An interim answer: the final one follows.
            return;
        }
        if self.summary.status.is_none() && code.is_some() {
            self.summary.status = code;
        }
        if !self.txs.iter().any(|t| !t.response_started) {
            if self.txs.len() >= MAX_PENDING {
                self.txs.pop_front();
            }
            self.txs.push_back(Transaction {
                seq: self.opened,
                request_done: true,
                ..Transaction::default()
            });
            self.opened += 1;
        }
        let tx = self
            .txs
            .iter_mut()
            .find(|t| !t.response_started)
            .expect("a transaction waits");
        tx.response_started = true;
        tx.response_protocol = protocol;
        tx.status = status;
        tx.status_message = reason;
        tx.response = message;
        on(tx, HttpStage::ResponseHeaders);
        let head_request = tx.method.eq_ignore_ascii_case(b"HEAD");
        let connect = tx.method.eq_ignore_ascii_case(b"CONNECT");
        let framing = match code {
            _ if framing.is_some() => framing,
            // A switch of protocols (an upgrade, or a tunnel opened).
            Some(101) if tx.response.header(b"upgrade").is_some() => {
                self.stop(0);
                self.stop(1);
                return;
            }
            Some(200..=299) if connect => {
                self.stop(0);
                self.stop(1);
                return;
            }
            _ if head_request => None,
            Some(204 | 304) => {
                announced_body(&tx.response).map(|f| Framing::Unexpected(Box::new(f)))
            }
            _ => match announced_body(&tx.response) {
                Some(framing) => Some(framing),
                None if content_length(&tx.response) == Some(0) => None,
                None => Some(Framing::UntilClose),
            },
        };
        match framing {
            Some(framing) => self.begin_body(1, framing),
            None => {
                tx.response_done = true;
                self.retire();
            }
        }
    }

    fn begin_body(&mut self, role: usize, framing: Framing) {
        // A body without a content coding can be shown as it arrives.
        let windowed = match role {
            0 => true,
            _ => self
                .current(1)
                .is_some_and(|tx| tx.response.header(b"content-encoding").is_none()),
        };
        let side = &mut self.sides[role];
        side.phase = Phase::Body(framing);
        side.kept.clear();
        side.body_seen = false;
        side.body_given = false;
        side.windowed = windowed;
        side.fresh = 0;
    }

    /// Reads body bytes; returns the input not used.
    fn body<'a>(
        &mut self,
        role: usize,
        input: &'a [u8],
        limits: &HttpLimits,
        on: &mut impl FnMut(&Transaction, HttpStage),
    ) -> &'a [u8] {
        let limit = if role == 0 {
            limits.request_body
        } else {
            limits.response_body
        };
        let side = &mut self.sides[role];
        let Phase::Body(framing) = &mut side.phase else {
            return input;
        };
        let (kept, fresh, windowed) = (&mut side.kept, &mut side.fresh, side.windowed);
        let mut keep = |bytes: &[u8]| {
            let room = if windowed {
                bytes.len()
            } else {
                limit.saturating_sub(kept.len())
            };
            let taken = bytes.len().min(room);
            kept.extend_from_slice(&bytes[..taken]);
            *fresh += taken;
        };
        let (rest, ended) = match framing {
            Framing::Unexpected(_) if looks_like_http(input) => (input, true),
            Framing::Unexpected(announced) => {
                *framing = std::mem::replace(&mut **announced, Framing::UntilClose);
                (input, false)
            }
            Framing::Length(left) => {
                let take = (*left).min(input.len() as u64) as usize;
                keep(&input[..take]);
                *left -= take as u64;
                (&input[take..], *left == 0)
            }
            Framing::UntilClose => {
                keep(input);
                (&input[input.len()..], false)
            }
            Framing::Chunked(chunked) => match chunked.feed(input, &mut keep) {
                ChunkProgress::More => (&input[input.len()..], false),
                ChunkProgress::Done(used) => (&input[used..], true),
                ChunkProgress::Broken => (&input[input.len()..], true),
                ChunkProgress::NotChunked { held } => {
                    // Not chunked after all: read to the end of the connection.
                    keep(&held);
                    *framing = Framing::UntilClose;
                    (input, false)
                }
            },
        };
        side.body_seen = true;
        if side.windowed {
            while self.sides[role].kept.len() >= limit {
                self.give_window(role, limit, on);
            }
        }
        let side = &mut self.sides[role];
        let full = side.kept.len() >= limit;
        if ended {
            self.end_body(role, limits, on);
            self.sides[role].phase = Phase::Head;
        } else if full && !side.body_given {
            self.give_body(role, limits, on);
        }
        rest
    }

    /// Hands on the first `limit` bytes of a body being read as one window,
    /// keeping the end of it to start the next one.
    fn give_window(
        &mut self,
        role: usize,
        limit: usize,
        on: &mut impl FnMut(&Transaction, HttpStage),
    ) {
        let side = &mut self.sides[role];
        let window: Vec<u8> = side.kept[..limit].to_vec();
        let keep_from = limit.saturating_sub(WINDOW_OVERLAP.min(limit / 2));
        side.kept.drain(..keep_from);
        side.fresh = side.kept.len().saturating_sub(limit - keep_from);
        let stage = if role == 0 {
            HttpStage::RequestBody
        } else {
            HttpStage::ResponseBody
        };
        if let Some(tx) = self.current(role) {
            let body = if role == 0 {
                &mut tx.request.body
            } else {
                &mut tx.response.body
            };
            *body = window;
            on(tx, stage);
        }
    }

    /// The body being read is complete: its stage is handed on (once) and
    /// the transaction side is done.
    fn end_body(
        &mut self,
        role: usize,
        limits: &HttpLimits,
        on: &mut impl FnMut(&Transaction, HttpStage),
    ) {
        let side = &self.sides[role];
        // A windowed body whose last window showed everything is done.
        let shown = side.windowed && side.fresh == 0 && side.body_seen && !side.kept.is_empty();
        if !side.body_given && !shown {
            self.give_body(role, limits, on);
        }
        if let Some(tx) = self.current(role) {
            if role == 0 {
                tx.request_done = true;
            } else {
                tx.response_done = true;
            }
        }
        self.sides[role].kept = Vec::new();
        self.retire();
    }

    fn give_body(
        &mut self,
        role: usize,
        limits: &HttpLimits,
        on: &mut impl FnMut(&Transaction, HttpStage),
    ) {
        let kept = std::mem::take(&mut self.sides[role].kept);
        self.sides[role].body_given = true;
        let Some(tx) = self.current(role) else {
            return;
        };
        if role == 0 {
            tx.request.body = kept;
            if !tx.request.body.is_empty() {
                on(tx, HttpStage::RequestBody);
            }
        } else {
            let codings = tx
                .response
                .header(b"content-encoding")
                .map(body::codings)
                .unwrap_or_default();
            let (decoded, cut) = body::decode(
                kept,
                &codings,
                limits.decompress_layers,
                limits.response_body,
            );
            tx.response.body = decoded;
            if !tx.response.body.is_empty() {
                on(tx, HttpStage::ResponseBody);
            }
            self.limited.decoded_bodies += u32::from(cut);
        }
    }

    /// The transaction whose `role` side is being read.
    fn current(&mut self, role: usize) -> Option<&mut Transaction> {
        if role == 0 {
            self.txs.iter_mut().rev().find(|t| !t.request_done)
        } else {
            self.txs
                .iter_mut()
                .find(|t| t.response_started && !t.response_done)
        }
    }

    /// Drops transactions both of whose sides are done.
    fn retire(&mut self) {
        while self
            .txs
            .front()
            .is_some_and(|t| t.request_done && t.response_done)
        {
            self.txs.pop_front();
        }
    }
}

#[cfg(test)]
mod tests;
