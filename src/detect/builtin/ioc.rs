//! Indicator lists from threat intelligence, as plain text files in one
//! folder (`[detectors] ioc_dir`, default `signatures/ioc`):
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

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rustc_hash::FxBuildHasher;

use crate::applayer::{AppEvent, HttpStage};
use crate::detect::rules::address::Cidr;

use super::Finding;

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
    domains: HashMap<String, usize, FxBuildHasher>,
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
            "domain" => {
                let name = indicator.trim_end_matches('.').to_ascii_lowercase();
                let valid = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
                if valid {
                    self.domains.insert(name, index);
                }
                valid
            }
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
        if self.domains.is_empty() {
            return None;
        }
        let name = String::from_utf8_lossy(name)
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let mut rest = name.as_str();
        loop {
            if let Some(&index) = self.domains.get(rest) {
                return Some(index);
            }
            rest = rest.split_once('.')?.1;
        }
    }

    fn finding(&self, index: usize, sid: u32, msg: &'static str, seen: &str) -> Finding {
        let source = &self.sources[index];
        let label = if source.label.is_empty() {
            String::new()
        } else {
            format!(", label {}", source.label)
        };
        Finding {
            sid,
            msg,
            family: "ioc",
            classtype: "trojan-activity",
            priority: 1,
            metadata: format!(
                "indicator {}, seen {seen}, list {}{label}",
                source.indicator, source.file
            ),
            excerpt: Vec::new(),
        }
    }
}

/// Per-worker state: the flows whose addresses were checked.
#[derive(Debug, Default)]
pub struct Ioc {
    checked: HashSet<u64, FxBuildHasher>,
}

impl Ioc {
    /// Both ends of a flow, on its first packet.
    pub fn flow(
        &mut self,
        lists: &IocLists,
        flow_id: u64,
        ends: [IpAddr; 2],
        out: &mut impl FnMut(Finding),
    ) {
        if lists.hosts.is_empty() && lists.nets.is_empty() || !self.checked.insert(flow_id) {
            return;
        }
        for ip in ends {
            if let Some(index) = lists.address(ip) {
                out(lists.finding(
                    index,
                    9_200_301,
                    "MIRADOR IOC listed address",
                    &ip.to_string(),
                ));
            }
        }
    }

    /// Names and fingerprints the parsers saw.
    pub fn app(&mut self, lists: &IocLists, event: &AppEvent<'_>, out: &mut impl FnMut(Finding)) {
        let (name, source) = match event {
            AppEvent::DnsQuery { name, .. } => (Some(*name), "dns"),
            AppEvent::TlsHello(hello) => {
                if let Some(index) = lists.ja3.get(&hello.fingerprint_hash) {
                    out(lists.finding(
                        *index,
                        9_200_303,
                        "MIRADOR IOC listed JA3 fingerprint",
                        &hello.fingerprint_hash,
                    ));
                }
                (hello.sni.as_deref(), "tls")
            }
            AppEvent::Http(tx, HttpStage::RequestHeaders) => (Some(tx.host.as_slice()), "http"),
            AppEvent::Http(..) | AppEvent::TlsCertificate(..) => (None, ""),
        };
        if let Some(index) = name.and_then(|n| lists.domain(n)) {
            let seen = format!(
                "{source} {}",
                String::from_utf8_lossy(name.unwrap_or_default())
            );
            out(lists.finding(index, 9_200_302, "MIRADOR IOC listed domain", &seen));
        }
    }

    /// Forgets a flow.
    pub fn end_flow(&mut self, flow_id: u64) {
        self.checked.remove(&flow_id);
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
        let mut ioc = Ioc::default();
        let mut found = Vec::new();
        let ends = ["10.0.0.1".parse().unwrap(), "203.0.113.7".parse().unwrap()];
        ioc.flow(&lists, 1, ends, &mut |f| found.push(f));
        ioc.flow(&lists, 1, ends, &mut |f| found.push(f));
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].metadata,
            "indicator 203.0.113.7, seen 203.0.113.7, list c2.ips, label cobalt-strike ts"
        );
    }
}
