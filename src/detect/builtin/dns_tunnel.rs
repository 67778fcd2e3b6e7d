//! DNS tunnels and DGA-like lookups, per registered domain.
//!
//! Data smuggled through DNS (iodine, dnscat2, DNSExfiltrator) becomes many
//! distinct, long, random-looking names under one domain, often asked for
//! TXT or NULL records. For each registered domain (the last two labels, or
//! three under a two-letter country code's `co`/`com`/`net`/`org`/`gov`/
//! `ac`/`edu`), a worker counts within `dns_tunnel_window_secs` the
//! distinct subdomains, their length and entropy, and TXT/NULL questions.
//! The domain is reported once per window when `dns_tunnel_subdomains`
//! distinct subdomains were asked and they are long (mean at least
//! `dns_tunnel_mean_length` characters) or random (mean entropy at least
//! `dns_tunnel_mean_entropy` bits per character).

use std::collections::{HashMap, HashSet};

use rustc_hash::FxBuildHasher;

use super::{entropy, fingerprint, BuiltinConfig, Finding};

/// Domains tracked at most before the table is cleared.
const MAX_DOMAINS: usize = 1 << 14;
/// Distinct subdomains remembered per domain (counting stops there).
const MAX_SUBDOMAINS: usize = 4_096;
/// DNS types TXT and NULL.
const TXT: u16 = 16;
const NULL: u16 = 10;

const NANOS: u64 = 1_000_000_000;

#[derive(Debug, Default)]
struct DomainStats {
    since_ns: u64,
    subdomains: HashSet<u64, FxBuildHasher>,
    length_sum: u64,
    entropy_sum: f64,
    longest_label: usize,
    txt_null: u32,
    queries: u32,
    reported: bool,
}

/// DNS tunnel state of one worker.
#[derive(Debug, Default)]
pub struct DnsTunnel {
    domains: HashMap<String, DomainStats, FxBuildHasher>,
}

/// Splits a name into (subdomain, registered domain).
fn split(name: &str) -> Option<(&str, &str)> {
    let labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
    if labels.len() < 3 {
        return None;
    }
    let n = labels.len();
    let second_level = ["co", "com", "net", "org", "gov", "ac", "edu"];
    let keep = if labels[n - 1].len() == 2 && second_level.contains(&labels[n - 2]) {
        3
    } else {
        2
    };
    if n <= keep {
        return None;
    }
    let cut: usize = labels[..n - keep].iter().map(|l| l.len() + 1).sum();
    let name = name.trim_end_matches('.');
    Some((&name[..cut - 1], &name[cut..]))
}

impl DnsTunnel {
    /// One question of a request.
    pub fn query(
        &mut self,
        config: &BuiltinConfig,
        ts_ns: u64,
        name: &[u8],
        qtype: u16,
        out: &mut impl FnMut(Finding),
    ) {
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let Some((sub, domain)) = split(&name) else {
            return;
        };
        if self.domains.len() >= MAX_DOMAINS && !self.domains.contains_key(domain) {
            self.domains.clear();
        }
        let stats = self.domains.entry(domain.to_owned()).or_default();
        if ts_ns.saturating_sub(stats.since_ns) >= config.dns_tunnel_window_secs * NANOS {
            *stats = DomainStats {
                since_ns: ts_ns,
                ..DomainStats::default()
            };
        }
        stats.queries += 1;
        if qtype == TXT || qtype == NULL {
            stats.txt_null += 1;
        }
        if stats.subdomains.len() < MAX_SUBDOMAINS
            && stats.subdomains.insert(fingerprint(sub.as_bytes()))
        {
            let letters: String = sub.chars().filter(|c| *c != '.').collect();
            stats.length_sum += letters.len() as u64;
            stats.entropy_sum += entropy(letters.as_bytes());
            stats.longest_label = stats
                .longest_label
                .max(sub.split('.').map(str::len).max().unwrap_or(0));
        }
        let distinct = stats.subdomains.len() as u32;
        if stats.reported || distinct < config.dns_tunnel_subdomains {
            return;
        }
        let mean_length = stats.length_sum as f64 / f64::from(distinct);
        let mean_entropy = stats.entropy_sum / f64::from(distinct);
        if mean_length < f64::from(config.dns_tunnel_mean_length)
            && mean_entropy < config.dns_tunnel_mean_entropy_tenths as f64 / 10.0
        {
            return;
        }
        stats.reported = true;
        out(Finding {
            sid: 9_200_501,
            msg: "MIRADOR DNS tunnel: many long or random subdomains of one domain",
            family: "dns-tunnel",
            classtype: "policy-violation",
            priority: 2,
            metadata: format!(
                "domain {domain}, subdomains {distinct}, queries {}, mean_length {mean_length:.1}, mean_entropy {mean_entropy:.2}, longest_label {}, txt_null {}",
                stats.queries, stats.longest_label, stats.txt_null
            ),
            excerpt: name.into_bytes(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_domains() {
        assert_eq!(split("a.b.example.com"), Some(("a.b", "example.com")));
        assert_eq!(split("x.bbc.co.uk"), Some(("x", "bbc.co.uk")));
        assert_eq!(split("example.com"), None);
        assert_eq!(split("bbc.co.uk"), None);
    }

    #[test]
    fn many_random_subdomains_are_reported_once() {
        let config = BuiltinConfig::default();
        let mut tunnel = DnsTunnel::default();
        let mut found = Vec::new();
        for i in 0..100u64 {
            let label: String = (0..40)
                .map(|j| {
                    b"abcdefghijklmnopqrstuvwxyz234567"[((i * 131 + j * 17) % 32) as usize] as char
                })
                .collect();
            let name = format!("{label}.{i}.t.example.net");
            tunnel.query(&config, i, name.as_bytes(), TXT, &mut |f| found.push(f));
        }
        assert_eq!(found.len(), 1);
        assert!(
            found[0]
                .metadata
                .starts_with("domain example.net, subdomains 30,"),
            "{}",
            found[0].metadata
        );
        let mut cdn = DnsTunnel::default();
        let mut none = Vec::new();
        for host in ["www", "img", "static", "api", "cdn"] {
            let name = format!("{host}.example.org");
            cdn.query(&config, 0, name.as_bytes(), 1, &mut |f| none.push(f));
        }
        assert!(none.is_empty());
    }
}
