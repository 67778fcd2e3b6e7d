//! Mirai, as its published source code behaves:
//!
//! - the scanner's SYNs to telnet ports carry the destination address as
//!   their sequence number (`scanner.c`), one finding per scanning host
//!   per `scanner_report_secs`;
//! - the brute forcer logs in with a fixed list of default credentials
//!   (`scanner.c`'s `add_auth_entry` table): each login with one is a
//!   finding, and `telnet_attempts` of them from one host within
//!   `telnet_window_secs` a brute-force finding;
//! - its C2 sends attack commands in one binary frame (`attack.c`'s
//!   `attack_parse`): length, duration, attack vector, targets and options,
//!   which are read into the finding's metadata. They are looked for on
//!   connections whose client spoke first with zero bytes, as a bot does
//!   (`00 00 00 01` on connecting, `00 00` keep-alives after).

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Detector, Events, Finding, Recent, Signature, StreamData, TableUse};
use crate::decode::tcp_flags;
use crate::detect::inspect::PacketView;

const SCANNER: Signature = Signature {
    sid: 9_200_101,
    msg: "MIRADOR MIRAI scanner SYN (sequence number = destination address)",
    family: "mirai",
    classtype: "attempted-recon",
    priority: 2,
};

const DEFAULT_LOGIN: Signature = Signature {
    sid: 9_200_102,
    msg: "MIRADOR MIRAI telnet login with a Mirai default credential",
    family: "mirai",
    classtype: "default-login-attempt",
    priority: 2,
};

const BRUTE_FORCE: Signature = Signature {
    sid: 9_200_103,
    msg: "MIRADOR MIRAI telnet brute force with Mirai default credentials",
    family: "mirai",
    classtype: "attempted-admin",
    priority: 1,
};

const ATTACK: Signature = Signature {
    sid: 9_200_104,
    msg: "MIRADOR MIRAI C2 attack command",
    family: "mirai",
    classtype: "trojan-activity",
    priority: 1,
};

/// Telnet ports Mirai scans and logs in on.
const TELNET: [u16; 2] = [23, 2323];

/// Mirai's default credentials (`scanner.c`), user and password.
const CREDENTIALS: &[(&str, &str)] = &[
    ("root", "xc3511"),
    ("root", "vizxv"),
    ("root", "admin"),
    ("admin", "admin"),
    ("root", "888888"),
    ("root", "xmhdipc"),
    ("root", "default"),
    ("root", "juantech"),
    ("root", "123456"),
    ("root", "54321"),
    ("support", "support"),
    ("root", ""),
    ("admin", "password"),
    ("root", "root"),
    ("root", "12345"),
    ("user", "user"),
    ("admin", ""),
    ("root", "pass"),
    ("admin", "admin1234"),
    ("root", "1111"),
    ("admin", "smcadmin"),
    ("admin", "1111"),
    ("root", "666666"),
    ("root", "password"),
    ("root", "1234"),
    ("root", "klv123"),
    ("Administrator", "admin"),
    ("service", "service"),
    ("supervisor", "supervisor"),
    ("guest", "guest"),
    ("guest", "12345"),
    ("admin1", "password"),
    ("administrator", "1234"),
    ("666666", "666666"),
    ("888888", "888888"),
    ("ubnt", "ubnt"),
    ("root", "klv1234"),
    ("root", "Zte521"),
    ("root", "hi3518"),
    ("root", "jvbzd"),
    ("root", "anko"),
    ("root", "zlxx."),
    ("root", "7ujMko0vizxv"),
    ("root", "7ujMko0admin"),
    ("root", "system"),
    ("root", "ikwb"),
    ("root", "dreambox"),
    ("root", "user"),
    ("root", "realtek"),
    ("root", "00000000"),
    ("admin", "1111111"),
    ("admin", "1234"),
    ("admin", "12345"),
    ("admin", "54321"),
    ("admin", "123456"),
    ("admin", "7ujMko0admin"),
    ("admin", "pass"),
    ("admin", "meinsm"),
    ("tech", "tech"),
    ("mother", "fucker"),
];

/// Attack vectors by number (`attack.h`).
const VECTORS: &[&str] = &[
    "udp", "vse", "dns", "syn", "ack", "stomp", "greip", "greeth", "proxy", "udpplain", "http",
];

/// Option keys by number (`attack.h`).
fn option_name(key: u8) -> &'static str {
    match key {
        0 => "payload_size",
        1 => "payload_rand",
        2 => "tos",
        3 => "ident",
        4 => "ttl",
        5 => "dont_frag",
        6 => "sport",
        7 => "dport",
        8 => "domain",
        9 => "dns_hdr_id",
        11 => "urg",
        12 => "ack",
        13 => "psh",
        14 => "rst",
        15 => "syn",
        16 => "fin",
        17 => "seqnum",
        18 => "acknum",
        19 => "gcip",
        20 => "method",
        21 => "post_data",
        22 => "path",
        23 => "conns",
        24 => "source",
        _ => "unknown",
    }
}

