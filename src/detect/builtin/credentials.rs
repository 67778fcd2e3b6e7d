//! Clear-text logins, and whether their passwords are weak
//! ([`password`](super::password) says why):
//!
//! - FTP and POP3 `USER` / `PASS`;
//! - IMAP `LOGIN` and `AUTHENTICATE PLAIN`;
//! - SMTP and POP3 `AUTH PLAIN` and `AUTH LOGIN` (base64 exchanges);
//! - Redis `AUTH`, in RESP or inline;
//! - Telnet: commands removed, the server's `login:` and `Password:`
//!   prompts followed and the client's keystrokes (echoed one at a time or
//!   sent as lines) gathered; a shell prompt or `Last login` accepts, a
//!   new prompt or `incorrect` refuses;
//! - HTTP `Authorization: Basic`, and form or JSON fields of a user and a
//!   password in a request's query or body;
//! - PostgreSQL's password message when the server asked for a clear-text
//!   one, LDAP simple binds, and SNMP v1/v2c communities
//!   ([`wire_logins`](super::wire_logins)).
//!
//! A login with a weak password is a `weak-password` finding; any other is
//! a `cleartext-credential` one, at a lower priority. Each says the
//! protocol, the user, the password masked ([`secret`](super::secret)),
//! and whether the server accepted it: `yes` or `no` from its answer (a
//! `230`/`235`, `+OK`, tagged `OK`; an HTTP redirect or cookie, a 401;
//! PostgreSQL's authentication result, LDAP's bind result, an SNMP
//! response), or `unknown` when no answer was seen (an SNMP agent ignores a
//! wrong community, so a community is never `no`). The excerpt is left empty: it would
//! hold the password.
//!
//! Line protocols are read from a TCP connection's first bytes while both
//! sides speak text that is not HTTP or TLS (a line with control bytes, or
//! longer than [`MAX_LINE`], ends it), until a login is accepted, a
//! command of the session after the login comes, `max_logins` logins or
//! [`MAX_BYTES`] (PostgreSQL and LDAP connections up to [`MAX_BYTES`] too).

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder};

use serde::{Deserialize, Serialize};

use super::encoding::{base64, form, trim};
use super::password::{Policy, Rules};
use super::secret::Masker;
use super::wire_logins::{self, Ldap, Postgres, SNMP_RESPONSE, SNMP_TRAPS};
use super::{AppData, Detector, Events, Finding, PacketView, Signature, StreamData};
use crate::applayer::http::looks_like_http;
use crate::applayer::{AppEvent, HttpStage, Transaction};
use crate::decode::ip_proto;
use crate::flow::FlowRecord;

const WEAK: Signature = Signature {
    sid: 9_201_201,
    msg: "MIRADOR WEAK-PASSWORD clear-text login with a weak password",
    family: "weak-password",
    classtype: "default-login-attempt",
    priority: 2,
};

const CLEARTEXT: Signature = Signature {
    sid: 9_201_202,
    msg: "MIRADOR CLEARTEXT-CREDENTIAL clear-text login",
    family: "cleartext-credential",
    classtype: "policy-violation",
    priority: 3,
};

/// Bytes of a connection read for logins at most, both ways.
pub const MAX_BYTES: u64 = 8 << 10;
/// Longest form or JSON password read: a longer value is data (a web
/// shell's payload under its `pass` parameter), not a password typed.
const MAX_PASSWORD: usize = 64;
/// Longest line kept; longer ones are skipped.
const MAX_LINE: usize = 1_024;
/// Elements of a RESP command read at most.
const MAX_RESP: usize = 4;

/// Form and JSON field names of user names.
const USER_FIELDS: &[&[u8]] = &[
    b"user",
    b"username",
    b"user_name",
    b"userid",
    b"user_id",
    b"uid",
    b"uname",
    b"usr",
    b"login",
    b"loginname",
    b"login_name",
    b"email",
    b"mail",
    b"account",
    b"acct",
    b"j_username",
    b"log",
];
/// Form and JSON field names of passwords (and any name ending in
/// `password`, `passwd` or `pwd`).
const PASSWORD_FIELDS: &[&[u8]] = &[b"pass", b"pw", b"passwort", b"j_password", b"userpass"];
const PASSWORD_ENDINGS: &[&[u8]] = &[b"password", b"passwd", b"pwd"];

/// What every password field name holds, any case: a query or body
/// without one of these is not parsed.
static PASSWORD_HINTS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .build(["pass", "pwd", "pw=", "\"pw\""])
        .expect("fixed patterns build")
});

/// `[detectors.credentials]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CredentialSettings {
    /// Weak passwords, one per line.
    pub dictionary: PathBuf,
    /// A password in the dictionary is weak.
    pub check_dictionary: bool,
    /// A password that is or contains the user name is weak.
    pub check_user_name: bool,
    /// A password of digits only is weak.
    pub check_digits_only: bool,
    /// A keyboard, alphabet or number run, or one repeated character, is
    /// weak.
    pub check_keyboard_run: bool,
    /// A password shorter than this is weak (0: any length).
    pub min_length: usize,
    /// Logins reported per connection at most.
    pub max_logins: u32,
}

impl Default for CredentialSettings {
    fn default() -> Self {
        Self {
            dictionary: PathBuf::from("signatures/weak-passwords.txt"),
            check_dictionary: true,
            check_user_name: true,
            check_digits_only: true,
            check_keyboard_run: true,
            min_length: 8,
            max_logins: 16,
        }
    }
}

/// What the workers share: the password rules and the masker.
#[derive(Debug, Default)]
pub struct Loaded {
    policy: Policy,
    masker: Masker,
}

/// A login seen, waiting for the server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    protocol: &'static str,
    user: Vec<u8>,
    password: Vec<u8>,
    /// IMAP's command tag, which its answer repeats; the HTTP transaction.
    tag: Vec<u8>,
    tx: u64,
}

impl Login {
    /// A login of a binary protocol.
    pub(super) fn wire(protocol: &'static str, user: &[u8], password: &[u8]) -> Self {
        Self {
            protocol,
            user: user.to_vec(),
            password: password.to_vec(),
            tag: Vec::new(),
            tx: 0,
        }
    }
}

/// A SASL exchange in progress: what the client's next line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Sasl {
    #[default]
    None,
    /// `\0user\0password` in base64.
    Plain,
    /// The user name in base64.
    LoginUser,
    /// The password in base64.
    LoginPassword,
}

/// What the server's first line said it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Greeting {
    #[default]
    Unknown,
    /// `220 ...`: FTP or SMTP.
    Numeric,
    /// `+OK ...`
    Pop3,
    /// `* OK ...`
    Imap,
}

/// A text connection being read for logins.
#[derive(Debug, Default)]
pub struct Lines {
    partial: [Vec<u8>; 2],
    /// The client's direction: the connection's initiator, unless its
    /// first bytes were a server's greeting or came from a service port
    /// (a connection picked up midstream).
    client_dir: usize,
    /// Bytes read, both ways.
    bytes: u64,
    greeting: Greeting,
    server_port: u16,
    user: Vec<u8>,
    sasl: Sasl,
    sasl_tag: Vec<u8>,
    /// Elements still to come of a RESP array, and those read.
    resp_left: usize,
    resp: Vec<Vec<u8>>,
    /// Bulk string length announced (the next line is its data).
    resp_bulk: bool,
    pending: Option<Login>,
    logins: u32,
    /// The client sent a command of [`PAST_LOGIN`].
    past_login: bool,
}

