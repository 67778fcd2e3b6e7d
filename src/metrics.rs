//! Prometheus metrics of a live run: the text exposition and the HTTP
//! endpoint that serves it at `/metrics`.
//!
//! A scraper that asks for OpenMetrics (`Accept: application/openmetrics-text`,
//! as Prometheus does) gets OpenMetrics 1.0; any other gets Prometheus' text
//! format 0.0.4 (what `promtool check metrics` reads). The endpoint's thread
//! never touches the pipeline: each scrape is handed over a channel to the
//! run's control loop, which renders what the workers and the writer
//! published (every 100 ms, off the packet path) and sends the text back.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};

/// How long a scrape waits for the control loop before it gets a 503.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
const OPEN_METRICS: &str = "application/openmetrics-text";
const OPEN_METRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics endpoint could not be started.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// `metrics.listen` is no socket address.
    #[error("metrics.listen {0:?}: expected IP:PORT, e.g. 127.0.0.1:9108")]
    Address(String),
    /// The address could not be bound.
    #[error("metrics.listen {address}: {reason}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        reason: String,
    },
}

/// Labels of one sample: name and value.
pub type Labels = Vec<(&'static str, String)>;

/// A metrics text being written, family by family.
#[derive(Debug)]
pub struct Exposition {
    text: String,
    open_metrics: bool,
}

impl Exposition {
    /// An empty text in OpenMetrics or in Prometheus' 0.0.4 format.
    pub fn new(open_metrics: bool) -> Self {
        Self {
            text: String::new(),
            open_metrics,
        }
    }

    /// A counter family; `name` is without the `_total` its samples carry.
    pub fn counter(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Labels, u64)>,
    ) {
        let family = if self.open_metrics {
            name.to_owned()
        } else {
            format!("{name}_total")
        };
        self.header(&family, help, "counter");
        for (labels, value) in samples {
            self.sample(&format!("{name}_total"), &labels, &value.to_string());
        }
    }

    /// A gauge family.
    pub fn gauge(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Labels, f64)>,
    ) {
        self.header(name, help, "gauge");
        for (labels, value) in samples {
            let value = if value.is_finite() { value } else { 0.0 };
            self.sample(name, &labels, &value.to_string());
        }
    }

    /// The text, ended as its format wants.
    pub fn finish(mut self) -> String {
        if self.open_metrics {
            self.text.push_str("# EOF\n");
        }
        self.text
    }

    fn header(&mut self, family: &str, help: &str, kind: &str) {
        let mut help = help.replace('\\', "\\\\").replace('\n', "\\n");
        if self.open_metrics {
            help = help.replace('"', "\\\"");
        }
        let _ = writeln!(self.text, "# HELP {family} {help}");
        let _ = writeln!(self.text, "# TYPE {family} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &Labels, value: &str) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let value = value
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.text, "{label}=\"{value}\"");
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }
}

/// One scrape waiting for its text.
#[derive(Debug)]
pub struct Scrape {
    /// The scraper asked for OpenMetrics.
    pub open_metrics: bool,
    reply: Sender<String>,
}

impl Scrape {
    /// Sends the rendered text to the waiting scraper.
    pub fn answer(self, text: String) {
        // The scraper may have given up; nothing to do then.
        let _ = self.reply.send(text);
    }
}

/// The HTTP endpoint; stops when dropped.
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    address: SocketAddr,
    stopping: Arc<AtomicBool>,
    /// A copy of the scrapes' receiver, to turn away those left at the end.
    pending: Receiver<Scrape>,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("address", &self.address)
            .finish()
    }
}

impl MetricsServer {
    /// Listens on `listen` (`IP:PORT`); scrapes arrive on the receiver.
    pub fn start(listen: &str) -> Result<(Self, Receiver<Scrape>), MetricsError> {
        let address: SocketAddr = listen
            .parse()
            .map_err(|_| MetricsError::Address(listen.to_owned()))?;
        let server = tiny_http::Server::http(address).map_err(|e| MetricsError::Bind {
            address,
            reason: e.to_string(),
        })?;
        let address = server.server_addr().to_ip().unwrap_or(address);
        let server = Arc::new(server);
        let (scrapes, receiver) = bounded(4);
        let serving = Arc::clone(&server);
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&stopping);
        let thread = std::thread::Builder::new()
            .name("mirador-metrics".into())
            .spawn(move || serve(&serving, &scrapes, &stop))
            .map_err(|e| MetricsError::Bind {
                address,
                reason: e.to_string(),
            })?;
        Ok((
            Self {
                server,
                thread: Some(thread),
                address,
                stopping,
                pending: receiver.clone(),
            },
            receiver,
        ))
    }

    /// The address bound (the port chosen when `listen` asked for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            // Scrapes still waiting get their 503 at once rather than at
            // their timeout.
            while !thread.is_finished() {
                while self.pending.try_recv().is_ok() {}
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = thread.join();
        }
    }
}

