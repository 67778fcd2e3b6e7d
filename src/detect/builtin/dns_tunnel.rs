//! DNS tunnels, within one short session, whatever the domain or key.
//!
//! A tunnel (iodine, dnscat2, dns2tcp, DNSExfiltrator and the like) must
//! put its data in the names it asks for, under a domain whose server it
//! runs, and each name must be new or a cache answers it. So one client
//! asks one parent domain for many never-repeating names whose labels are
//! encoded data: hex, base32, base64, or raw 8-bit bytes. Many tools also
//! ask for record types that carry data back (NULL, TXT, MX, CNAME, or a
//! private type) and answer with encoded data.
//!
//! Questions are grouped per client and registered parent domain (the last
//! two labels; three under a country code's `co`, `com`, `net`, `org` ...)
//! over `window_secs`, since a tunnel may change its source port with each
//! question. Each distinct name scores points: 2 when a label of 16 or
//! more characters is encoded data (3 for raw bytes or `=`, `+`, `/`), 3
//! for a NULL or private-type question, 1 for TXT, MX, CNAME, ANY or KEY
//! with an encoded name, and 1 when its answer carries encoded data back.
//! Names asked again score nothing. A group is reported once per window at
//! `score` points over at least `min_names` distinct names. Ordinary names
//! (host names, CDN and cloud labels, one hashed name now and then) score
//! 0 to 3 on real traffic; multicast and reverse lookups are left out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};

use super::{
    entropy, fingerprint, printable, AppData, Detector, Events, Finding, Recent, Signature,
    TableUse,
};
use crate::applayer::AppEvent;

const TUNNEL: Signature = Signature {
    sid: 9_200_501,
    msg: "MIRADOR DNS tunnel: encoded data in the names asked of one domain",
    family: "dns-tunnel",
    classtype: "policy-violation",
    priority: 2,
};

/// Distinct names remembered per group (counting stops there).
const MAX_NAMES: usize = 1_024;
/// Labels shorter than this are not read as data.
const MIN_LABEL: usize = 16;

const NANOS: u64 = 1_000_000_000;

/// `[detectors.dns_tunnel]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsTunnelSettings {
    /// The window a client's questions to one domain are scored over,
    /// seconds.
    pub window_secs: u64,
    /// Points that make a tunnel.
    pub score: u32,
    /// Distinct names a tunnel has asked at least.
    pub min_names: u32,
    /// (client, domain) groups remembered at most; the least recently
    /// used is forgotten beyond it.
    pub max_groups: usize,
}

impl Default for DnsTunnelSettings {
    fn default() -> Self {
        Self {
            window_secs: 300,
            score: 16,
            min_names: 6,
            max_groups: 16_384,
        }
    }
}

/// What kind of data a label carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// Bytes outside letters, digits, `-` and `_` (raw bytes, base64's
    /// `+`, `/` and `=`, iodine's base128).
    Raw,
    Hex,
    Base64,
    Base32,
}

impl Encoding {
    const ALL: [Encoding; 4] = [Self::Raw, Self::Hex, Self::Base64, Self::Base32];

    fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Hex => "hex",
            Self::Base64 => "base64",
            Self::Base32 => "base32",
        }
    }
}

fn is_ldh(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
}

/// Changes between digits, upper case, lower case and other characters,
/// per character pair.
fn transitions(label: &[u8]) -> f64 {
    let class = |b: u8| match b {
        b'0'..=b'9' => 0,
        b'A'..=b'Z' => 1,
        b'a'..=b'z' => 2,
        _ => 3,
    };
    let changes = label
        .windows(2)
        .filter(|w| class(w[0]) != class(w[1]))
        .count();
    changes as f64 / (label.len().max(2) - 1) as f64
}

/// What one pass over a label counts.
#[derive(Debug, Default)]
struct Census {
    digits: usize,
    upper: usize,
    lower: usize,
    /// `-` and `_`, which base-N encoders never write.
    joiners: usize,
    /// Bytes outside letters, digits, `-` and `_`.
    other: usize,
    /// Letters beyond `f`.
    past_hex: usize,
}

