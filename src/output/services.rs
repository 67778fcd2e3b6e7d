//! The `services` table and the exposure findings made from it.
//!
//! The writer thread sees every flow record. Those whose server was
//! recognised ([`ServiceSummary`]) are gathered here into one row per
//! server endpoint (host, port, service) per time partition: product and
//! version, first and last seen, flows, distinct clients inside and outside
//! `HOME_NET`, whether authentication was seen and what was answered
//! without it. A row is written once its partition is a rotation interval
//! behind the newest record (like a `flows` file closing), or at shutdown;
//! at [`ServicesConfig::max_endpoints`] the least recently seen row is
//! written early and counted.
//!
//! A `HOME_NET` host whose service answers a client outside `HOME_NET` is an
//! `exposed-service` detection, raised once per host, port and service per
//! UTC day; one that also answered without authentication raises a second,
//! higher-priority one the same day. Being made here, from every worker's
//! flows, they are raised once per sensor, not once per worker.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::net::IpAddr;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Int32Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::schema::{micros, timestamp};
use crate::applayer::{Service, ServiceSummary};
use crate::decode::Carrier;
use crate::detect::builtin::{Signature, GID};
use crate::detect::rules::AddressSpec;
use crate::detect::Detection;
use crate::flow::{EndReason, FlowRecord};

/// A high-risk service of `HOME_NET` answering a client outside it.
pub const EXPOSED: Signature = Signature {
    sid: 9_201_401,
    msg: "MIRADOR EXPOSED-SERVICE high-risk service answering outside HOME_NET",
    family: "exposed-service",
    classtype: "policy-violation",
    priority: 2,
};

/// The same, answering what needs authentication without any.
pub const OPEN: Signature = Signature {
    sid: 9_201_402,
    msg: "MIRADOR EXPOSED-SERVICE high-risk service answering outside HOME_NET without authentication",
    family: "exposed-service",
    classtype: "attempted-admin",
    priority: 1,
};

/// Bits of a [`Distinct`] count.
const DISTINCT_BITS: usize = 4_096;
/// Exposures remembered per row of the cap ([`ServicesConfig::max_endpoints`]).
const EXPOSURES_PER_ENDPOINT: usize = 4;
const NANOS_PER_DAY: u64 = 86_400 * 1_000_000_000;

/// How many distinct addresses were seen, in fixed memory: linear
/// counting over [`DISTINCT_BITS`] bits (one bit set per address hash).
/// Exact but for hash collisions while few (two of ten addresses share a
/// bit about once in eighty), within a few percent up to tens of
/// thousands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distinct {
    bits: [u64; DISTINCT_BITS / 64],
}

impl Default for Distinct {
    fn default() -> Self {
        Self {
            bits: [0; DISTINCT_BITS / 64],
        }
    }
}

impl Distinct {
    /// Counts `ip`.
    pub fn insert(&mut self, ip: IpAddr) {
        // A fixed-key hash: the same address sets the same bit in every run.
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(ip) as usize;
        let bit = hash % DISTINCT_BITS;
        self.bits[bit / 64] |= 1 << (bit % 64);
    }

    /// The estimate.
    pub fn count(&self) -> u64 {
        let set: u32 = self.bits.iter().map(|w| w.count_ones()).sum();
        let m = DISTINCT_BITS as f64;
        let zeros = (m - f64::from(set)).max(1.0);
        (-m * (zeros / m).ln()).round() as u64
    }

    /// None counted.
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|&w| w == 0)
    }
}

/// How the table is kept.
#[derive(Debug, Clone)]
pub struct ServicesConfig {
    /// The networks that are home (`HOME_NET` of the rules).
    pub home_net: AddressSpec,
    /// Rows kept at once at most.
    pub max_endpoints: usize,
}

/// A server endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Endpoint {
    partition_ns: u64,
    host: IpAddr,
    port: u16,
    service: Service,
}

