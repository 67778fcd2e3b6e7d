//! HTTP rules: which transaction buffers a rule reads, at which stage of a
//! transaction it is evaluated, and its verification over them.
//!
//! A rule's direction follows from its buffers, as in Suricata: a response
//! buffer (`http.stat_code` ...) makes it a response rule (request buffers
//! are then read from the same transaction's request), a request buffer a
//! request rule; with only buffers of either message (`http.header`,
//! `file_data` ...) `flow:to_server`/`to_client` decides, and without it the
//! rule is evaluated on both messages. It is evaluated once per transaction
//! and message, when that message's headers are read, or its body when it
//! reads one.

use crate::applayer::{HttpStage, Transaction};

use super::matcher::{PayloadProgram, PcreError};
use super::rules::{Dsize, HttpBuffer, Match, Rule, Side};

/// The message a rule is evaluated on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// The request (to server).
    Request,
    /// The response (to client).
    Response,
}

/// An HTTP rule's buffers and matches.
#[derive(Debug, Clone)]
pub struct HttpProgram {
    parts: Vec<(HttpBuffer, PayloadProgram)>,
    urilen: Option<(Dsize, bool)>,
    on_request: Option<HttpStage>,
    on_response: Option<HttpStage>,
}

impl HttpProgram {
    /// The program of an HTTP rule (one naming HTTP buffers or `urilen`).
    pub fn new(rule: &Rule) -> Result<Self, PcreError> {
        let mut buffers: Vec<HttpBuffer> = Vec::new();
        for m in &rule.matches {
            if let super::rules::Buffer::Http(b) = m.buffer() {
                if !buffers.contains(&b) {
                    buffers.push(b);
                }
            }
        }
        let mut parts = Vec::with_capacity(buffers.len());
        for buffer in &buffers {
            let matches: Vec<Match> = rule
                .matches
                .iter()
                .filter(|m| m.buffer() == super::rules::Buffer::Http(*buffer))
                .cloned()
                .collect();
            parts.push((*buffer, PayloadProgram::new(&matches)?));
        }
        let request_only =
            rule.urilen.is_some() || buffers.iter().any(|b| b.side() == Side::Request);
        let response_only = buffers.iter().any(|b| b.side() == Side::Response);
        let (request, response) = match (response_only, request_only, rule.flow.to_server) {
            (true, _, Some(true)) => (false, false),
            (true, _, _) => (false, true),
            (false, true, Some(false)) => (false, false),
            (false, true, _) => (true, false),
            (false, false, Some(true)) => (true, false),
            (false, false, Some(false)) => (false, true),
            (false, false, None) => (true, true),
        };
        let body_on = |message: Message| {
            buffers.iter().any(|b| match message {
                Message::Request => b.is_body(),
                Message::Response => *b == HttpBuffer::Body,
            })
        };
        Ok(Self {
            on_request: request.then(|| {
                if body_on(Message::Request) {
                    HttpStage::RequestBody
                } else {
                    HttpStage::RequestHeaders
                }
            }),
            on_response: response.then(|| {
                if body_on(Message::Response) {
                    HttpStage::ResponseBody
                } else {
                    HttpStage::ResponseHeaders
                }
            }),
            parts,
            urilen: rule.urilen,
        })
    }

    /// True when the rule is evaluated at `stage`.
    pub fn runs_at(&self, stage: HttpStage) -> bool {
        self.on_request == Some(stage) || self.on_response == Some(stage)
    }

    /// Runs the matches over `tx` as seen at `stage`: the end of the last
    /// match and the buffer it is in, when all match.
    pub fn run<'t>(&self, tx: &'t Transaction, stage: HttpStage) -> Option<(usize, &'t [u8])> {
        let message = message_of(stage);
        if let Some((size, raw)) = self.urilen {
            let uri = if raw { &tx.uri_raw } else { &tx.uri };
            if tx.method.is_empty() || !size.matches(uri.len() as u32) {
                return None;
            }
        }
        let mut last = (0, &[][..]);
        for (buffer, program) in &self.parts {
            let bytes = bytes(tx, *buffer, message)?;
            last = (program.run(bytes)?, bytes);
        }
        Some(last)
    }
}

/// The message a stage belongs to.
pub fn message_of(stage: HttpStage) -> Message {
    match stage {
        HttpStage::RequestHeaders | HttpStage::RequestBody => Message::Request,
        HttpStage::ResponseHeaders | HttpStage::ResponseBody => Message::Response,
    }
}

fn present(bytes: &[u8]) -> Option<&[u8]> {
    (!bytes.is_empty()).then_some(bytes)
}

/// The bytes of `buffer` in `tx` for a rule evaluated on `message` (buffers
/// of either message are read from that one); `None` when absent or empty.
pub fn bytes(tx: &Transaction, buffer: HttpBuffer, message: Message) -> Option<&[u8]> {
    let on_request = match buffer.side() {
        Side::Request => true,
        Side::Response => false,
        Side::Either => message == Message::Request,
    };
    let m = if on_request {
        &tx.request
    } else {
        &tx.response
    };
    match buffer {
        HttpBuffer::Method => present(&tx.method),
        HttpBuffer::Uri => present(&tx.uri),
        HttpBuffer::UriRaw => present(&tx.uri_raw),
        HttpBuffer::RequestLine | HttpBuffer::ResponseLine => present(&m.start_line),
        HttpBuffer::RequestBody | HttpBuffer::Body => present(&m.body),
        HttpBuffer::UserAgent => m.header(b"user-agent").and_then(present),
        HttpBuffer::Host => present(&tx.host),
        HttpBuffer::HostRaw => m.header(b"host").and_then(present),
        HttpBuffer::StatCode => present(&tx.status),
        HttpBuffer::StatMsg => present(&tx.status_message),
        HttpBuffer::Header => present(&m.header_block),
        HttpBuffer::HeaderRaw => present(&m.raw_headers),
        HttpBuffer::Cookie => m
            .header(if on_request {
                b"cookie".as_slice()
            } else {
                b"set-cookie"
            })
            .and_then(present),
        HttpBuffer::Protocol => present(if on_request {
            &tx.request_protocol
        } else {
            &tx.response_protocol
        }),
        HttpBuffer::Named(name) => m.header(name.as_bytes()).and_then(present),
    }
}