/// Client bytes of a telnet session read for its login.
const MAX_LOGIN_BYTES: usize = 256;

/// `[detectors.mirai]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MiraiSettings {
    /// Logins with Mirai's default credentials from one host, within
    /// `telnet_window_secs`, that make a brute force.
    pub telnet_attempts: u32,
    /// The window those logins are counted over, seconds.
    pub telnet_window_secs: u64,
    /// Seconds between two reports of one scanning host.
    pub scanner_report_secs: u64,
    /// Scanning and brute-forcing hosts remembered at most; the least
    /// recently seen is forgotten beyond it.
    pub max_hosts: usize,
}

impl Default for MiraiSettings {
    fn default() -> Self {
        Self {
            telnet_attempts: 3,
            telnet_window_secs: 300,
            scanner_report_secs: 3_600,
            max_hosts: 65_536,
        }
    }
}

/// What Mirai keeps about a flow.
#[derive(Debug, Default)]
pub struct MiraiFlow {
    login: Option<Box<Login>>,
    client: Client,
}

/// What a flow's client said first.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Client {
    /// Nothing yet.
    #[default]
    Silent,
    /// Zero bytes, as a bot greets its C2 or keeps the connection alive.
    Bot,
    /// Anything else.
    Other,
}

/// A telnet session's first client bytes, until its login is read.
#[derive(Debug, Default)]
pub struct Login {
    bytes: Vec<u8>,
    done: bool,
}

/// Mirai's scanner, brute forcer and C2.
#[derive(Debug)]
pub struct Mirai {
    settings: MiraiSettings,
    /// When each scanning host was last reported, ns.
    scanners: Recent<IpAddr, u64>,
    /// When each host logged in with a default credential, ns.
    attempts: Recent<IpAddr, Vec<u64>>,
}

const NANOS: u64 = 1_000_000_000;

impl Detector for Mirai {
    const SIDS: std::ops::RangeInclusive<u32> = 9_200_100..=9_200_199;
    const SIGNATURES: &'static [Signature] = &[SCANNER, DEFAULT_LOGIN, BRUTE_FORCE, ATTACK];
    const EVENTS: Events = Events::TCP_SYN.union(Events::STREAM);
    type Settings = MiraiSettings;
    /// Kept for telnet sessions only.
    type Flow = MiraiFlow;
    type Shared = ();

    fn new(settings: &MiraiSettings, _: &Arc<()>) -> Self {
        Self {
            settings: settings.clone(),
            scanners: Recent::new(settings.max_hosts),
            attempts: Recent::new(settings.max_hosts),
        }
    }

    /// A scanner SYN: no ACK, a telnet port, the sequence number equal to
    /// the destination IPv4 address.
    fn packet(
        &mut self,
        _: &mut MiraiFlow,
        packet: &PacketView<'_>,
        out: &mut impl FnMut(Finding),
    ) {
        let (Some(tcp), IpAddr::V4(dst)) = (packet.tcp, packet.dst) else {
            return;
        };
        if tcp.flags & (tcp_flags::SYN | tcp_flags::ACK) != tcp_flags::SYN
            || !TELNET.contains(&packet.dst_port)
            || tcp.seq != u32::from(dst)
        {
            return;
        }
        let every = self.settings.scanner_report_secs * NANOS;
        let last = self.scanners.entry(packet.src, || 0);
        if *last != 0 && packet.ts_ns.saturating_sub(*last) < every {
            return;
        }
        *last = packet.ts_ns.max(1);
        let metadata = format!("tool scanner, port {}, seq {}", packet.dst_port, tcp.seq);
        out(Finding::new(&SCANNER, metadata, &[]));
    }

