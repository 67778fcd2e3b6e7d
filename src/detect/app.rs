//! Application rules: which buffers of an [`AppEvent`] a rule reads, at
//! which event it is evaluated, and its verification over them.
//!
//! DNS rules are evaluated on each question of a request; TLS rules on the
//! ClientHello, or the ServerHello when they read `ja3s.*`. For HTTP, a
//! rule's direction follows from its buffers, as in Suricata: a response
//! buffer (`http.stat_code` ...) makes it a response rule (request buffers
//! are then read from the same transaction's request), a request buffer a
//! request rule; with only buffers of either message (`http.header`,
//! `file_data` ...) `flow:to_server`/`to_client` decides, and without it the
//! rule is evaluated on both messages. It is evaluated once per transaction
//! and message, when that message's headers are read, or its body when it
//! reads one.
//!
//! Matches outside the application buffers (plain `content` beside
//! `http.uri`, say) are checked against the payload that carried the event:
//! the datagram, or the recent bytes of the stream direction.

use std::net::SocketAddr;

use crate::applayer::{AppEvent, HttpStage, Transaction};
use crate::decode::{ip_proto, Carrier};
use crate::reassembly::StreamId;

use super::matcher::{PayloadProgram, PcreError};
use std::borrow::Cow;

use super::rules::{Buffer, DnsBuffer, Dsize, HttpBuffer, Inspected, Match, Rule, Side, TlsBuffer};

/// The message a rule is evaluated on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// The request (to server).
    Request,
    /// The response (to client).
    Response,
}

/// Who sent what an event saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender {
    /// The flow.
    pub flow_id: u64,
    /// The direction (0: from the flow's initiator).
    pub dir: usize,
    /// Its IP protocol.
    pub proto: u8,
    /// The sending end.
    pub src: SocketAddr,
    /// The receiving end.
    pub dst: SocketAddr,
    /// The flow's VLAN tags and tunnel.
    pub carrier: Carrier,
}

impl Sender {
    /// The sender of a TCP stream's bytes.
    pub fn of_stream(stream: &StreamId) -> Self {
        Self {
            flow_id: stream.flow_id,
            dir: stream.dir,
            proto: ip_proto::TCP,
            src: stream.src,
            dst: stream.dst,
            carrier: stream.carrier,
        }
    }
}

/// Where in an application's life a rule is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AppStage {
    /// An HTTP transaction stage.
    Http(HttpStage),
    /// A DNS question.
    DnsQuery,
    /// A DNS response.
    DnsAnswer,
    /// A TLS ClientHello.
    ClientHello,
    /// A TLS ServerHello.
    ServerHello,
    /// A TLS server certificate.
    Certificate,
}

