//! Indicator lists from threat intelligence, as plain text files in one
//! folder (`[detectors.ioc] dir`, default `signatures/ioc`):
//!
//! - `*.ips`: IPv4 or IPv6 addresses and networks, matched against both
//!   ends of every flow (once per flow);
//! - `*.domains`: names, matched with their subdomains against DNS
//!   questions, TLS server names and HTTP hosts;
//! - `*.ja3`: JA3 or JA3S hashes, matched against TLS hellos.
//!
//! One indicator per line, optionally followed by white space and a label;
//! `#` starts a comment. A line that does not parse is reported with its
//! file and line and skipped. Findings carry the indicator, its label and
//! the file it came from.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};

use super::secret::Masker;
use super::{AppData, Detector, Events, Finding, Signature};
use crate::applayer::{AppEvent, HttpStage};
use crate::detect::inspect::PacketView;
use crate::detect::rules::address::Cidr;

const ADDRESS: Signature = Signature {
    sid: 9_200_301,
    msg: "MIRADOR IOC listed address",
    family: "ioc",
    classtype: "trojan-activity",
    priority: 1,
};

const DOMAIN: Signature = Signature {
    sid: 9_200_302,
    msg: "MIRADOR IOC listed domain",
    family: "ioc",
    classtype: "trojan-activity",
    priority: 1,
};

const JA3: Signature = Signature {
    sid: 9_200_303,
    msg: "MIRADOR IOC listed JA3 fingerprint",
    family: "ioc",
    classtype: "trojan-activity",
    priority: 1,
};

/// Host names, each with a label; a name matches itself and its
/// subdomains.
#[derive(Debug, Default)]
pub struct Domains {
    names: HashMap<String, String, FxBuildHasher>,
    /// The fewest and the most labels of a listed name: only the suffixes
    /// of a name with as many are looked up.
    labels: (usize, usize),
}

impl Domains {
    /// Adds `name` (case and a trailing dot ignored) with `label`; false
    /// when it is not a host name.
    pub fn insert(&mut self, name: &str, label: String) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if valid {
            let labels = name.split('.').count();
            self.labels = if self.names.is_empty() {
                (labels, labels)
            } else {
                (self.labels.0.min(labels), self.labels.1.max(labels))
            };
            self.names.insert(name, label);
        }
        valid
    }

    /// The label of the listed name `name` is, or is under.
    pub fn find(&self, name: &[u8]) -> Option<&str> {
        if self.names.is_empty() {
            return None;
        }
        let name = name.strip_suffix(b".").unwrap_or(name);
        let (fewest, most) = self.labels;
        let labels = memchr::memchr_iter(b'.', name).count() + 1;
        if labels < fewest {
            return None;
        }
        // The suffix of `most` labels, lower-cased on the stack (names are
        // at most 253 characters).
        let skip = labels.saturating_sub(most);
        let start = match skip {
            0 => 0,
            n => memchr::memchr_iter(b'.', name).nth(n - 1)? + 1,
        };
        let name = &name[start..];
        let mut buffer = [0u8; 256];
        let lower = buffer.get_mut(..name.len())?;
        for (to, from) in lower.iter_mut().zip(name) {
            *to = from.to_ascii_lowercase();
        }
        let mut rest = std::str::from_utf8(lower).ok()?;
        for _ in 0..=(labels - skip - fewest) {
            if let Some(label) = self.names.get(rest) {
                return Some(label);
            }
            rest = rest.split_once('.')?.1;
        }
        None
    }

    /// True when nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Where an indicator came from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Source {
    indicator: String,
    label: String,
    file: String,
}

/// A line of an indicator file that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: not a {kind}: {text:?}")]
pub struct IocError {
    /// The file.
    pub file: PathBuf,
    /// Its line, 1-based.
    pub line: usize,
    /// What the file lists.
    pub kind: &'static str,
    /// The line's indicator.
    pub text: String,
}

/// The loaded indicator lists.
#[derive(Debug, Default)]
pub struct IocLists {
    sources: Vec<Source>,
    hosts: HashMap<IpAddr, usize, FxBuildHasher>,
    nets: Vec<(Cidr, usize)>,
    /// Listed names, labelled with their source's index.
    domains: Domains,
    ja3: HashMap<String, usize, FxBuildHasher>,
}

