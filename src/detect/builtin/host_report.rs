//! HTTP command and control that reports the infected host: a client that
//! sends its host name, user name and operating system to one server again
//! and again, in the URI, a cookie, a header or the body, plain,
//! URL-encoded or base64.
//!
//! Each request's values are read from the query, the cookies, headers
//! other than the standard ones (a browser's User-Agent names its OS on
//! every request, and is left out), and the body (form, JSON or delimited
//! text); a value that is base64 of text is read decoded too, and split
//! again. A value is an OS when it names one with a version or edition
//! (`Windows 10 Pro`, `Microsoft Windows NT 6.1`, `Linux 5.15`,
//! `Ubuntu 22.04`, `macOS 14`, a Windows build `10.0.19045`); a host name
//! when its parameter says so (`host`, `hostname`, `computer`, `pc`,
//! `machine` ...) or it has the shape Windows gives machines
//! (`DESKTOP-XXXXXXX`, `WIN-XXXXXXXXXXX`); a user name when its parameter
//! says so (`user`, `username`, `login` ...) or it is `DOMAIN\user`. A
//! request with an OS and a host or user name is a report; the same report
//! from one client to one server `min_reports` times is a finding, with
//! the values read.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::encoding::{base64, binary_share, form};
use super::{
    fingerprint, printable, AppData, Detector, Events, Finding, Recent, Signature, TableUse,
};
use crate::applayer::http::head::is_standard_request_header;
use crate::applayer::http::uri::percent_decode;
use crate::applayer::{AppEvent, HttpStage, Transaction};

const REPORT: Signature = Signature {
    sid: 9_201_001,
    msg: "MIRADOR C2 HTTP check-ins reporting the host name, user and OS",
    family: "c2",
    classtype: "trojan-activity",
    priority: 1,
};

/// Parameter names of host names and user names.
const HOST_NAMES: &[&[u8]] = &[
    b"host",
    b"hostname",
    b"computer",
    b"computername",
    b"comp",
    b"pc",
    b"pcname",
    b"machine",
    b"machinename",
    b"hn",
    b"cname",
];
const USER_NAMES: &[&[u8]] = &[
    b"user",
    b"username",
    b"usr",
    b"uname",
    b"login",
    b"account",
    b"un",
    b"owner",
];
/// Bytes of a body read at most.
const MAX_BODY: usize = 4 << 10;
/// Values read per request at most.
const MAX_VALUES: usize = 64;
/// Values longer than this are no OS's name, bytes.
const MAX_OS: usize = 64;
/// Path segments shorter than this name no OS, host or user with them.
const MIN_SEGMENT: usize = 8;
/// Values shorter than this are no base64 of a report.
const MIN_BASE64: usize = 16;
/// Characters of a value written in the metadata at most.
const SHOWN: usize = 64;

/// `[detectors.host_report]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostReportSettings {
    /// Reports of one host from one client to one server that make a
    /// finding.
    pub min_reports: u32,
    /// (client, server, report) entries remembered; the least recently
    /// used is forgotten beyond it.
    pub max_reports: usize,
}

impl Default for HostReportSettings {
    fn default() -> Self {
        Self {
            min_reports: 2,
            max_reports: 65_536,
        }
    }
}

/// Which values a pass over a request reads.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Host and user names, and whatever base64 decodes to.
    #[default]
    Names,
    /// Operating systems, in plain values.
    Systems,
}

/// What one request said of its host.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Report {
    pass: Pass,
    os: Option<Vec<u8>>,
    host: Option<Vec<u8>>,
    user: Option<Vec<u8>>,
    /// Where and how it was carried.
    place: &'static str,
    encoding: &'static str,
}

impl Report {
    fn complete(&self) -> bool {
        self.os.is_some() && (self.host.is_some() || self.user.is_some())
    }