impl AppEvent<'_> {
    /// The stage this event is.
    pub fn stage(&self) -> AppStage {
        match self {
            AppEvent::Http(_, stage) => AppStage::Http(*stage),
            AppEvent::DnsQuery { .. } => AppStage::DnsQuery,
            AppEvent::DnsAnswer(_) => AppStage::DnsAnswer,
            AppEvent::TlsHello(hello) if hello.from_client => AppStage::ClientHello,
            AppEvent::TlsHello(_) => AppStage::ServerHello,
            AppEvent::TlsCertificate(..) => AppStage::Certificate,
        }
    }

    /// True when what the event saw was sent by the client.
    pub fn to_server(&self) -> bool {
        match self.stage() {
            AppStage::Http(stage) => message_of(stage) == Message::Request,
            AppStage::DnsQuery | AppStage::ClientHello => true,
            AppStage::DnsAnswer | AppStage::ServerHello | AppStage::Certificate => false,
        }
    }

    /// The bytes a match reads at this event: the buffer, transformed;
    /// `None` when the buffer is absent or empty. `tls.certs` gives the
    /// chain's certificates one after the other.
    pub fn inspected(&self, inspected: &Inspected) -> Option<Cow<'_, [u8]>> {
        match (self, inspected.buffer) {
            (AppEvent::TlsCertificate(_, chain), Buffer::Tls(TlsBuffer::Certs)) => {
                let all = chain.concat();
                return (!all.is_empty()).then(|| Cow::Owned(inspected.transforms.apply(&all)));
            }
            (AppEvent::Http(tx, stage), Buffer::Http(HttpBuffer::Start)) => {
                let m = match message_of(*stage) {
                    Message::Request => &tx.request,
                    Message::Response => &tx.response,
                };
                if m.start_line.is_empty() {
                    return None;
                }
                let start = [&m.start_line[..], b"\r\n", &m.raw_headers].concat();
                return Some(Cow::Owned(inspected.transforms.apply(&start)));
            }
            _ => {}
        }
        let bytes = self.bytes(inspected.buffer)?;
        Some(inspected.transforms.applied(bytes))
    }

    /// Calls `scan` with what a prefilter scans for `inspected` at this
    /// event: each certificate of `tls.certs`, transformed (its matches
    /// hold within one certificate, and their offsets count from its
    /// start), else what [`Self::inspected`] gives.
    pub fn each_item(&self, inspected: &Inspected, mut scan: impl FnMut(&[u8])) {
        match (self, inspected.buffer) {
            (AppEvent::TlsCertificate(_, chain), Buffer::Tls(TlsBuffer::Certs)) => chain
                .iter()
                .filter(|der| !der.is_empty())
                .for_each(|der| scan(&inspected.transforms.applied(der))),
            _ => {
                if let Some(bytes) = self.inspected(inspected) {
                    scan(&bytes);
                }
            }
        }
    }

    /// The bytes of `buffer` at this event; `None` when absent or empty.
    pub fn bytes(&self, buffer: Buffer) -> Option<&[u8]> {
        match (self, buffer) {
            (AppEvent::Http(tx, stage), Buffer::Http(b)) => bytes(tx, b, message_of(*stage)),
            (AppEvent::DnsQuery { name, .. }, Buffer::Dns(DnsBuffer::Query)) => present(name),
            (AppEvent::TlsHello(hello), Buffer::Tls(b)) => match (hello.from_client, b) {
                (true, TlsBuffer::Sni) => hello.sni.as_deref().and_then(present),
                (true, TlsBuffer::Ja3Hash) | (false, TlsBuffer::Ja3sHash) => {
                    present(hello.fingerprint_hash.as_bytes())
                }
                (true, TlsBuffer::Ja3String) | (false, TlsBuffer::Ja3sString) => {
                    present(hello.fingerprint.as_bytes())
                }
                _ => None,
            },
            (AppEvent::TlsCertificate(cert, _), Buffer::Tls(b)) => present(match b {
                TlsBuffer::CertSubject => cert.subject.as_bytes(),
                TlsBuffer::CertIssuer => cert.issuer.as_bytes(),
                TlsBuffer::CertSerial => cert.serial.as_bytes(),
                TlsBuffer::CertFingerprint => cert.sha1.as_bytes(),
                _ => b"",
            }),
            _ => None,
        }
    }
}

/// An application rule's buffers and matches.
#[derive(Debug, Clone)]
pub struct AppProgram {
    parts: Vec<(Inspected, PayloadProgram)>,
    payload: Option<PayloadProgram>,
    urilen: Option<(Dsize, bool)>,
    stages: [Option<AppStage>; 2],
}

impl AppProgram {
    /// The program of an application rule ([`Rule::is_app`]).
    pub fn new(rule: &Rule) -> Result<Self, PcreError> {
        let mut inspected: Vec<Inspected> = Vec::new();
        for m in &rule.matches {
            if m.buffer() != Buffer::Payload && !inspected.contains(m.inspected()) {
                inspected.push(m.inspected().clone());
            }
        }
        let payload: Vec<Match> = rule
            .matches
            .iter()
            .filter(|m| m.buffer() == Buffer::Payload)
            .cloned()
            .collect();
        let payload = if payload.is_empty() {
            None
        } else {
            Some(PayloadProgram::new(&payload)?)
        };
        let mut parts = Vec::with_capacity(inspected.len());
        for each in &inspected {
            let matches: Vec<Match> = rule
                .matches
                .iter()
                .filter(|m| m.inspected() == each)
                .cloned()
                .collect();
            parts.push((each.clone(), PayloadProgram::new(&matches)?));
        }
        let kinds: Vec<Buffer> = inspected.iter().map(|i| i.buffer).collect();
        let stages = if kinds.iter().any(|k| matches!(k, Buffer::Dns(_))) {
            [Some(AppStage::DnsQuery), None]
        } else if kinds.iter().any(|k| matches!(k, Buffer::Tls(_))) {
            let has = |test: fn(TlsBuffer) -> bool| {
                kinds
                    .iter()
                    .any(|k| matches!(k, Buffer::Tls(t) if test(*t)))
            };
            let stage = if has(TlsBuffer::from_certificate) {
                AppStage::Certificate
            } else if has(TlsBuffer::from_server) {
                AppStage::ServerHello
            } else {
                AppStage::ClientHello
            };
            [Some(stage), None]
        } else {
            let http: Vec<HttpBuffer> = kinds
                .iter()
                .filter_map(|k| match k {
                    Buffer::Http(b) => Some(*b),
                    _ => None,
                })
                .collect();
            http_stages(rule, &http)
        };
        Ok(Self {
            parts,
            payload,
            urilen: rule.urilen,
            stages,
        })
    }

