//! Services recognised from the first bytes of each direction, and what is
//! followed after: Redis commands and their answers, PostgreSQL's
//! authentication request, MongoDB's `listDatabases`.
//!
//! Each recogniser takes the server's first bytes and the client's (empty
//! when the client has not spoken yet) and checks the framing, not a port:
//! a banner's exact form, a handshake's lengths and type codes, an answer
//! that refers to its request.

use super::{Service, ServiceSummary};
use crate::applayer::http::looks_like_http;

/// What is followed of a recognised service.
#[derive(Debug, Default)]
pub enum Follow {
    /// Nothing.
    #[default]
    Nothing,
    /// Redis: the client's last command and whether an `AUTH` passed.
    Redis {
        /// The command awaiting its answer.
        pending: Option<RedisCommand>,
        /// An `AUTH` was answered `+OK`.
        authenticated: bool,
    },
    /// PostgreSQL: its server's messages up to its version.
    Postgresql,
    /// VNC: the server's security types, after its banner.
    Vnc {
        /// The protocol's minor version (3.x).
        minor: u32,
    },
    /// MongoDB: the request id of a `listDatabases` awaiting its answer.
    Mongodb {
        /// Request id of the `listDatabases` sent.
        list_databases: Option<u32>,
    },
}

/// Redis commands whose answers matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisCommand {
    /// `AUTH`.
    Auth,
    /// `INFO` or `CONFIG`, which need authentication when a password is
    /// set.
    Open(&'static str),
    /// Any other.
    Other,
}

impl Follow {
    /// True when nothing is followed.
    pub fn is_done(&self) -> bool {
        matches!(self, Self::Nothing)
    }

    /// Bytes of direction `dir` after recognition.
    pub fn data(&mut self, summary: &mut ServiceSummary, dir: usize, bytes: &[u8]) {
        let from_server = dir == summary.server_dir;
        match self {
            Self::Nothing => {}
            Self::Redis {
                pending,
                authenticated,
            } => {
                if from_server {
                    redis_answer(summary, pending.take(), authenticated, bytes);
                } else {
                    *pending = redis_command(bytes);
                    summary.auth |= *pending == Some(RedisCommand::Auth);
                }
            }
            Self::Vnc { minor } => {
                if from_server {
                    vnc_security(summary, *minor, bytes);
                    *self = Self::Nothing;
                }
            }
            Self::Postgresql => {
                if from_server {
                    postgresql_server(summary, bytes);
                }
                if summary.version.is_some() {
                    *self = Self::Nothing;
                }
            }
            Self::Mongodb { list_databases } => {
                if from_server {
                    if let Some(id) = *list_databases {
                        if mongodb_answers_list(bytes, id) && !summary.auth {
                            summary.open_access = Some("mongodb listDatabases");
                        }
                    }
                    if let Some(version) = bson_string(bytes, b"version") {
                        summary.identify(Some("MongoDB"), Some(&version));
                    }
                } else {
                    summary.auth |= mongodb_auth(bytes);
                    if let Some(id) = mongodb_list_databases(bytes) {
                        *list_databases = Some(id);
                    }
                }
            }
        }
    }
}

/// True when a direction's first bytes may open or answer one of these
/// services' exchanges (a cheap look at their first bytes, before anything
/// is kept for the flow): a banner's start, a framing's type byte or
/// length shape, a RESP or Memcached word, a MongoDB opcode. Too few bytes
/// to tell may be anything.
pub fn candidate(first: &[u8]) -> bool {
    if first.len() < 5 {
        return true;
    }
    let tls = first[0] == 0x16 && first[1] == 3;
    if tls || looks_like_http(first) {
        return false;
    }
    let mongodb = u32_le(first, 12).is_some_and(|op| [1, 2004, 2012, 2013].contains(&op));
    // MySQL: a 3-byte length, then the packet number.
    let mysql = first[3] <= 2 && (first[3] > 0 || matches!(first[4], 10 | 0xff));
    let pg_answer = matches!(first[0], b'R' | b'E') && first[1] == 0;
    match first[0] {
        b'S' if first.starts_with(b"SSH-") => true,
        b'R' if first.starts_with(b"RFB ") => true,
        0xff | 0x80 | 0x81 => true,
        0x00 | 0x03 | 0x04 | 0x12 => true,
        b'*' | b'+' | b'-' | b'$' | b':' => true,
        _ if mongodb || mysql || pg_answer => true,
        _ => {
            redis_name(first).is_some()
                || MEMCACHED_COMMANDS.iter().any(|c| first.starts_with(c))
                || MEMCACHED_ANSWERS.iter().any(|a| first.starts_with(a))
        }
    }
}