    /// Reads values with `walk`: first for host and user names (and the
    /// text base64 values decode to, whole), then, only when one was
    /// found, for an OS among the plain values.
    fn read(&mut self, mut walk: impl FnMut(&mut Self)) {
        self.pass = Pass::Names;
        walk(self);
        if self.host.is_some() || self.user.is_some() {
            self.pass = Pass::Systems;
            walk(self);
        }
    }

    /// Reads one named value, and the text it decodes to.
    fn value(&mut self, name: &[u8], value: &[u8], place: &'static str, depth: u8) {
        let value = super::encoding::trim(value);
        if value.len() < 3 || value.len() > 512 {
            return;
        }
        let name = match name.get(..2) {
            Some(prefix) if prefix.eq_ignore_ascii_case(b"x-") => &name[2..],
            _ => name,
        };
        let named = |names: &[&[u8]]| names.iter().any(|n| n.eq_ignore_ascii_case(name));
        let (names, systems) = match (depth, self.pass) {
            (0, Pass::Names) => (true, false),
            (0, Pass::Systems) => (false, true),
            _ => (true, true),
        };
        let before = (self.os.is_some(), self.host.is_some(), self.user.is_some());
        if systems && self.os.is_none() && value.len() <= MAX_OS && names_os(value) {
            self.os = Some(value.to_vec());
        }
        if names
            && self.host.is_none()
            && (named(HOST_NAMES) || machine_name(value))
            && host_like(value)
        {
            self.host = Some(value.to_vec());
        }
        if names
            && self.user.is_none()
            && (named(USER_NAMES) || domain_user(value))
            && user_like(value)
        {
            self.user = Some(value.to_vec());
        }
        if before != (self.os.is_some(), self.host.is_some(), self.user.is_some())
            && self.place.is_empty()
        {
            self.place = place;
            self.encoding = if depth > 0 { "base64" } else { "plain" };
        }
        if depth == 0 && self.pass == Pass::Names && value.len() >= MIN_BASE64 {
            if let Some(decoded) = base64(value, 8).filter(|d| binary_share(d) < 0.05) {
                self.text(&decoded, place, depth + 1);
            }
        }
    }

    /// Reads text that may be a form, JSON, or values between delimiters.
    fn text(&mut self, text: &[u8], place: &'static str, depth: u8) {
        let text = &text[..text.len().min(MAX_BODY)];
        if text.first() == Some(&b'{') {
            if let Ok(serde_json::Value::Object(map)) =
                serde_json::from_slice::<serde_json::Value>(text)
            {
                for (name, value) in map.iter().take(MAX_VALUES) {
                    if let Some(value) = value.as_str() {
                        self.value(name.as_bytes(), value.as_bytes(), place, depth);
                    }
                }
                return;
            }
        }
        if text.contains(&b'=') {
            for (name, value) in form(text).take(MAX_VALUES) {
                self.value(&name, &value, place, depth);
            }
        }
        for value in text
            .split(|b| matches!(b, b'|' | b';' | b'\n' | b'\r' | b'\t' | b','))
            .take(MAX_VALUES)
        {
            self.value(b"", value, place, depth);
        }
    }
}

/// Operating systems, named with a version or an edition after them.
const SYSTEMS: &[&[u8]] = &[
    b"windows",
    b"win",
    b"linux",
    b"ubuntu",
    b"debian",
    b"centos",
    b"macos",
    b"mac os x",
    b"darwin",
];
/// Editions that stand for a version after a system's name.
const EDITIONS: &[&[u8]] = &[
    b"xp",
    b"vista",
    b"server",
    b"nt",
    b"pro",
    b"home",
    b"enterprise",
];

