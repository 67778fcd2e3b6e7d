//! Built-in detectors: behaviour that Suricata rules cannot express, in
//! code, written as detections of generator [`GID`] beside the rules' own.
//!
//! A detector is one module implementing [`Detector`] plus one line of the
//! registry at the end of this file. The module declares, once:
//! - its signatures ([`Signature`]: sid, message, family, classtype,
//!   priority), inside the sid range it owns;
//! - its settings, the `[detectors.NAME]` section of the configuration
//!   (NAME is its registry name);
//! - what it keeps about one flow (`Flow`), which lives in the flow's slot
//!   and is dropped with it;
//! - what its workers share, loaded once per run (`Shared`, such as
//!   indicator lists).
//!
//! It takes the events it needs (packets, in-order stream bytes,
//! application events, flow ends) and says what it found as [`Finding`]s.
//! State that spans flows (per host, per host pair) is kept by the
//! detector in [`Recent`] tables bounded by its settings.
//!
//! The detectors, by family:
//! - webshell: [`webshell`] (China Chopper, AntSword, Behinder, Godzilla by
//!   how they encode, encrypt and frame their traffic);
//! - c2: [`cobalt`] (stagers, beacon metadata, task output, the default
//!   certificate), [`metasploit`] (stages pushed on connect, meterpreter
//!   packets), [`reverse_shell`], [`beacon`] (regular connections between
//!   two hosts), [`host_report`] (clients reporting host, user and OS);
//! - mining: [`mining`] (Stratum in its dialects, XMR, getwork, pool
//!   names);
//! - mirai: [`mirai`] (scanner, telnet brute force, C2 commands) and
//!   [`loader`] (shell command chains in exploit requests, droppers);
//! - dns-tunnel: [`dns_tunnel`]; icmp-tunnel: [`icmp`];
//! - ioc: [`ioc`] (addresses, domains and JA3 hashes from lists);
//! - weak-password and cleartext-credential: [`credentials`] (logins in
//!   FTP, POP3, IMAP, SMTP, Redis, Telnet and HTTP, and in PostgreSQL, LDAP
//!   and SNMP through [`wire_logins`], their passwords judged by
//!   [`password`] and shown only as [`secret`] masks them);
//! - secret-leak: [`secret_leak`] (cloud access keys with their secrets,
//!   API tokens, private keys in clear traffic).

pub mod beacon;
pub mod cobalt;
pub mod credentials;
pub mod dns_tunnel;
pub mod encoding;
pub mod host_report;
pub mod icmp;
pub mod ioc;
pub mod loader;
pub mod metasploit;
pub mod mining;
pub mod mirai;
pub mod password;
pub mod reverse_shell;
pub mod secret;
pub mod secret_leak;
#[cfg(test)]
pub mod variants;
pub mod webshell;
pub mod wire_logins;

use std::collections::HashMap;
use std::hash::Hash;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;

use rustc_hash::FxBuildHasher;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use ioc::{IocError, IocLists};

use super::app::Sender;
use super::inspect::PacketView;
use crate::applayer::{AppEvent, HttpStage};
use crate::flow::FlowRecord;
use crate::reassembly::StreamId;
use secret::Masker;

/// Generator id of built-in detections (rules use 1).
pub const GID: u32 = 9;

/// A signature a detector raises, declared once in the detector's module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    /// Signature id (with [`GID`]), inside its detector's range.
    pub sid: u32,
    /// What it means.
    pub msg: &'static str,
    /// Threat family.
    pub family: &'static str,
    /// Suricata classtype.
    pub classtype: &'static str,
    /// Priority (1 highest).
    pub priority: u8,
}

/// What a detector found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What it is.
    pub signature: &'static Signature,
    /// Why it fired: the features and their values, as `key value, key
    /// value`.
    pub metadata: String,
    /// The bytes it was found in, at most [`EXCERPT`] of them.
    pub excerpt: Vec<u8>,
}

impl Finding {
    /// A finding of `signature` with `metadata`, showing the start of
    /// `bytes`.
    pub fn new(signature: &'static Signature, metadata: String, bytes: &[u8]) -> Self {
        Self {
            signature,
            metadata,
            excerpt: bytes[..bytes.len().min(EXCERPT)].to_vec(),
        }
    }
}

/// Bytes of a finding's excerpt at most.
pub const EXCERPT: usize = 128;