impl Census {
    /// Counts without a branch per byte (labels of tunnels are random).
    fn of(label: &[u8]) -> Self {
        let mut census = Self::default();
        for &b in label {
            let digit = b.is_ascii_digit();
            let upper = b.is_ascii_uppercase();
            let lower = b.is_ascii_lowercase();
            let joiner = (b == b'-') | (b == b'_');
            census.digits += usize::from(digit);
            census.upper += usize::from(upper);
            census.lower += usize::from(lower);
            census.past_hex += usize::from((upper & (b > b'F')) | (lower & (b > b'f')));
            census.joiners += usize::from(joiner);
            census.other += usize::from(!(digit | upper | lower | joiner));
        }
        census
    }
}

/// The encoding a label's data is in, when it looks like data.
fn label_encoding(label: &[u8]) -> Option<Encoding> {
    if label.len() < MIN_LABEL {
        return None;
    }
    let census = Census::of(label);
    if census.other > 0 {
        return Some(Encoding::Raw);
    }
    let letters = census.upper + census.lower;
    if census.joiners == 0 && census.past_hex == 0 && census.digits > 0 && letters > 0 {
        return Some(Encoding::Hex);
    }
    if census.joiners > 0 {
        return None;
    }
    let mixed_case = census.upper >= 3 && census.lower >= 3;
    let base32_like = label.len() >= 20 && census.digits >= 2;
    if !mixed_case && !base32_like {
        return None;
    }
    let changes = transitions(label);
    let bits = || {
        let mut buffer = [0u8; 64];
        let folded = &mut buffer[..label.len().min(64)];
        for (to, from) in folded.iter_mut().zip(label) {
            *to = from.to_ascii_lowercase();
        }
        entropy(folded)
    };
    if mixed_case && changes >= 0.25 && (census.digits > 0 || bits() >= 3.5) {
        return Some(Encoding::Base64);
    }
    if base32_like && changes >= 0.2 && bits() >= 3.5 {
        return Some(Encoding::Base32);
    }
    None
}

/// The encoding of a subdomain's data: its most telling label's, or raw
/// when its labels together hold bytes outside host-name characters.
fn subdomain_encoding(subdomain: &[u8]) -> Option<Encoding> {
    let mut found = [false; 4];
    for label in subdomain.split(|&b| b == b'.') {
        if let Some(encoding) = label_encoding(label) {
            found[encoding as usize] = true;
        }
    }
    if let Some(best) = Encoding::ALL.iter().find(|e| found[**e as usize]) {
        return Some(*best);
    }
    let length = subdomain.iter().filter(|&&b| b != b'.').count();
    (length >= 12 && subdomain.split(|&b| b == b'.').any(|l| !is_ldh(l))).then_some(Encoding::Raw)
}

/// Second-level labels under which country codes register names.
const SECOND_LEVEL: &[&[u8]] = &[
    b"co", b"com", b"net", b"org", b"ac", b"gov", b"edu", b"ne", b"or", b"go", b"gob", b"mil",
    b"ltd", b"plc", b"sch", b"nom",
];

/// Splits a name into its subdomain and its registered domain (slices of
/// it, the trailing dot left out). dnscat2 run without a domain asks for
/// `dnscat.` followed by its data: that prefix stands for the domain.
fn split(name: &[u8]) -> Option<(&[u8], &[u8])> {
    let name = name.strip_suffix(b".").unwrap_or(name);
    if name.len() > 7 && name[..7].eq_ignore_ascii_case(b"dnscat.") {
        return Some((&name[7..], &name[..6]));
    }
    if name.split(|&b| b == b'.').any(<[u8]>::is_empty) {
        return None;
    }
    // Dots from the end: the registered domain keeps two labels, three
    // under a country code's second level.
    let dots: Vec<usize> = name
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, &b)| b == b'.')
        .map(|(at, _)| at)
        .take(3)
        .collect();
    let label = |from: usize, to: usize| &name[from..to];
    let keep = match dots.as_slice() {
        [last, second, ..]
            if name.len() - last - 1 == 2
                && SECOND_LEVEL
                    .iter()
                    .any(|s| label(second + 1, *last).eq_ignore_ascii_case(s)) =>
        {
            3
        }
        _ => 2,
    };
    let cut = *dots.get(keep - 1)?;
    Some((&name[..cut], &name[cut + 1..]))
}