/// True when `value` names an operating system with a version or edition.
fn names_os(value: &[u8]) -> bool {
    if windows_build(value) {
        return true;
    }
    // One pass: where a system's first letter is, its name may start.
    (0..value.len().saturating_sub(2)).any(|at| {
        let first = value[at] | 0x20;
        if !matches!(first, b'w' | b'l' | b'u' | b'd' | b'c' | b'm') {
            return false;
        }
        let tail = &value[at..];
        if tail.len() >= 17 && tail[..17].eq_ignore_ascii_case(b"microsoft windows") {
            return true;
        }
        SYSTEMS.iter().any(|system| {
            system[0] == first
                && tail
                    .get(..system.len())
                    .is_some_and(|t| t.eq_ignore_ascii_case(system))
                && {
                    let rest = &tail[system.len()..];
                    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
                    rest.first().is_some_and(u8::is_ascii_digit)
                        || EDITIONS.iter().any(|e| {
                            rest.get(..e.len())
                                .is_some_and(|r| r.eq_ignore_ascii_case(e))
                        })
                }
        })
    })
}

/// `6.1.7601`, `10.0.19045`: a Windows version and build.
fn windows_build(text: &[u8]) -> bool {
    let parts: Vec<&[u8]> = text.split(|&b| b == b'.').collect();
    parts.len() == 3
        && matches!(parts[0], b"5" | b"6" | b"10")
        && parts[1].len() == 1
        && (4..=5).contains(&parts[2].len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit))
}

/// `DESKTOP-XXXXXXX`, `WIN-XXXXXXXXXXX`, `LAPTOP-XXXXXXXX`: names Windows
/// gives machines.
fn machine_name(value: &[u8]) -> bool {
    [&b"DESKTOP-"[..], b"WIN-", b"LAPTOP-"]
        .iter()
        .any(|prefix| {
            value.strip_prefix(*prefix).is_some_and(|rest| {
                (7..=11).contains(&rest.len())
                    && rest
                        .iter()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            })
        })
}

fn host_like(value: &[u8]) -> bool {
    (1..=63).contains(&value.len())
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `DOMAIN\user`.
fn domain_user(value: &[u8]) -> bool {
    let mut parts = value.split(|&b| b == b'\\');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(domain), Some(user), None) => host_like(domain) && host_like(user),
        _ => false,
    }
}

fn user_like(value: &[u8]) -> bool {
    (1..=64).contains(&value.len())
        && value.iter().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'_' | b'.' | b'\\' | b'@' | b' ' | b'$')
        })
}

/// `value` with its `%XX` escapes decoded.
fn unescaped(value: &[u8]) -> Cow<'_, [u8]> {
    if value.contains(&b'%') {
        Cow::Owned(percent_decode(value))
    } else {
        Cow::Borrowed(value)
    }
}

/// Reads the URI, cookies and headers of a request into `report`.
fn walk_head(tx: &Transaction, report: &mut Report) {
    let uri = &tx.uri_raw;
    if let Some(at) = uri.iter().position(|&b| b == b'?') {
        for (name, value) in form(&uri[at + 1..]).take(MAX_VALUES) {
            report.value(&name, &value, "query", 0);
        }
    }
    let path = uri.split(|&b| b == b'?').next().unwrap_or(uri);
    for segment in path.split(|&b| b == b'/').take(MAX_VALUES) {
        if segment.len() >= MIN_SEGMENT {
            report.value(b"", &unescaped(segment), "path", 0);
        }
    }
    for (name, value) in tx.request.headers.iter().take(MAX_VALUES) {
        if name.eq_ignore_ascii_case(b"cookie") {
            for cookie in value.split(|&b| b == b';') {
                let (n, v) = match cookie.iter().position(|&b| b == b'=') {
                    Some(at) => (&cookie[..at], &cookie[at + 1..]),
                    None => (&b""[..], cookie),
                };
                report.value(super::encoding::trim(n), &unescaped(v), "cookie", 0);
            }
        } else if !is_standard_request_header(name) {
            report.value(name, value, "header", 0);
        }
    }
}

/// What a request says of its host, from its head and, when it has one
/// that is text, its body.
fn read_report(tx: &Transaction, body: bool) -> Report {
    let body = &tx.request.body[..if body { tx.request.body.len() } else { 0 }];
    let text = !body.is_empty() && binary_share(&body[..body.len().min(512)]) < 0.05;
    let mut report = Report::default();
    report.read(|report| {
        walk_head(tx, report);
        if text {
            report.text(body, "body", 0);
        }
    });
    report
}