fn serve(server: &tiny_http::Server, scrapes: &Sender<Scrape>, stopping: &AtomicBool) {
    let mut failed = false;
    loop {
        let request = match server.recv() {
            Ok(request) => request,
            Err(_) if stopping.load(Ordering::Relaxed) => return,
            Err(error) => {
                if !failed {
                    tracing::error!(
                        "metrics endpoint: {error}; scrapes may fail until it recovers"
                    );
                    failed = true;
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        let path = request.url().split('?').next().unwrap_or("");
        if path != "/metrics" || *request.method() != tiny_http::Method::Get {
            let _ = request.respond(
                tiny_http::Response::from_string("not found: try /metrics\n").with_status_code(404),
            );
            continue;
        }
        let open_metrics = request
            .headers()
            .iter()
            .any(|h| h.field.equiv("Accept") && h.value.as_str().contains(OPEN_METRICS));
        let (reply, text) = bounded(1);
        let answered = scrapes
            .send_timeout(
                Scrape {
                    open_metrics,
                    reply,
                },
                SCRAPE_TIMEOUT,
            )
            .ok()
            .and_then(|()| text.recv_timeout(SCRAPE_TIMEOUT).ok());
        let response = match answered {
            Some(body) => {
                let kind = if open_metrics {
                    OPEN_METRICS_TYPE
                } else {
                    TEXT_TYPE
                };
                let header = tiny_http::Header::from_bytes("Content-Type", kind)
                    .expect("a fixed header is valid");
                tiny_http::Response::from_string(body).with_header(header)
            }
            None => {
                tiny_http::Response::from_string("the run is not answering\n").with_status_code(503)
            }
        };
        let _ = request.respond(response);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_text(open_metrics: bool) -> String {
        let mut text = Exposition::new(open_metrics);
        text.counter(
            "mirador_rx_packets",
            "Packets received.",
            [(vec![("port", "net\"pcap0".to_owned())], 7)],
        );
        text.gauge("mirador_open_flows", "Flows open.\nNow.", [(vec![], 1.5)]);
        text.finish()
    }

    #[test]
    fn prometheus_text_names_counters_with_total() {
        assert_eq!(
            sample_text(false),
            "# HELP mirador_rx_packets_total Packets received.\n\
             # TYPE mirador_rx_packets_total counter\n\
             mirador_rx_packets_total{port=\"net\\\"pcap0\"} 7\n\
             # HELP mirador_open_flows Flows open.\\nNow.\n\
             # TYPE mirador_open_flows gauge\n\
             mirador_open_flows 1.5\n"
        );
    }

    #[test]
    fn open_metrics_names_the_family_without_total_and_ends_with_eof() {
        let text = sample_text(true);
        assert!(text.starts_with("# HELP mirador_rx_packets Packets received.\n# TYPE mirador_rx_packets counter\nmirador_rx_packets_total{"));
        assert!(text.ends_with("mirador_open_flows 1.5\n# EOF\n"));
    }

    #[test]
    fn server_hands_scrapes_to_the_loop_and_serves_only_metrics() {
        let (server, scrapes) = MetricsServer::start("127.0.0.1:0").unwrap();
        let address = server.address();
        let answering = std::thread::spawn(move || {
            let scrape = scrapes.recv().unwrap();
            let open_metrics = scrape.open_metrics;
            scrape.answer(format!("answered {open_metrics}\n"));
        });
        let get = |path: &str, accept: &str| {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(address).unwrap();
            write!(
                stream,
                "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            response
        };
        let ok = get("/metrics", "application/openmetrics-text;version=1.0.0");
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.contains(OPEN_METRICS_TYPE), "{ok}");
        assert!(ok.ends_with("answered true\n"), "{ok}");
        assert!(get("/other", "*/*").starts_with("HTTP/1.1 404"));
        answering.join().unwrap();
        assert!(matches!(
            MetricsServer::start("localhost"),
            Err(MetricsError::Address(_))
        ));
    }
}
