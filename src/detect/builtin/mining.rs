//! Cryptocurrency mining, whatever the pool, coin or wallet.
//!
//! Miners talk to pools in line-framed JSON-RPC over plain TCP, in a few
//! dialects: Stratum v1 (`mining.subscribe`, `mining.authorize`,
//! `mining.submit`; the pool pushes `mining.notify` and
//! `mining.set_difficulty`), Ethereum's stratum proxy (`eth_submitLogin`,
//! `eth_getWork`, `eth_submitWork`; work comes back as three 32-byte hex
//! words), NiceHash's EthereumStratum, and the CryptoNote pool protocol of
//! XMRig (`login` with `login` and `pass`, `submit` with `job_id`, `nonce`
//! and `result`; the pool pushes `job`s with `blob`, `job_id` and
//! `target`). The method names belong to no other protocol, and the
//! pool's work has a fixed shape, so a session is named by either side:
//! the first lines of each direction of a TCP flow are read as JSON and
//! checked against both. Getwork over HTTP is the same methods in a
//! request body, and a pool's host name (in a DNS question, a TLS server
//! name or an HTTP `Host`) is matched against the shipped list of pools
//! (`[detectors.mining] pools`).

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ioc::Domains;
use super::secret::Masker;
use super::{AppData, Detector, Events, Finding, Signature, StreamData};
use crate::applayer::{AppEvent, HttpStage};
use crate::flow::FlowRecord;

const SESSION: Signature = Signature {
    sid: 9_200_201,
    msg: "MIRADOR MINING Stratum/JSON-RPC mining session",
    family: "mining",
    classtype: "coin-mining",
    priority: 2,
};

const GETWORK: Signature = Signature {
    sid: 9_200_202,
    msg: "MIRADOR MINING mining calls over HTTP (getwork)",
    family: "mining",
    classtype: "coin-mining",
    priority: 2,
};

const POOL: Signature = Signature {
    sid: 9_200_203,
    msg: "MIRADOR MINING mining pool host name",
    family: "mining",
    classtype: "coin-mining",
    priority: 2,
};

/// Bytes of each direction read at most for the first lines.
const MAX_BYTES: usize = 8 << 10;
/// Lines of each direction read at most.
const MAX_LINES: u8 = 16;

/// `[detectors.mining]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MiningSettings {
    /// The list of mining pools' host names (one per line, a label after
    /// it; subdomains match too).
    pub pools: PathBuf,
}

impl Default for MiningSettings {
    fn default() -> Self {
        Self {
            pools: PathBuf::from("signatures/ioc/mining-pools.txt"),
        }
    }
}

/// What a mining session looks like from one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Stratum,
    Ethereum,
    CryptoNote,
}

impl Dialect {
    fn name(self) -> &'static str {
        match self {
            Self::Stratum => "stratum",
            Self::Ethereum => "eth-stratum",
            Self::CryptoNote => "cryptonote",
        }
    }
}

/// A client call that only miners make.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    dialect: Dialect,
    method: String,
    /// The wallet or worker it names, and the miner software.
    wallet: Option<String>,
    agent: Option<String>,
}

/// A direction's first lines, as they arrive.
#[derive(Debug, Default)]
struct Lines {
    pending: Vec<u8>,
    read: usize,
    lines: u8,
    done: bool,
}

impl Lines {
    /// Takes `bytes` and hands each complete line to `on`; gives up on a
    /// direction that does not start with a JSON object, or past the
    /// bounds.
    fn feed(&mut self, bytes: &[u8], on: &mut impl FnMut(&[u8])) {
        if self.done {
            return;
        }
        let room = MAX_BYTES.saturating_sub(self.read);
        let bytes = &bytes[..bytes.len().min(room)];
        self.read += bytes.len();
        for &b in bytes {
            if b == b'\n' {
                let line = trim(&self.pending);
                if !line.is_empty() {
                    self.lines += 1;
                    on(line);
                }
                self.pending.clear();
                if self.lines >= MAX_LINES {
                    self.finish();
                    return;
                }
                continue;
            }
            if self.pending.is_empty() {
                // A line starts at its first byte that is not padding, and
                // the first line with a JSON object.
                if matches!(b, 0 | b' ' | b'\r' | b'\t') {
                    continue;
                }
                if self.lines == 0 && b != b'{' {
                    self.finish();
                    return;
                }
            }
            self.pending.push(b);
        }
        if self.read >= MAX_BYTES {
            self.finish();
        }
    }

    fn finish(&mut self) {
        self.done = true;
        self.pending = Vec::new();
    }
}