    /// Telnet logins (client bytes) and C2 attack commands (server bytes).
    fn stream(
        &mut self,
        flow: &mut MiraiFlow,
        data: &StreamData<'_>,
        out: &mut impl FnMut(Finding),
    ) {
        let (stream, bytes) = (data.stream, data.bytes);
        if stream.dir == 1 {
            if flow.client != Client::Other {
                if let Some(command) = parse_command(bytes) {
                    out(Finding::new(&ATTACK, command, bytes));
                }
            }
            return;
        }
        if flow.client == Client::Silent {
            flow.client = if bytes.starts_with(&[0, 0]) {
                Client::Bot
            } else {
                Client::Other
            };
        }
        if !TELNET.contains(&stream.dst.port()) || data.offset > MAX_LOGIN_BYTES as u64 {
            return;
        }
        let login = flow.login.get_or_insert_with(Box::default);
        if login.done {
            return;
        }
        let room = MAX_LOGIN_BYTES.saturating_sub(login.bytes.len());
        login
            .bytes
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
        let lines = telnet_lines(&login.bytes);
        if lines.len() < 2 {
            if login.bytes.len() >= MAX_LOGIN_BYTES {
                login.done = true;
            }
            return;
        }
        login.done = true;
        let (user, pass) = (lines[0].as_str(), lines[1].as_str());
        if !CREDENTIALS.contains(&(user, pass)) {
            return;
        }
        let metadata = format!("tool bruteforce, user {user}, password {pass}");
        out(Finding::new(&DEFAULT_LOGIN, metadata, &login.bytes));
        let window = self.settings.telnet_window_secs * NANOS;
        let times = self.attempts.entry(stream.src.ip(), Vec::new);
        times.retain(|&t| data.ts_ns.saturating_sub(t) < window);
        times.push(data.ts_ns);
        if times.len() as u32 == self.settings.telnet_attempts {
            let metadata = format!(
                "tool bruteforce, attempts {}, window_secs {}",
                times.len(),
                self.settings.telnet_window_secs
            );
            out(Finding::new(&BRUTE_FORCE, metadata, &[]));
        }
    }

    /// A bot's server bytes are read to the end (attack commands come any
    /// time); client bytes up to a telnet login.
    fn stream_done(&self, flow: &MiraiFlow, data: &StreamData<'_>) -> bool {
        if data.stream.dir == 1 {
            return flow.client == Client::Other;
        }
        !TELNET.contains(&data.stream.dst.port())
            || data.offset > MAX_LOGIN_BYTES as u64
            || flow.login.as_ref().is_some_and(|login| login.done)
    }

    fn tables(&self) -> TableUse {
        self.scanners.usage() + self.attempts.usage()
    }
}

/// Client lines of a telnet session, option negotiation (IAC sequences)
/// and empty lines left out.
fn telnet_lines(bytes: &[u8]) -> Vec<String> {
    const IAC: u8 = 255;
    let mut text = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == IAC {
            // IAC command [option]; subnegotiation to IAC SE.
            match bytes.get(i + 1) {
                Some(250) => {
                    let end = bytes[i..].windows(2).position(|w| w == [IAC, 240]);
                    i += end.map_or(bytes.len() - i, |e| e + 2);
                }
                Some(251..=254) => i += 3,
                _ => i += 2,
            }
            continue;
        }
        text.push(bytes[i]);
        i += 1;
    }
    let complete = text
        .iter()
        .rposition(|&b| b == b'\n' || b == b'\r')
        .map_or(0, |p| p + 1);
    text[..complete]
        .split(|&b| b == b'\n' || b == b'\r' || b == 0)
        .filter(|l| !l.is_empty())
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect()
}

