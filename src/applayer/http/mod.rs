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
pub mod uri;

use std::collections::VecDeque;

use body::{trim, ChunkProgress, Chunked};

/// Bytes of a start line and header block read at most before giving up.
pub const MAX_HEADER_BYTES: usize = 16 << 10;

/// Headers kept at most per message.
const MAX_HEADERS: usize = 128;

/// Transactions kept waiting for their response; older ones are dropped.
const MAX_PENDING: usize = 32;

/// Request methods a client direction may start with.
const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

/// Bounds on what one transaction keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Request body bytes kept for inspection.
    pub request_body: usize,
    /// Response body bytes kept (after decompression).
    pub response_body: usize,
    /// Content-coding layers undone at most.
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
}

/// Parser state of one flow.
#[derive(Debug, Clone, Default)]
pub struct HttpFlow {
    sides: [Side; 2],
    txs: VecDeque<Transaction>,
    summary: HttpSummary,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// End of a header block in `buf` (index just past its empty line),
/// searching from `from`.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from.saturating_sub(3);
    while let Some(at) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + at;
        let rest = &buf[nl + 1..];
        if rest.first() == Some(&b'\n') {
            return Some(nl + 2);
        }
        if rest.starts_with(b"\r\n") {
            return Some(nl + 3);
        }
        i = nl + 1;
    }
    None
}

