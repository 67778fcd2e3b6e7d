//! Application-layer parsers over reassembled TCP streams.
//!
//! [`AppLayer`] is one worker's parsers; what they keep about a flow is its
//! [`AppFlow`], which lives in the flow's slot. The parsers take each
//! direction's in-order bytes and gaps, hand each HTTP transaction stage
//! to the caller as it completes (for inspection), and when the flow's
//! record is written hand over what they learnt (the application protocol
//! and its summary fields). Flows that turn out not to speak a known
//! protocol keep no state. Parsers live one per module: [`http`], [`dns`],
//! [`tls`]; [`service`] recognises the high-risk servers a flow talks to;
//! [`records`] finds where a TLS connection's encrypted part begins.

pub mod dns;
pub mod http;
pub mod records;
pub mod service;
pub mod tls;

pub use dns::{AnswerRecord, DnsAnswer, DnsMessage, DnsStream, DnsSummary};
pub use http::{HttpFlow, HttpLimited, HttpLimits, HttpStage, HttpSummary, Transaction};
pub use service::{Service, ServiceFlow, ServiceSummary};
pub use tls::{TlsCertificate, TlsEvent, TlsFlow, TlsHello, TlsSummary};

use crate::reassembly::StreamId;
use records::Records;

/// What the parsers learnt of one flow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppSummary {
    /// HTTP, when the flow speaks it.
    pub http: Option<HttpSummary>,
    /// DNS, when the flow carries it.
    pub dns: Option<DnsSummary>,
    /// TLS, when the flow opened with a handshake.
    pub tls: Option<TlsSummary>,
    /// The service its server is, when recognised.
    pub service: Option<ServiceSummary>,
}

impl AppSummary {
    /// The application protocol's name, when one was recognised.
    pub fn protocol(&self) -> Option<&'static str> {
        if self.http.is_some() {
            Some("http")
        } else if self.dns.is_some() {
            Some("dns")
        } else if self.tls.is_some() {
            Some("tls")
        } else {
            None
        }
    }
}