/// A fingerprint of `name` whatever its case.
fn folded_fingerprint(name: &[u8]) -> u64 {
    let mut buffer = [0u8; 256];
    let folded = &mut buffer[..name.len().min(256)];
    for (to, from) in folded.iter_mut().zip(name) {
        *to = from.to_ascii_lowercase();
    }
    fingerprint(folded)
}

/// Points a question type adds: (with an encoded name, without).
fn type_points(qtype: u16) -> (u32, u32) {
    match qtype {
        // NULL, and the private-use types tunnels pick.
        10 | 65_280..=65_534 => (3, 3),
        // TXT, MX, CNAME, ANY, KEY.
        16 | 15 | 5 | 255 | 25 => (1, 0),
        _ => (0, 0),
    }
}

/// True when an answer record carries encoded data back.
fn answer_carries_data(rtype: u16, data: &[u8], domain: &[u8]) -> bool {
    match rtype {
        10 | 65_280..=65_534 => data.len() >= 4,
        16 => {
            data.len() >= 10
                && !data.contains(&b' ')
                && (label_encoding(&data[..data.len().min(63)]).is_some()
                    || data.iter().all(u8::is_ascii_hexdigit))
        }
        5 | 15 | 2 | 12 => split(data).is_some_and(|(subdomain, parent)| {
            parent.eq_ignore_ascii_case(domain) && subdomain_encoding(subdomain).is_some()
        }),
        _ => false,
    }
}

/// One client's questions to one domain in the current window.
#[derive(Debug, Default)]
struct Group {
    since_ns: u64,
    /// Points of each distinct name, and whether its answer scored.
    names: HashMap<u64, (u32, bool), FxBuildHasher>,
    score: u32,
    queries: u32,
    encoded: u32,
    odd_types: u32,
    answers: u32,
    encodings: [u32; 4],
    types: Vec<(u16, u32)>,
    tool: Option<&'static str>,
    /// dnscat2's packets start with a random id, then a message type and a
    /// session id that stay: those of the last hex name, and how many
    /// names repeated them.
    dnscat_header: [u8; 6],
    dnscat_repeats: u32,
    example: Vec<u8>,
    reported: bool,
}

impl Group {
    fn note_type(&mut self, qtype: u16) {
        if let Some((_, count)) = self.types.iter_mut().find(|(t, _)| *t == qtype) {
            *count += 1;
        } else if self.types.len() < 8 {
            self.types.push((qtype, 1));
        }
    }
}

/// What a tool's names say about it.
fn tool_of(subdomain: &[u8], qtype: u16) -> Option<&'static str> {
    if subdomain
        .split(|&b| b == b'.')
        .any(|l| l.starts_with(b"=auth") || l.starts_with(b"=connect"))
    {
        return Some("dns2tcp");
    }
    if matches!(qtype, 10 | 65_280..=65_534) {
        return Some("iodine");
    }
    None
}

/// DNS tunnels per client and domain.
#[derive(Debug)]
pub struct DnsTunnel {
    settings: DnsTunnelSettings,
    groups: Recent<(IpAddr, u64), Group>,
}

impl Detector for DnsTunnel {
    const SIDS: std::ops::RangeInclusive<u32> = 9_200_500..=9_200_599;
    const SIGNATURES: &'static [Signature] = &[TUNNEL];
    const EVENTS: Events = Events::DNS_QUERY.union(Events::DNS_ANSWER);
    type Settings = DnsTunnelSettings;
    type Flow = ();
    type Shared = ();

    fn new(settings: &DnsTunnelSettings, _: &Arc<()>) -> Self {
        Self {
            settings: settings.clone(),
            groups: Recent::new(settings.max_groups),
        }
    }