/// What the detector keeps about a flow.
#[derive(Debug, Default)]
pub enum CredentialFlow {
    /// No bytes yet.
    #[default]
    Unread,
    /// A text connection.
    Lines(Box<Lines>),
    /// A Telnet connection.
    Telnet(Box<Telnet>),
    /// A PostgreSQL connection.
    Postgres(Box<Postgres>),
    /// An LDAP connection.
    Ldap(Box<Ldap>),
    /// An SNMP request awaiting its response, and its request id.
    Snmp(Box<(Login, i64)>),
    /// An HTTP login waiting for its answer.
    Http(Box<Login>),
    /// Nothing (more) to read.
    Done,
}

/// Clear-text logins.
#[derive(Debug)]
pub struct Credentials {
    settings: CredentialSettings,
    loaded: Arc<Loaded>,
}

impl Detector for Credentials {
    const SIDS: std::ops::RangeInclusive<u32> = 9_201_200..=9_201_299;
    const SIGNATURES: &'static [Signature] = &[WEAK, CLEARTEXT];
    const EVENTS: Events = Events::STREAM
        .union(Events::BER_DATAGRAM)
        .union(Events::HTTP_REQUEST)
        .union(Events::HTTP_REQUEST_BODY)
        .union(Events::HTTP_RESPONSE)
        .union(Events::FLOW_END);
    type Settings = CredentialSettings;
    type Flow = CredentialFlow;
    type Shared = Loaded;

    fn files(settings: &mut CredentialSettings) -> Vec<(&'static str, &mut PathBuf)> {
        vec![("dictionary", &mut settings.dictionary)]
    }

    fn load(settings: &CredentialSettings, masker: &Masker, problems: &mut Vec<String>) -> Loaded {
        let rules = Rules {
            dictionary: settings.check_dictionary,
            user_name: settings.check_user_name,
            digits_only: settings.check_digits_only,
            keyboard_run: settings.check_keyboard_run,
            min_length: settings.min_length,
        };
        let policy = if settings.check_dictionary {
            Policy::load(rules, &settings.dictionary, problems)
        } else {
            Policy::new(rules, "")
        };
        Loaded {
            policy,
            masker: masker.clone(),
        }
    }

    fn new(settings: &CredentialSettings, loaded: &Arc<Loaded>) -> Self {
        Self {
            settings: settings.clone(),
            loaded: Arc::clone(loaded),
        }
    }

    fn stream(
        &mut self,
        flow: &mut CredentialFlow,
        data: &StreamData<'_>,
        out: &mut impl FnMut(Finding),
    ) {
        let dir = data.stream.dir;
        if let CredentialFlow::Unread = flow {
            *flow = if data.offset != 0 {
                CredentialFlow::Done
            } else if let Some(telnet) = Telnet::new(data) {
                CredentialFlow::Telnet(Box::new(telnet))
            } else if let Some(postgres) = Postgres::new(dir, data.bytes) {
                CredentialFlow::Postgres(Box::new(postgres))
            } else if let Some(ldap) = Ldap::new(dir, data.bytes) {
                CredentialFlow::Ldap(Box::new(ldap))
            } else if text_like(data.bytes) {
                CredentialFlow::Lines(Box::new(Lines::new(data)))
            } else {
                CredentialFlow::Done
            };
        }
        let mut found = Vec::new();
        let lines = matches!(flow, CredentialFlow::Lines(_));
        // Binary protocols are read as far as line ones (a directory
        // session's searches after its bind are not).
        let within = data.offset + data.bytes.len() as u64 <= MAX_BYTES;
        let (more, pending, logins) = match flow {
            CredentialFlow::Telnet(telnet) => {
                telnet.read(dir, data.bytes, &mut found);
                (
                    telnet.bytes <= MAX_BYTES,
                    &mut telnet.pending,
                    telnet.logins,
                )
            }
            CredentialFlow::Postgres(postgres) => {
                let more = postgres.read(dir, data.bytes, &mut found) && within;
                (more, &mut postgres.pending, postgres.logins)
            }
            CredentialFlow::Ldap(ldap) => {
                let more = ldap.read(dir, data.bytes, &mut found) && within;
                (more, &mut ldap.pending, ldap.logins)
            }
            _ => (true, &mut None, 0),
        };
        if !lines {
            // After an accepted login, the session logs in no more.
            let session = found.iter().any(|(_, accepted)| *accepted == "yes");
            let unanswered =
                (session || !more || logins >= self.settings.max_logins).then(|| pending.take());
            for (login, accepted) in found {
                self.report(&login, accepted, out);
            }
            if let Some(unanswered) = unanswered {
                if let Some(login) = unanswered {
                    self.report(&login, "unknown", out);
                }
                *flow = CredentialFlow::Done;
            }
            return;
        }
        let CredentialFlow::Lines(lines) = flow else {
            return;
        };
        lines.bytes += data.bytes.len() as u64;
        let text = lines.read(dir, data.bytes, &mut found);
        // After an accepted login, the session logs in no more.
        let mut session = false;
        for (login, accepted) in found {
            session |= accepted == "yes";
            self.report(&login, accepted, out);
        }
        if !text || session || lines.logins >= self.settings.max_logins || lines.bytes > MAX_BYTES {
            if let Some(login) = lines.pending.take() {
                self.report(&login, "unknown", out);
            }
            *flow = CredentialFlow::Done;
        }
    }

    fn stream_done(&self, flow: &CredentialFlow, _: &StreamData<'_>) -> bool {
        matches!(
            flow,
            CredentialFlow::Done | CredentialFlow::Http(_) | CredentialFlow::Snmp(_)
        )
    }

    /// SNMP: a request's community, accepted when the agent responds.
    fn packet(
        &mut self,
        flow: &mut CredentialFlow,
        packet: &PacketView<'_>,
        out: &mut impl FnMut(Finding),
    ) {
        if packet.proto != ip_proto::UDP
            || !matches!(flow, CredentialFlow::Unread | CredentialFlow::Snmp(_))
        {
            return;
        }
        let Some(message) = wire_logins::snmp(packet.payload) else {
            if let CredentialFlow::Unread = flow {
                *flow = CredentialFlow::Done;
            }
            return;
        };
        let login = Login::wire("snmp", b"", message.community);
        if SNMP_TRAPS.contains(&message.pdu) {
            if let CredentialFlow::Snmp(pending) = std::mem::replace(flow, CredentialFlow::Done) {
                self.report(&pending.0, "unknown", out);
            }
            self.report(&login, "unknown", out);
            return;
        }
        match std::mem::take(flow) {
            CredentialFlow::Snmp(pending) if message.pdu == SNMP_RESPONSE => {
                let (request, id) = *pending;
                let answered = id == message.request_id && request.password == login.password;
                self.report(&request, if answered { "yes" } else { "unknown" }, out);
                *flow = CredentialFlow::Done;
            }
            CredentialFlow::Snmp(pending) if pending.0.password == login.password => {
                *flow = CredentialFlow::Snmp(Box::new((login, message.request_id)));
            }
            CredentialFlow::Snmp(pending) => {
                self.report(&pending.0, "unknown", out);
                *flow = CredentialFlow::Snmp(Box::new((login, message.request_id)));
            }
            CredentialFlow::Unread if message.pdu != SNMP_RESPONSE => {
                *flow = CredentialFlow::Snmp(Box::new((login, message.request_id)));
            }
            _ => *flow = CredentialFlow::Done,
        }
    }