/// One row: a server endpoint in one time partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRow {
    /// Start of the row's time partition, ns since the epoch.
    pub partition_ns: u64,
    /// The server.
    pub host: IpAddr,
    /// Its port.
    pub port: u16,
    /// IANA protocol (TCP).
    pub proto: u8,
    /// The service.
    pub service: Service,
    /// Product, when a banner or header said it.
    pub product: Option<String>,
    /// Its version.
    pub version: Option<String>,
    /// First flow's start, ns.
    pub first_ns: u64,
    /// Last flow's end, ns.
    pub last_ns: u64,
    /// Flow records.
    pub flows: u64,
    /// Distinct clients in `HOME_NET`.
    pub clients_inside: Distinct,
    /// Distinct clients outside it.
    pub clients_outside: Distinct,
    /// The host is in `HOME_NET`.
    pub home: bool,
    /// Authentication was seen.
    pub auth: bool,
    /// What was answered without authentication.
    pub open_access: Option<&'static str>,
}

/// The rows being gathered, and the exposures raised today.
#[derive(Debug)]
pub struct Services {
    config: ServicesConfig,
    rotate_ns: u64,
    rows: HashMap<Endpoint, ServiceRow>,
    newest_ns: u64,
    /// Partitions before it were written.
    horizon_ns: u64,
    /// Exposures raised: (day, host, port, service, signature), of today
    /// and yesterday.
    raised: HashSet<(u64, IpAddr, u16, Service, u32)>,
    today: u64,
    /// Rows written early at the cap, and exposures forgotten at theirs.
    pub evicted: u64,
}

impl Services {
    /// An empty table of `rotate_secs` partitions.
    pub fn new(config: ServicesConfig, rotate_secs: u64) -> Self {
        Self {
            config,
            rotate_ns: rotate_secs.max(1) * 1_000_000_000,
            rows: HashMap::new(),
            newest_ns: 0,
            horizon_ns: 0,
            raised: HashSet::new(),
            today: 0,
            evicted: 0,
        }
    }

    /// Rows being gathered.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when no row is being gathered.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Takes a flow record: its row is updated when its server was
    /// recognised, and exposures go to `detections`. Rows written early
    /// (at the cap) go to `full`.
    pub fn observe(
        &mut self,
        record: &FlowRecord,
        detections: &mut Vec<Detection>,
        full: &mut Vec<ServiceRow>,
    ) {
        self.newest_ns = self.newest_ns.max(record.ts_end_ns);
        let Some(summary) = record.app.service.as_ref() else {
            return;
        };
        let ((host, port), (client, _)) = if summary.server_dir == 1 {
            ((record.dst, record.dst_port), (record.src, record.src_port))
        } else {
            ((record.src, record.src_port), (record.dst, record.dst_port))
        };
        let partition_ns = record.ts_start_ns / self.rotate_ns * self.rotate_ns;
        let key = Endpoint {
            partition_ns,
            host,
            port,
            service: summary.service,
        };
        if !self.rows.contains_key(&key) && self.rows.len() >= self.config.max_endpoints.max(1) {
            self.evict(full);
        }
        let home_net = &self.config.home_net;
        let row = self.rows.entry(key).or_insert_with(|| ServiceRow {
            partition_ns,
            host,
            port,
            proto: record.proto,
            service: summary.service,
            product: None,
            version: None,
            first_ns: record.ts_start_ns,
            last_ns: record.ts_end_ns,
            flows: 0,
            clients_inside: Distinct::default(),
            clients_outside: Distinct::default(),
            home: home_net.matches(host),
            auth: false,
            open_access: None,
        });
        // An interim record and the flow's later ones are one flow.
        if record.end_reason != EndReason::Active {
            row.flows += 1;
        }
        row.first_ns = row.first_ns.min(record.ts_start_ns);
        row.last_ns = row.last_ns.max(record.ts_end_ns);
        if row.product.is_none() {
            row.product.clone_from(&summary.product);
        }
        if row.version.is_none() {
            row.version.clone_from(&summary.version);
        }
        row.auth |= summary.auth;
        row.open_access = row.open_access.or(summary.open_access);
        let outside = !home_net.matches(client);
        if outside {
            row.clients_outside.insert(client);
        } else {
            row.clients_inside.insert(client);
        }
        if row.home && outside {
            self.expose(record, summary, client, detections);
        }
    }