/// Something a parser saw that rules inspect.
#[derive(Debug, Clone, Copy)]
pub enum AppEvent<'a> {
    /// An HTTP transaction reached a stage.
    Http(&'a Transaction, HttpStage),
    /// A DNS request asked for `name`, of record type `qtype`.
    DnsQuery {
        /// The question name.
        name: &'a [u8],
        /// Its type (1 A, 16 TXT ...).
        qtype: u16,
    },
    /// A DNS response.
    DnsAnswer(&'a DnsAnswer),
    /// A TLS hello.
    TlsHello(&'a TlsHello),
    /// The server's TLS certificate, sent in the clear (the leaf, parsed),
    /// and the chain as sent (DER, leaf first).
    TlsCertificate(&'a TlsCertificate, &'a [&'a [u8]]),
}

/// The event of a DNS message.
fn dns_event(message: DnsMessage<'_>) -> AppEvent<'_> {
    match message {
        DnsMessage::Query { name, qtype } => AppEvent::DnsQuery { name, qtype },
        DnsMessage::Answer(answer) => AppEvent::DnsAnswer(answer),
    }
}

/// The stream direction that sent the message of an HTTP `stage`.
fn sender(client: usize, stage: HttpStage) -> usize {
    match stage {
        HttpStage::RequestHeaders | HttpStage::RequestBody => client,
        HttpStage::ResponseHeaders | HttpStage::ResponseBody => 1 - client,
    }
}

/// Feeds the service recogniser, made at a flow's first bytes when they
/// may be a service's.
fn read_service(flow: &mut AppFlow, dir: usize, offset: u64, bytes: &[u8]) {
    let service = match flow.service.as_deref_mut() {
        Some(service) => service,
        None if offset == 0 && service::wire::candidate(bytes) => {
            flow.service.insert(Box::default())
        }
        None => {
            flow.service_settled = true;
            return;
        }
    };
    service.data(dir, offset, bytes);
    flow.service_settled = service.is_done();
}

/// What the parsers keep about one flow, in the flow's slot: nothing until
/// its bytes look like a protocol they read.
#[derive(Debug, Default)]
pub struct AppFlow {
    http: Option<Box<HttpFlow>>,
    /// The flow's protocol is settled as not HTTP.
    settled: bool,
    dns: Option<Box<DnsSummary>>,
    dns_stream: Option<Box<DnsStream>>,
    tls: Option<Box<(TlsFlow, TlsSummary)>>,
    /// The TLS record walk, for flows whose first bytes look like records.
    records: Option<Box<Records>>,
    /// A direction's first bytes were not TLS records: no walk.
    not_records: bool,
    service: Option<Box<ServiceFlow>>,
    /// The service recogniser reads no more bytes.
    service_settled: bool,
}

impl AppFlow {
    /// What is known of the flow so far (for an interim record).
    pub fn summary(&self) -> AppSummary {
        AppSummary {
            http: self
                .http
                .as_deref()
                .map(HttpFlow::summary)
                .filter(|s| s.is_http())
                .cloned(),
            dns: self.dns.as_deref().filter(|s| s.is_dns()).cloned(),
            tls: self
                .tls
                .as_deref()
                .map(|(_, s)| s)
                .filter(|s| s.is_tls())
                .cloned(),
            service: self
                .service
                .as_deref()
                .and_then(ServiceFlow::summary)
                .cloned(),
        }
    }
}

/// One worker's application-layer parsers: their limits; what they keep
/// per flow is the flow's [`AppFlow`].
#[derive(Debug, Default)]
pub struct AppLayer {
    http_limits: HttpLimits,
    stats: AppStats,
}

/// What the parsers gave up at their limits, over the flows that ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppStats {
    /// HTTP header blocks past the header limit.
    pub http_heads: u64,
    /// HTTP response bodies whose decoding stopped at the body limit.
    pub http_decoded_bodies: u64,
}

impl AppStats {
    /// Adds what one flow's HTTP parser gave up.
    fn count(&mut self, limited: HttpLimited) {
        self.http_heads += u64::from(limited.heads);
        self.http_decoded_bodies += u64::from(limited.decoded_bodies);
    }

    /// Adds another worker's counters.
    pub fn merge(&mut self, other: &AppStats) {
        self.http_heads += other.http_heads;
        self.http_decoded_bodies += other.http_decoded_bodies;
    }
}

impl AppLayer {
    /// Parsers keeping HTTP transactions within `http_limits`.
    pub fn new(http_limits: HttpLimits) -> Self {
        Self {
            http_limits,
            stats: AppStats::default(),
        }
    }

    /// What the parsers gave up at their limits, over the flows that ended.
    pub fn stats(&self) -> AppStats {
        self.stats
    }

    /// How many of the in-order `bytes` at `offset` of direction `dir` of a
    /// TCP flow come before its encrypted part: all of them unless the flow
    /// is TLS and its application data began, none after that.
    pub fn clear_prefix(
        &mut self,
        flow: &mut AppFlow,
        dir: usize,
        offset: u64,
        bytes: &[u8],
    ) -> usize {
        if flow.records.is_none() {
            if flow.not_records || bytes.is_empty() {
                return bytes.len();
            }
            if offset != 0 || !Records::looks_like_tls(bytes) {
                flow.not_records = true;
                return bytes.len();
            }
            flow.records = Some(Box::default());
        }
        flow.records
            .as_deref_mut()
            .map_or(bytes.len(), |records| records.data(dir, offset, bytes))
    }

    /// One UDP datagram's payload of `flow` (DNS when either port is 53);
    /// what rules inspect goes to `on_app`.
    pub fn datagram(
        &mut self,
        flow: &mut AppFlow,
        ports: (u16, u16),
        payload: &[u8],
        on_app: &mut impl FnMut(AppEvent<'_>),
    ) {
        if ports.0 != dns::PORT && ports.1 != dns::PORT {
            return;
        }
        let summary = flow.dns.get_or_insert_with(Box::default);
        if !summary.message(payload, &mut |message| on_app(dns_event(message))) && !summary.is_dns()
        {
            flow.dns = None;
        }
    }

    /// In-order bytes at `offset` of one direction of a TCP flow; what
    /// rules inspect goes to `on_app`, with the stream direction that sent
    /// it.
    pub fn data(
        &mut self,
        flow: &mut AppFlow,
        stream: &StreamId,
        offset: u64,
        bytes: &[u8],
        on_app: &mut impl FnMut(AppEvent<'_>, usize),
    ) {
        let dir = stream.dir;
        if !flow.service_settled {
            read_service(flow, dir, offset, bytes);
        }
        let dns_port = stream.src.port() == dns::PORT || stream.dst.port() == dns::PORT;
        if dns_port && flow.http.is_none() && !http::looks_like_http(bytes) {
            let summary = flow.dns.get_or_insert_with(Box::default);
            let parser = flow.dns_stream.get_or_insert_with(Box::default);
            let on_message = &mut |message: DnsMessage<'_>| on_app(dns_event(message), dir);
            if !parser.data(dir, bytes, summary, on_message) && !summary.is_dns() {
                flow.dns = None;
            }
            return;
        }
        if offset == 0 && bytes.first() == Some(&tls::HANDSHAKE) && flow.tls.is_none() {
            flow.tls = Some(Box::default());
        }
        if let Some(tls) = flow.tls.as_deref_mut() {
            let (parser, summary) = tls;
            parser.data(dir, bytes, summary, &mut |event| match event {
                TlsEvent::Hello(hello) => on_app(AppEvent::TlsHello(hello), dir),
                TlsEvent::Certificate(cert, chain) => {
                    on_app(AppEvent::TlsCertificate(cert, chain), dir)
                }
            });
            return;
        }
        if flow.settled {
            return;
        }
        let http = flow.http.get_or_insert_with(Box::default);
        let client = http.orient(dir, bytes);
        let service = &mut flow.service;
        http.data(dir, bytes, &self.http_limits, &mut |tx, stage| {
            service::http(service, tx, stage, client);
            on_app(AppEvent::Http(tx, stage), sender(client, stage))
        });
        if http.is_done() && !http.summary().is_http() {
            self.stats.count(http.limited());
            flow.http = None;
            flow.settled = true;
        }
    }

    /// Bytes of a direction were lost: its HTTP body in progress ends with
    /// what it has, and the direction is parsed no further.
    pub fn gap(
        &mut self,
        flow: &mut AppFlow,
        dir: usize,
        on_app: &mut impl FnMut(AppEvent<'_>, usize),
    ) {
        flow.service_settled = true;
        if let Some(records) = flow.records.as_deref_mut() {
            records.gap(dir);
        }
        if let Some(http) = flow.http.as_deref_mut() {
            let Some(client) = http.client() else {
                return;
            };
            let service = &mut flow.service;
            http.close(dir, &self.http_limits, &mut |tx, stage| {
                service::http(service, tx, stage, client);
                on_app(AppEvent::Http(tx, stage), sender(client, stage))
            });
        }
    }

    /// The flow ended: HTTP bodies still being read (to the end of the
    /// connection) end and go to `on_app`; returns what was known of it.
    pub fn end_flow(
        &mut self,
        flow: &mut AppFlow,
        on_app: &mut impl FnMut(AppEvent<'_>, usize),
    ) -> AppSummary {
        if let Some(http) = flow.http.as_deref_mut() {
            if let Some(client) = http.client() {
                let service = &mut flow.service;
                for dir in 0..2 {
                    http.close(dir, &self.http_limits, &mut |tx, stage| {
                        service::http(service, tx, stage, client);
                        on_app(AppEvent::Http(tx, stage), sender(client, stage))
                    });
                }
            }
            self.stats.count(http.limited());
        }
        flow.summary()
    }
}