    fn app(
        &mut self,
        flow: &mut CredentialFlow,
        data: &AppData<'_>,
        out: &mut impl FnMut(Finding),
    ) {
        let AppEvent::Http(tx, stage) = data.event else {
            return;
        };
        match stage {
            HttpStage::RequestHeaders | HttpStage::RequestBody => {
                let login = match stage {
                    HttpStage::RequestHeaders => basic(tx).or_else(|| {
                        let query = tx.uri_raw.splitn(2, |&b| b == b'?').nth(1)?;
                        fields(query, "http-query", tx.seq)
                    }),
                    _ => fields(&tx.request.body, "http-form", tx.seq),
                };
                let Some(login) = login else { return };
                if let CredentialFlow::Http(earlier) = std::mem::take(flow) {
                    self.report(&earlier, "unknown", out);
                }
                *flow = CredentialFlow::Http(Box::new(login));
            }
            HttpStage::ResponseHeaders => {
                let CredentialFlow::Http(login) = flow else {
                    return;
                };
                if login.tx != tx.seq {
                    return;
                }
                let accepted = http_accepted(tx, login.protocol);
                let login = std::mem::replace(flow, CredentialFlow::Done);
                if let CredentialFlow::Http(login) = login {
                    self.report(&login, accepted, out);
                }
            }
            HttpStage::ResponseBody => {}
        }
    }

    fn end(&mut self, flow: &mut CredentialFlow, _: &FlowRecord, out: &mut impl FnMut(Finding)) {
        let pending = match std::mem::take(flow) {
            CredentialFlow::Http(login) => Some(*login),
            CredentialFlow::Lines(mut lines) => lines.pending.take(),
            CredentialFlow::Telnet(mut telnet) => telnet.pending.take(),
            CredentialFlow::Postgres(mut postgres) => postgres.pending.take(),
            CredentialFlow::Ldap(mut ldap) => ldap.pending.take(),
            CredentialFlow::Snmp(pending) => Some(pending.0),
            _ => None,
        };
        if let Some(login) = pending {
            self.report(&login, "unknown", out);
        }
    }
}

impl Credentials {
    /// Reports `login`: weak or not, masked.
    fn report(&self, login: &Login, accepted: &str, out: &mut impl FnMut(Finding)) {
        let Loaded { policy, masker } = &*self.loaded;
        let weakness = policy.weakness(&login.user, &login.password);
        // A user name that is the password is masked like it.
        let user = if login.user.is_empty() {
            Cow::Borrowed("none")
        } else if login.user.eq_ignore_ascii_case(&login.password) {
            Cow::Owned(masker.mask(&login.user))
        } else {
            String::from_utf8_lossy(&login.user)
        };
        let mut metadata = format!(
            "protocol {}, user {user}, password {}, accepted {accepted}",
            login.protocol,
            masker.mask(&login.password),
        );
        let signature = match weakness {
            Some(reason) => {
                metadata.push_str(", weakness ");
                metadata.push_str(reason);
                &WEAK
            }
            None => &CLEARTEXT,
        };
        out(Finding::new(signature, metadata, &[]));
    }
}

/// True when a connection's first bytes may be a text protocol's: text,
/// and not HTTP (or TLS, which is not text).
pub(super) fn text_like(first: &[u8]) -> bool {
    let head = &first[..first.len().min(64)];
    head.first().is_some_and(|&b| b >= 0x20) && !looks_like_http(first) && text(head)
}

/// True for bytes without control bytes but line ends and tabs: checked
/// without a branch per byte, a block at a time (an OR of byte flags, which
/// the compiler turns into vector instructions).
pub(super) fn text(bytes: &[u8]) -> bool {
    bytes.chunks(128).all(|block| {
        let controls = block.iter().fold(0u8, |any, &b| {
            any | u8::from(((b < 0x20) & (b != b'\r') & (b != b'\n') & (b != b'\t')) | (b == 0x7f))
        });
        controls == 0
    })
}

/// Client commands that come only after the login phase: SMTP's mail
/// transaction, FTP's and POP3's transfers and listings, IMAP's mailbox
/// commands (after their tag). A connection that reaches one is read no
/// further.
const PAST_LOGIN: &[&[u8]] = &[
    b"MAIL", b"RCPT", b"DATA", b"RETR", b"STOR", b"LIST", b"NLST", b"PASV", b"EPSV", b"PORT",
    b"UIDL", b"TOP", b"SELECT", b"EXAMINE", b"FETCH",
];

/// Ports of the services read here.
const SERVICE_PORTS: &[u16] = &[21, 25, 110, 143, 465, 587, 6379];

/// A server's first words.
fn greeting(first: &[u8]) -> bool {
    [&b"220"[..], b"+OK", b"* OK", b"* PREAUTH"]
        .iter()
        .any(|g| first.starts_with(g))
}

impl Lines {
    /// A connection whose first bytes are `data`'s.
    fn new(data: &StreamData<'_>) -> Self {
        let (sender, receiver) = (data.stream.src.port(), data.stream.dst.port());
        let from_server = greeting(data.bytes)
            || SERVICE_PORTS.contains(&sender) && !SERVICE_PORTS.contains(&receiver);
        let dir = data.stream.dir;
        Self {
            client_dir: if from_server { 1 - dir } else { dir },
            server_port: if from_server { sender } else { receiver },
            ..Self::default()
        }
    }