/// A line without NUL padding and white space around it.
fn trim(line: &[u8]) -> &[u8] {
    let pad = |b: &u8| matches!(b, 0 | b' ' | b'\r' | b'\t');
    let start = line.iter().position(|b| !pad(b)).unwrap_or(line.len());
    let end = line.iter().rposition(|b| !pad(b)).map_or(start, |e| e + 1);
    &line[start..end]
}

/// What one flow showed so far: nothing is kept until its first bytes
/// open a JSON object.
#[derive(Debug, Default)]
pub enum MiningFlow {
    /// No data yet (or only padding).
    #[default]
    Unread,
    /// JSON lines being read.
    Reading(Box<Session>),
    /// Not mining, or reported.
    Done,
}

/// A flow whose first bytes opened a JSON object.
#[derive(Debug, Default)]
pub struct Session {
    lines: [Lines; 2],
    call: Option<Call>,
    agent: Option<String>,
    work: Option<&'static str>,
}

/// Mining pools' host names.
#[derive(Debug, Default)]
pub struct Pools {
    domains: Domains,
}

/// Mining sessions and pools.
#[derive(Debug)]
pub struct Mining {
    pools: Arc<Pools>,
}

impl Detector for Mining {
    const SIDS: std::ops::RangeInclusive<u32> = 9_200_200..=9_200_299;
    const SIGNATURES: &'static [Signature] = &[SESSION, GETWORK, POOL];
    const EVENTS: Events = Events::STREAM
        .union(Events::FLOW_END)
        .union(Events::DNS_QUERY)
        .union(Events::TLS_HELLO)
        .union(Events::HTTP_REQUEST)
        .union(Events::HTTP_REQUEST_BODY);
    type Settings = MiningSettings;
    type Flow = MiningFlow;
    type Shared = Pools;

    fn files(settings: &mut MiningSettings) -> Vec<(&'static str, &mut PathBuf)> {
        vec![("pools", &mut settings.pools)]
    }

    fn load(settings: &MiningSettings, _: &Masker, problems: &mut Vec<String>) -> Pools {
        let mut domains = Domains::default();
        match std::fs::read_to_string(&settings.pools) {
            Ok(text) => {
                for (number, line) in text.lines().enumerate() {
                    let line = line.split('#').next().unwrap_or("").trim();
                    let mut parts = line.split_whitespace();
                    let Some(name) = parts.next() else { continue };
                    let label = parts.collect::<Vec<_>>().join(" ");
                    if !domains.insert(name, label) {
                        problems.push(format!(
                            "{}:{}: not a host name: {name:?}",
                            settings.pools.display(),
                            number + 1
                        ));
                    }
                }
            }
            Err(error) => problems.push(format!(
                "{}: {error}; mining pools are not matched by name",
                settings.pools.display()
            )),
        }
        Pools { domains }
    }

    fn new(_: &MiningSettings, shared: &Arc<Pools>) -> Self {
        Self {
            pools: Arc::clone(shared),
        }
    }

    fn stream(
        &mut self,
        flow: &mut MiningFlow,
        data: &StreamData<'_>,
        out: &mut impl FnMut(Finding),
    ) {
        if let MiningFlow::Unread = flow {
            match data
                .bytes
                .iter()
                .find(|b| !matches!(b, 0 | b' ' | b'\r' | b'\t' | b'\n'))
            {
                Some(b'{') => *flow = MiningFlow::Reading(Box::default()),
                Some(_) => *flow = MiningFlow::Done,
                None => return,
            }
        }
        let MiningFlow::Reading(session) = flow else {
            return;
        };
        let dir = data.stream.dir;
        let Session {
            lines,
            call,
            agent,
            work,
        } = &mut **session;
        lines[dir].feed(data.bytes, &mut |line| {
            let Ok(Value::Object(message)) = serde_json::from_slice::<Value>(line) else {
                return;
            };
            if dir == 0 {
                if let Some(found) = client_call(&message) {
                    if agent.is_none() {
                        agent.clone_from(&found.agent);
                    }
                    // The call naming the wallet is the one to report.
                    if call.as_ref().is_none_or(|c| c.wallet.is_none()) {
                        *call = Some(found);
                    }
                }
            } else if work.is_none() {
                *work = pool_work(&message);
            }
        });
        let named = call.as_ref().is_some_and(|c| c.wallet.is_some());
        let client_done = session.lines[0].done || session.lines[0].lines >= 2;
        let evidence = match (&session.call, session.work) {
            (Some(_), Some(_)) => "client calls and pool work",
            (Some(_), None) if named || client_done => "client calls",
            (None, Some(_)) => "pool work",
            _ => {
                if session.lines.iter().all(|l| l.done) {
                    *flow = MiningFlow::Done;
                }
                return;
            }
        };
        report(session, evidence, data.bytes, out);
        *flow = MiningFlow::Done;
    }