    /// The stages the rule is evaluated at.
    pub fn stages(&self) -> impl Iterator<Item = AppStage> + '_ {
        self.stages.iter().flatten().copied()
    }

    /// True when the rule is evaluated at `stage`.
    pub fn runs_at(&self, stage: AppStage) -> bool {
        self.stages.contains(&Some(stage))
    }

    /// Runs the matches over what `event` saw (and `payload`, the bytes
    /// that carried it): the end of the last match and the buffer it is
    /// in, when all match.
    pub fn run<'e>(
        &self,
        event: &'e AppEvent<'_>,
        payload: Option<&[u8]>,
    ) -> Option<(usize, Cow<'e, [u8]>)> {
        if let Some(program) = &self.payload {
            program.run(payload?)?;
        }
        if let Some((size, raw)) = self.urilen {
            let AppEvent::Http(tx, _) = event else {
                return None;
            };
            let uri = if raw { &tx.uri_raw } else { &tx.uri };
            if tx.method.is_empty() || !size.matches(uri.len() as u32) {
                return None;
            }
        }
        let mut last = (0, Cow::Borrowed(&[][..]));
        for (inspected, program) in &self.parts {
            last = match (event, inspected.buffer) {
                // A multi-buffer: the matches must hold in one certificate.
                (AppEvent::TlsCertificate(_, chain), Buffer::Tls(TlsBuffer::Certs)) => {
                    chain.iter().find_map(|der| {
                        let bytes = inspected.transforms.applied(der);
                        Some((program.run(&bytes)?, bytes))
                    })?
                }
                _ => {
                    let bytes = event.inspected(inspected)?;
                    (program.run(&bytes)?, bytes)
                }
            };
        }
        Some(last)
    }
}

/// The transaction stages an HTTP rule reading `buffers` is evaluated at.
fn http_stages(rule: &Rule, buffers: &[HttpBuffer]) -> [Option<AppStage>; 2] {
    let request_only = rule.urilen.is_some() || buffers.iter().any(|b| b.side() == Side::Request);
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
    let on_request = request.then(|| {
        AppStage::Http(if body_on(Message::Request) {
            HttpStage::RequestBody
        } else {
            HttpStage::RequestHeaders
        })
    });
    let on_response = response.then(|| {
        AppStage::Http(if body_on(Message::Response) {
            HttpStage::ResponseBody
        } else {
            HttpStage::ResponseHeaders
        })
    });
    [on_request, on_response]
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
fn bytes(tx: &Transaction, buffer: HttpBuffer, message: Message) -> Option<&[u8]> {
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
        // A header sent empty is an empty buffer (`bsize:0` matches it).
        HttpBuffer::UserAgent => m.header(b"user-agent"),
        HttpBuffer::Host => present(&tx.host),
        HttpBuffer::HostRaw => m.header(b"host"),
        HttpBuffer::StatCode => present(&tx.status),
        HttpBuffer::StatMsg => present(&tx.status_message),
        HttpBuffer::Header => present(&m.header_block),
        HttpBuffer::HeaderRaw => present(&m.raw_headers),
        // Made of two parts: put together by `AppEvent::inspected`.
        HttpBuffer::Start => None,
        HttpBuffer::HeaderNames => present(&m.header_names),
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
        HttpBuffer::Named(name) => m.header(name.as_bytes()),
    }
}