impl IocLists {
    /// Reads every `*.ips`, `*.domains` and `*.ja3` file in `dir` (none
    /// when it does not exist), with the lines that did not parse.
    pub fn load(dir: &Path) -> (Self, Vec<IocError>) {
        let mut lists = Self::default();
        let mut errors = Vec::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return (lists, errors);
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for file in files {
            let kind = match file.extension().and_then(|e| e.to_str()) {
                Some("ips") => "address",
                Some("domains") => "domain",
                Some("ja3") => "JA3 hash",
                _ => continue,
            };
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let name = file
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            for (number, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or("").trim();
                let mut parts = line.split_whitespace();
                let Some(indicator) = parts.next() else {
                    continue;
                };
                let label = parts.collect::<Vec<_>>().join(" ");
                if !lists.add(kind, indicator, &label, &name) {
                    errors.push(IocError {
                        file: file.clone(),
                        line: number + 1,
                        kind,
                        text: indicator.to_owned(),
                    });
                }
            }
        }
        (lists, errors)
    }

    /// Indicators loaded.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// True when nothing is loaded.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    fn add(&mut self, kind: &str, indicator: &str, label: &str, file: &str) -> bool {
        let index = self.sources.len();
        let added = match kind {
            "address" => match Cidr::parse(indicator) {
                Some(net) => {
                    match indicator.parse::<IpAddr>() {
                        Ok(ip) => {
                            self.hosts.insert(ip, index);
                        }
                        Err(_) => self.nets.push((net, index)),
                    }
                    true
                }
                None => false,
            },
            "domain" => self.domains.insert(indicator, index.to_string()),
            _ => {
                let hash = indicator.to_ascii_lowercase();
                let valid = hash.len() == 32 && hash.bytes().all(|b| b.is_ascii_hexdigit());
                if valid {
                    self.ja3.insert(hash, index);
                }
                valid
            }
        };
        if added {
            self.sources.push(Source {
                indicator: indicator.to_owned(),
                label: label.to_owned(),
                file: file.to_owned(),
            });
        }
        added
    }

    fn address(&self, ip: IpAddr) -> Option<usize> {
        self.hosts.get(&ip).copied().or_else(|| {
            self.nets
                .iter()
                .find(|(net, _)| net.contains(ip))
                .map(|(_, i)| *i)
        })
    }

    /// The listed domain `name` is, or is under.
    fn domain(&self, name: &[u8]) -> Option<usize> {
        self.domains.find(name).and_then(|index| index.parse().ok())
    }

    fn finding(&self, index: usize, signature: &'static Signature, seen: &str) -> Finding {
        let source = &self.sources[index];
        let label = if source.label.is_empty() {
            String::new()
        } else {
            format!(", label {}", source.label)
        };
        let metadata = format!(
            "indicator {}, seen {seen}, list {}{label}",
            source.indicator, source.file
        );
        Finding::new(signature, metadata, &[])
    }
}

/// `[detectors.ioc]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IocSettings {
    /// Folder of indicator lists (`*.ips`, `*.domains`, `*.ja3`).
    pub dir: PathBuf,
}

impl Default for IocSettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("signatures/ioc"),
        }
    }
}

/// Indicator matching for one worker.
#[derive(Debug)]
pub struct Ioc {
    lists: Arc<IocLists>,
}

impl Detector for Ioc {
    const SIDS: std::ops::RangeInclusive<u32> = 9_200_300..=9_200_399;
    const SIGNATURES: &'static [Signature] = &[ADDRESS, DOMAIN, JA3];
    const EVENTS: Events = Events::FIRST_PACKET
        .union(Events::DNS_QUERY)
        .union(Events::TLS_HELLO)
        .union(Events::HTTP_REQUEST);
    type Settings = IocSettings;
    /// The flow's addresses were checked.
    type Flow = bool;
    type Shared = IocLists;

    fn files(settings: &mut IocSettings) -> Vec<(&'static str, &mut PathBuf)> {
        vec![("dir", &mut settings.dir)]
    }

    fn load(settings: &IocSettings, _: &Masker, problems: &mut Vec<String>) -> IocLists {
        let (lists, errors) = IocLists::load(&settings.dir);
        problems.extend(errors.iter().map(|e| format!("{e}; indicator skipped")));
        if !lists.is_empty() {
            tracing::info!(indicators = lists.len(), dir = %settings.dir.display(), "indicator lists loaded");
        }
        lists
    }

    fn new(_: &IocSettings, shared: &Arc<IocLists>) -> Self {
        Self {
            lists: Arc::clone(shared),
        }
    }