    /// Raises the day's exposures of a flow's server not raised yet.
    fn expose(
        &mut self,
        record: &FlowRecord,
        summary: &ServiceSummary,
        client: IpAddr,
        detections: &mut Vec<Detection>,
    ) {
        let day = record.ts_end_ns / NANOS_PER_DAY;
        if day > self.today {
            self.today = day;
            self.raised.retain(|r| r.0 + 1 >= day);
        }
        // Bounded like the rows: past the cap, exposures may be raised anew.
        let cap = EXPOSURES_PER_ENDPOINT.saturating_mul(self.config.max_endpoints.max(1));
        if self.raised.len() >= cap {
            self.evicted += self.raised.len() as u64;
            self.raised.clear();
        }
        let (host, port) = if summary.server_dir == 1 {
            (record.dst, record.dst_port)
        } else {
            (record.src, record.src_port)
        };
        let mut signatures = vec![&EXPOSED];
        if summary.open_access.is_some() {
            signatures.push(&OPEN);
        }
        for signature in signatures {
            if self
                .raised
                .insert((day, host, port, summary.service, signature.sid))
            {
                detections.push(exposure(record, summary, client, signature));
            }
        }
    }

    /// Writes the least recently seen eighth of the rows early.
    fn evict(&mut self, full: &mut Vec<ServiceRow>) {
        let mut ages: Vec<u64> = self.rows.values().map(|r| r.last_ns).collect();
        let nth = ages.len() / 8;
        let (_, &mut cutoff, _) = ages.select_nth_unstable(nth);
        let old: Vec<Endpoint> = self
            .rows
            .iter()
            .filter(|(_, r)| r.last_ns <= cutoff)
            .map(|(k, _)| *k)
            .collect();
        for key in old {
            if let Some(row) = self.rows.remove(&key) {
                full.push(row);
                self.evicted += 1;
            }
        }
    }

    /// The rows whose partition is a rotation interval behind the newest
    /// record: complete, to be written.
    pub fn ready(&mut self) -> Vec<ServiceRow> {
        let newest_partition = self.newest_ns / self.rotate_ns * self.rotate_ns;
        let horizon = newest_partition.saturating_sub(self.rotate_ns);
        if horizon <= self.horizon_ns {
            return Vec::new();
        }
        self.horizon_ns = horizon;
        let done: Vec<Endpoint> = self
            .rows
            .keys()
            .filter(|k| k.partition_ns < horizon)
            .copied()
            .collect();
        let mut rows: Vec<ServiceRow> = done.iter().filter_map(|k| self.rows.remove(k)).collect();
        rows.sort_by_key(|r| (r.partition_ns, r.host, r.port));
        rows
    }

    /// Every row left, at shutdown.
    pub fn drain(&mut self) -> Vec<ServiceRow> {
        let mut rows: Vec<ServiceRow> = self.rows.drain().map(|(_, r)| r).collect();
        rows.sort_by_key(|r| (r.partition_ns, r.host, r.port));
        rows
    }
}