    fn app(&mut self, _: &mut (), data: &AppData<'_>, out: &mut impl FnMut(Finding)) {
        let (name, client, query) = match data.event {
            AppEvent::DnsQuery { name, qtype } => (*name, data.sender.src.ip(), Some(*qtype)),
            AppEvent::DnsAnswer(answer) => (answer.name.as_slice(), data.sender.dst.ip(), None),
            _ => return,
        };
        // Only what can score is counted: a long label, a record type
        // that carries data, an answer that may carry it back.
        let scores = match data.event {
            AppEvent::DnsQuery { qtype, .. } => {
                type_points(*qtype).1 > 0 || name.split(|&b| b == b'.').any(|l| l.len() >= 12)
            }
            AppEvent::DnsAnswer(answer) => answer
                .records
                .iter()
                .any(|r| matches!(r.rtype, 2 | 5 | 10 | 12 | 15 | 16 | 65_280..=65_534)),
            _ => false,
        };
        if !scores {
            return;
        }
        let Some((subdomain, domain)) = split(name) else {
            return;
        };
        if [&b"local"[..], b"arpa"].iter().any(|t| {
            domain.len() >= t.len() && domain[domain.len() - t.len()..].eq_ignore_ascii_case(t)
        }) {
            return;
        }
        let window = self.settings.window_secs * NANOS;
        let key = (client, folded_fingerprint(domain));
        let ts_ns = data.ts_ns;
        let group = match query {
            Some(_) => self.groups.entry(key, Group::default),
            None => match self.groups.entry_if_present(&key) {
                Some(group) => group,
                None => return,
            },
        };
        if group.names.is_empty() || ts_ns.saturating_sub(group.since_ns) > window {
            *group = Group {
                since_ns: ts_ns,
                ..Group::default()
            };
        }
        let id = folded_fingerprint(name);
        match (query, data.event) {
            (Some(qtype), _) => {
                group.queries += 1;
                group.note_type(qtype);
                if group.names.contains_key(&id) || group.names.len() >= MAX_NAMES {
                    return;
                }
                let encoding = subdomain_encoding(subdomain);
                let mut points = 0;
                if let Some(encoding) = encoding {
                    points += if encoding == Encoding::Raw { 3 } else { 2 };
                    group.encoded += 1;
                    group.encodings[encoding as usize] += 1;
                    if group.example.is_empty() {
                        group.example = name.to_vec();
                    }
                }
                let (with_data, alone) = type_points(qtype);
                let type_points = if encoding.is_some() { with_data } else { alone };
                if type_points > 0 {
                    points += type_points;
                    group.odd_types += 1;
                }
                if encoding == Some(Encoding::Hex) {
                    let first = subdomain.split(|&b| b == b'.').next();
                    if let Some(header) = first.and_then(|l| l.get(4..10)) {
                        let header: [u8; 6] =
                            header.to_ascii_lowercase().try_into().unwrap_or_default();
                        if header == group.dnscat_header {
                            group.dnscat_repeats += 1;
                        }
                        group.dnscat_header = header;
                    }
                }
                let dnscat = domain.eq_ignore_ascii_case(b"dnscat") || group.dnscat_repeats >= 2;
                group.tool = group.tool.or(if dnscat {
                    Some("dnscat2")
                } else {
                    tool_of(subdomain, qtype)
                });
                group.names.insert(id, (points, false));
                group.score += points;
            }
            (None, AppEvent::DnsAnswer(answer)) => {
                let Some((_, answered)) = group.names.get_mut(&id) else {
                    return;
                };
                let carries = answer
                    .records
                    .iter()
                    .any(|r| answer_carries_data(r.rtype, &r.data, domain));
                if *answered || !carries {
                    return;
                }
                *answered = true;
                group.answers += 1;
                group.score += 1;
            }
            _ => return,
        }
        let distinct = group.names.len() as u32;
        if group.reported
            || group.score < self.settings.score
            || distinct < self.settings.min_names
            || group.encoded + group.odd_types < self.settings.min_names / 2
        {
            return;
        }
        group.reported = true;
        let encodings: Vec<String> = Encoding::ALL
            .iter()
            .filter(|e| group.encodings[**e as usize] > 0)
            .map(|e| format!("{} {}", e.name(), group.encodings[*e as usize]))
            .collect();
        let types: Vec<String> = group
            .types
            .iter()
            .map(|(t, n)| format!("{t}:{n}"))
            .collect();
        let metadata = format!(
            "tool {}, domain {}, names {distinct}, queries {}, score {}, encoded {}, encodings {}, qtypes {}, data_answers {}, secs {:.1}",
            group.tool.unwrap_or("generic"),
            printable(&domain.to_ascii_lowercase(), 253),
            group.queries,
            group.score,
            group.encoded,
            if encodings.is_empty() { "none".to_owned() } else { encodings.join(" ") },
            types.join(" "),
            group.answers,
            ts_ns.saturating_sub(group.since_ns) as f64 / NANOS as f64,
        );
        out(Finding::new(&TUNNEL, metadata, &group.example));
    }