fn split_lines(block: &[u8]) -> impl Iterator<Item = &[u8]> {
    block
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// Start line, headers and the raw header bytes of a head.
fn parse_head(head: &[u8]) -> Message {
    let first_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let start_line = split_lines(&head[..first_end]).next().unwrap_or_default();
    let raw_headers = head.get(first_end + 1..).unwrap_or_default();
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for line in split_lines(raw_headers) {
        if line.is_empty() {
            break;
        }
        if matches!(line[0], b' ' | b'\t') {
            if let Some((_, value)) = headers.last_mut() {
                value.push(b' ');
                value.extend_from_slice(trim(line));
            }
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if headers.len() < MAX_HEADERS {
            headers.push((
                trim(&line[..colon]).to_vec(),
                trim(&line[colon + 1..]).to_vec(),
            ));
        }
    }
    let mut header_block = Vec::new();
    for (name, value) in &headers {
        header_block.extend_from_slice(name);
        header_block.extend_from_slice(b": ");
        header_block.extend_from_slice(value);
        header_block.extend_from_slice(b"\r\n");
    }
    Message {
        start_line: start_line.to_vec(),
        headers,
        header_block,
        raw_headers: raw_headers.to_vec(),
        body: Vec::new(),
    }
}

fn tokens(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| *b == b' ' || *b == b'\t')
        .filter(|t| !t.is_empty())
}

fn content_length(message: &Message) -> Option<u64> {
    let value = message.header(b"content-length")?;
    let digits: Vec<u8> = trim(value)
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
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

    /// True when neither direction will be parsed any more.
    pub fn is_done(&self) -> bool {
        self.sides.iter().all(|s| matches!(s.phase, Phase::Stopped))
    }

    /// Takes in-order bytes of direction `dir` (0: from the client), handing
    /// each transaction stage that completes to `on`.
    pub fn data(
        &mut self,
        dir: usize,
        mut input: &[u8],
        limits: &HttpLimits,
        on: &mut impl FnMut(&Transaction, HttpStage),
    ) {
        while !input.is_empty() {
            match &mut self.sides[dir].phase {
                Phase::Stopped => return,
                Phase::Head => input = self.head(dir, input, limits, on),
                Phase::Body(_) => input = self.body(dir, input, limits, on),
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
        if matches!(self.sides[dir].phase, Phase::Body(_)) {
            self.end_body(dir, limits, on);
        }
        let side = &mut self.sides[dir];
        side.phase = Phase::Stopped;
        side.head = Vec::new();
    }

    fn stop(&mut self, dir: usize) {
        let side = &mut self.sides[dir];
        side.phase = Phase::Stopped;
        side.head = Vec::new();
        side.kept = Vec::new();
    }

    /// Reads head bytes; returns the input not used.
    fn head<'a>(
        &mut self,
        dir: usize,
        mut input: &'a [u8],
        limits: &HttpLimits,
        on: &mut impl FnMut(&Transaction, HttpStage),
    ) -> &'a [u8] {
        let side = &mut self.sides[dir];
        if side.head.is_empty() {
            // Line ends between messages.
            let skip = input
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            input = &input[skip..];
            if input.is_empty() {
                return input;
            }
        }
        let before = side.head.len();
        let room = MAX_HEADER_BYTES.saturating_sub(before);
        side.head.extend_from_slice(&input[..input.len().min(room)]);
        let known = self.summary.is_http();
        let side = &mut self.sides[dir];
        let looks_http = if dir == 0 {
            known
                || METHODS
                    .iter()
                    .any(|m| side.head.starts_with(m) || m.starts_with(&side.head))
        } else {
            let probe = &side.head[..side.head.len().min(5)];
            probe.eq_ignore_ascii_case(&b"HTTP/"[..probe.len()])
        };
        if !looks_http {
            if dir == 1 && known && self.txs.iter().any(|t| !t.response_started) {
                // No status line: an HTTP/0.9 answer, all body.
                let head = std::mem::take(&mut self.sides[1].head);
                self.start_response(Message::default(), on, Some(Framing::UntilClose));
                self.body(1, &head, limits, on);
                return &input[input.len()..];
            }
            self.stop(dir);
            return &[];
        }
        let mut end = head_end(&side.head, before);
        if end.is_none() && dir == 0 {
            // HTTP/0.9 request: a request line without a protocol ends it.
            if let Some(nl) = side.head.iter().position(|&b| b == b'\n') {
                let line = split_lines(&side.head[..nl]).next().unwrap_or_default();
                if tokens(line).count() == 2 {
                    end = Some(nl + 1);
                }
            }
        }
        let Some(end) = end else {
            if side.head.len() >= MAX_HEADER_BYTES {
                self.stop(dir);
                return &[];
            }
            return &input[input.len()..];
        };
        let head = std::mem::take(&mut side.head);
        let used = end - before;
        let message = parse_head(&head[..end]);
        if dir == 0 {
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
        let framing = if is_chunked(&message) {
            Some(Framing::Chunked(Chunked::default()))
        } else {
            content_length(&message)
                .filter(|&n| n > 0)
                .map(Framing::Length)
        };
        let tx = Transaction {
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
                request_done: true,
                ..Transaction::default()
            });
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
            Some(101) => {
                self.stop(0);
                self.stop(1);
                return;
            }
            Some(200..=299) if connect => {
                self.stop(0);
                self.stop(1);
                return;
            }
            Some(204 | 304) => None,
            _ if head_request => None,
            _ if is_chunked(&tx.response) => Some(Framing::Chunked(Chunked::default())),
            _ => match content_length(&tx.response) {
                Some(0) => None,
                Some(n) => Some(Framing::Length(n)),
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

    fn begin_body(&mut self, dir: usize, framing: Framing) {
        let side = &mut self.sides[dir];
        side.phase = Phase::Body(framing);
        side.kept.clear();
        side.body_seen = false;
        side.body_given = false;
    }

    /// Reads body bytes; returns the input not used.
    fn body<'a>(
        &mut self,
        dir: usize,
        input: &'a [u8],
        limits: &HttpLimits,
        on: &mut impl FnMut(&Transaction, HttpStage),
    ) -> &'a [u8] {
        let limit = if dir == 0 {
            limits.request_body
        } else {
            limits.response_body
        };
        let side = &mut self.sides[dir];
        let Phase::Body(framing) = &mut side.phase else {
            return input;
        };
        let kept = &mut side.kept;
        let mut keep = |bytes: &[u8]| {
            let room = limit.saturating_sub(kept.len());
            kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
        };
        let (rest, ended) = match framing {
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
            },
        };
        side.body_seen = true;
        let full = side.kept.len() >= limit;
        if ended {
            self.end_body(dir, limits, on);
            self.sides[dir].phase = Phase::Head;
        } else if full && !side.body_given {
            self.give_body(dir, limits, on);
        }
        rest
    }

    /// The body being read is complete: its stage is handed on (once) and
    /// the transaction side is done.
    fn end_body(
        &mut self,
        dir: usize,
        limits: &HttpLimits,
        on: &mut impl FnMut(&Transaction, HttpStage),
    ) {
        if !self.sides[dir].body_given {
            self.give_body(dir, limits, on);
        }
        if let Some(tx) = self.current(dir) {
            if dir == 0 {
                tx.request_done = true;
            } else {
                tx.response_done = true;
            }
        }
        self.sides[dir].kept = Vec::new();
        self.retire();
    }

    fn give_body(
        &mut self,
        dir: usize,
        limits: &HttpLimits,
        on: &mut impl FnMut(&Transaction, HttpStage),
    ) {
        let kept = std::mem::take(&mut self.sides[dir].kept);
        self.sides[dir].body_given = true;
        let Some(tx) = self.current(dir) else {
            return;
        };
        if dir == 0 {
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
            tx.response.body = body::decode(
                kept,
                &codings,
                limits.decompress_layers,
                limits.response_body,
            );
            if !tx.response.body.is_empty() {
                on(tx, HttpStage::ResponseBody);
            }
        }
    }

    /// The transaction whose `dir` side is being read.
    fn current(&mut self, dir: usize) -> Option<&mut Transaction> {
        if dir == 0 {
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
