//! Built-in detectors: behaviour that Suricata rules cannot express, in
//! code. Each emits [`Finding`]s with a family and structured metadata,
//! which the [`Detector`](super::Detector) writes as detections of
//! generator [`GID`] beside the rules' own.
//!
//! - [`cobalt`]: Cobalt Strike stager URIs, by their checksum8.
//! - [`mirai`]: Mirai's scanner SYNs (sequence number = destination
//!   address), telnet logins with its default credentials and brute force
//!   with them, and its C2's attack commands parsed into their fields.
//! - [`stratum`]: Stratum and XMRig mining sessions, with worker, wallet
//!   and agent.
//! - [`dns_tunnel`]: many long or random subdomains of one domain.
//! - [`icmp`]: echo traffic carrying data (ICMP tunnels).
//! - [`ioc`]: addresses, domains and JA3 hashes from indicator lists.

pub mod cobalt;
pub mod dns_tunnel;
pub mod icmp;
pub mod ioc;
pub mod mirai;
pub mod stratum;

pub use ioc::{IocError, IocLists};

use crate::applayer::AppEvent;
use crate::reassembly::StreamId;

use super::inspect::PacketView;

/// Generator id of built-in detections (rules use 1).
pub const GID: u32 = 9;

/// What the built-in detectors look for, and their thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinConfig {
    /// Run them at all.
    pub enabled: bool,
    /// Logins with Mirai's default credentials from one source, within
    /// `telnet_window_secs`, that make a brute force.
    pub telnet_attempts: u32,
    /// The window those attempts are counted over, seconds.
    pub telnet_window_secs: u64,
    /// Seconds between two reports of one Mirai scanner.
    pub scanner_report_secs: u64,
    /// Echo replies unlike their request that make an ICMP tunnel.
    pub icmp_mismatched_replies: u32,
    /// Distinct random-looking echo payloads that make an ICMP tunnel.
    pub icmp_random_payloads: u32,
    /// The window DNS questions are counted over per domain, seconds.
    pub dns_tunnel_window_secs: u64,
    /// Distinct subdomains of one domain that may make a tunnel.
    pub dns_tunnel_subdomains: u32,
    /// Mean subdomain length (characters) at which they do.
    pub dns_tunnel_mean_length: u32,
    /// Or mean subdomain entropy at which they do, tenths of a bit per
    /// character (35: 3.5 bits).
    pub dns_tunnel_mean_entropy_tenths: u32,
}

impl Default for BuiltinConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            telnet_attempts: 3,
            telnet_window_secs: 300,
            scanner_report_secs: 3_600,
            icmp_mismatched_replies: 3,
            icmp_random_payloads: 5,
            dns_tunnel_window_secs: 300,
            dns_tunnel_subdomains: 30,
            dns_tunnel_mean_length: 20,
            dns_tunnel_mean_entropy_tenths: 35,
        }
    }
}

/// What a detector found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Its signature id (with [`GID`]).
    pub sid: u32,
    /// What it means.
    pub msg: &'static str,
    /// Threat family.
    pub family: &'static str,
    /// Suricata classtype.
    pub classtype: &'static str,
    /// Priority (1 highest).
    pub priority: u8,
    /// Structured facts as `key value, key value`.
    pub metadata: String,
    /// The bytes it was found in (bounded).
    pub excerpt: Vec<u8>,
}

/// Bytes of a finding's excerpt at most.
const EXCERPT: usize = 128;

fn excerpt(bytes: &[u8]) -> Vec<u8> {
    bytes[..bytes.len().min(EXCERPT)].to_vec()
}

/// A 64-bit hash of `bytes`, to remember what was seen without keeping it.
fn fingerprint(bytes: &[u8]) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    h.write(bytes);
    h.finish()
}

/// Shannon entropy of `bytes`, bits per byte.
fn entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let len = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / len;
            -p * p.log2()
        })
        .sum()
}

/// One worker's built-in detectors.
#[derive(Debug, Default)]
pub struct Builtin {
    config: BuiltinConfig,
    mirai: mirai::Mirai,
    stratum: stratum::Stratum,
    ioc: ioc::Ioc,
    icmp: icmp::IcmpTunnel,
    dns: dns_tunnel::DnsTunnel,
}

impl Builtin {
    /// Detectors with `config`.
    pub fn new(config: BuiltinConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// One packet, with the indicator `lists`.
    pub fn packet(
        &mut self,
        lists: &IocLists,
        packet: &PacketView<'_>,
        out: &mut impl FnMut(Finding),
    ) {
        if !self.config.enabled {
            return;
        }
        self.mirai.packet(&self.config, packet, out);
        if let Some((icmp_type, _, rest)) = packet.icmp {
            self.icmp.packet(&self.config, packet, icmp_type, rest, out);
        }
        if packet.transport_valid {
            self.ioc
                .flow(lists, packet.flow_id, [packet.src, packet.dst], out);
        }
    }

    /// New in-order bytes of a TCP direction.
    pub fn stream(
        &mut self,
        ts_ns: u64,
        stream: &StreamId,
        offset: u64,
        bytes: &[u8],
        out: &mut impl FnMut(Finding),
    ) {
        if !self.config.enabled {
            return;
        }
        self.mirai
            .stream(&self.config, ts_ns, stream, offset, bytes, out);
        self.stratum.stream(stream, bytes, out);
    }

    /// What an application parser saw, with the indicator `lists`.
    pub fn app(
        &mut self,
        lists: &IocLists,
        ts_ns: u64,
        event: &AppEvent<'_>,
        out: &mut impl FnMut(Finding),
    ) {
        if !self.config.enabled {
            return;
        }
        cobalt::app(event, out);
        self.ioc.app(lists, event, out);
        if let AppEvent::DnsQuery { name, qtype } = event {
            self.dns.query(&self.config, ts_ns, name, *qtype, out);
        }
    }

    /// A flow ended: its state goes.
    pub fn end_flow(&mut self, flow_id: u64) {
        self.mirai.end_flow(flow_id);
        self.stratum.end_flow(flow_id);
        self.ioc.end_flow(flow_id);
        self.icmp.end_flow(flow_id);
    }
}