/// The detection of `signature` for a flow's server.
fn exposure(
    record: &FlowRecord,
    summary: &ServiceSummary,
    client: IpAddr,
    signature: &Signature,
) -> Detection {
    let from_server = summary.server_dir == 1;
    let (src, dst, src_port, dst_port) = if from_server {
        (record.dst, record.src, record.dst_port, record.src_port)
    } else {
        (record.src, record.dst, record.src_port, record.dst_port)
    };
    let mut metadata = format!("service {}", summary.service.name());
    for (key, value) in [("product", &summary.product), ("version", &summary.version)] {
        if let Some(value) = value {
            metadata.push_str(&format!(", {key} {value}"));
        }
    }
    metadata.push_str(&format!(
        ", client {client}, auth {}",
        if summary.auth { "seen" } else { "unseen" }
    ));
    if let Some(access) = summary.open_access {
        metadata.push_str(&format!(", open access {access}"));
    }
    Detection {
        ts_ns: record.ts_end_ns,
        flow_id: record.flow_id,
        proto: record.proto,
        src,
        dst,
        src_port,
        dst_port,
        carrier: Carrier {
            vlans: record.vlans,
            tunnel: record.tunnel,
        },
        gid: GID,
        sid: signature.sid,
        rev: 1,
        msg: Arc::from(signature.msg),
        classtype: Some(signature.classtype.to_owned()),
        priority: signature.priority,
        family: Arc::from(signature.family),
        // The server's answer showed the service.
        to_server: false,
        stream_offset: None,
        excerpt: Vec::new(),
        app_proto: record.app_proto,
        metadata: Arc::from(metadata),
        evidence: None,
    }
}

/// The schema of the `services` table.
pub fn service_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("sensor", DataType::Utf8, false),
        Field::new("hour", timestamp(), false),
        Field::new("host", DataType::Utf8, false),
        Field::new("port", DataType::Int32, false),
        Field::new("proto", DataType::Int32, false),
        Field::new("service", DataType::Utf8, false),
        Field::new("product", DataType::Utf8, true),
        Field::new("version", DataType::Utf8, true),
        Field::new("first_seen", timestamp(), false),
        Field::new("last_seen", timestamp(), false),
        Field::new("flows", DataType::Int64, false),
        Field::new("clients_inside", DataType::Int64, false),
        Field::new("clients_outside", DataType::Int64, false),
        Field::new("home_net", DataType::Boolean, false),
        Field::new("exposed", DataType::Boolean, false),
        Field::new("auth_seen", DataType::Boolean, false),
        Field::new("open_access", DataType::Utf8, true),
    ]))
}