/// New in-order bytes of one TCP direction.
#[derive(Debug, Clone, Copy)]
pub struct StreamData<'a> {
    /// Time of the packet that delivered them, ns.
    pub ts_ns: u64,
    /// The direction.
    pub stream: &'a StreamId,
    /// Stream offset of the first byte.
    pub offset: u64,
    /// The bytes.
    pub bytes: &'a [u8],
}

/// Something an application parser saw, and who sent it.
#[derive(Debug, Clone, Copy)]
pub struct AppData<'a> {
    /// Time of the packet that completed it, ns.
    pub ts_ns: u64,
    /// Sender and receiver.
    pub sender: &'a Sender,
    /// What was seen.
    pub event: &'a AppEvent<'a>,
}

/// Kinds of event, as a set: which events a detector reads, so that the
/// others never reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Events(u16);

impl Events {
    /// None.
    pub const NONE: Events = Events(0);
    /// TCP SYNs without ACK.
    pub const TCP_SYN: Events = Events(1);
    /// ICMP and ICMPv6 packets.
    pub const ICMP: Events = Events(1 << 1);
    /// The packet that opened its flow.
    pub const FIRST_PACKET: Events = Events(1 << 2);
    /// In-order TCP stream bytes.
    pub const STREAM: Events = Events(1 << 3);
    /// A flow's end.
    pub const FLOW_END: Events = Events(1 << 4);
    /// An HTTP request's line and headers.
    pub const HTTP_REQUEST: Events = Events(1 << 5);
    /// An HTTP request's body.
    pub const HTTP_REQUEST_BODY: Events = Events(1 << 6);
    /// An HTTP response's status line and headers.
    pub const HTTP_RESPONSE: Events = Events(1 << 7);
    /// An HTTP response's body.
    pub const HTTP_RESPONSE_BODY: Events = Events(1 << 8);
    /// A DNS question.
    pub const DNS_QUERY: Events = Events(1 << 9);
    /// A DNS response.
    pub const DNS_ANSWER: Events = Events(1 << 10);
    /// A TLS hello.
    pub const TLS_HELLO: Events = Events(1 << 11);
    /// A TLS server certificate.
    pub const TLS_CERTIFICATE: Events = Events(1 << 12);
    /// UDP datagrams whose payload opens as a BER SEQUENCE (SNMP): the
    /// datagrams a detector reads; most others (DNS above all: one in 256
    /// of its ids starts so) never reach it.
    pub const BER_DATAGRAM: Events = Events(1 << 13);

    /// Both sets.
    pub const fn union(self, other: Events) -> Events {
        Events(self.0 | other.0)
    }

    /// True when the sets share a kind.
    pub const fn meets(self, other: Events) -> bool {
        self.0 & other.0 != 0
    }

    /// The kind of an application event.
    pub fn of(event: &AppEvent<'_>) -> Events {
        match event {
            AppEvent::Http(_, HttpStage::RequestHeaders) => Self::HTTP_REQUEST,
            AppEvent::Http(_, HttpStage::RequestBody) => Self::HTTP_REQUEST_BODY,
            AppEvent::Http(_, HttpStage::ResponseHeaders) => Self::HTTP_RESPONSE,
            AppEvent::Http(_, HttpStage::ResponseBody) => Self::HTTP_RESPONSE_BODY,
            AppEvent::DnsQuery { .. } => Self::DNS_QUERY,
            AppEvent::DnsAnswer(_) => Self::DNS_ANSWER,
            AppEvent::TlsHello(_) => Self::TLS_HELLO,
            AppEvent::TlsCertificate(..) => Self::TLS_CERTIFICATE,
        }
    }
}

/// A built-in detector. Every event method does nothing unless the
/// detector implements it.
pub trait Detector: std::fmt::Debug + Sized {
    /// The sids it owns; each of its signatures has one of them.
    const SIDS: RangeInclusive<u32>;
    /// Its signatures.
    const SIGNATURES: &'static [Signature];
    /// The events it reads: its methods are called for those only.
    const EVENTS: Events;
    /// Its `[detectors.NAME]` section.
    type Settings: Clone + std::fmt::Debug + Default + PartialEq + Serialize + DeserializeOwned;
    /// What it keeps about one flow.
    type Flow: Default;
    /// What its workers share, loaded once per run.
    type Shared: Default + std::fmt::Debug + Send + Sync;

