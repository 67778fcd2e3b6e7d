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
//! - [`ioc`]: addresses, domains and JA3 hashes from indicator lists.

pub mod cobalt;
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
}

impl Default for BuiltinConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            telnet_attempts: 3,
            telnet_window_secs: 300,
            scanner_report_secs: 3_600,
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

/// One worker's built-in detectors.
#[derive(Debug, Default)]
pub struct Builtin {
    config: BuiltinConfig,
    mirai: mirai::Mirai,
    stratum: stratum::Stratum,
    ioc: ioc::Ioc,
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
    pub fn app(&mut self, lists: &IocLists, event: &AppEvent<'_>, out: &mut impl FnMut(Finding)) {
        if self.config.enabled {
            cobalt::app(event, out);
            self.ioc.app(lists, event, out);
        }
    }

    /// A flow ended: its state goes.
    pub fn end_flow(&mut self, flow_id: u64) {
        self.mirai.end_flow(flow_id);
        self.stratum.end_flow(flow_id);
        self.ioc.end_flow(flow_id);
    }
}