    /// Both ends of a flow, on its first packet.
    fn packet(
        &mut self,
        checked: &mut bool,
        packet: &PacketView<'_>,
        out: &mut impl FnMut(Finding),
    ) {
        let lists = &self.lists;
        if *checked || !packet.transport_valid || lists.hosts.is_empty() && lists.nets.is_empty() {
            return;
        }
        *checked = true;
        for ip in [packet.src, packet.dst] {
            if let Some(index) = lists.address(ip) {
                out(lists.finding(index, &ADDRESS, &ip.to_string()));
            }
        }
    }

    /// Names and fingerprints the parsers saw.
    fn app(&mut self, _: &mut bool, data: &AppData<'_>, out: &mut impl FnMut(Finding)) {
        let lists = &self.lists;
        let (name, source) = match data.event {
            AppEvent::DnsQuery { name, .. } => (Some(*name), "dns"),
            AppEvent::TlsHello(hello) => {
                if let Some(index) = lists.ja3.get(&hello.fingerprint_hash) {
                    out(lists.finding(*index, &JA3, &hello.fingerprint_hash));
                }
                (hello.sni.as_deref(), "tls")
            }
            AppEvent::Http(tx, HttpStage::RequestHeaders) => (Some(tx.host.as_slice()), "http"),
            _ => (None, ""),
        };
        if let Some(index) = name.and_then(|n| lists.domain(n)) {
            let seen = format!(
                "{source} {}",
                String::from_utf8_lossy(name.unwrap_or_default())
            );
            out(lists.finding(index, &DOMAIN, &seen));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists() -> (IocLists, Vec<IocError>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("c2.ips"),
            "# team servers\n203.0.113.7  cobalt-strike ts\n198.51.100.0/24\nnot-an-ip\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("bad.domains"), "Evil.example.  phishing\n").unwrap();
        std::fs::write(
            dir.path().join("tools.ja3"),
            "72A589DA586844D7F0818CE684948EEA metasploit\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored\n").unwrap();
        IocLists::load(dir.path())
    }

    #[test]
    fn listed_names_match_themselves_and_their_subdomains_at_any_depth() {
        let mut domains = Domains::default();
        assert!(domains.insert("pool.example", "a".into()));
        assert!(domains.insert("eu.mine.example.org.", "b".into()));
        assert_eq!(domains.labels, (2, 4));
        assert_eq!(domains.find(b"pool.example"), Some("a"));
        assert_eq!(domains.find(b"x.y.z.w.POOL.example."), Some("a"));
        assert_eq!(domains.find(b"eu.mine.example.org"), Some("b"));
        assert_eq!(domains.find(b"1.2.3.eu.mine.example.org"), Some("b"));
        assert_eq!(domains.find(b"mine.example.org"), None);
        assert_eq!(domains.find(b"example"), None);
        assert_eq!(domains.find(b"pool.example.net"), None);
        assert_eq!(domains.find(b""), None);
    }

    #[test]
    fn lists_load_with_labels_and_bad_lines_named() {
        let (lists, errors) = lists();
        assert_eq!(lists.len(), 4);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .to_string()
                .ends_with("c2.ips:4: not a address: \"not-an-ip\""),
            "{}",
            errors[0]
        );
        // Files are read in name order: bad.domains, c2.ips, tools.ja3.
        assert_eq!(lists.address("203.0.113.7".parse().unwrap()), Some(1));
        assert_eq!(lists.address("198.51.100.99".parse().unwrap()), Some(2));
        assert_eq!(lists.address("198.51.101.1".parse().unwrap()), None);
        assert_eq!(lists.domain(b"cdn.EVIL.example"), Some(0));
        assert_eq!(lists.domain(b"evil.example.org"), None);
        assert_eq!(lists.domain(b"notevil.example"), None);
    }

    #[test]
    fn a_flow_is_checked_once() {
        let (lists, _) = lists();
        let mut ioc = Ioc {
            lists: Arc::new(lists),
        };
        let mut found = Vec::new();
        let packet = PacketView {
            ts_ns: 0,
            flow_id: 1,
            to_server: true,
            established: false,
            reassembled: false,
            proto: 6,
            src: "10.0.0.1".parse().unwrap(),
            dst: "203.0.113.7".parse().unwrap(),
            src_port: 1000,
            dst_port: 443,
            carrier: Default::default(),
            transport_valid: true,
            payload: &[],
            payload_len: 0,
            stream_sizes: None,
            tcp: None,
            icmp: None,
        };
        let mut checked = false;
        ioc.packet(&mut checked, &packet, &mut |f| found.push(f));
        ioc.packet(&mut checked, &packet, &mut |f| found.push(f));
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].metadata,
            "indicator 203.0.113.7, seen 203.0.113.7, list c2.ips, label cobalt-strike ts"
        );
    }
}