    fn tables(&self) -> TableUse {
        self.groups.usage()
    }
}

#[cfg(test)]
mod tests {
    use super::super::variants::{Random, HEX, LETTERS};
    use super::*;
    use crate::applayer::{AnswerRecord, DnsAnswer};
    use crate::decode::ip_proto;
    use crate::detect::Sender;

    const BASE32: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    fn sender(client: &str, port: u16) -> Sender {
        Sender {
            flow_id: 1,
            dir: 0,
            proto: ip_proto::UDP,
            src: format!("{client}:{port}").parse().unwrap(),
            dst: "192.0.2.53:53".parse().unwrap(),
            carrier: Default::default(),
        }
    }

    fn ask(
        tunnel: &mut DnsTunnel,
        ts_ns: u64,
        client: &str,
        name: &str,
        qtype: u16,
    ) -> Vec<Finding> {
        let mut found = Vec::new();
        let event = AppEvent::DnsQuery {
            name: name.as_bytes(),
            qtype,
        };
        let s = sender(client, 1024 + (ts_ns % 60_000) as u16);
        let data = AppData {
            ts_ns,
            sender: &s,
            event: &event,
        };
        tunnel.app(&mut (), &data, &mut |f| found.push(f));
        found
    }

    fn tunnel() -> DnsTunnel {
        DnsTunnel::new(&DnsTunnelSettings::default(), &Arc::new(()))
    }

    #[test]
    fn a_dozen_encoded_questions_make_a_tunnel_whatever_the_domain_and_encoding() {
        let mut random = Random::new(99);
        for (alphabet, qtype) in [
            (HEX, 15),
            (HEX, 1),
            (BASE32, 10),
            (BASE32, 16),
            (BASE64, 16),
            (BASE32, 1),
        ] {
            for _ in 0..10 {
                let domain = format!(
                    "{}.{}",
                    random.string(LETTERS, 8),
                    ["com", "net", "io", "co.uk"][random.draw() as usize % 4]
                );
                let mut tunnel = tunnel();
                let mut found = Vec::new();
                let mut asked = 0;
                for i in 0..12u64 {
                    let len = 20 + random.draw() as usize % 43;
                    let name = format!("{}.{domain}", random.string(alphabet, len));
                    found.extend(ask(
                        &mut tunnel,
                        i * 1_000_000_000,
                        "10.1.1.1",
                        &name,
                        qtype,
                    ));
                    asked += 1;
                    if !found.is_empty() {
                        break;
                    }
                }
                assert_eq!(found.len(), 1, "{domain} {qtype}");
                assert!(asked <= 12, "needed {asked} questions");
                assert!(
                    found[0].metadata.contains(&format!("domain {domain}")),
                    "{}",
                    found[0].metadata
                );
            }
        }
    }

    #[test]
    fn dnscat2_is_named_by_its_session_header() {
        let mut random = Random::new(7);
        for _ in 0..20 {
            let mut tunnel = tunnel();
            let domain = format!("{}.com", random.word(7));
            let session = random.string(HEX, 6);
            let mut found = Vec::new();
            for i in 0..12u64 {
                let name = format!(
                    "{}{session}{}.{domain}",
                    random.string(HEX, 4),
                    random.string(HEX, 24)
                );
                found.extend(ask(
                    &mut tunnel,
                    i * 1_000_000_000,
                    "10.1.1.1",
                    &name,
                    [15, 16, 5][i as usize % 3],
                ));
            }
            assert_eq!(found.len(), 1);
            assert!(
                found[0].metadata.starts_with("tool dnscat2,"),
                "{}",
                found[0].metadata
            );
        }
    }