/// Reads one attack command filling all of `bytes`: its fields as
/// metadata, or `None` when the bytes are not exactly one.
fn parse_command(bytes: &[u8]) -> Option<String> {
    let total = usize::from(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]));
    if total != bytes.len() || total < 2 + 4 + 1 + 1 {
        return None;
    }
    let mut at = 2;
    let mut take = |n: usize| {
        let field = bytes.get(at..at + n)?;
        at += n;
        Some(field)
    };
    let duration = u32::from_be_bytes(take(4)?.try_into().ok()?);
    let vector = take(1)?[0];
    let vector_name = VECTORS.get(usize::from(vector))?;
    if duration == 0 || duration > 86_400 {
        return None;
    }
    let count = take(1)?[0];
    if count == 0 {
        return None;
    }
    let mut targets = Vec::new();
    for _ in 0..count {
        let ip = take(4)?;
        let mask = take(1)?[0];
        if mask > 32 {
            return None;
        }
        targets.push(format!("{}.{}.{}.{}/{mask}", ip[0], ip[1], ip[2], ip[3]));
    }
    let options = take(1)?[0];
    let mut fields = vec![
        "tool c2".to_owned(),
        format!("duration {duration}"),
        format!("vector {vector_name}"),
        format!("targets {}", targets.join(" ")),
    ];
    for _ in 0..options {
        let key = take(1)?[0];
        let len = usize::from(take(1)?[0]);
        let value = take(len)?;
        if !value.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            return None;
        }
        fields.push(format!(
            "{} {}",
            option_name(key),
            String::from_utf8_lossy(value)
        ));
    }
    (at == total).then(|| fields.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reassembly::StreamId;

    fn command() -> Vec<u8> {
        let mut body = 30u32.to_be_bytes().to_vec();
        body.extend_from_slice(&[0, 1, 10, 60, 9, 9, 32, 2, 0, 3]);
        body.extend_from_slice(b"512");
        body.extend_from_slice(&[7, 2]);
        body.extend_from_slice(b"80");
        let mut m = ((body.len() + 2) as u16).to_be_bytes().to_vec();
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn attack_commands_are_looked_for_where_the_client_spoke_as_a_bot() {
        let mirai = &mut Mirai::new(&MiraiSettings::default(), &Arc::new(()));
        let stream = |dir: usize| {
            let (bot, c2) = (
                "10.0.0.13:40000".parse().unwrap(),
                "10.0.0.9:1312".parse().unwrap(),
            );
            StreamId {
                flow_id: 1,
                dir,
                src: if dir == 0 { bot } else { c2 },
                dst: if dir == 0 { c2 } else { bot },
                carrier: Default::default(),
            }
        };
        for (client, reported) in [
            (&[0u8, 0, 0, 1, 4, b'b', b'o', b't', b's'][..], true),
            (&[0, 0][..], true),
            (&[][..], true),
            (&b"GET / HTTP/1.1\r\n\r\n"[..], false),
        ] {
            let mut flow = MiraiFlow::default();
            let mut found = Vec::new();
            let (up, down) = (stream(0), stream(1));
            if !client.is_empty() {
                send(mirai, &mut flow, 1, &up, 0, client, &mut found);
            }
            send(mirai, &mut flow, 2, &down, 0, &command(), &mut found);
            assert_eq!(found.len(), usize::from(reported), "{client:?}");
        }
    }

    #[test]
    fn attack_commands_are_read_whole_or_not_at_all() {
        assert_eq!(
            parse_command(&command()).as_deref(),
            Some("tool c2, duration 30, vector udp, targets 10.60.9.9/32, payload_size 512, dport 80")
        );
        let mut longer = command();
        longer.push(0);
        assert_eq!(parse_command(&longer), None);
        assert_eq!(parse_command(&command()[..10]), None);
        assert_eq!(parse_command(b"\x00\x08GET /"), None);
        for cut in 0..command().len() {
            let _ = parse_command(&command()[cut..]);
        }
    }

    #[test]
    fn telnet_lines_skip_negotiation() {
        let bytes = b"\xff\xfb\x18\xff\xfa\x18\x00xterm\xff\xf0root\r\nxc3511\r\nena";
        assert_eq!(telnet_lines(bytes), ["root", "xc3511"]);
    }

    fn send(
        mirai: &mut Mirai,
        login: &mut MiraiFlow,
        ts_ns: u64,
        stream: &StreamId,
        offset: u64,
        bytes: &[u8],
        found: &mut Vec<Finding>,
    ) {
        let data = StreamData {
            ts_ns,
            stream,
            offset,
            bytes,
        };
        mirai.stream(login, &data, &mut |f| found.push(f));
    }

    #[test]
    fn default_credentials_make_a_brute_force_at_the_threshold() {
        let mut mirai = Mirai::new(&MiraiSettings::default(), &Arc::new(()));
        let mut found = Vec::new();
        for flow_id in 0..4u64 {
            let stream = StreamId {
                flow_id,
                dir: 0,
                src: "10.0.0.13:40000".parse().unwrap(),
                dst: format!("10.0.1.{flow_id}:23").parse().unwrap(),
                carrier: Default::default(),
            };
            let ts = flow_id * 1_000_000_000;
            let mut login = MiraiFlow::default();
            send(
                &mut mirai,
                &mut login,
                ts,
                &stream,
                0,
                b"admin\r\n",
                &mut found,
            );
            send(
                &mut mirai,
                &mut login,
                ts,
                &stream,
                7,
                b"admin\r\n",
                &mut found,
            );
        }
        let sids: Vec<u32> = found.iter().map(|f| f.signature.sid).collect();
        assert_eq!(
            sids,
            [9_200_102, 9_200_102, 9_200_102, 9_200_103, 9_200_102]
        );
        let mut other = Vec::new();
        let stream = StreamId {
            flow_id: 9,
            dir: 0,
            src: "10.0.0.14:40000".parse().unwrap(),
            dst: "10.0.1.9:23".parse().unwrap(),
            carrier: Default::default(),
        };
        send(
            &mut mirai,
            &mut MiraiFlow::default(),
            0,
            &stream,
            0,
            b"alice\r\nsecret\r\n",
            &mut other,
        );
        assert!(other.is_empty(), "not a Mirai credential");
    }
}