/// Builds one record batch of the `services` table.
pub fn service_batch(sensor: &str, rows: &[&ServiceRow]) -> Result<RecordBatch, ArrowError> {
    let int64 = |f: &dyn Fn(&ServiceRow) -> usize| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| i64::try_from(f(r)).unwrap_or(i64::MAX)),
        ))
    };
    let bools = |f: &dyn Fn(&ServiceRow) -> bool| -> ArrayRef {
        Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(f(r)))))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|_| sensor))),
        micros(rows, |r| r.partition_ns),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.host.to_string()),
        )),
        Arc::new(Int32Array::from_iter_values(
            rows.iter().map(|r| i32::from(r.port)),
        )),
        Arc::new(Int32Array::from_iter_values(
            rows.iter().map(|r| i32::from(r.proto)),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.service.name()),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.product.as_deref()),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.version.as_deref()),
        )),
        micros(rows, |r| r.first_ns),
        micros(rows, |r| r.last_ns),
        int64(&|r| usize::try_from(r.flows).unwrap_or(usize::MAX)),
        int64(&|r| usize::try_from(r.clients_inside.count()).unwrap_or(usize::MAX)),
        int64(&|r| usize::try_from(r.clients_outside.count()).unwrap_or(usize::MAX)),
        bools(&|r| r.home),
        bools(&|r| r.home && !r.clients_outside.is_empty()),
        bools(&|r| r.auth),
        Arc::new(StringArray::from_iter(rows.iter().map(|r| r.open_access))),
    ];
    RecordBatch::try_new(service_schema(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ServicesConfig {
        ServicesConfig {
            home_net: crate::detect::rules::Vars::default()
                .address("$HOME_NET")
                .unwrap(),
            max_endpoints: 4,
        }
    }

    fn record(client: &str, server: &str, ts_s: u64, summary: ServiceSummary) -> FlowRecord {
        let mut record = FlowRecord::example();
        record.src = client.parse().unwrap();
        record.dst = server.parse().unwrap();
        record.dst_port = 6379;
        record.ts_start_ns = ts_s * 1_000_000_000;
        record.ts_end_ns = record.ts_start_ns + 1_000_000;
        record.app.service = Some(summary);
        record
    }

    fn redis(open: bool) -> ServiceSummary {
        let mut summary = ServiceSummary::new(Service::Redis, 1);
        summary.open_access = open.then_some("redis INFO");
        summary
    }

    #[test]
    fn an_exposure_is_raised_once_a_day_and_again_when_access_is_open() {
        let mut services = Services::new(config(), 3600);
        let (mut found, mut full) = (Vec::new(), Vec::new());
        let day = 20_000 * 86_400;
        for (client, ts, open) in [
            ("203.0.113.1", day, false),
            ("203.0.113.2", day + 60, false),
            ("10.1.1.1", day + 120, true),
            ("203.0.113.3", day + 7_200, true),
            ("203.0.113.4", day + 7_300, true),
            ("203.0.113.5", day + 86_400, false),
        ] {
            services.observe(
                &record(client, "10.0.0.9", ts, redis(open)),
                &mut found,
                &mut full,
            );
        }
        let sids: Vec<u32> = found.iter().map(|d| d.sid).collect();
        assert_eq!(sids, [EXPOSED.sid, OPEN.sid, EXPOSED.sid]);
        assert_eq!(found[0].src.to_string(), "10.0.0.9", "the server answers");
        assert!(found[1].metadata.contains("open access redis INFO"));
        let rows = services.drain();
        let first = &rows[0];
        assert_eq!(
            (
                first.flows,
                first.clients_inside.count(),
                first.clients_outside.count()
            ),
            (3, 1, 2)
        );
        assert_eq!(first.open_access, Some("redis INFO"));
        assert_eq!(rows.len(), 3, "three hours seen");
    }

    #[test]
    fn outside_servers_and_inside_clients_raise_nothing() {
        let mut services = Services::new(config(), 3600);
        let (mut found, mut full) = (Vec::new(), Vec::new());
        services.observe(
            &record("203.0.113.1", "198.51.100.7", 10, redis(true)),
            &mut found,
            &mut full,
        );
        services.observe(
            &record("10.0.0.1", "10.0.0.9", 10, redis(true)),
            &mut found,
            &mut full,
        );
        assert!(found.is_empty());
        assert_eq!(services.drain().len(), 2);
    }

    #[test]
    fn distinct_counts_are_exact_while_few_and_close_when_many() {
        let mut few = Distinct::default();
        for i in 0..5u8 {
            few.insert(IpAddr::from([198, 51, 100, i]));
            few.insert(IpAddr::from([198, 51, 100, i]));
        }
        assert_eq!(few.count(), 5);
        let mut many = Distinct::default();
        for i in 0..10_000u16 {
            many.insert(IpAddr::from([10, 1, (i >> 8) as u8, i as u8]));
        }
        let estimate = many.count() as f64;
        assert!((estimate - 10_000.0).abs() < 500.0, "{estimate}");
    }

    #[test]
    fn at_the_cap_the_oldest_rows_are_written_early() {
        let mut services = Services::new(config(), 3600);
        let (mut found, mut full) = (Vec::new(), Vec::new());
        for i in 0..6u64 {
            let server = format!("10.0.0.{}", i + 1);
            services.observe(
                &record("10.9.9.9", &server, 10 + i, redis(false)),
                &mut found,
                &mut full,
            );
        }
        assert_eq!(services.evicted, full.len() as u64);
        assert!(!full.is_empty());
        assert_eq!(full[0].host.to_string(), "10.0.0.1");
        assert_eq!(
            full.len() + services.drain().len(),
            6,
            "every row is written"
        );
    }
}
