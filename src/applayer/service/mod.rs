//! Services recognised by their bytes: which high-risk server a TCP flow
//! talks to, its product and version when the server says them, whether
//! an authentication exchange was seen, and whether the server answered
//! what needs authentication without any.
//!
//! [`wire`] reads the first bytes of each direction (banners, handshakes,
//! the first request and answer) of SSH, Telnet, VNC, RDP, SMB, MySQL,
//! MSSQL, PostgreSQL, Redis, Memcached and MongoDB, and follows Redis,
//! PostgreSQL and MongoDB a little further for their authentication;
//! [`web`] reads HTTP transactions for the services behind HTTP: the
//! Docker API, Elasticsearch, the Kubernetes API and kubelet, etcd, the
//! Hadoop YARN API and Jenkins. The port plays no part.
//!
//! What a flow's bytes said is its [`ServiceSummary`], which goes into its
//! record; the `services` table and the exposure findings are made from
//! those records (`output::services`).

pub mod web;
pub mod wire;

use wire::Follow;

/// Bytes of a direction's start kept to recognise the service.
pub const FIRST_BYTES: usize = 512;
/// Bytes of each direction read at most, to follow the authentication.
pub const MAX_BYTES: u64 = 16 << 10;
/// Characters of a product or version kept at most.
pub const MAX_VERSION: usize = 64;

/// A service recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// SSH.
    Ssh,
    /// Telnet.
    Telnet,
    /// VNC (RFB).
    Vnc,
    /// RDP.
    Rdp,
    /// SMB.
    Smb,
    /// MySQL and MariaDB.
    Mysql,
    /// Microsoft SQL Server (TDS).
    Mssql,
    /// PostgreSQL.
    Postgresql,
    /// Redis.
    Redis,
    /// Memcached.
    Memcached,
    /// MongoDB.
    Mongodb,
    /// The Docker Engine API.
    Docker,
    /// Elasticsearch.
    Elasticsearch,
    /// The Kubernetes API server.
    Kubernetes,
    /// The kubelet API.
    Kubelet,
    /// etcd.
    Etcd,
    /// The Hadoop YARN ResourceManager API.
    Yarn,
    /// Jenkins.
    Jenkins,
}

impl Service {
    /// The service's name in output.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ssh => "ssh",
            Self::Telnet => "telnet",
            Self::Vnc => "vnc",
            Self::Rdp => "rdp",
            Self::Smb => "smb",
            Self::Mysql => "mysql",
            Self::Mssql => "mssql",
            Self::Postgresql => "postgresql",
            Self::Redis => "redis",
            Self::Memcached => "memcached",
            Self::Mongodb => "mongodb",
            Self::Docker => "docker",
            Self::Elasticsearch => "elasticsearch",
            Self::Kubernetes => "kubernetes",
            Self::Kubelet => "kubelet",
            Self::Etcd => "etcd",
            Self::Yarn => "yarn",
            Self::Jenkins => "jenkins",
        }
    }
}

/// What a flow's bytes said about its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSummary {
    /// The service.
    pub service: Service,
    /// The stream direction the server sent (1 unless the flow was picked
    /// up with its roles the other way round).
    pub server_dir: usize,
    /// Product, from a banner or header (`OpenSSH`, `MariaDB`).
    pub product: Option<String>,
    /// Its version.
    pub version: Option<String>,
    /// An authentication exchange was seen (a password, SASL or key
    /// exchange sent, or asked for).
    pub auth: bool,
    /// What the server answered without authentication, when it did
    /// (`redis INFO`, `docker /containers/json`).
    pub open_access: Option<&'static str>,
}

impl ServiceSummary {
    /// A summary of `service` served by direction `server_dir`, nothing
    /// else known yet.
    pub fn new(service: Service, server_dir: usize) -> Self {
        Self {
            service,
            server_dir,
            product: None,
            version: None,
            auth: false,
            open_access: None,
        }
    }

    /// Sets product and version when they are not known yet, each cut to
    /// [`MAX_VERSION`] characters.
    fn identify(&mut self, product: Option<&str>, version: Option<&str>) {
        let kept = |text: &str| text.chars().take(MAX_VERSION).collect::<String>();
        if self.product.is_none() {
            self.product = product.map(kept);
        }
        if self.version.is_none() {
            self.version = version.filter(|v| !v.is_empty()).map(kept);
        }
    }
}