    /// Loads what workers share (`masker` shows secrets in findings);
    /// problems that leave part of it out (a bad line of a list) are added
    /// to `problems`.
    fn load(
        settings: &Self::Settings,
        masker: &Masker,
        problems: &mut Vec<String>,
    ) -> Self::Shared {
        let _ = (settings, masker, problems);
        Self::Shared::default()
    }

    /// The files its settings name, by key, so that relative ones can be
    /// taken from the folder of the configuration that set them.
    fn files(settings: &mut Self::Settings) -> Vec<(&'static str, &mut PathBuf)> {
        let _ = settings;
        Vec::new()
    }

    /// One worker's detector.
    fn new(settings: &Self::Settings, shared: &Arc<Self::Shared>) -> Self;

    /// A packet of `flow` of a kind in [`Detector::EVENTS`], before its
    /// flow's stream data.
    fn packet(
        &mut self,
        flow: &mut Self::Flow,
        packet: &PacketView<'_>,
        out: &mut impl FnMut(Finding),
    ) {
        let _ = (flow, packet, out);
    }

    /// In-order bytes of a TCP direction of `flow`.
    fn stream(
        &mut self,
        flow: &mut Self::Flow,
        data: &StreamData<'_>,
        out: &mut impl FnMut(Finding),
    ) {
        let _ = (flow, data, out);
    }

    /// True once nothing more of the direction of `data` (just given to
    /// [`Detector::stream`]) can matter to it on `flow`: that direction's
    /// bytes are no longer given it. Once true, true for good.
    fn stream_done(&self, flow: &Self::Flow, data: &StreamData<'_>) -> bool {
        let _ = (flow, data);
        false
    }

    /// What an application parser saw on `flow`.
    fn app(&mut self, flow: &mut Self::Flow, data: &AppData<'_>, out: &mut impl FnMut(Finding)) {
        let _ = (flow, data, out);
    }

    /// `flow` ended with `record` (its last).
    fn end(&mut self, flow: &mut Self::Flow, record: &FlowRecord, out: &mut impl FnMut(Finding)) {
        let _ = (flow, record, out);
    }

    /// What its cross-flow tables hold now and evicted at their caps.
    fn tables(&self) -> TableUse {
        TableUse::default()
    }
}

/// What cross-flow tables hold now, and evicted at their caps so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TableUse {
    /// Entries held.
    pub entries: u64,
    /// Entries evicted at the caps so far.
    pub evicted: u64,
}

impl std::ops::Add for TableUse {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            entries: self.entries + other.entries,
            evicted: self.evicted + other.evicted,
        }
    }
}

/// A detector as the registry lists it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its name: its settings section and module.
    pub name: &'static str,
    /// The sids it owns.
    pub sids: RangeInclusive<u32>,
    /// Its signatures.
    pub signatures: &'static [Signature],
}

/// A map of at most `capacity` entries that, when full, evicts the ones
/// used least recently, and counts evictions: what a detector remembers
/// across flows (per host, per host pair, per script).
///
/// Each entry carries the tick of its last use, so a use is one hash
/// lookup. At the cap, one pass evicts the least recently used eighth of
/// the entries (at least one), which keeps eviction off the path of the
/// uses in between.
#[derive(Debug)]
pub struct Recent<K, V> {
    map: HashMap<K, (V, u64), FxBuildHasher>,
    capacity: usize,
    clock: u64,
    evicted: u64,
    /// Last-use ticks, gathered at eviction (kept to reuse its memory).
    ticks: Vec<u64>,
}

impl<K: Hash + Eq, V> Recent<K, V> {
    /// An empty map of at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::default(),
            capacity: capacity.max(1),
            clock: 0,
            evicted: 0,
            ticks: Vec::new(),
        }
    }

    /// The entry of `key`, made with `make` when there is none (evicting
    /// the least recently used ones when full); it becomes the most recent.
    pub fn entry(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        self.clock += 1;
        let clock = self.clock;
        if self.map.len() >= self.capacity && !self.map.contains_key(&key) {
            self.evict_oldest();
        }
        let slot = self.map.entry(key).or_insert_with(|| (make(), clock));
        slot.1 = clock;
        &mut slot.0
    }

    /// The entry of `key`, if there is one; it becomes the most recent.
    pub fn entry_if_present(&mut self, key: &K) -> Option<&mut V> {
        let slot = self.map.get_mut(key)?;
        self.clock += 1;
        slot.1 = self.clock;
        Some(&mut slot.0)
    }

    /// The entry of `key`, if there is one (it does not become recent).
    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key).map(|(v, _)| v)
    }

    /// Removes `key`'s entry.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.map.remove(key).map(|(v, _)| v)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Entries evicted at the cap so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Entries held and evicted.
    pub fn usage(&self) -> TableUse {
        TableUse {
            entries: self.map.len() as u64,
            evicted: self.evicted,
        }
    }

    /// Evicts the least recently used eighth of the entries (at least one):
    /// ticks are unique, so exactly that many are at or below the cut.
    fn evict_oldest(&mut self) {
        let batch = (self.map.len() / 8).max(1);
        self.ticks.clear();
        self.ticks.extend(self.map.values().map(|(_, tick)| *tick));
        let (_, &mut cut, _) = self.ticks.select_nth_unstable(batch - 1);
        self.map.retain(|_, (_, tick)| *tick > cut);
        self.evicted += batch as u64;
    }
}