/// The request of a flow whose body is awaited.
#[derive(Debug)]
pub struct Pending {
    tx: u64,
}

/// HTTP check-ins that report the host.
#[derive(Debug)]
pub struct HostReport {
    settings: HostReportSettings,
    reports: Recent<(IpAddr, IpAddr, u64), (u32, bool)>,
}

impl Detector for HostReport {
    const SIDS: std::ops::RangeInclusive<u32> = 9_201_000..=9_201_099;
    const SIGNATURES: &'static [Signature] = &[REPORT];
    const EVENTS: Events = Events::HTTP_REQUEST.union(Events::HTTP_REQUEST_BODY);
    type Settings = HostReportSettings;
    type Flow = Option<Box<Pending>>;
    type Shared = ();

    fn new(settings: &HostReportSettings, _: &Arc<()>) -> Self {
        Self {
            settings: settings.clone(),
            reports: Recent::new(settings.max_reports),
        }
    }

    fn app(
        &mut self,
        flow: &mut Option<Box<Pending>>,
        data: &AppData<'_>,
        out: &mut impl FnMut(Finding),
    ) {
        let AppEvent::Http(tx, stage) = data.event else {
            return;
        };
        let report = match stage {
            HttpStage::RequestHeaders => {
                let body_follows = tx
                    .request
                    .header(b"content-length")
                    .is_some_and(|v| v != b"0")
                    || tx.request.header(b"transfer-encoding").is_some();
                if body_follows {
                    // Read once the body is there, with it.
                    *flow = Some(Box::new(Pending { tx: tx.seq }));
                    return;
                }
                read_report(tx, false)
            }
            HttpStage::RequestBody => {
                if flow.take_if(|p| p.tx == tx.seq).is_none() {
                    return;
                }
                read_report(tx, true)
            }
            _ => return,
        };
        if !report.complete() {
            return;
        }
        let identity = [
            report.os.as_deref().unwrap_or_default(),
            report.host.as_deref().unwrap_or_default(),
            report.user.as_deref().unwrap_or_default(),
        ]
        .join(&0u8);
        let key = (
            data.sender.src.ip(),
            data.sender.dst.ip(),
            fingerprint(&identity),
        );
        let (count, reported) = self.reports.entry(key, || (0, false));
        *count += 1;
        if *reported || *count < self.settings.min_reports.max(1) {
            return;
        }
        *reported = true;
        let shown = |v: &Option<Vec<u8>>| {
            v.as_deref()
                .map_or_else(|| "none".to_owned(), |v| printable(v, SHOWN))
        };
        let metadata = format!(
            "tool http-trojan, host {}, user {}, os {}, place {}, encoding {}, reports {count}, uri {}",
            shown(&report.host),
            shown(&report.user),
            shown(&report.os),
            report.place,
            report.encoding,
            printable(tx.uri.split(|&b| b == b'?').next().unwrap_or(&tx.uri), 120)
        );
        out(Finding::new(&REPORT, metadata, &tx.request.start_line));
    }

    fn tables(&self) -> TableUse {
        self.reports.usage()
    }
}

#[cfg(test)]
mod tests {
    use super::super::variants::Random;
    use super::*;
    use crate::applayer::{AppFlow, AppLayer, HttpLimits};
    use crate::detect::Sender;
    use crate::reassembly::StreamId;
    use base64::Engine as _;

    fn send(detector: &mut HostReport, request: &[u8]) -> Vec<Finding> {
        let mut applayer = AppLayer::new(HttpLimits::default());
        let mut app = AppFlow::default();
        let mut flow = None;
        let stream = StreamId {
            flow_id: 1,
            dir: 0,
            src: "10.0.0.4:50123".parse().unwrap(),
            dst: "198.51.100.20:8080".parse().unwrap(),
            carrier: Default::default(),
        };
        let mut found = Vec::new();
        applayer.data(&mut app, &stream, 0, request, &mut |event, dir| {
            let sender = Sender::of_stream(&stream.toward(dir));
            let data = AppData {
                ts_ns: 0,
                sender: &sender,
                event: &event,
            };
            detector.app(&mut flow, &data, &mut |f| found.push(f));
        });
        found
    }