    /// Reads bytes of direction `dir`; logins answered, or whose answer
    /// will not come (another login began), go to `found` with the verdict.
    /// False once the connection is no line protocol: a line too long, or
    /// one with control bytes.
    fn read(&mut self, dir: usize, bytes: &[u8], found: &mut Vec<(Login, &'static str)>) -> bool {
        let mut rest = bytes;
        while !rest.is_empty() {
            let (line, complete) = match memchr::memchr(b'\n', rest) {
                Some(end) => (&rest[..end], true),
                None => (rest, false),
            };
            rest = &rest[(line.len() + usize::from(complete)).min(rest.len())..];
            if self.partial[dir].len() + line.len() > MAX_LINE || !text(line) {
                return false;
            }
            self.partial[dir].extend_from_slice(line);
            if !complete {
                return true;
            }
            let mut text = std::mem::take(&mut self.partial[dir]);
            if text.last() == Some(&b'\r') {
                text.pop();
            }
            if dir == self.client_dir {
                self.client_line(&text, found);
                if self.past_login {
                    return false;
                }
            } else {
                self.server_line(&text, found);
            }
            text.clear();
            self.partial[dir] = text;
        }
        true
    }

    /// A login the client sent (`tag`: IMAP's).
    fn login(
        &mut self,
        protocol: &'static str,
        user: Vec<u8>,
        password: Vec<u8>,
        tag: Vec<u8>,
        found: &mut Vec<(Login, &'static str)>,
    ) {
        let login = Login {
            protocol,
            user,
            password,
            tag,
            tx: 0,
        };
        awaiting(&mut self.pending, &mut self.logins, login, found);
    }

    fn client_line(&mut self, line: &[u8], found: &mut Vec<(Login, &'static str)>) {
        if self.resp_left > 0 {
            return self.resp_line(line, found);
        }
        if let Some(count) = line
            .strip_prefix(b"*")
            .and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok())
        {
            if (1..=MAX_RESP).contains(&count) {
                self.resp.clear();
                self.resp_left = count;
                self.resp_bulk = false;
            }
            return;
        }
        match std::mem::take(&mut self.sasl) {
            Sasl::None => {}
            Sasl::Plain => {
                if let Some((user, password)) = base64(trim(line), 1).and_then(|d| sasl_plain(&d)) {
                    let protocol = self.protocol("smtp");
                    let tag = std::mem::take(&mut self.sasl_tag);
                    self.login(protocol, user, password, tag, found);
                }
                return;
            }
            Sasl::LoginUser => {
                if let Some(user) = base64(trim(line), 1) {
                    self.user = user;
                    self.sasl = Sasl::LoginPassword;
                }
                return;
            }
            Sasl::LoginPassword => {
                if let Some(password) = base64(trim(line), 1) {
                    let protocol = self.protocol("smtp");
                    let user = std::mem::take(&mut self.user);
                    self.login(protocol, user, password, Vec::new(), found);
                }
                return;
            }
        }
        let mut words = line.splitn(3, |&b| b == b' ');
        let first = words.next().unwrap_or_default();
        let second = words.next().unwrap_or_default();
        let rest = words.next().unwrap_or_default();
        let command = if first.len() <= 8 && first.iter().all(u8::is_ascii_alphabetic) {
            first
        } else {
            second
        };
        if PAST_LOGIN.iter().any(|c| c.eq_ignore_ascii_case(command)) {
            self.past_login = true;
            return;
        }
        let arguments = || {
            [second, rest]
                .iter()
                .filter(|w| !w.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(&b' ')
        };
        if first.eq_ignore_ascii_case(b"USER") {
            self.user = trim(&arguments()).to_vec();
        } else if first.eq_ignore_ascii_case(b"PASS") {
            let protocol = self.protocol("ftp");
            let user = std::mem::take(&mut self.user);
            let password = trim(&arguments()).to_vec();
            self.login(protocol, user, password, Vec::new(), found);
        } else if first.eq_ignore_ascii_case(b"AUTH") {
            self.auth(second, rest, Vec::new(), found);
        } else if second.eq_ignore_ascii_case(b"LOGIN") {
            let mut arguments = imap_strings(rest).into_iter();
            if let (Some(user), Some(password)) = (arguments.next(), arguments.next()) {
                let tag = first.to_vec();
                self.login("imap", user, password, tag, found);
            }
        } else if second.eq_ignore_ascii_case(b"AUTHENTICATE") {
            let mut words = rest.splitn(2, |&b| b == b' ');
            let mechanism = words.next().unwrap_or_default();
            let initial = words.next().unwrap_or_default();
            self.auth(mechanism, initial, first.to_vec(), found);
        }
    }

    /// `AUTH` (SMTP, POP3, Redis inline) or IMAP's `AUTHENTICATE`, with
    /// the mechanism (or Redis's arguments) and what follows it.
    fn auth(
        &mut self,
        mechanism: &[u8],
        rest: &[u8],
        tag: Vec<u8>,
        found: &mut Vec<(Login, &'static str)>,
    ) {
        let protocol = if tag.is_empty() {
            self.protocol("smtp")
        } else {
            "imap"
        };
        if mechanism.eq_ignore_ascii_case(b"PLAIN") {
            match base64(trim(rest), 1).and_then(|d| sasl_plain(&d)) {
                Some((user, password)) => {
                    self.login(protocol, user, password, tag, found);
                }
                None => {
                    self.sasl = Sasl::Plain;
                    self.sasl_tag = tag;
                }
            }
        } else if mechanism.eq_ignore_ascii_case(b"LOGIN") {
            match base64(trim(rest), 1) {
                Some(user) => {
                    self.user = user;
                    self.sasl = Sasl::LoginPassword;
                }
                None => self.sasl = Sasl::LoginUser,
            }
        } else if tag.is_empty() && !mechanism.is_empty() && self.protocol("redis") == "redis" {
            let (user, password) = match trim(rest) {
                [] => (Vec::new(), mechanism.to_vec()),
                password => (mechanism.to_vec(), password.to_vec()),
            };
            self.login("redis", user, password, tag, found);
        }
    }

    /// A line of a RESP array: `$length`, then the string.
    fn resp_line(&mut self, line: &[u8], found: &mut Vec<(Login, &'static str)>) {
        if !self.resp_bulk && line.first() == Some(&b'$') {
            self.resp_bulk = true;
            return;
        }
        self.resp_bulk = false;
        self.resp.push(line.to_vec());
        self.resp_left -= 1;
        if self.resp_left > 0 {
            return;
        }
        let command = std::mem::take(&mut self.resp);
        if command
            .first()
            .is_some_and(|c| c.eq_ignore_ascii_case(b"AUTH"))
        {
            let (user, password) = match &command[1..] {
                [password] => (Vec::new(), password.clone()),
                [user, password] => (user.clone(), password.clone()),
                _ => return,
            };
            self.login("redis", user, password, Vec::new(), found);
        }
    }

    fn server_line(&mut self, line: &[u8], found: &mut Vec<(Login, &'static str)>) {
        if self.greeting == Greeting::Unknown {
            self.greeting = if line.starts_with(b"220") {
                Greeting::Numeric
            } else if line.starts_with(b"+OK") {
                Greeting::Pop3
            } else if line.starts_with(b"* OK") || line.starts_with(b"* PREAUTH") {
                Greeting::Imap
            } else {
                Greeting::Unknown
            };
        }
        let Some(login) = &self.pending else { return };
        let verdict = if !login.tag.is_empty() {
            match line
                .strip_prefix(login.tag.as_slice())
                .and_then(|r| r.strip_prefix(b" "))
            {
                Some(r) if r.starts_with(b"OK") => Some("yes"),
                Some(r) if r.starts_with(b"NO") || r.starts_with(b"BAD") => Some("no"),
                _ => None,
            }
        } else if line.starts_with(b"230") || line.starts_with(b"235") || line.starts_with(b"+OK") {
            Some("yes")
        } else if line.starts_with(b"5") || line.starts_with(b"4") || line.starts_with(b"-") {
            Some("no")
        } else {
            None
        };
        if let Some(verdict) = verdict {
            found.extend(self.pending.take().map(|login| (login, verdict)));
        }
    }

    /// The protocol of a login, from the server's greeting and port; the
    /// command's usual one when neither says.
    fn protocol(&self, usual: &'static str) -> &'static str {
        match (self.greeting, self.server_port) {
            (Greeting::Pop3, _) | (_, 110) => "pop3",
            (Greeting::Imap, _) | (_, 143) => "imap",
            (_, 21) => "ftp",
            (_, 25 | 465 | 587) => "smtp",
            (_, 6379) => "redis",
            (Greeting::Numeric, _) if usual == "ftp" || usual == "smtp" => usual,
            (Greeting::Numeric, _) => "smtp",
            _ => usual,
        }
    }
}

/// Telnet's command byte, and the commands that take an option.
const IAC: u8 = 255;
const SB: u8 = 250;
const SE: u8 = 240;
/// Telnet ports.
const TELNET_PORTS: &[u16] = &[23, 2323];
/// Server output kept to read prompts and answers from, bytes.
const SCREEN: usize = 256;

/// Where a Telnet direction is in the command syntax.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Iac {
    #[default]
    Data,
    /// After IAC.
    Command,
    /// After IAC WILL/WONT/DO/DONT: the option byte.
    Option,
    /// Inside IAC SB ... IAC SE.
    Sub,
    /// IAC inside a subnegotiation.
    SubCommand,
}

/// What the server last prompted for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Prompt {
    #[default]
    None,
    User,
    Password,
}

/// A Telnet connection: commands removed, the server's prompts followed,
/// the client's keystrokes (one per packet or a line at once) gathered into
/// lines.
#[derive(Debug, Default)]
pub struct Telnet {
    client_dir: usize,
    iac: [Iac; 2],
    /// Server output since the client's last line.
    screen: Vec<u8>,
    typed: Vec<u8>,
    prompt: Prompt,
    user: Vec<u8>,
    pending: Option<Login>,
    bytes: u64,
    logins: u32,
}

impl Telnet {
    /// A Telnet connection whose first bytes are `data`'s: to or from a
    /// Telnet port, or opening with a command (servers negotiate first).
    fn new(data: &StreamData<'_>) -> Option<Self> {
        let (sender, receiver) = (data.stream.src.port(), data.stream.dst.port());
        let to_server = TELNET_PORTS.contains(&receiver);
        let from_server = TELNET_PORTS.contains(&sender) || data.bytes.first() == Some(&IAC);
        let dir = data.stream.dir;
        (to_server || from_server).then(|| Self {
            client_dir: if to_server { dir } else { 1 - dir },
            ..Self::default()
        })
    }

    /// Reads bytes of direction `dir`; logins answered, or left when
    /// another began, go to `found`.
    fn read(&mut self, dir: usize, bytes: &[u8], found: &mut Vec<(Login, &'static str)>) {
        self.bytes += bytes.len() as u64;
        for &b in bytes {
            let state = self.iac[dir];
            self.iac[dir] = match (state, b) {
                (Iac::Data, IAC) => Iac::Command,
                (Iac::Command, IAC) | (Iac::Data, _) => {
                    if dir == self.client_dir {
                        self.key(b, found);
                    } else {
                        self.shown(b);
                    }
                    Iac::Data
                }
                (Iac::Command, SB) => Iac::Sub,
                (Iac::Command, 251..=254) => Iac::Option,
                (Iac::Command | Iac::Option, _) => Iac::Data,
                (Iac::Sub, IAC) => Iac::SubCommand,
                (Iac::SubCommand, SE) => Iac::Data,
                (Iac::Sub | Iac::SubCommand, _) => Iac::Sub,
            };
        }
        if dir != self.client_dir {
            self.answer(found);
        }
    }

    /// A byte the client typed.
    fn key(&mut self, b: u8, found: &mut Vec<(Login, &'static str)>) {
        match b {
            b'\r' | b'\n' => {
                if self.typed.is_empty() {
                    return;
                }
                let line = std::mem::take(&mut self.typed);
                match self.prompt {
                    Prompt::User => self.user = line,
                    Prompt::Password => {
                        let user = std::mem::take(&mut self.user);
                        let login = Login {
                            protocol: "telnet",
                            user,
                            password: line,
                            tag: Vec::new(),
                            tx: 0,
                        };
                        awaiting(&mut self.pending, &mut self.logins, login, found);
                    }
                    Prompt::None => {}
                }
                self.prompt = Prompt::None;
                self.screen.clear();
            }
            0x08 | 0x7f => {
                self.typed.pop();
            }
            0 => {}
            _ if self.typed.len() < MAX_LINE => self.typed.push(b),
            _ => {}
        }
    }

    /// A byte the server wrote.
    fn shown(&mut self, b: u8) {
        if self.screen.len() == SCREEN {
            self.screen.drain(..SCREEN / 2);
        }
        self.screen.push(b);
    }

    /// Reads the screen for a prompt, and for the answer to a login.
    fn answer(&mut self, found: &mut Vec<(Login, &'static str)>) {
        let screen = self.screen.to_ascii_lowercase();
        let end = trim(&screen);
        let ends = |words: &[&[u8]]| words.iter().any(|w| end.ends_with(w));
        if ends(&[b"password:", b"passwd:"]) {
            self.prompt = Prompt::Password;
        } else if ends(&[b"login:", b"username:", b"user name:", b"user:"]) {
            self.prompt = Prompt::User;
        }
        if self.pending.is_none() {
            return;
        }
        let refused = [
            &b"incorrect"[..],
            b"failed",
            b"denied",
            b"invalid",
            b"bad password",
        ]
        .iter()
        .any(|w| memchr::memmem::find(&screen, w).is_some())
            || self.prompt != Prompt::None;
        let accepted = memchr::memmem::find(&screen, b"last login").is_some()
            || end.ends_with(b"#")
            || end.ends_with(b"$")
            || end.ends_with(b">");
        let verdict = if refused {
            "no"
        } else if accepted {
            "yes"
        } else {
            return;
        };
        found.extend(self.pending.take().map(|login| (login, verdict)));
    }
}

/// `login`, just sent, becomes the one awaiting its answer; the one before
/// it went unanswered.
pub(super) fn awaiting(
    pending: &mut Option<Login>,
    logins: &mut u32,
    login: Login,
    found: &mut Vec<(Login, &'static str)>,
) {
    if let Some(earlier) = pending.replace(login) {
        found.push((earlier, "unknown"));
    }
    *logins += 1;
}

/// SASL PLAIN's `authzid \0 authcid \0 password`.
fn sasl_plain(decoded: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut parts = decoded.split(|&b| b == 0);
    let _authorization = parts.next()?;
    let user = parts.next()?;
    let password = parts.next()?;
    (!password.is_empty()).then(|| (user.to_vec(), password.to_vec()))
}

/// IMAP arguments: atoms, or quoted strings with `\` escapes.
fn imap_strings(text: &[u8]) -> Vec<Vec<u8>> {
    let mut strings = Vec::new();
    let mut at = 0;
    while at < text.len() {
        match text[at] {
            b' ' => at += 1,
            b'"' => {
                let mut value = Vec::new();
                at += 1;
                while at < text.len() && text[at] != b'"' {
                    if text[at] == b'\\' && at + 1 < text.len() {
                        at += 1;
                    }
                    value.push(text[at]);
                    at += 1;
                }
                at += 1;
                strings.push(value);
            }
            _ => {
                let end = text[at..]
                    .iter()
                    .position(|&b| b == b' ')
                    .map_or(text.len(), |e| at + e);
                strings.push(text[at..end].to_vec());
                at = end;
            }
        }
    }
    strings
}

/// `Authorization: Basic` of a request.
fn basic(tx: &Transaction) -> Option<Login> {
    let value = tx.request.header(b"authorization")?;
    let encoded = value
        .get(..6)
        .filter(|scheme| scheme.eq_ignore_ascii_case(b"basic "))
        .map(|_| trim(&value[6..]))?;
    let decoded = base64(encoded, 1)?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some(Login {
        protocol: "http-basic",
        user: decoded[..colon].to_vec(),
        password: decoded[colon + 1..].to_vec(),
        tag: Vec::new(),
        tx: tx.seq,
    })
}

/// The last name of a field (`user[password]` is `password`), lower case.
pub(super) fn field_name(name: &[u8]) -> Vec<u8> {
    let name = name.strip_suffix(b"]").unwrap_or(name);
    let last = name
        .rsplit(|&b| b == b'[' || b == b'.')
        .next()
        .unwrap_or(name);
    last.to_ascii_lowercase()
}

/// True for the (lower-case) name of a password field.
pub(super) fn is_password_field(name: &[u8]) -> bool {
    PASSWORD_FIELDS.contains(&name) || PASSWORD_ENDINGS.iter().any(|e| name.ends_with(e))
}

/// A user and a non-empty password in form fields or a JSON object.
fn fields(text: &[u8], protocol: &'static str, tx: u64) -> Option<Login> {
    let text = trim(text);
    if !PASSWORD_HINTS.is_match(text) {
        return None;
    }
    let (mut user, mut password) = (None, None);
    let mut take = |name: &[u8], value: Cow<'_, [u8]>| {
        let name = field_name(name);
        if password.is_none()
            && is_password_field(&name)
            && !value.is_empty()
            && value.len() <= MAX_PASSWORD
        {
            password = Some(value.into_owned());
        } else if user.is_none() && USER_FIELDS.contains(&name.as_slice()) {
            user = Some(value.into_owned());
        }
    };
    let protocol = if text.first() == Some(&b'{') {
        let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(text) else {
            return None;
        };
        for (name, value) in &map {
            if let Some(value) = value.as_str() {
                take(name.as_bytes(), Cow::Borrowed(value.as_bytes()));
            }
        }
        "http-json"
    } else {
        if !text.contains(&b'=') {
            return None;
        }
        for (name, value) in form(text).take(64) {
            take(&name, value);
        }
        protocol
    };
    Some(Login {
        protocol,
        user: user.unwrap_or_default(),
        password: password?,
        tag: Vec::new(),
        tx,
    })
}

/// Whether an HTTP login was accepted, from its answer's head.
fn http_accepted(tx: &Transaction, protocol: &str) -> &'static str {
    let status = tx.status.as_slice();
    let cookie = tx.response.header(b"set-cookie").is_some();
    match status.first() {
        _ if status == b"401" || status == b"403" => "no",
        Some(b'3') => "yes",
        Some(b'2') if protocol == "http-basic" || cookie => "yes",
        _ => "unknown",
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

    /// Direction 0 of a TCP connection from `src` to `dst`.
    fn stream_id(src: &str, dst: &str) -> StreamId {
        StreamId {
            flow_id: 1,
            dir: 0,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            carrier: Default::default(),
        }
    }

    fn detector() -> Credentials {
        let settings = CredentialSettings::default();
        let rules = Rules {
            dictionary: true,
            user_name: true,
            digits_only: true,
            keyboard_run: true,
            min_length: 8,
        };
        let loaded = Loaded {
            policy: Policy::new(rules, "admin\n123456\npassword\n"),
            masker: Masker::default(),
        };
        Credentials::new(&settings, &Arc::new(loaded))
    }

    /// A conversation to `port`: (from the client?, bytes) in order,
    /// through the detector's stream reading; the findings' metadata.
    fn converse(port: u16, turns: &[(bool, &[u8])]) -> Vec<(u32, String)> {
        let mut detector = detector();
        let mut flow = CredentialFlow::default();
        let stream = stream_id("10.0.0.9:40001", &format!("192.0.2.1:{port}"));
        let mut offsets = [0u64; 2];
        let mut found = Vec::new();
        for &(client, bytes) in turns {
            let dir = usize::from(!client);
            let id = stream.toward(dir);
            let data = StreamData {
                ts_ns: 0,
                stream: &id,
                offset: offsets[dir],
                bytes,
            };
            offsets[dir] += bytes.len() as u64;
            detector.stream(&mut flow, &data, &mut |f| found.push(f));
        }
        let record = FlowRecord::example();
        detector.end(&mut flow, &record, &mut |f| found.push(f));
        found
            .into_iter()
            .map(|f| (f.signature.sid, f.metadata))
            .collect()
    }

    #[test]
    fn a_session_past_its_login_phase_is_read_no_further() {
        let smtp = converse(
            25,
            &[
                (false, b"220 mx ESMTP\r\n"),
                (true, b"EHLO relay\r\n"),
                (false, b"250 mx\r\n"),
                (true, b"MAIL FROM:<a@example.org>\r\n"),
                (false, b"250 OK\r\n"),
                (true, b"AUTH PLAIN AGJvYgAxMjM0NTY=\r\n"),
            ],
        );
        assert!(smtp.is_empty(), "{smtp:?}");
        let imap = converse(
            143,
            &[
                (false, b"* OK ready\r\n"),
                (true, b"a1 LOGIN bob \"123456\"\r\n"),
                (false, b"a1 NO denied\r\n"),
                (true, b"a2 SELECT INBOX\r\n"),
                (true, b"a3 LOGIN eve \"654321\"\r\n"),
            ],
        );
        assert_eq!(imap.len(), 1, "{imap:?}");
    }

    #[test]
    fn line_protocol_logins_with_their_answers() {
        let ftp = converse(
            21,
            &[
                (false, b"220 (vsFTPd 3.0.2)\r\n"),
                (true, b"USER ccso\r\n"),
                (false, b"331 Please specify the password.\r\n"),
                (true, b"PASS SecurePasswordHere\r\n"),
                (false, b"230 Login successful.\r\n"),
            ],
        );
        assert_eq!(
            ftp,
            [(
                9_201_202,
                "protocol ftp, user ccso, password S…e (18 chars), accepted yes".into()
            )]
        );
        let pop3 = converse(
            110,
            &[
                (false, b"+OK ready\r\n"),
                (true, b"USER bob\r\nPASS 123456\r\n"),
                (false, b"-ERR denied\r\n"),
            ],
        );
        assert_eq!(
            pop3,
            [(
                9_201_201,
                "protocol pop3, user bob, password 1…6 (6 chars), accepted no, weakness dictionary"
                    .into()
            )]
        );
        let imap = converse(
            143,
            &[
                (false, b"* OK IMAP4rev1\r\n"),
                (true, b"a1 LOGIN \"alice\" \"alice2024\"\r\n"),
                (
                    false,
                    b"* CAPABILITY IMAP4rev1\r\na1 OK LOGIN completed\r\n",
                ),
            ],
        );
        assert_eq!(imap[0].1, "protocol imap, user alice, password a…4 (9 chars), accepted yes, weakness contains-user-name");
        let plain = base64::engine::general_purpose::STANDARD.encode(b"\0mailer\0Tr0ub4dor&3x");
        let smtp = converse(
            587,
            &[
                (false, b"220 mx ESMTP\r\n"),
                (true, b"EHLO me\r\n"),
                (false, b"250 AUTH PLAIN LOGIN\r\n"),
                (true, format!("AUTH PLAIN {plain}\r\n").as_bytes()),
                (false, b"235 2.7.0 Authentication successful\r\n"),
            ],
        );
        assert_eq!(
            smtp,
            [(
                9_201_202,
                "protocol smtp, user mailer, password T…x (12 chars), accepted yes".into()
            )]
        );
        let login = converse(
            25,
            &[
                (false, b"220 mx ESMTP\r\n"),
                (true, b"AUTH LOGIN\r\n"),
                (false, b"334 VXNlcm5hbWU6\r\n"),
                (true, b"cm9vdA==\r\n"),
                (false, b"334 UGFzc3dvcmQ6\r\n"),
                (true, b"cGFzc3dvcmQ=\r\n"),
                (false, b"535 5.7.8 failed\r\n"),
            ],
        );
        assert_eq!(
            login[0].1,
            "protocol smtp, user root, password p…d (8 chars), accepted no, weakness dictionary"
        );
    }

    #[test]
    fn redis_auth_in_resp_and_inline() {
        let resp = converse(
            6379,
            &[
                (true, b"*2\r\n$4\r\nAUTH\r\n$11\r\nfoobared123\r\n"),
                (false, b"+OK\r\n"),
            ],
        );
        assert_eq!(
            resp,
            [(
                9_201_202,
                "protocol redis, user none, password f…3 (11 chars), accepted yes".into()
            )]
        );
        let acl = converse(
            7000,
            &[
                (
                    true,
                    b"*3\r\n$4\r\nauth\r\n$7\r\ndefault\r\n$5\r\nredis\r\n",
                ),
                (false, b"-WRONGPASS invalid\r\n"),
            ],
        );
        assert_eq!(
            acl[0].1,
            "protocol redis, user default, password r…s (5 chars), accepted no, weakness short"
        );
        let inline = converse(7000, &[(true, b"AUTH s3cr3tpassw0rd!\r\n")]);
        assert_eq!(
            inline[0].1,
            "protocol redis, user none, password s…! (15 chars), accepted unknown"
        );
    }

    #[test]
    fn binary_tls_and_http_connections_are_not_read() {
        for first in [
            &b"\x16\x03\x01\x02\x00\x01"[..],
            b"GET / HTTP/1.1\r\n",
            b"\x00\x01USER x\r\n",
        ] {
            let mut detector = detector();
            let mut flow = CredentialFlow::default();
            let stream = stream_id("10.0.0.9:40001", "192.0.2.1:21");
            let data = StreamData {
                ts_ns: 0,
                stream: &stream,
                offset: 0,
                bytes: first,
            };
            detector.stream(&mut flow, &data, &mut |_| panic!("a finding"));
            assert!(detector.stream_done(&flow, &data));
        }
    }

    /// A PostgreSQL frontend or backend message.
    fn pg(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn postgresql_clear_text_passwords_and_not_md5_ones() {
        let params = b"\0\x03\0\0user\0grafana\0database\0metrics\0\0";
        let startup = &[&((params.len() + 4) as u32).to_be_bytes()[..], params].concat();
        let ok = [pg(b'R', &0u32.to_be_bytes()), pg(b'Z', b"I")].concat();
        let password = pg(b'p', b"Wq8!zr-4Lm2#\0");
        // The password message split across two segments.
        let found = converse(
            5432,
            &[
                (true, startup),
                (false, &pg(b'R', &3u32.to_be_bytes())),
                (true, &password[..4]),
                (true, &password[4..]),
                (false, &ok),
            ],
        );
        assert_eq!(
            found,
            [(
                9_201_202,
                "protocol postgresql, user grafana, password W…# (12 chars), accepted yes".into()
            )]
        );
        let refused = converse(
            5432,
            &[
                (true, startup),
                (false, &pg(b'R', &3u32.to_be_bytes())),
                (true, &pg(b'p', b"grafana2024\0")),
                (false, &pg(b'E', b"SFATAL\0C28P01\0\0")),
            ],
        );
        assert_eq!(refused.len(), 1);
        assert!(
            refused[0]
                .1
                .ends_with("accepted no, weakness contains-user-name"),
            "{refused:?}"
        );
        let md5 = converse(
            5432,
            &[
                (true, startup),
                (false, &pg(b'R', &[0, 0, 0, 5, 1, 2, 3, 4])),
                (true, &pg(b'p', b"md5d41d8cd98f00b204e9800998ecf8427e\0")),
                (false, &ok),
            ],
        );
        assert!(md5.is_empty(), "a hash is no clear-text password");
        // A length shorter than its header ends the reading, without a panic.
        let broken = converse(
            5432,
            &[
                (true, startup),
                (false, &pg(b'R', &3u32.to_be_bytes())),
                (true, b"p\0\0\0\0"),
            ],
        );
        assert!(broken.is_empty());
    }

    /// An LDAP message of `id` around operation `op`.
    fn ldap(id: u8, op: u8, body: &[u8]) -> Vec<u8> {
        let mut inner = vec![0x02, 1, id, op, body.len() as u8];
        inner.extend_from_slice(body);
        let mut out = vec![0x30, inner.len() as u8];
        out.extend_from_slice(&inner);
        out
    }

    fn bind(dn: &str, password: &str) -> Vec<u8> {
        let mut body = vec![0x02, 1, 3, 0x04, dn.len() as u8];
        body.extend_from_slice(dn.as_bytes());
        body.extend_from_slice(&[0x80, password.len() as u8]);
        body.extend_from_slice(password.as_bytes());
        body
    }

    #[test]
    fn ldap_simple_binds_and_their_results() {
        let dn = "cn=admin,dc=corp,dc=example";
        let accepted = ldap(2, 0x61, &[0x0a, 1, 0, 0x04, 0, 0x04, 0]);
        let found = converse(
            389,
            &[
                (true, &ldap(1, 0x60, &bind("", ""))),
                (false, &ldap(1, 0x61, &[0x0a, 1, 0, 0x04, 0, 0x04, 0])),
                (true, &ldap(2, 0x60, &bind(dn, "admin"))),
                (false, &accepted),
            ],
        );
        assert_eq!(found, [(9_201_201, format!("protocol ldap, user {dn}, password a…n (5 chars), accepted yes, weakness dictionary"))], "the anonymous bind is no login");
        let refused = converse(
            389,
            &[
                (true, &ldap(1, 0x60, &bind(dn, "T7#kv9-Pq2Lx"))),
                (false, &ldap(1, 0x61, &[0x0a, 1, 49, 0x04, 0, 0x04, 0])),
            ],
        );
        assert_eq!(refused.len(), 1);
        assert!(refused[0].1.ends_with("accepted no"), "{refused:?}");
        // A bind far into a long session is past what is read.
        let search = ldap(3, 0x63, &[0x04, 0]);
        let mut turns: Vec<(bool, &[u8])> =
            vec![(true, &search); MAX_BYTES as usize / search.len() + 1];
        let late = ldap(4, 0x60, &bind(dn, "admin"));
        turns.push((true, &late));
        assert!(converse(389, &turns).is_empty());
    }

    fn datagram<'a>(to_server: bool, payload: &'a [u8]) -> PacketView<'a> {
        PacketView {
            ts_ns: 0,
            flow_id: 1,
            to_server,
            established: false,
            reassembled: false,
            proto: ip_proto::UDP,
            src: "10.0.0.9".parse().unwrap(),
            dst: "10.0.0.1".parse().unwrap(),
            src_port: 40000,
            dst_port: 161,
            carrier: Default::default(),
            transport_valid: true,
            payload,
            payload_len: payload.len() as u32,
            stream_sizes: None,
            tcp: None,
            icmp: None,
        }
    }

    /// An SNMP v2c message of `pdu` with `community` and request id 77.
    fn snmp(community: &str, pdu: u8) -> Vec<u8> {
        let varbinds = b"\x30\x0b\x30\x09\x06\x05\x2b\x06\x01\x02\x01\x05\x00";
        let mut body = vec![0x02, 1, 77, 0x02, 1, 0, 0x02, 1, 0];
        body.extend_from_slice(varbinds);
        let mut inner = vec![0x02, 1, 1, 0x04, community.len() as u8];
        inner.extend_from_slice(community.as_bytes());
        inner.extend_from_slice(&[pdu, body.len() as u8]);
        inner.extend_from_slice(&body);
        let mut out = vec![0x30, inner.len() as u8];
        out.extend_from_slice(&inner);
        out
    }

    #[test]
    fn snmp_communities_answered_or_not() {
        let mut detector = detector();
        let mut found = Vec::new();
        let mut flow = CredentialFlow::default();
        for (to_server, message) in [
            (true, snmp("public", 0xa0)),
            (true, snmp("public", 0xa0)),
            (false, snmp("public", 0xa2)),
        ] {
            detector.packet(&mut flow, &datagram(to_server, &message), &mut |f| {
                found.push(f)
            });
        }
        let mut quiet = CredentialFlow::default();
        detector.packet(
            &mut quiet,
            &datagram(true, &snmp("N0c-R3ad-7x", 0xa1)),
            &mut |f| found.push(f),
        );
        detector.end(&mut quiet, &FlowRecord::example(), &mut |f| found.push(f));
        let mut dns = CredentialFlow::default();
        detector.packet(
            &mut dns,
            &datagram(true, b"\x12\x34\x01\x00\x00\x01"),
            &mut |f| found.push(f),
        );
        let found: Vec<(u32, String)> = found
            .into_iter()
            .map(|f| (f.signature.sid, f.metadata))
            .collect();
        assert_eq!(
            found,
            [
                (9_201_201, "protocol snmp, user none, password p…c (6 chars), accepted yes, weakness short".into()),
                (9_201_202, "protocol snmp, user none, password N…x (11 chars), accepted unknown".into()),
            ]
        );
        assert!(matches!(dns, CredentialFlow::Done));
    }

    #[test]
    fn generated_logins_are_named_weak_or_not_and_never_shown() {
        let mut random = Random::new(21);
        for round in 0..300 {
            let user = random.word_of(4, 8);
            let strong = random.string(
                b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789",
                16,
            );
            let weak = ["admin", "123456", user.as_str(), "qwertyui"][round % 4].to_string();
            for (password, sid) in [(&strong, 9_201_202), (&weak, 9_201_201)] {
                let login = format!("USER {user}\r\nPASS {password}\r\n");
                let found = converse(
                    21,
                    &[
                        (false, b"220 ftp\r\n"),
                        (true, login.as_bytes()),
                        (false, b"230 ok\r\n"),
                    ],
                );
                assert_eq!(found.len(), 1, "{user} {password}");
                assert_eq!(found[0].0, sid, "{user} {password}: {}", found[0].1);
                if password.len() > 4 {
                    assert!(!found[0].1.contains(password.as_str()), "{}", found[0].1);
                }
            }
        }
    }

    /// An HTTP exchange through the parser and the detector.
    fn http(request: &[u8], response: &[u8]) -> Vec<(u32, String)> {
        let mut detector = detector();
        let mut flow = CredentialFlow::default();
        let mut applayer = AppLayer::new(HttpLimits::default());
        let mut app = AppFlow::default();
        let stream = stream_id("10.0.0.9:40001", "192.0.2.1:80");
        let mut found = Vec::new();
        for (dir, bytes) in [(0, request), (1, response)] {
            let id = stream.toward(dir);
            applayer.data(&mut app, &id, 0, bytes, &mut |event, sent| {
                let sender = Sender::of_stream(&stream.toward(sent));
                let data = AppData {
                    ts_ns: 0,
                    sender: &sender,
                    event: &event,
                };
                detector.app(&mut flow, &data, &mut |f| found.push(f));
            });
        }
        detector.end(&mut flow, &FlowRecord::example(), &mut |f| found.push(f));
        found
            .into_iter()
            .map(|f| (f.signature.sid, f.metadata))
            .collect()
    }

    #[test]
    fn http_basic_form_and_json_logins() {
        let basic = base64::engine::general_purpose::STANDARD.encode(b"admin:admin");
        let found = http(
            format!("GET /cgi-bin/ HTTP/1.1\r\nHost: cam\r\nAuthorization: Basic {basic}\r\n\r\n")
                .as_bytes(),
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(found, [(9_201_201, "protocol http-basic, user a…n (5 chars), password a…n (5 chars), accepted no, weakness dictionary".into())]);
        let body = b"tokenCSRF=81ea&username=fergus&password=RolandDeschain&save=";
        let request = format!(
            "POST /admin/login HTTP/1.1\r\nHost: cms\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let found = http(
            &[request.as_bytes(), body].concat(),
            b"HTTP/1.1 302 Found\r\nLocation: /admin/\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(
            found,
            [(
                9_201_202,
                "protocol http-form, user fergus, password R…n (14 chars), accepted yes".into()
            )]
        );
        let json = br#"{"email":"ops@example.org","user[password]":"x","password":"Summer2024"}"#;
        let request = format!(
            "POST /api/login HTTP/1.1\r\nHost: app\r\nContent-Length: {}\r\n\r\n",
            json.len()
        );
        let found = http(&[request.as_bytes(), json].concat(), b"");
        assert_eq!(found.len(), 1);
        assert!(
            found[0]
                .1
                .starts_with("protocol http-json, user ops@example.org, password "),
            "{}",
            found[0].1
        );
        assert!(found[0].1.ends_with("accepted unknown"));
        let empty = b"account=0&password=&Loginin.x=52";
        let request = format!(
            "POST /home.asp HTTP/1.1\r\nHost: dev\r\nContent-Length: {}\r\n\r\n",
            empty.len()
        );
        assert!(
            http(&[request.as_bytes(), empty].concat(), b"").is_empty(),
            "no password, no login"
        );
        // A web shell's payload under its password parameter.
        let shell = format!(
            "pass={}",
            "QGluaV9zZXQoImRpc3BsYXlfZXJyb3JzIiwiMCIpOw".repeat(3)
        );
        let request = format!(
            "POST /shell.php HTTP/1.1\r\nHost: dev\r\nContent-Length: {}\r\n\r\n{shell}",
            shell.len()
        );
        assert!(
            http(request.as_bytes(), b"").is_empty(),
            "data, no password"
        );
    }

    #[test]
    fn a_connection_picked_up_at_the_server_greeting_reads_the_client_right() {
        let mut detector = detector();
        let mut flow = CredentialFlow::default();
        // The initiator, as the flow table saw it, is the server.
        let server = stream_id("192.0.2.1:21", "10.0.0.9:27014");
        let client = server.toward(1);
        let mut found = Vec::new();
        for (id, offset, bytes) in [
            (&server, 0, &b"220 (vsFTPd 3.0.2)\r\n"[..]),
            (&client, 0, b"USER ccso\r\n"),
            (&client, 11, b"PASS SecurePasswordHere\r\n"),
            (&server, 20, b"230 Login successful.\r\n"),
        ] {
            let data = StreamData {
                ts_ns: 0,
                stream: id,
                offset,
                bytes,
            };
            detector.stream(&mut flow, &data, &mut |f| found.push(f.metadata));
        }
        assert_eq!(
            found,
            ["protocol ftp, user ccso, password S…e (18 chars), accepted yes"]
        );
    }

    #[test]
    fn telnet_logins_typed_a_key_at_a_time_through_negotiation() {
        let mut turns: Vec<(bool, Vec<u8>)> = vec![
            (false, vec![IAC, 253, 24, IAC, 253, 32, IAC, 251, 1]),
            (true, vec![IAC, 252, 24, IAC, SB, 31, 0, 80, 0, 24, IAC, SE]),
            (false, b"\r\nBusyBox on router login: ".to_vec()),
        ];
        for key in b"root\r\0" {
            turns.push((true, vec![*key]));
            turns.push((false, vec![*key]));
        }
        turns.push((false, b"\r\nPassword: ".to_vec()));
        for key in b"xc3511\r" {
            turns.push((true, vec![*key]));
        }
        turns.push((
            false,
            b"\r\n\r\nBusyBox v1.19.4 built-in shell (ash)\r\n# ".to_vec(),
        ));
        let turns: Vec<(bool, &[u8])> = turns.iter().map(|(c, b)| (*c, b.as_slice())).collect();
        assert_eq!(
            converse(23, &turns),
            [(
                9_201_201,
                "protocol telnet, user root, password x…1 (6 chars), accepted yes, weakness short"
                    .to_string()
            )]
        );
        let refused = converse(
            2323,
            &[
                (false, b"login: "),
                (true, b"admin\r\n"),
                (false, b"Password: "),
                (true, b"Zq8!vLp2#Wm4\r\n"),
                (false, b"\r\nLogin incorrect\r\nlogin: "),
            ],
        );
        assert_eq!(
            refused,
            [(
                9_201_202,
                "protocol telnet, user admin, password Z…4 (12 chars), accepted no".into()
            )]
        );
    }
}