/// The service of a flow whose directions began with `first` (indexed by
/// stream direction; `first_dir` spoke first), when recognised.
pub fn recognise(first: &[Vec<u8>; 2], first_dir: usize) -> Option<(ServiceSummary, Follow)> {
    // The responder is the server; the roles are tried the other way round
    // only once both sides spoke (a flow picked up after its start).
    if let Some(found) = recognise_as(&first[1], &first[0], 1, first_dir == 0) {
        return Some(found);
    }
    if first[1].is_empty() {
        return None;
    }
    recognise_as(&first[0], &first[1], 0, first_dir == 1)
}

type Recogniser = fn(&[u8], &[u8], &mut ServiceSummary) -> Option<Follow>;

/// Who speaks first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opens {
    /// The server, with a banner or negotiation.
    Server,
    /// The client, with a request the server answers.
    Client,
}

/// Each service's recogniser.
const RECOGNISERS: &[(Service, Opens, Recogniser)] = &[
    (Service::Ssh, Opens::Server, ssh),
    (Service::Telnet, Opens::Server, telnet),
    (Service::Vnc, Opens::Server, vnc),
    (Service::Mysql, Opens::Server, mysql),
    (Service::Rdp, Opens::Client, rdp),
    (Service::Smb, Opens::Client, smb),
    (Service::Mssql, Opens::Client, mssql),
    (Service::Postgresql, Opens::Client, postgresql),
    (Service::Redis, Opens::Client, redis),
    (Service::Memcached, Opens::Client, memcached),
    (Service::Mongodb, Opens::Client, mongodb),
];

fn recognise_as(
    server: &[u8],
    client: &[u8],
    server_dir: usize,
    client_first: bool,
) -> Option<(ServiceSummary, Follow)> {
    if server.is_empty() {
        return None;
    }
    RECOGNISERS
        .iter()
        .find_map(|&(service, opens, recogniser)| {
            if opens == Opens::Client && !client_first {
                return None;
            }
            let mut summary = ServiceSummary::new(service, server_dir);
            recogniser(server, client, &mut summary).map(|follow| (summary, follow))
        })
}