pub use crate::detect::rules::shannon_entropy as entropy;

/// A 64-bit hash of `bytes`, to remember what was seen without keeping it.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = FxBuildHasher.build_hasher();
    h.write(bytes);
    h.finish()
}

/// Text for metadata: printable ASCII kept, anything else `.`, at most
/// `max` characters.
pub fn printable(bytes: &[u8], max: usize) -> String {
    bytes
        .iter()
        .take(max)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '.'
            }
        })
        .collect()
}

/// Declares the detectors: their settings sections, what their workers
/// share, what they keep per flow, and the dispatch of each event to each.
macro_rules! registry {
    ($($name:ident: $detector:ty,)*) => {
        /// `[detectors]`: whether the built-in detectors run, and each
        /// one's section.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct DetectorsConfig {
            /// Run the built-in detectors.
            pub enabled: bool,
            /// Key of the hash that findings show beside a masked secret
            /// (empty: no hash); see [`secret`].
            pub secret_hash_key: String,
            $(
                #[doc = concat!("`[detectors.", stringify!($name), "]`")]
                pub $name: <$detector as Detector>::Settings,
            )*
        }

        impl Default for DetectorsConfig {
            fn default() -> Self {
                Self {
                    enabled: true,
                    secret_hash_key: String::new(),
                    $($name: Default::default(),)*
                }
            }
        }

        impl DetectorsConfig {
            /// The files the detectors' sections name: section, key, path.
            pub fn paths_mut(&mut self) -> Vec<(&'static str, &'static str, &mut PathBuf)> {
                let mut files = Vec::new();
                $(files.extend(
                    <$detector>::files(&mut self.$name)
                        .into_iter()
                        .map(|(key, path)| (stringify!($name), key, path)),
                );)*
                files
            }
        }

        /// What the detectors' workers share, loaded once per run.
        #[derive(Debug, Default)]
        pub struct Shared {
            $($name: Arc<<$detector as Detector>::Shared>,)*
        }

        impl Shared {
            /// Loads what each detector shares, with the problems met.
            pub fn load(config: &DetectorsConfig) -> (Self, Vec<String>) {
                let mut problems = Vec::new();
                let masker = Masker::new(&config.secret_hash_key);
                let shared = Self {
                    $($name: Arc::new(<$detector>::load(&config.$name, &masker, &mut problems)),)*
                };
                (shared, problems)
            }
        }

        /// What the built-in detectors keep about one flow.
        #[derive(Default)]
        pub struct BuiltinFlow {
            /// The directions each detector is done reading, side by side
            /// so that a done flow's bytes touch nothing else.
            stream_done: StreamDone,
            $($name: <$detector as Detector>::Flow,)*
        }

        /// Per detector, per direction: nothing more to read; `all_`: no
        /// detector has.
        #[derive(Default)]
        struct StreamDone {
            all_: [bool; 2],
            $($name: [bool; 2],)*
        }

        /// One worker's built-in detectors.
        #[derive(Debug)]
        pub struct Builtin {
            enabled: bool,
            $($name: $detector,)*
        }

        impl Builtin {
            /// The detectors of `config`, over what `shared` loaded.
            pub fn new(config: &DetectorsConfig, shared: &Shared) -> Self {
                Self {
                    enabled: config.enabled,
                    $($name: <$detector>::new(&config.$name, &shared.$name),)*
                }
            }

            /// The kinds of event some detector reads.
            pub const EVENTS: Events = Events::NONE$(.union(<$detector as Detector>::EVENTS))*;

            /// True when some detector reads events of `kind`.
            #[inline]
            pub fn reads(&self, kind: Events) -> bool {
                self.enabled && Self::EVENTS.meets(kind)
            }

            /// One packet of `flow`, of the kinds `kind`.
            pub fn packet(
                &mut self,
                flow: &mut BuiltinFlow,
                kind: Events,
                packet: &PacketView<'_>,
                out: &mut impl FnMut(Finding),
            ) {
                if self.enabled {
                    $(
                        if <$detector as Detector>::EVENTS.meets(kind) {
                            self.$name.packet(&mut flow.$name, packet, out);
                        }
                    )*
                }
            }

            /// True when some detector still reads direction `dir` of
            /// `flow`'s stream.
            #[inline]
            pub fn streaming(&self, flow: &BuiltinFlow, dir: usize) -> bool {
                self.enabled && !flow.stream_done.all_[dir]
            }

            /// New in-order bytes of a TCP direction of `flow`.
            pub fn stream(
                &mut self,
                flow: &mut BuiltinFlow,
                data: &StreamData<'_>,
                out: &mut impl FnMut(Finding),
            ) {
                if !self.streaming(flow, data.stream.dir) {
                    return;
                }
                let dir = data.stream.dir;
                let mut all = true;
                $(
                    if <$detector as Detector>::EVENTS.meets(Events::STREAM)
                        && !flow.stream_done.$name[dir]
                    {
                        self.$name.stream(&mut flow.$name, data, out);
                        let done = self.$name.stream_done(&flow.$name, data);
                        flow.stream_done.$name[dir] = done;
                        all &= done;
                    }
                )*
                flow.stream_done.all_[dir] = all;
            }

            /// What an application parser saw on `flow`.
            pub fn app(
                &mut self,
                flow: &mut BuiltinFlow,
                data: &AppData<'_>,
                out: &mut impl FnMut(Finding),
            ) {
                if self.enabled {
                    let kind = Events::of(data.event);
                    $(
                        if <$detector as Detector>::EVENTS.meets(kind) {
                            self.$name.app(&mut flow.$name, data, out);
                        }
                    )*
                }
            }

            /// `flow` ended with `record`.
            pub fn end(
                &mut self,
                flow: &mut BuiltinFlow,
                record: &FlowRecord,
                out: &mut impl FnMut(Finding),
            ) {
                if self.enabled {
                    $(
                        if <$detector as Detector>::EVENTS.meets(Events::FLOW_END) {
                            self.$name.end(&mut flow.$name, record, out);
                        }
                    )*
                }
            }

            /// What the detectors' cross-flow tables hold and evicted.
            pub fn tables(&self) -> TableUse {
                TableUse::default() $(+ self.$name.tables())*
            }
        }

        /// Every detector, in registry order.
        pub const REGISTRY: &[Entry] = &[
            $(Entry {
                name: stringify!($name),
                sids: <$detector as Detector>::SIDS,
                signatures: <$detector as Detector>::SIGNATURES,
            },)*
        ];
    };
}