    fn stream_done(&self, flow: &MiningFlow, _: &StreamData<'_>) -> bool {
        matches!(flow, MiningFlow::Done)
    }

    /// A miner's calls that no pool answered are still a mining attempt.
    fn end(&mut self, flow: &mut MiningFlow, _: &FlowRecord, out: &mut impl FnMut(Finding)) {
        if let MiningFlow::Reading(session) = flow {
            if session.call.is_some() {
                report(session, "client calls, unanswered", &[], out);
            }
        }
    }

    fn app(&mut self, _: &mut MiningFlow, data: &AppData<'_>, out: &mut impl FnMut(Finding)) {
        let (name, seen) = match data.event {
            AppEvent::DnsQuery { name, .. } => (*name, "dns"),
            AppEvent::TlsHello(hello) => match hello.sni.as_deref() {
                Some(sni) => (sni, "tls"),
                None => return,
            },
            AppEvent::Http(tx, HttpStage::RequestHeaders) => (tx.host.as_slice(), "http"),
            AppEvent::Http(tx, HttpStage::RequestBody) => {
                if let Some(call) = http_call(&tx.request.body) {
                    let metadata = format!(
                        "tool {}, method {}, uri {}",
                        call.dialect.name(),
                        call.method,
                        super::printable(&tx.uri, 120)
                    );
                    out(Finding::new(&GETWORK, metadata, &tx.request.body));
                }
                return;
            }
            _ => return,
        };
        if let Some(label) = self.pools.domains.find(name) {
            let metadata = format!(
                "tool pool-{seen}, seen {seen} {}, pool {label}",
                super::printable(name, 253)
            );
            out(Finding::new(&POOL, metadata, name));
        }
    }
}

/// Reports a session, with what named it.
fn report(session: &Session, evidence: &str, bytes: &[u8], out: &mut impl FnMut(Finding)) {
    let mut metadata = String::new();
    match &session.call {
        Some(c) => {
            metadata.push_str(&format!("tool {}, method {}", c.dialect.name(), c.method));
            if let Some(wallet) = &c.wallet {
                metadata.push_str(&format!(", wallet {wallet}"));
            }
        }
        None => metadata.push_str("tool stratum"),
    }
    if let Some(agent) = &session.agent {
        metadata.push_str(&format!(", agent {agent}"));
    }
    if let Some(work) = session.work {
        metadata.push_str(&format!(", work {work}"));
    }
    metadata.push_str(&format!(", evidence {evidence}"));
    out(Finding::new(&SESSION, metadata, bytes));
}

fn string(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).map(str::to_owned)
}

/// The mining call a client's JSON message makes, when it makes one.
fn client_call(message: &serde_json::Map<String, Value>) -> Option<Call> {
    let method = message.get("method")?.as_str()?;
    let params = message.get("params");
    let first = || string(params.and_then(|p| p.get(0)));
    let (dialect, wallet, agent) = match method {
        "mining.subscribe" => (Dialect::Stratum, None, first()),
        "mining.authorize" | "mining.submit" => (Dialect::Stratum, first(), None),
        m if m.starts_with("mining.") && STRATUM_CALLS.contains(&m) => {
            (Dialect::Stratum, None, None)
        }
        "eth_submitLogin" | "eth_login" => (Dialect::Ethereum, first(), None),
        "eth_getWork" | "eth_submitWork" | "eth_submitHashrate" => (Dialect::Ethereum, None, None),
        "login" => {
            let p = params?.as_object()?;
            if !p.contains_key("login") || !p.contains_key("pass") {
                return None;
            }
            (
                Dialect::CryptoNote,
                string(p.get("login")),
                string(p.get("agent")),
            )
        }
        "submit" => {
            let p = params?.as_object()?;
            if !["job_id", "nonce", "result"]
                .iter()
                .all(|k| p.contains_key(*k))
            {
                return None;
            }
            (Dialect::CryptoNote, None, None)
        }
        "getjob" | "keepalived" => {
            params?.as_object()?.get("id")?;
            (Dialect::CryptoNote, None, None)
        }
        _ => return None,
    };
    Some(Call {
        dialect,
        method: method.to_owned(),
        wallet: wallet.map(|w| w.split('.').next().unwrap_or(&w).to_owned()),
        agent,
    })
}