    #[test]
    fn ordinary_names_are_not_a_tunnel() {
        let mut tunnel = tunnel();
        let mut found = Vec::new();
        let hosts = [
            "www",
            "mail",
            "api",
            "cdn",
            "static",
            "img",
            "login",
            "c-flightproxy-euno-01-teams",
            "skypedataprdcolneu04",
            "e0d67c509fb203858ebcb2fe3f88c2aa",
            "fonts",
            "accounts",
            "clients4",
            "safebrowsing",
            "update",
            "download",
            "s3-eu-west-1",
            "us-east-1",
        ];
        for (i, host) in hosts.iter().enumerate() {
            for qtype in [1, 28, 16] {
                let name = format!("{host}.example.com");
                found.extend(ask(&mut tunnel, i as u64, "10.1.1.1", &name, qtype));
            }
        }
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn groups_are_per_client_and_answers_with_data_score() {
        let mut random = Random::new(5);
        let mut tunnel = tunnel();
        let mut found = Vec::new();
        for i in 0..5u64 {
            for client in ["10.0.0.1", "10.0.0.2"] {
                let name = format!("{}.t.example.org", random.string(HEX, 34));
                found.extend(ask(&mut tunnel, i, client, &name, 1));
                let answer = DnsAnswer {
                    name: name.clone().into_bytes(),
                    qtype: 1,
                    rcode: 0,
                    records: vec![AnswerRecord {
                        rtype: 5,
                        data: format!("{}.example.org", random.string(HEX, 40)).into_bytes(),
                    }],
                };
                let event = AppEvent::DnsAnswer(&answer);
                let mut s = sender(client, 2000);
                std::mem::swap(&mut s.src, &mut s.dst);
                let data = AppData {
                    ts_ns: i,
                    sender: &s,
                    event: &event,
                };
                tunnel.app(&mut (), &data, &mut |f| found.push(f));
            }
        }
        assert!(found.is_empty(), "5 names each: 15 points");
        found.extend(ask(
            &mut tunnel,
            9,
            "10.0.0.1",
            &format!("{}.t.example.org", random.string(HEX, 34)),
            1,
        ));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].metadata.contains("data_answers 5"),
            "{}",
            found[0].metadata
        );
    }

    #[test]
    fn labels_are_classed_by_their_alphabet() {
        assert_eq!(
            label_encoding(b"147901b8d3df9cc46c59d600078b3316ce"),
            Some(Encoding::Hex)
        );
        assert_eq!(
            label_encoding(b"laczi1dwmfbaywb0fm5xhkrgz0heotzq"),
            Some(Encoding::Base32)
        );
        assert_eq!(
            label_encoding(b"ondy6K6cAHNzaAAAAH7wQA"),
            Some(Encoding::Base64)
        );
        assert_eq!(label_encoding(b"AAAAAH7wQA=auth"), None, "short label");
        assert_eq!(label_encoding(b"z0pkaAbBcC+/dDeEfF"), Some(Encoding::Raw));
        assert_eq!(label_encoding(b"c-flightproxy-euno-01-teams"), None);
        assert_eq!(label_encoding(b"deadbeef12345678"), Some(Encoding::Hex));
        assert_eq!(label_encoding(b"abcdefabcdefabcd"), None, "letters only");
        assert_eq!(
            split(b"a.b.example.co.uk."),
            Some((&b"a.b"[..], &b"example.co.uk"[..]))
        );
        assert_eq!(
            split(b"x.Example.COM"),
            Some((&b"x"[..], &b"Example.COM"[..]))
        );
        assert_eq!(
            split(b"dnscat.1a2b3c"),
            Some((&b"1a2b3c"[..], &b"dnscat"[..]))
        );
        assert_eq!(split(b"example.com"), None);
        assert_eq!(split(b"a..example.com"), None);
    }
}