registry! {
    webshell: webshell::Webshell,
    cobalt: cobalt::CobaltStrike,
    metasploit: metasploit::Metasploit,
    reverse_shell: reverse_shell::ReverseShell,
    beacon: beacon::Beacon,
    host_report: host_report::HostReport,
    mining: mining::Mining,
    mirai: mirai::Mirai,
    loader: loader::Loader,
    dns_tunnel: dns_tunnel::DnsTunnel,
    icmp: icmp::IcmpTunnel,
    ioc: ioc::Ioc,
    credentials: credentials::Credentials,
    secret_leak: secret_leak::SecretLeak,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_direction_no_detector_reads_is_no_longer_given_them_and_one_read_still_is() {
        let mut builtin = Builtin::new(&DetectorsConfig::default(), &Shared::default());
        let mut flow = BuiltinFlow::default();
        let (client, server) = (
            "10.0.0.1:40000".parse().unwrap(),
            "10.0.0.2:443".parse().unwrap(),
        );
        let toward = |dir: usize| StreamId {
            flow_id: 1,
            dir,
            src: if dir == 0 { client } else { server },
            dst: if dir == 0 { server } else { client },
            carrier: Default::default(),
        };
        let (up, down) = (toward(0), toward(1));
        let mut found = Vec::new();
        let mut feed = |flow: &mut BuiltinFlow, stream: &StreamId, offset: u64, bytes: &[u8]| {
            let data = StreamData {
                ts_ns: 1,
                stream,
                offset,
                bytes,
            };
            builtin.stream(flow, &data, &mut |f| found.push(f.signature.sid));
        };
        // A TLS hello: no shell, stage, JSON or telnet login.
        let hello = [
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ];
        feed(&mut flow, &up, 0, &hello.repeat(8));
        let done = &flow.stream_done;
        assert!(done.reverse_shell[0] && done.metasploit[0] && done.mining[0]);
        assert!(done.loader[0] && done.mirai[0], "not telnet");
        assert!(done.all_[0]);
        feed(&mut flow, &down, 0, &hello.repeat(8));
        assert!(flow.stream_done.mirai[1], "not a bot's connection");
        assert!(flow.stream_done.all_[1]);
        // A bot's: server bytes stay with Mirai, an attack command comes
        // any time.
        let mut bot = BuiltinFlow::default();
        feed(&mut bot, &up, 0, &[0, 0, 0, 1]);
        feed(&mut bot, &down, 0, &hello.repeat(8));
        assert!(!bot.stream_done.mirai[1] && !bot.stream_done.all_[1]);
        let mut command = 30u32.to_be_bytes().to_vec();
        command.extend_from_slice(&[0, 1, 10, 60, 9, 9, 32, 0]);
        let mut framed = ((command.len() + 2) as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&command);
        feed(&mut bot, &down, 88, &framed);
        assert_eq!(found, [9_200_104]);
    }

    #[test]
    fn each_detector_owns_a_disjoint_sid_range_holding_its_signatures() {
        let mut ranges: Vec<&RangeInclusive<u32>> = REGISTRY.iter().map(|e| &e.sids).collect();
        ranges.sort_by_key(|r| *r.start());
        for pair in ranges.windows(2) {
            assert!(pair[0].end() < pair[1].start(), "{pair:?} overlap");
        }
        let mut sids = Vec::new();
        for entry in REGISTRY {
            assert!(
                !entry.signatures.is_empty(),
                "{} raises nothing",
                entry.name
            );
            for signature in entry.signatures {
                assert!(
                    entry.sids.contains(&signature.sid),
                    "{}: sid {} outside {:?}",
                    entry.name,
                    signature.sid,
                    entry.sids
                );
                sids.push(signature.sid);
            }
        }
        let count = sids.len();
        sids.sort_unstable();
        sids.dedup();
        assert_eq!(sids.len(), count, "a sid is declared twice");
    }

    #[test]
    fn the_documentation_lists_every_signature_and_section() {
        let docs = include_str!("../../../docs/detectors.md");
        for entry in REGISTRY {
            assert!(
                docs.contains(&format!("[detectors.{}]", entry.name)),
                "docs/detectors.md has no [detectors.{}] section",
                entry.name
            );
            for signature in entry.signatures {
                assert!(
                    docs.contains(&format!("| {} |", signature.sid)),
                    "docs/detectors.md does not list sid {}",
                    signature.sid
                );
            }
        }
    }

    #[test]
    fn recent_evicts_the_least_recently_used_and_counts_it() {
        let mut table = Recent::new(2);
        *table.entry("a", || 1) += 0;
        *table.entry("b", || 2) += 0;
        *table.entry("a", || 0) += 10;
        *table.entry("c", || 3) += 0;
        assert_eq!(table.get(&"a"), Some(&11));
        assert_eq!(table.get(&"b"), None, "b was used least recently");
        assert_eq!((table.len(), table.evicted()), (2, 1));
        for i in 0..1_000 {
            *table.entry("a", || 0) += i;
        }
        assert_eq!(table.get(&"c"), Some(&3));
    }

    #[test]
    fn recent_evicts_an_eighth_at_a_time_oldest_first() {
        let mut table = Recent::new(64);
        for key in 0..64u32 {
            table.entry(key, || key);
        }
        for key in (0..64u32).step_by(2) {
            table.entry_if_present(&key);
        }
        table.entry(64, || 64);
        // The eight used least recently: the odd keys 1 to 15.
        assert_eq!((table.len(), table.evicted()), (57, 8));
        assert!((1..16).step_by(2).all(|key| table.get(&key).is_none()));
        assert!(table.get(&17).is_some() && table.get(&0).is_some());
        for key in 65..200u32 {
            table.entry(key, || key);
        }
        assert!(table.len() <= 64);
        assert_eq!(table.evicted(), 200 - table.len() as u64);
    }
}