fn u16_be(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

/// The big-endian u32 at `at`, when the bytes reach that far.
pub fn u32_be(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u32_le(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The bytes up to the first of `ends` (or all of them), as text when they
/// are printable.
fn printable_until<'a>(bytes: &'a [u8], ends: &[u8]) -> Option<&'a str> {
    let end = bytes
        .iter()
        .position(|b| ends.contains(b))
        .unwrap_or(bytes.len());
    let text = &bytes[..end];
    text.iter()
        .all(|&b| (0x20..0x7f).contains(&b))
        .then(|| std::str::from_utf8(text).ok())
        .flatten()
}

/// The leading version number of `text` (`10.6.12` of `10.6.12-MariaDB`).
fn leading_version(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    text[..end].trim_end_matches('.')
}

/// `SSH-2.0-OpenSSH_8.9p1 Ubuntu-3`: product `OpenSSH`, version `8.9p1`.
fn ssh(server: &[u8], client: &[u8], summary: &mut ServiceSummary) -> Option<Follow> {
    let rest = server
        .strip_prefix(b"SSH-2.0-")
        .or_else(|| server.strip_prefix(b"SSH-1.99-"))
        .or_else(|| server.strip_prefix(b"SSH-1.5-"))?;
    if !(client.is_empty() || client.starts_with(b"SSH-")) {
        return None;
    }
    let software = printable_until(rest, b" \r\n")?;
    if software.is_empty() {
        return None;
    }
    let (product, version) = software.split_once('_').unwrap_or((software, ""));
    summary.identify(Some(product), Some(version));
    // Every SSH session authenticates (a key exchange comes first).
    summary.auth = true;
    Some(Follow::Nothing)
}

/// A server opening with option negotiation (`IAC WILL/WONT/DO/DONT`).
fn telnet(server: &[u8], _: &[u8], _: &mut ServiceSummary) -> Option<Follow> {
    let negotiating = server.len() >= 3 && server[0] == 0xff && (0xfb..=0xfe).contains(&server[1]);
    negotiating.then_some(Follow::Nothing)
}

/// `RFB 003.008\n`.
fn vnc(server: &[u8], _: &[u8], summary: &mut ServiceSummary) -> Option<Follow> {
    let banner = server.get(..12)?;
    let shape = banner.starts_with(b"RFB ")
        && banner[4..7].iter().all(u8::is_ascii_digit)
        && banner[7] == b'.'
        && banner[8..11].iter().all(u8::is_ascii_digit)
        && banner[11] == b'\n';
    if !shape {
        return None;
    }
    let major = u32::from(banner[6] - b'0') + 10 * u32::from(banner[5] - b'0');
    let minor = u32::from(banner[10] - b'0') + 10 * u32::from(banner[9] - b'0');
    summary.identify(Some("RFB"), Some(&format!("{major}.{minor}")));
    let mut follow = Follow::Vnc { minor };
    let rest = &server[12..];
    if !rest.is_empty() {
        follow.data(summary, summary.server_dir, rest);
    }
    Some(follow)
}

/// The security types an RFB server offers after its banner: a list
/// (3.7 and later) or the one it picked (3.3). Type 1 is none; a server
/// that offers it lets any client in.
fn vnc_security(summary: &mut ServiceSummary, minor: u32, bytes: &[u8]) {
    let types: &[u8] = if minor >= 7 {
        match bytes.split_first() {
            Some((&n, types)) if n > 0 && types.len() >= usize::from(n) => &types[..usize::from(n)],
            _ => return,
        }
    } else {
        match u32_be(bytes, 0) {
            Some(1) => &[1],
            Some(0) | None => return,
            Some(_) => &[2],
        }
    };
    if types.contains(&1) {
        summary.open_access = Some("vnc without authentication");
    } else {
        summary.auth = true;
    }
}

/// A TPKT (version 3) whose X.224 TPDU is `code`: `0xe0` connection
/// request, `0xd0` connection confirm.
fn x224(bytes: &[u8], code: u8) -> bool {
    bytes.len() >= 11
        && bytes[0] == 3
        && bytes[1] == 0
        && usize::from(u16_be(bytes, 2).unwrap_or(0)) >= 11
        && usize::from(bytes[4]) + 5 <= usize::from(u16_be(bytes, 2).unwrap_or(0))
        && bytes[5] & 0xf0 == code
}

/// The client's X.224 connection request and the server's confirm, each
/// carrying nothing or RDP's own data after the X.224 header (a routing
/// cookie, a negotiation request or response) where other users of X.224
/// (ISO-TSAP, S7) put their parameters.
fn rdp(server: &[u8], client: &[u8], summary: &mut ServiceSummary) -> Option<Follow> {
    if !(x224(client, 0xe0) && x224(server, 0xd0)) {
        return None;
    }
    let rdp_data = |bytes: &[u8], kinds: &[u8]| match bytes.get(11..) {
        None | Some([]) => true,
        Some(rest) => {
            rest.starts_with(b"Cookie: ")
                || rest.len() >= 8 && kinds.contains(&rest[0]) && rest[2..4] == [8, 0]
        }
    };
    if !(rdp_data(client, &[1]) && rdp_data(server, &[2, 3])) {
        return None;
    }
    // RDP_NEG_RSP: the security protocol the server picked; anything but
    // standard RDP security authenticates before the desktop.
    if server.get(11) == Some(&2) {
        let protocol = u32_le(server, 15).unwrap_or(0);
        summary.auth = protocol != 0;
        let name = match protocol {
            0 => "rdp",
            1 => "tls",
            2 | 8 => "credssp",
            _ => "other",
        };
        summary.identify(Some("RDP"), Some(name));
    }
    Some(Follow::Nothing)
}

/// An SMB negotiate response in a NetBIOS session message.
fn smb(server: &[u8], _: &[u8], summary: &mut ServiceSummary) -> Option<Follow> {
    if server.first() != Some(&0) || server.len() < 8 {
        return None;
    }
    let header = &server[4..];
    if header.starts_with(b"\xfeSMB") {
        // SMB2: a response (flag 1) to NEGOTIATE (command 0).
        let flags = u32::from_le_bytes(header.get(16..20)?.try_into().ok()?);
        let command = u16::from_le_bytes(header.get(12..14)?.try_into().ok()?);
        if flags & 1 == 0 || command != 0 {
            return None;
        }
        let dialect = u16::from_le_bytes(header.get(68..70)?.try_into().ok()?);
        let version = match dialect {
            0x0202 => "2.0.2",
            0x0210 => "2.1",
            0x0300 => "3.0",
            0x0302 => "3.0.2",
            0x0311 => "3.1.1",
            _ => "2",
        };
        summary.identify(Some("SMB"), Some(version));
    } else if header.starts_with(b"\xffSMB") {
        // SMB1: a reply (flag 0x80) to NEGOTIATE (0x72).
        if header.get(4) != Some(&0x72) || header.get(9).is_none_or(|f| f & 0x80 == 0) {
            return None;
        }
        summary.identify(Some("SMB"), Some("1"));
    } else {
        return None;
    }
    summary.auth = true;
    Some(Follow::Nothing)
}

/// The server's handshake packet (protocol 10 and its version), or its
/// refusal of the client's host (an error packet numbered 0).
fn mysql(server: &[u8], _: &[u8], summary: &mut ServiceSummary) -> Option<Follow> {
    let len = usize::from(u16::from_le_bytes(server.get(..2)?.try_into().ok()?))
        | usize::from(*server.get(2)?) << 16;
    if server.get(3) != Some(&0) || !(8..=1024).contains(&len) {
        return None;
    }
    match server.get(4)? {
        10 => {
            let text = printable_until(&server[5..], b"\0")?;
            if !text.starts_with(|c: char| c.is_ascii_digit())
                || server.get(5 + text.len()) != Some(&0)
            {
                return None;
            }
            let product = if text.contains("MariaDB") {
                "MariaDB"
            } else {
                "MySQL"
            };
            let version = leading_version(text.strip_prefix("5.5.5-").unwrap_or(text));
            summary.identify(Some(product), Some(version));
            summary.auth = true;
            Some(Follow::Nothing)
        }
        0xff => {
            // ER_HOST_NOT_PRIVILEGED (1130) and its kin, in text.
            let text = printable_until(server.get(7..4 + len)?, b"\0")?;
            let refusal =
                (text.len() + 3 == len && text.contains("MySQL")) || text.starts_with("Host '");
            refusal.then_some(Follow::Nothing)
        }
        _ => None,
    }
}

/// The client's pre-login and the server's answer (a tabular response)
/// with its version option.
fn mssql(server: &[u8], client: &[u8], summary: &mut ServiceSummary) -> Option<Follow> {
    let prelogin = |bytes: &[u8], kind: u8| {
        bytes.len() >= 8 && bytes[0] == kind && bytes[1] & 0x01 == 1 && u16_be(bytes, 2) >= Some(8)
    };
    if !(prelogin(client, 0x12) && prelogin(server, 0x04)) {
        return None;
    }
    let body = &server[8..];
    // Options: token, offset, length; 0xff ends them. Token 0 is VERSION.
    let mut at = 0;
    while let Some(&token) = body.get(at) {
        if token == 0xff {
            break;
        }
        let offset = usize::from(u16_be(body, at + 1)?);
        if token == 0 {
            let v = body.get(offset..offset + 4)?;
            let build = u16::from_be_bytes([v[2], v[3]]);
            summary.identify(
                Some("Microsoft SQL Server"),
                Some(&format!("{}.{}.{build}", v[0], v[1])),
            );
        }
        at += 5;
    }
    summary.auth = true;
    Some(Follow::Nothing)
}

/// PostgreSQL's protocol 3.0 start-up code and its SSL and GSS requests.
pub const PG_STARTUP: u32 = 0x0003_0000;
/// PostgreSQL's SSL request code.
pub const PG_SSL_REQUEST: u32 = 80_877_103;
const PG_GSS_REQUEST: u32 = 80_877_104;

/// A start-up message and the server's answer: an authentication request,
/// an error, or `S`/`N` to an SSL request.
fn postgresql(server: &[u8], client: &[u8], summary: &mut ServiceSummary) -> Option<Follow> {
    let len = u32_be(client, 0)?;
    let code = u32_be(client, 4)?;
    match code {
        PG_SSL_REQUEST | PG_GSS_REQUEST if len == 8 => match server {
            // Encryption accepted: what follows is not readable.
            [b'S' | b'G'] => {
                summary.auth = true;
                Some(Follow::Nothing)
            }
            // Refused: the start-up message follows in the clear.
            [b'N'] => Some(Follow::Postgresql),
            _ if server.starts_with(b"E\0\0") => Some(Follow::Nothing),
            _ => None,
        },
        PG_STARTUP if (8..=10_000).contains(&len) => {
            let first = postgresql_message(server)?;
            if !matches!(first.0, b'R' | b'E') || (first.0 == b'R' && first.1.len() < 4) {
                return None;
            }
            postgresql_server(summary, server);
            Some(if summary.version.is_some() {
                Follow::Nothing
            } else {
                Follow::Postgresql
            })
        }
        _ => None,
    }
}

/// A backend message: its type and body, when its length fits.
fn postgresql_message(bytes: &[u8]) -> Option<(u8, &[u8])> {
    let kind = *bytes.first()?;
    let len = usize::try_from(u32_be(bytes, 1)?).ok()?;
    if !kind.is_ascii_alphabetic() || !(4..=1 << 16).contains(&len) {
        return None;
    }
    Some((kind, bytes.get(5..(1 + len).min(bytes.len()))?))
}

/// Reads the server's messages for `server_version` (a parameter status
/// sent after a successful login) and authentication requests.
fn postgresql_server(summary: &mut ServiceSummary, bytes: &[u8]) {
    let mut rest = bytes;
    while let Some((kind, body)) = postgresql_message(rest) {
        match kind {
            b'S' => {
                if let Some(value) = body.strip_prefix(b"server_version\0") {
                    if let Some(text) = printable_until(value, b"\0") {
                        summary.identify(Some("PostgreSQL"), Some(leading_version(text)));
                    }
                }
            }
            b'R' if u32_be(body, 0) != Some(0) => summary.auth = true,
            // AuthenticationOk with no password asked: trust.
            b'R' if !summary.auth => {
                summary.open_access = Some("postgresql login without password");
            }
            _ => {}
        }
        rest = &rest[(1 + body.len() + 4).min(rest.len())..];
    }
}

/// Redis inline commands recognised in the client's first bytes.
const REDIS_INLINE: &[&[u8]] = &[
    b"PING",
    b"INFO",
    b"AUTH",
    b"CONFIG",
    b"KEYS",
    b"GET ",
    b"SET ",
    b"HELLO",
    b"SELECT",
    b"DBSIZE",
    b"CLIENT",
    b"COMMAND",
    b"SLAVEOF",
    b"REPLICAOF",
    b"FLUSHALL",
    b"MODULE",
    b"EVAL",
    b"SCAN",
    b"ECHO",
    b"QUIT",
];

/// The command name of a RESP array (`*2\r\n$4\r\nINFO...`) or an inline
/// command line.
fn redis_name(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.first() == Some(&b'*') {
        let line_end = memchr::memchr(b'\n', bytes)?;
        let count = std::str::from_utf8(bytes[1..line_end].trim_ascii_end()).ok()?;
        count.parse::<u16>().ok().filter(|&n| n >= 1)?;
        let rest = &bytes[line_end + 1..];
        let (head, data) = rest.split_at(memchr::memchr(b'\n', rest)? + 1);
        let len: usize = std::str::from_utf8(head.strip_prefix(b"$")?.trim_ascii_end())
            .ok()?
            .parse()
            .ok()?;
        return data.get(..len);
    }
    let word_end = bytes
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')?;
    let word = &bytes[..word_end];
    REDIS_INLINE
        .iter()
        .any(|c| c.trim_ascii_end().eq_ignore_ascii_case(word))
        .then_some(word)
}

fn redis_command(bytes: &[u8]) -> Option<RedisCommand> {
    let name = redis_name(bytes)?;
    Some(if name.eq_ignore_ascii_case(b"AUTH") {
        RedisCommand::Auth
    } else if name.eq_ignore_ascii_case(b"INFO") {
        RedisCommand::Open("redis INFO")
    } else if name.eq_ignore_ascii_case(b"CONFIG") {
        RedisCommand::Open("redis CONFIG")
    } else {
        RedisCommand::Other
    })
}

/// A RESP answer: its first line's type and shape.
fn redis_reply(bytes: &[u8]) -> bool {
    let Some(end) = memchr::memchr(b'\n', bytes) else {
        return false;
    };
    let line = bytes[..end].trim_ascii_end();
    if !bytes[..end].ends_with(b"\r") || line.len() < 2 {
        return false;
    }
    let rest = &line[1..];
    match line[0] {
        b'+' | b'-' => rest.iter().all(|&b| (0x20..0x7f).contains(&b)),
        b'$' | b':' | b'*' => {
            let digits = rest.strip_prefix(b"-").unwrap_or(rest);
            !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

/// A command and its RESP answer.
fn redis(server: &[u8], client: &[u8], summary: &mut ServiceSummary) -> Option<Follow> {
    let command = redis_command(client)?;
    if !redis_reply(server) {
        return None;
    }
    summary.identify(Some("Redis"), None);
    let mut authenticated = false;
    summary.auth = command == RedisCommand::Auth;
    redis_answer(summary, Some(command), &mut authenticated, server);
    Some(Follow::Redis {
        pending: None,
        authenticated,
    })
}

/// The server's answer to `command`.
fn redis_answer(
    summary: &mut ServiceSummary,
    command: Option<RedisCommand>,
    authenticated: &mut bool,
    bytes: &[u8],
) {
    if let Some(at) = memchr::memmem::find(bytes, b"redis_version:") {
        let value = &bytes[at + 14..];
        if let Some(version) = printable_until(value, b"\r\n") {
            summary.identify(Some("Redis"), Some(version));
        }
    }
    let refused = bytes.first() == Some(&b'-');
    // `-NOAUTH`, `-WRONGPASS`: the server asks for authentication.
    summary.auth |= bytes.starts_with(b"-NOAUTH") || bytes.starts_with(b"-WRONGPASS");
    match command {
        Some(RedisCommand::Auth) => *authenticated |= bytes.starts_with(b"+OK"),
        Some(RedisCommand::Open(what)) if !refused && !*authenticated => {
            summary.open_access.get_or_insert(what);
        }
        _ => {}
    }
}

/// Memcached text commands, and the answers that only it gives.
const MEMCACHED_COMMANDS: &[&[u8]] = &[
    b"stats",
    b"version",
    b"get ",
    b"gets ",
    b"set ",
    b"add ",
    b"replace ",
    b"delete ",
    b"incr ",
    b"decr ",
    b"flush_all",
    b"verbosity",
    b"touch ",
];
const MEMCACHED_ANSWERS: &[&[u8]] = &[
    b"STAT ",
    b"VERSION ",
    b"VALUE ",
    b"END\r\n",
    b"STORED\r\n",
    b"NOT_STORED\r\n",
    b"NOT_FOUND\r\n",
    b"DELETED\r\n",
    b"OK\r\n",
    b"EXISTS\r\n",
];

/// A text command and its answer, or a binary request (magic `0x80`) and
/// response (`0x81`) with the same opcode.
fn memcached(server: &[u8], client: &[u8], summary: &mut ServiceSummary) -> Option<Follow> {
    let binary = client.len() >= 24
        && server.len() >= 24
        && client[0] == 0x80
        && server[0] == 0x81
        && client[1] == server[1]
        && client[12..16] == server[12..16];
    let text = MEMCACHED_COMMANDS.iter().any(|c| client.starts_with(c))
        && MEMCACHED_ANSWERS.iter().any(|a| server.starts_with(a));
    if !(binary || text) {
        return None;
    }
    let version = if let Some(v) = server.strip_prefix(b"VERSION ") {
        printable_until(v, b"\r\n")
    } else {
        memchr::memmem::find(server, b"STAT version ")
            .and_then(|at| printable_until(&server[at + 13..], b"\r\n"))
    };
    summary.identify(Some("Memcached"), version);
    if text && client.starts_with(b"stats") && server.starts_with(b"STAT ") {
        summary.open_access = Some("memcached stats");
    }
    Some(Follow::Nothing)
}

/// MongoDB's wire header: length, request id, the id it answers, opcode.
fn mongodb_header(bytes: &[u8]) -> Option<(u32, u32, u32)> {
    let len = u32_le(bytes, 0)?;
    let opcode = u32_le(bytes, 12)?;
    // OP_REPLY, OP_QUERY, OP_COMPRESSED, OP_MSG.
    if !(16..=48_000_000).contains(&len) || ![1, 2004, 2012, 2013].contains(&opcode) {
        return None;
    }
    Some((u32_le(bytes, 4)?, u32_le(bytes, 8)?, opcode))
}

/// A request and the answer that names it.
fn mongodb(server: &[u8], client: &[u8], summary: &mut ServiceSummary) -> Option<Follow> {
    let (request, to, kind) = mongodb_header(client)?;
    let (_, answers, answer_kind) = mongodb_header(server)?;
    if to != 0 || answers != request || kind == 1 || answer_kind == 2004 {
        return None;
    }
    summary.identify(Some("MongoDB"), bson_string(server, b"version").as_deref());
    summary.auth = mongodb_auth(client);
    let list_databases = mongodb_list_databases(client);
    if list_databases.is_some() && mongodb_answers_list(server, request) && !summary.auth {
        summary.open_access = Some("mongodb listDatabases");
    }
    Some(Follow::Mongodb {
        list_databases: list_databases.filter(|_| summary.open_access.is_none()),
    })
}

/// The request id of a `listDatabases` command.
fn mongodb_list_databases(bytes: &[u8]) -> Option<u32> {
    let (request, _, _) = mongodb_header(bytes)?;
    memchr::memmem::find(bytes, b"listDatabases\0").map(|_| request)
}

/// An answer to request `id` holding a `databases` array.
fn mongodb_answers_list(bytes: &[u8], id: u32) -> bool {
    mongodb_header(bytes).is_some_and(|(_, to, _)| to == id)
        && memchr::memmem::find(bytes, b"\x04databases\0").is_some()
}

/// A SASL or legacy authentication command.
fn mongodb_auth(bytes: &[u8]) -> bool {
    [
        &b"saslStart\0"[..],
        b"authenticate\0",
        b"speculativeAuthenticate\0",
    ]
    .iter()
    .any(|name| memchr::memmem::find(bytes, name).is_some())
}

/// The value of BSON string element `name` (type 2) in `bytes`.
fn bson_string(bytes: &[u8], name: &[u8]) -> Option<String> {
    let mut key = Vec::with_capacity(name.len() + 2);
    key.push(2);
    key.extend_from_slice(name);
    key.push(0);
    let at = memchr::memmem::find(bytes, &key)? + key.len();
    let len = usize::try_from(u32_le(bytes, at)?).ok()?;
    let value = bytes.get(at + 4..at + 4 + len.checked_sub(1)?)?;
    printable_until(value, b"\0").map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The service of a client speaking first (when it speaks) and its
    /// server.
    fn seen(client: &[u8], server: &[u8]) -> Option<ServiceSummary> {
        let first_dir = usize::from(client.is_empty());
        recognise(&[client.to_vec(), server.to_vec()], first_dir).map(|(s, _)| s)
    }

    #[test]
    fn banners_name_product_and_version() {
        let s = seen(b"", b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.4\r\n").unwrap();
        assert_eq!(
            (s.service, s.product.as_deref(), s.version.as_deref()),
            (Service::Ssh, Some("OpenSSH"), Some("8.9p1"))
        );
        let s = seen(b"", b"RFB 003.008\n").unwrap();
        assert_eq!(
            (s.service, s.version.as_deref()),
            (Service::Vnc, Some("3.8"))
        );
        let s = seen(b"", b"RFB 003.008\n\x01\x01").unwrap();
        assert_eq!(s.open_access, Some("vnc without authentication"));
        let s = seen(b"", b"RFB 003.008\n\x02\x02\x01").unwrap();
        assert_eq!(
            s.open_access,
            Some("vnc without authentication"),
            "None among others"
        );
        let s = seen(b"", b"RFB 003.003\n\x00\x00\x00\x02").unwrap();
        assert!(s.auth && s.open_access.is_none());
        let mut greeting = vec![0, 0, 0, 0, 10];
        greeting.extend_from_slice(b"5.5.5-10.6.12-MariaDB-0ubuntu0.22.04.1\0");
        greeting.extend_from_slice(&[0; 40]);
        let len = greeting.len() - 4;
        greeting[0] = len as u8;
        let s = seen(b"", &greeting).unwrap();
        assert_eq!(
            (s.service, s.product.as_deref(), s.version.as_deref()),
            (Service::Mysql, Some("MariaDB"), Some("10.6.12"))
        );
        assert_eq!(
            seen(b"", b"\xff\xfd\x18\xff\xfd\x20").unwrap().service,
            Service::Telnet
        );
    }

    #[test]
    fn first_bytes_of_other_protocols_are_no_candidates() {
        for other in [
            &b"220 mail.example ESMTP\r\n"[..],
            b"GET / HTTP/1.1\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc",
            b"NICK bot\r\nUSER x",
            b"\x47\x12\x34\x56\x78\x9a\xbc\xde",
        ] {
            assert!(!candidate(other), "{other:?}");
        }
        for opening in [
            &b"SSH-2.0-x\r\n"[..],
            b"RFB 003.008\n",
            b"*1\r\n$4\r\nINFO\r\n",
            b"stats\r\n",
            b"\x03\x00\x00\x13\x0e\xd0",
        ] {
            assert!(candidate(opening), "{opening:?}");
        }
    }

    #[test]
    fn text_that_only_resembles_a_service_is_none() {
        assert!(seen(b"", b"SSH is not here\r\n").is_none());
        assert!(seen(b"", b"RFB 3.8\n").is_none());
        assert!(seen(b"HELO x\r\n", b"220 mail ESMTP\r\n").is_none());
        assert!(seen(b"USER bob\r\n", b"+OK\r\n").is_none());
        // A POP3 server greets first; a client's AUTH is no Redis command.
        let pop3 = [b"AUTH\r\n".to_vec(), b"+OK POP3 ready\r\n".to_vec()];
        assert!(recognise(&pop3, 1).is_none());
        // S7 over ISO-TSAP: X.224 with TSAP parameters.
        let cr = b"\x03\x00\x00\x16\x11\xe0\x00\x00\x00\x01\x00\xc1\x02\x01\x00\xc2\x02\x01\x02\xc0\x01\x0a";
        let cc = b"\x03\x00\x00\x16\x11\xd0\x00\x01\x00\x01\x00\xc0\x01\x0a\xc1\x02\x01\x00\xc2\x02\x01\x02";
        assert!(seen(cr, cc).is_none());
    }

    #[test]
    fn redis_info_without_auth_is_open_access() {
        let info = b"*1\r\n$4\r\ninfo\r\n";
        let answer = b"$120\r\n# Server\r\nredis_version:7.0.11\r\n";
        let s = seen(info, answer).unwrap();
        assert_eq!(
            (s.service, s.version.as_deref(), s.open_access, s.auth),
            (Service::Redis, Some("7.0.11"), Some("redis INFO"), false)
        );
        let s = seen(info, b"-NOAUTH Authentication required.\r\n").unwrap();
        assert_eq!(s.open_access, None);
        // AUTH accepted, then INFO: authenticated access.
        let (mut s, mut follow) = recognise(
            &[
                b"*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n".to_vec(),
                b"+OK\r\n".to_vec(),
            ],
            0,
        )
        .unwrap();
        follow.data(&mut s, 0, info);
        follow.data(&mut s, 1, answer);
        assert!(s.auth);
        assert_eq!(s.open_access, None);
    }

    #[test]
    fn postgresql_trust_and_password_logins() {
        let startup = b"\0\0\0\x25\0\x03\0\0user\0postgres\0database\0postgres\0\0";
        let ok = b"R\0\0\0\x08\0\0\0\0S\0\0\0\x19server_version\x0014.9\0Z\0\0\0\x05I";
        let s = seen(startup, ok).unwrap();
        assert_eq!(
            (s.service, s.version.as_deref(), s.open_access),
            (
                Service::Postgresql,
                Some("14.9"),
                Some("postgresql login without password")
            )
        );
        let s = seen(startup, b"R\0\0\0\x08\0\0\0\x03").unwrap();
        assert!(s.auth && s.open_access.is_none());
        // SSL refused, then the start-up in the clear and a trusted login.
        let ssl = b"\0\0\0\x08\x04\xd2\x16\x2f";
        let (mut s, mut follow) = recognise(&[ssl.to_vec(), b"N".to_vec()], 0).unwrap();
        follow.data(&mut s, 0, startup);
        follow.data(&mut s, 1, ok);
        assert_eq!(
            (s.version.as_deref(), s.open_access),
            (Some("14.9"), Some("postgresql login without password"))
        );
    }
}
