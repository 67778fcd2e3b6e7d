//! Application-layer parsers over reassembled TCP streams.
//!
//! [`AppLayer`] is one worker's parser state, keyed by flow: it takes each
//! direction's in-order bytes and gaps, hands each HTTP transaction stage
//! to the caller as it completes (for inspection), and when the flow's
//! record is written it hands over what the parsers learnt (the
//! application protocol and its summary fields). Flows that turn out not to
//! speak a known protocol keep no state. Parsers live one per module:
//! [`http`], [`dns`], [`tls`].

pub mod dns;
pub mod http;
pub mod tls;

use std::collections::{HashMap, HashSet};

use rustc_hash::FxBuildHasher;

pub use dns::{DnsStream, DnsSummary};
pub use http::{HttpFlow, HttpLimits, HttpStage, HttpSummary, Transaction};
pub use tls::{TlsCertificate, TlsEvent, TlsFlow, TlsHello, TlsSummary};

use crate::reassembly::StreamId;

/// What the parsers learnt of one flow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppSummary {
    /// HTTP, when the flow speaks it.
    pub http: Option<HttpSummary>,
    /// DNS, when the flow carries it.
    pub dns: Option<DnsSummary>,
    /// TLS, when the flow opened with a handshake.
    pub tls: Option<TlsSummary>,
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
    /// A TLS hello.
    TlsHello(&'a TlsHello),
    /// The server's TLS certificate, sent in the clear (the leaf, parsed),
    /// and the chain as sent (DER, leaf first).
    TlsCertificate(&'a TlsCertificate, &'a [&'a [u8]]),
}

/// The stream direction that sent the message of an HTTP `stage`.
fn sender(client: usize, stage: HttpStage) -> usize {
    match stage {
        HttpStage::RequestHeaders | HttpStage::RequestBody => client,
        HttpStage::ResponseHeaders | HttpStage::ResponseBody => 1 - client,
    }
}

/// One worker's application-layer state.
#[derive(Debug, Default)]
pub struct AppLayer {
    http_limits: HttpLimits,
    flows: HashMap<u64, HttpFlow, FxBuildHasher>,
    /// Flow ids whose protocol is settled as not HTTP, until they end.
    settled: HashSet<u64, FxBuildHasher>,
    dns: HashMap<u64, DnsSummary, FxBuildHasher>,
    dns_streams: HashMap<u64, DnsStream, FxBuildHasher>,
    tls: HashMap<u64, (TlsFlow, TlsSummary), FxBuildHasher>,
}

impl AppLayer {
    /// Parsers keeping HTTP transactions within `http_limits`.
    pub fn new(http_limits: HttpLimits) -> Self {
        Self {
            http_limits,
            ..Self::default()
        }
    }

    /// One UDP datagram's payload (DNS when either port is 53); what rules
    /// inspect goes to `on_app`.
    pub fn datagram(
        &mut self,
        flow_id: u64,
        ports: (u16, u16),
        payload: &[u8],
        on_app: &mut impl FnMut(AppEvent<'_>),
    ) {
        if ports.0 != dns::PORT && ports.1 != dns::PORT {
            return;
        }
        let summary = self.dns.entry(flow_id).or_default();
        if !summary.message(payload, &mut |name, qtype| {
            on_app(AppEvent::DnsQuery { name, qtype })
        }) && !summary.is_dns()
        {
            self.dns.remove(&flow_id);
        }
    }

    /// In-order bytes at `offset` of one direction of a TCP flow; what
    /// rules inspect goes to `on_app`, with the stream direction that sent
    /// it.
    pub fn data(
        &mut self,
        stream: &StreamId,
        offset: u64,
        bytes: &[u8],
        on_app: &mut impl FnMut(AppEvent<'_>, usize),
    ) {
        let (flow_id, dir) = (stream.flow_id, stream.dir);
        let dns_port = stream.src.port() == dns::PORT || stream.dst.port() == dns::PORT;
        if dns_port && !self.flows.contains_key(&flow_id) && !http::looks_like_http(bytes) {
            let summary = self.dns.entry(flow_id).or_default();
            let parser = self.dns_streams.entry(flow_id).or_default();
            let on_query =
                &mut |name: &[u8], qtype: u16| on_app(AppEvent::DnsQuery { name, qtype }, dir);
            if !parser.data(dir, bytes, summary, on_query) && !summary.is_dns() {
                self.dns.remove(&flow_id);
            }
            return;
        }
        if offset == 0 && bytes.first() == Some(&tls::HANDSHAKE) {
            self.tls.entry(flow_id).or_default();
        }
        if let Some((parser, summary)) = self.tls.get_mut(&flow_id) {
            parser.data(dir, bytes, summary, &mut |event| match event {
                TlsEvent::Hello(hello) => on_app(AppEvent::TlsHello(hello), dir),
                TlsEvent::Certificate(cert, chain) => {
                    on_app(AppEvent::TlsCertificate(cert, chain), dir)
                }
            });
            return;
        }
        if self.settled.contains(&flow_id) {
            return;
        }
        let flow = self.flows.entry(flow_id).or_default();
        let client = flow.orient(dir, bytes);
        flow.data(dir, bytes, &self.http_limits, &mut |tx, stage| {
            on_app(AppEvent::Http(tx, stage), sender(client, stage))
        });
        if flow.is_done() && !flow.summary().is_http() {
            self.flows.remove(&flow_id);
            self.settled.insert(flow_id);
        }
    }

    /// Bytes of a direction were lost: its HTTP body in progress ends with
    /// what it has, and the direction is parsed no further.
    pub fn gap(&mut self, flow_id: u64, dir: usize, on_app: &mut impl FnMut(AppEvent<'_>, usize)) {
        if let Some(flow) = self.flows.get_mut(&flow_id) {
            let Some(client) = flow.client() else {
                return;
            };
            flow.close(dir, &self.http_limits, &mut |tx, stage| {
                on_app(AppEvent::Http(tx, stage), sender(client, stage))
            });
        }
    }

    /// What is known of a flow so far (for an interim record).
    pub fn summary(&self, flow_id: u64) -> AppSummary {
        AppSummary {
            http: self
                .flows
                .get(&flow_id)
                .map(HttpFlow::summary)
                .filter(|s| s.is_http())
                .cloned(),
            dns: self.dns.get(&flow_id).filter(|s| s.is_dns()).cloned(),
            tls: self
                .tls
                .get(&flow_id)
                .map(|(_, s)| s)
                .filter(|s| s.is_tls())
                .cloned(),
        }
    }

    /// Forgets a flow, returning what was known of it; HTTP bodies still
    /// being read (to the end of the connection) end and go to `on_app`.
    pub fn end_flow(
        &mut self,
        flow_id: u64,
        on_app: &mut impl FnMut(AppEvent<'_>, usize),
    ) -> AppSummary {
        if let Some(flow) = self.flows.get_mut(&flow_id) {
            if let Some(client) = flow.client() {
                for dir in 0..2 {
                    flow.close(dir, &self.http_limits, &mut |tx, stage| {
                        on_app(AppEvent::Http(tx, stage), sender(client, stage))
                    });
                }
            }
        }
        self.settled.remove(&flow_id);
        self.dns_streams.remove(&flow_id);
        AppSummary {
            http: self
                .flows
                .remove(&flow_id)
                .map(|f| f.summary().clone())
                .filter(HttpSummary::is_http),
            dns: self.dns.remove(&flow_id).filter(DnsSummary::is_dns),
            tls: self
                .tls
                .remove(&flow_id)
                .map(|(_, s)| s)
                .filter(TlsSummary::is_tls),
        }
    }
}