/// Stratum calls a client makes besides subscribe, authorize and submit.
const STRATUM_CALLS: &[&str] = &[
    "mining.extranonce.subscribe",
    "mining.configure",
    "mining.suggest_difficulty",
    "mining.suggest_target",
    "mining.get_transactions",
    "mining.multi_version",
    "mining.hello",
];

fn is_hex(value: &Value, min: usize) -> bool {
    value.as_str().is_some_and(|s| {
        let digits = s.strip_prefix("0x").unwrap_or(s);
        digits.len() >= min && digits.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// The work a pool's JSON message carries, by its shape.
fn pool_work(message: &serde_json::Map<String, Value>) -> Option<&'static str> {
    let method = message.get("method").and_then(Value::as_str);
    let params = message.get("params");
    let result = message.get("result");
    if method == Some("mining.notify") {
        let p = params?.as_array()?;
        let words = p.iter().filter(|v| is_hex(v, 8)).count();
        if words >= 2 && p.iter().any(|v| is_hex(v, 32)) {
            return Some("mining.notify");
        }
    }
    let job = match (method, params, result) {
        (Some("job"), Some(Value::Object(p)), _) => Some(p),
        (_, _, Some(Value::Object(r))) => r.get("job").and_then(Value::as_object),
        _ => None,
    };
    if let Some(job) = job {
        if job.get("blob").is_some_and(|b| is_hex(b, 76))
            && job.contains_key("job_id")
            && job.get("target").is_some_and(|t| is_hex(t, 8))
        {
            return Some("job");
        }
    }
    if let Some(Value::Array(r)) = result {
        if r.len() >= 3
            && r[..3]
                .iter()
                .all(|v| v.as_str().is_some_and(|s| s.starts_with("0x")) && is_hex(v, 64))
        {
            return Some("eth-work");
        }
        if r.first()
            .is_some_and(|subs| subs.is_array() && mentions(subs, "mining.notify"))
        {
            return Some("subscribe-reply");
        }
    }
    None
}

/// True when `word` is a string somewhere in `value`'s nested arrays.
fn mentions(value: &Value, word: &str) -> bool {
    match value {
        Value::String(s) => s == word,
        Value::Array(items) => items.iter().any(|v| mentions(v, word)),
        _ => false,
    }
}

/// A mining call in an HTTP request body (getwork and its successors).
fn http_call(body: &[u8]) -> Option<Call> {
    let body = trim(body);
    if body.first() != Some(&b'{')
        || body.len() > MAX_BYTES
        || memchr::memmem::find(body, b"\"method\"").is_none()
    {
        return None;
    }
    let Value::Object(message) = serde_json::from_slice::<Value>(body).ok()? else {
        return None;
    };
    if message.get("method").and_then(Value::as_str) == Some("getwork") {
        return Some(Call {
            dialect: Dialect::Stratum,
            method: "getwork".into(),
            wallet: None,
            agent: None,
        });
    }
    client_call(&message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reassembly::StreamId;

    fn message(line: &str) -> serde_json::Map<String, Value> {
        match serde_json::from_str(line).unwrap() {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn stream(dir: usize) -> StreamId {
        StreamId {
            flow_id: 1,
            dir,
            src: "10.0.0.1:40000".parse().unwrap(),
            dst: "203.0.113.9:3333".parse().unwrap(),
            carrier: Default::default(),
        }
    }

    fn session(lines: &[(usize, &str)]) -> Vec<Finding> {
        let mut mining = Mining {
            pools: Arc::default(),
        };
        let mut flow = MiningFlow::default();
        let mut found = Vec::new();
        let mut offsets = [0u64; 2];
        for (dir, line) in lines {
            let id = stream(*dir);
            let bytes = format!("{line}\n");
            let data = StreamData {
                ts_ns: 0,
                stream: &id,
                offset: offsets[*dir],
                bytes: bytes.as_bytes(),
            };
            offsets[*dir] += bytes.len() as u64;
            mining.stream(&mut flow, &data, &mut |f| found.push(f));
        }
        found
    }

    /// A random lower-case hex string of `len` digits.
    fn hex(seed: &mut u64, len: usize) -> String {
        (0..len)
            .map(|_| {
                *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                char::from(b"0123456789abcdef"[(*seed >> 60) as usize])
            })
            .collect()
    }

    #[test]
    fn every_dialect_is_named_whatever_the_wallet_and_pool() {
        let mut seed = 7;
        for _ in 0..20 {
            let wallet = format!("4{}", hex(&mut seed, 94));
            let worker = hex(&mut seed, 6);
            let dialects = [
                vec![
                    (
                        0,
                        format!(
                            r#"{{"id":1,"method":"mining.subscribe","params":["miner/{}"]}}"#,
                            hex(&mut seed, 3)
                        ),
                    ),
                    (
                        0,
                        format!(
                            r#"{{"id":2,"method":"mining.authorize","params":["{wallet}.{worker}","x"]}}"#
                        ),
                    ),
                ],
                vec![(
                    0,
                    format!(
                        r#"{{"worker":"{worker}","jsonrpc":"2.0","params":["0x{}","x"],"id":2,"method":"eth_submitLogin"}}"#,
                        hex(&mut seed, 40)
                    ),
                )],
                vec![(
                    0,
                    format!(
                        r#"{{"method":"login","params":{{"login":"{wallet}","pass":"{worker}","agent":"XMRig/6.{}"}},"id":1}}"#,
                        &hex(&mut seed, 1)
                    ),
                )],
                vec![(
                    1,
                    format!(
                        r#"{{"jsonrpc":"2.0","method":"job","params":{{"blob":"{}","job_id":"{}","target":"{}"}}}}"#,
                        hex(&mut seed, 152),
                        hex(&mut seed, 4),
                        hex(&mut seed, 8)
                    ),
                )],
                vec![(
                    1,
                    format!(
                        r#"{{"id":null,"method":"mining.notify","params":["{}","{}","{}","{}",[],"20000000","{}","{}",true]}}"#,
                        hex(&mut seed, 3),
                        hex(&mut seed, 64),
                        hex(&mut seed, 100),
                        hex(&mut seed, 40),
                        hex(&mut seed, 8),
                        hex(&mut seed, 8)
                    ),
                )],
                vec![(
                    1,
                    format!(
                        r#"{{"jsonrpc":"2.0","id":0,"result":["0x{}","0x{}","0x{}"]}}"#,
                        hex(&mut seed, 64),
                        hex(&mut seed, 64),
                        hex(&mut seed, 64)
                    ),
                )],
            ];
            for lines in dialects {
                let lines: Vec<(usize, &str)> =
                    lines.iter().map(|(d, l)| (*d, l.as_str())).collect();
                let found = session(&lines);
                assert_eq!(found.len(), 1, "{lines:?}");
                if lines[0].0 == 0 && lines.len() == 2 {
                    assert!(
                        found[0].metadata.contains(&format!("wallet {wallet}")),
                        "{}",
                        found[0].metadata
                    );
                }
            }
        }
    }

    #[test]
    fn other_json_rpc_is_not_mining() {
        assert!(session(&[
            (
                0,
                r#"{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}"#
            ),
            (
                0,
                r#"{"jsonrpc":"2.0","method":"login","params":["user","secret"],"id":2}"#
            ),
            (1, r#"{"jsonrpc":"2.0","id":1,"result":"0x10d4f"}"#),
            (
                0,
                r#"{"jsonrpc":"2.0","method":"submit","params":{"form":"x"},"id":3}"#
            ),
        ])
        .is_empty());
        assert!(session(&[
            (0, "GET / HTTP/1.1"),
            (0, r#"{"method":"mining.subscribe"}"#)
        ])
        .is_empty());
    }

    #[test]
    fn pool_work_needs_its_shape() {
        assert_eq!(
            pool_work(&message(r#"{"method":"mining.notify","params":["a","b"]}"#)),
            None
        );
        assert_eq!(
            pool_work(&message(
                r#"{"id":1,"result":[[["mining.set_difficulty","1"],["mining.notify","ae68"]],"00",8]}"#
            )),
            Some("subscribe-reply")
        );
        assert_eq!(
            pool_work(&message(r#"{"id":1,"result":["0x12","0x34","0x56"]}"#)),
            None
        );
    }

    #[test]
    fn getwork_bodies_and_pool_names() {
        assert_eq!(
            http_call(br#"{"method": "getwork", "params": [], "id": 0}"#).map(|c| c.method),
            Some("getwork".to_owned())
        );
        assert!(http_call(br#"{"method":"eth_getWork","params":[],"id":73}"#).is_some());
        assert!(http_call(br#"{"method":"eth_getBalance","params":[],"id":73}"#).is_none());
        let mut domains = Domains::default();
        assert!(domains.insert("nanopool.org", "nanopool".into()));
        assert_eq!(domains.find(b"eth-eu1.NANOPOOL.org."), Some("nanopool"));
        assert_eq!(domains.find(b"nanopool.org.example"), None);
    }
}