    #[test]
    fn reports_are_found_wherever_and_however_they_are_carried() {
        let mut random = Random::new(51);
        let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
        for round in 0..60 {
            let host = format!(
                "DESKTOP-{}",
                random.string(b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", 7)
            );
            let user = random.word_of(3, 8);
            let os = [
                "Windows 10 Pro",
                "Microsoft Windows NT 6.1.7601 Service Pack 1",
                "Linux 5.15.0-91-generic",
                "Windows 11 Enterprise",
                "10.0.19045",
            ][round % 5];
            let (k1, k2, k3) = (
                random.word_of(1, 6),
                random.word_of(1, 6),
                random.word_of(1, 6),
            );
            let path = format!("/{}.php", random.word_of(3, 6));
            let request = match round % 6 {
                0 => format!(
                    "GET {path}?{k1}={}&{k2}={user}&{k3}={} HTTP/1.1\r\nHost: c2\r\n\r\n",
                    host,
                    os.replace(' ', "%20")
                ),
                1 => format!(
                    "GET {path} HTTP/1.1\r\nHost: c2\r\nCookie: {k1}={}\r\n\r\n",
                    b64(&format!("{host}|{user}|{os}"))
                ),
                2 => format!(
                    "GET {path} HTTP/1.1\r\nHost: c2\r\nX-{k1}: {}\r\n\r\n",
                    b64(&format!("{{\"hostname\":\"{host}\",\"os\":\"{os}\"}}"))
                ),
                3 => {
                    let body = format!("{{\"computer\":\"{host}\",\"username\":\"{user}\",\"ver\":\"{os}\",\"{k1}\":1}}");
                    format!("POST {path} HTTP/1.1\r\nHost: c2\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())
                }
                4 => {
                    let body = format!("{k1}={}", b64(&format!("WORKGROUP\\{user};{os};{host}")));
                    format!("POST {path} HTTP/1.1\r\nHost: c2\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}", body.len())
                }
                _ => {
                    let body = format!("{host}|{user}|{os}|{}", random.word(6));
                    format!(
                        "POST {path} HTTP/1.1\r\nHost: c2\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                }
            };
            let mut detector = HostReport::new(&HostReportSettings::default(), &Arc::new(()));
            assert!(
                send(&mut detector, request.as_bytes()).is_empty(),
                "once is not yet"
            );
            let found = send(&mut detector, request.as_bytes());
            assert_eq!(found.len(), 1, "round {round}: {request}");
            let metadata = &found[0].metadata;
            assert!(metadata.contains(&format!("os {os},")), "{metadata}");
            assert!(
                metadata.contains(&format!("host {host},"))
                    || metadata.contains(&format!("user {user},")),
                "{metadata}"
            );
            assert!(
                send(&mut detector, request.as_bytes()).is_empty(),
                "reported once"
            );
        }
    }

    #[test]
    fn browsers_and_forms_are_not_reports() {
        let mut detector = HostReport::new(&HostReportSettings::default(), &Arc::new(()));
        let requests: [&[u8]; 4] = [
            b"GET /index.html?lang=en HTTP/1.1\r\nHost: a\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)\r\nSec-CH-UA-Platform: \"Windows\"\r\n\r\n",
            b"GET /download?os=windows&arch=x64&version=10.2.1 HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST /login HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 30\r\n\r\nusername=alice&password=secret",
            b"GET /update.xml?product=app&platform=Windows%2010&channel=stable HTTP/1.1\r\nHost: a\r\n\r\n",
        ];
        for _ in 0..3 {
            for request in requests {
                assert!(
                    send(&mut detector, request).is_empty(),
                    "{}",
                    String::from_utf8_lossy(request)
                );
            }
        }
    }
}