/// What the recogniser keeps about one flow, in its slot.
#[derive(Debug, Default)]
pub struct ServiceFlow {
    /// Each direction's first bytes, until the service is known.
    first: [Vec<u8>; 2],
    /// Bytes read per direction.
    read: [u64; 2],
    /// The direction that spoke first.
    first_dir: Option<usize>,
    /// The service, once recognised.
    summary: Option<ServiceSummary>,
    /// What is followed after recognition.
    follow: Follow,
    /// Nothing more to read.
    done: bool,
}

impl ServiceFlow {
    /// What the flow's bytes said, once they said it.
    pub fn summary(&self) -> Option<&ServiceSummary> {
        self.summary.as_ref()
    }

    /// True once nothing more will be read from the stream.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// In-order bytes at `offset` of direction `dir`.
    pub fn data(&mut self, dir: usize, offset: u64, bytes: &[u8]) {
        if self.done {
            return;
        }
        if offset == 0 && self.read[dir] == 0 && self.summary.is_none() && !wire::candidate(bytes) {
            self.stop();
            return;
        }
        self.read[dir] += bytes.len() as u64;
        let first_dir = *self.first_dir.get_or_insert(dir);
        match &mut self.summary {
            Some(summary) => self.follow.data(summary, dir, bytes),
            None => {
                let first = &mut self.first[dir];
                let room = FIRST_BYTES.saturating_sub(first.len());
                first.extend_from_slice(&bytes[..bytes.len().min(room)]);
                if let Some((summary, follow)) = wire::recognise(&self.first, first_dir) {
                    self.summary = Some(summary);
                    self.follow = follow;
                    self.first = Default::default();
                } else if self.first.iter().all(|f| !f.is_empty()) {
                    // Both sides spoke and neither is a service's.
                    self.stop();
                }
            }
        }
        if self.read.iter().any(|&n| n > MAX_BYTES)
            || self.summary.is_some() && self.follow.is_done()
        {
            self.stop();
        }
    }

    /// Reads no more of the stream.
    pub fn stop(&mut self) {
        self.done = true;
        self.first = Default::default();
    }
}

/// An HTTP transaction of a flow reached `stage`; `client` is the client's
/// stream direction. A flow's recogniser is made when a service behind
/// HTTP is first recognised.
pub fn http(
    flow: &mut Option<Box<ServiceFlow>>,
    tx: &crate::applayer::Transaction,
    stage: crate::applayer::HttpStage,
    client: usize,
) {
    let mut summary = flow.as_mut().and_then(|f| f.summary.take());
    web::transaction(&mut summary, tx, stage, 1 - client);
    if let Some(summary) = summary {
        let flow = flow.get_or_insert_with(|| {
            Box::new(ServiceFlow {
                done: true,
                ..ServiceFlow::default()
            })
        });
        flow.summary = Some(summary);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_and_tls_flows_are_not_read_and_a_banner_is() {
        for first in [&b"GET / HTTP/1.1\r\n\r\n"[..], b"\x16\x03\x01\x00\x05hello"] {
            let mut flow = ServiceFlow::default();
            flow.data(0, 0, first);
            flow.data(1, 0, b"+OK\r\n");
            assert!(flow.is_done() && flow.summary().is_none());
        }
        let mut smtp = ServiceFlow::default();
        smtp.data(1, 0, b"220 mail.example ESMTP\r\n");
        assert!(smtp.is_done(), "a banner of no service's");
        let mut flow = ServiceFlow::default();
        flow.data(1, 0, b"SSH-2.0-dropbear_2022.83\r\n");
        let summary = flow.summary().unwrap();
        assert_eq!(summary.product.as_deref(), Some("dropbear"));
        assert!(flow.is_done());
    }

    #[test]
    fn an_unknown_exchange_stops_once_both_sides_spoke() {
        let mut flow = ServiceFlow::default();
        flow.data(1, 0, b"+OK POP3 ready\r\n");
        assert!(!flow.is_done(), "it could be a Redis answer");
        flow.data(0, 0, b"USER bob\r\n");
        assert!(flow.is_done() && flow.summary().is_none());
    }
}
