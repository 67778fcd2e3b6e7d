//! One rule's text into a [`Rule`]: the header, then the options in order.

use crate::decode::tcp_flags;
use std::collections::HashMap;

use super::address::Vars;
use super::buffer::{self, Buffer, Transform, Transforms};
use super::keywords::{self, Arg, Placement};
use super::pattern::Content;
use super::{
    Action, ByteJump, ByteOp, ByteRead, ByteTest, Dsize, DsizeOp, Entropy, FlagsMode, FlowMatch,
    Flowbit, FlowbitOp, Inspected, Match, Protocol, Rule, RuleErrorKind, StreamSide, StreamSize,
    TcpFlagsMatch, Threshold, ThresholdKind, Track,
};

/// Default priority of a rule without `priority` whose classtype has none.
const DEFAULT_PRIORITY: u8 = 3;

/// The classtypes rule sets commonly use, with their usual priorities, for
/// rules read without a `classification.config`.
const STANDARD_CLASSTYPES: &[(&str, u8)] = &[
    ("not-suspicious", 3),
    ("unknown", 3),
    ("bad-unknown", 2),
    ("attempted-recon", 2),
    ("successful-recon-limited", 2),
    ("successful-recon-largescale", 2),
    ("attempted-dos", 2),
    ("successful-dos", 2),
    ("attempted-user", 1),
    ("unsuccessful-user", 1),
    ("successful-user", 1),
    ("attempted-admin", 1),
    ("successful-admin", 1),
    ("rpc-portmap-decode", 2),
    ("shellcode-detect", 1),
    ("string-detect", 3),
    ("suspicious-filename-detect", 2),
    ("suspicious-login", 2),
    ("system-call-detect", 2),
    ("tcp-connection", 4),
    ("trojan-activity", 1),
    ("unusual-client-port-connection", 2),
    ("network-scan", 3),
    ("denial-of-service", 2),
    ("non-standard-protocol", 2),
    ("protocol-command-decode", 3),
    ("web-application-activity", 2),
    ("web-application-attack", 1),
    ("misc-activity", 3),
    ("misc-attack", 2),
    ("icmp-event", 3),
    ("inappropriate-content", 1),
    ("policy-violation", 1),
    ("default-login-attempt", 2),
    ("targeted-activity", 1),
    ("exploit-kit", 1),
    ("external-ip-check", 2),
    ("domain-c2", 1),
    ("pup-activity", 2),
    ("credential-theft", 1),
    ("social-engineering", 2),
    ("coin-mining", 2),
    ("command-and-control", 1),
];

/// Classtypes and their default priorities (`classification.config`).
pub type Classifications = HashMap<String, u8>;

/// Parses `config classification: name,description,priority` lines.
pub fn parse_classifications(text: &str) -> Classifications {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("config classification:"))
        .filter_map(|rest| {
            let mut parts = rest.split(',');
            let name = parts.next()?.trim().to_owned();
            let priority = parts.nth(1)?.trim().parse().ok()?;
            Some((name, priority))
        })
        .collect()
}

/// True for a keyword of the subset (sticky buffers and modifiers included).
fn is_supported(keyword: &str) -> bool {
    keywords::find(keyword).is_some()
        || buffer::sticky(keyword).is_some()
        || buffer::modifier(keyword).is_some()
        || buffer::is_transform(keyword)
}

/// What a rule's text gave, with what error reports need when it failed.
pub struct Parsed {
    /// The sid, when one could be found.
    pub sid: Option<u32>,
    /// The rule or why not.
    pub result: Result<Rule, RuleErrorKind>,
    /// Every unsupported keyword the rule uses (empty when it loaded or is
    /// malformed).
    pub unsupported: Vec<String>,
}

/// Parses one rule.
pub fn parse_rule(text: &str, vars: &Vars, classes: Option<&Classifications>) -> Parsed {
    let sid = find_sid(text);
    let result = parse(text, vars, classes);
    let unsupported = match &result {
        Err(RuleErrorKind::Unsupported(first)) => every_unsupported(text, first),
        _ => Vec::new(),
    };
    Parsed {
        sid,
        result,
        unsupported,
    }
}

/// The unsupported protocol and option keywords of a rule, `first` (the one
/// that stopped parsing, possibly a value such as `flow:only_frag`) first.
fn every_unsupported(text: &str, first: &str) -> Vec<String> {
    let mut found = vec![first.to_owned()];
    let options = text
        .find('(')
        .zip(text.rfind(')'))
        .filter(|(open, close)| open < close)
        .and_then(|(open, close)| split_options(&text[open + 1..close]).ok())
        .unwrap_or_default();
    for (keyword, _) in options {
        if !is_supported(&keyword) && !found.contains(&keyword) {
            found.push(keyword);
        }
    }
    found
}

/// The sid, found leniently so that errors can name it.
fn find_sid(text: &str) -> Option<u32> {
    let at = text.find("sid:").or_else(|| text.find("sid :"))?;
    let rest = text[at..].split_once(':')?.1;
    rest.split(';').next()?.trim().parse().ok()
}

fn parse(
    text: &str,
    vars: &Vars,
    classes: Option<&Classifications>,
) -> Result<Rule, RuleErrorKind> {
    let open = text
        .find('(')
        .ok_or_else(|| RuleErrorKind::Syntax("no '(' opening the options".into()))?;
    let close = text
        .rfind(')')
        .filter(|&c| c > open)
        .ok_or_else(|| RuleErrorKind::Syntax("no ')' closing the options".into()))?;
    if !text[close + 1..].trim().is_empty() {
        return Err(RuleErrorKind::Syntax("text after the closing ')'".into()));
    }
    let mut rule = parse_header(&text[..open], vars)?;
    let mut sticky = Inspected::default();
    for (keyword, value) in split_options(&text[open + 1..close])? {
        if let Some(selected) = buffer::sticky(&keyword) {
            sticky = Inspected {
                buffer: selected,
                transforms: Transforms::default(),
            };
            continue;
        }
        if let Some(transform) = Transform::parse(&keyword, value.as_deref()) {
            let transform = transform.map_err(|bad| RuleErrorKind::BadValue {
                keyword: bad.keyword,
                value: bad.value,
            })?;
            if sticky.buffer == Buffer::Payload {
                return Err(RuleErrorKind::Unsupported(format!(
                    "{keyword} on the payload"
                )));
            }
            sticky.transforms.push(transform);
            continue;
        }
        if let Some(http) = buffer::modifier(&keyword) {
            last_content(&mut rule, &keyword)?.inspected.buffer = Buffer::Http(http);
            continue;
        }
        let Some(found) = keywords::find(&keyword) else {
            return Err(RuleErrorKind::Unsupported(keyword));
        };
        let arg = Arg {
            keyword: &keyword,
            value: value.as_deref(),
        };
        match found.placement {
            Placement::Rule(apply) => apply(&mut rule, arg)?,
            Placement::Match(parse) => {
                let parsed = parse(&rule, arg, &sticky)?;
                rule.matches.push(parsed);
            }
            Placement::Content(apply) => apply(last_content(&mut rule, &keyword)?, arg)?,
        }
    }
    if rule.is_app() {
        let family = |b: Buffer| match b {
            Buffer::Payload => 0,
            Buffer::Http(_) => 1,
            Buffer::Dns(_) => 2,
            Buffer::Tls(_) => 3,
        };
        let mut families: Vec<u8> = rule.matches.iter().map(|m| family(m.buffer())).collect();
        if rule.urilen.is_some() {
            families.push(1);
        }
        families.sort_unstable();
        families.dedup();
        families.retain(|&f| f != 0);
        if families.len() > 1 {
            return Err(RuleErrorKind::Unsupported(
                "buffers of two application protocols".into(),
            ));
        }
    }
    if rule.sid == 0 {
        return Err(RuleErrorKind::MissingSid);
    }
    if let Some(class) = &rule.classtype {
        let priority = match classes {
            Some(classes) => Some(*classes.get(class).ok_or_else(|| RuleErrorKind::BadValue {
                keyword: "classtype".into(),
                value: class.clone(),
            })?),
            // No classification.config beside the rules: the standard
            // classtypes still carry their usual priorities.
            None => STANDARD_CLASSTYPES
                .iter()
                .find(|(name, _)| name == class)
                .map(|(_, priority)| *priority),
        };
        rule.priority = rule.priority.or(priority);
    }
    rule.priority = rule.priority.or(Some(DEFAULT_PRIORITY));
    Ok(rule)
}

fn parse_header(text: &str, vars: &Vars) -> Result<Rule, RuleErrorKind> {
    let tokens = header_tokens(text)?;
    let [action, proto, src, sport, dir, dst, dport] = tokens.as_slice() else {
        return Err(RuleErrorKind::Header(format!(
            "expected 7 fields (action proto src sport -> dst dport), found {}",
            tokens.len()
        )));
    };
    let action = match action.as_str() {
        "alert" => Action::Alert,
        "pass" => Action::Pass,
        "drop" => Action::Drop,
        "reject" | "rejectsrc" | "rejectdst" | "rejectboth" => Action::Reject,
        other => return Err(RuleErrorKind::Header(format!("unknown action {other:?}"))),
    };
    let protocol = match proto.to_ascii_lowercase().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "icmp" | "icmpv4" | "icmpv6" => Protocol::Icmp,
        "ip" | "pkthdr" => Protocol::Ip,
        "tcp-pkt" => Protocol::TcpPkt,
        "tcp-stream" => Protocol::TcpStream,
        "http" | "http1" => Protocol::Http,
        "dns" => Protocol::Dns,
        "tls" => Protocol::Tls,
        other => return Err(RuleErrorKind::Unsupported(format!("protocol {other}"))),
    };
    let bidirectional = match dir.as_str() {
        "->" => false,
        "<>" => true,
        other => return Err(RuleErrorKind::Header(format!("bad direction {other:?}"))),
    };
    Ok(Rule {
        action,
        protocol,
        src: vars.address(src)?,
        src_ports: vars.port(sport)?,
        bidirectional,
        dst: vars.address(dst)?,
        dst_ports: vars.port(dport)?,
        ..Rule::default()
    })
}

/// Splits the header on white space outside brackets.
fn header_tokens(text: &str) -> Result<Vec<String>, RuleErrorKind> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '[' => {
                depth += 1;
                current.push(c);
            }
            ']' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| RuleErrorKind::Header("unbalanced ']'".into()))?;
                current.push(c);
            }
            c if c.is_whitespace() && depth == 0 => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c if c.is_whitespace() => {}
            c => current.push(c),
        }
    }
    if depth != 0 {
        return Err(RuleErrorKind::Header("unbalanced '['".into()));
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    Ok(tokens)
}

/// Splits `key: value; key; ...` on semicolons not escaped by a backslash and
/// not inside a quoted string.
/// Splits options at unescaped `;`, as Suricata does: quotes do not
/// protect a `;` (it must be escaped), so a quote inside a quoted value
/// (`pcre:"/["']/"`) is only a character. A value that opens a quote must
/// close it.
fn split_options(text: &str) -> Result<Vec<(String, Option<String>)>, RuleErrorKind> {
    let mut options = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            current.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                current.push(c);
                escaped = true;
            }
            ';' => {
                push_option(&mut options, &current)?;
                current.clear();
            }
            c => current.push(c),
        }
    }
    if !current.trim().is_empty() {
        if current.contains('"') && current.matches('"').count() % 2 == 1 {
            return Err(RuleErrorKind::Syntax("unbalanced quotes".into()));
        }
        return Err(RuleErrorKind::Syntax(format!(
            "option {:?} is not ended by ';'",
            current.trim()
        )));
    }
    Ok(options)
}

fn push_option(
    options: &mut Vec<(String, Option<String>)>,
    text: &str,
) -> Result<(), RuleErrorKind> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(());
    }
    match text.split_once(':') {
        Some((key, value)) => {
            let value = value.trim();
            let opened = value.strip_prefix('!').unwrap_or(value).trim_start();
            if opened.starts_with('"') && (opened.len() < 2 || !opened.ends_with('"')) {
                return Err(RuleErrorKind::Syntax("unbalanced quotes".into()));
            }
            options.push((key.trim().to_owned(), Some(value.to_owned())));
        }
        None => options.push((text.to_owned(), None)),
    }
    Ok(())
}

fn last_content<'a>(rule: &'a mut Rule, keyword: &str) -> Result<&'a mut Content, RuleErrorKind> {
    // The last content, past any bsize or isdataat after it.
    let last = rule
        .matches
        .iter_mut()
        .rev()
        .find(|m| !matches!(m, Match::Bsize(..) | Match::IsDataAt(..)));
    match last {
        Some(Match::Content(content)) => Ok(content),
        _ => Err(RuleErrorKind::ModifierWithoutContent(keyword.to_owned())),
    }
}

pub(super) fn parse_flow(value: &str) -> Result<FlowMatch, RuleErrorKind> {
    let mut flow = FlowMatch::default();
    for item in value.split(',').map(str::trim) {
        match item {
            "established" => flow.established = Some(true),
            "not_established" => flow.established = Some(false),
            "stateless" => flow.stateless = true,
            "to_server" | "from_client" => flow.to_server = Some(true),
            "to_client" | "from_server" => flow.to_server = Some(false),
            "only_stream" => flow.only_stream = true,
            "no_stream" => flow.no_stream = true,
            other => return Err(RuleErrorKind::Unsupported(format!("flow:{other}"))),
        }
    }
    Ok(flow)
}

/// A size condition: `N`, `<N`, `>N`, `<=N`, `>=N`, `!N` or `A<>B`.
pub(super) fn parse_dsize(arg: Arg<'_>) -> Result<Dsize, RuleErrorKind> {
    let value = arg.required()?;
    let bad = || arg.bad(value);
    let n = |s: &str| s.trim().parse::<u32>().map_err(|_| bad());
    let v = value.trim();
    let (op, a, b) = if let Some((lo, hi)) = v.split_once("<>") {
        (DsizeOp::Between, n(lo)?, n(hi)?)
    } else if let Some(rest) = v.strip_prefix(">=") {
        (DsizeOp::AtLeast, n(rest)?, 0)
    } else if let Some(rest) = v.strip_prefix("<=") {
        (DsizeOp::AtMost, n(rest)?, 0)
    } else if let Some(rest) = v.strip_prefix('>') {
        (DsizeOp::Greater, n(rest)?, 0)
    } else if let Some(rest) = v.strip_prefix('<') {
        (DsizeOp::Less, n(rest)?, 0)
    } else if let Some(rest) = v.strip_prefix('!') {
        (DsizeOp::Not, n(rest)?, 0)
    } else {
        (DsizeOp::Equal, n(v)?, 0)
    };
    if op == DsizeOp::Between && a >= b {
        return Err(bad());
    }
    Ok(Dsize { op, a, b })
}

/// `stream_size:SIDE,OP,N`: SIDE is `client`, `server`, `both` or
/// `either`; OP one of `<`, `<=`, `=`, `!=`, `>=`, `>`.
pub(super) fn parse_stream_size(arg: Arg<'_>) -> Result<StreamSize, RuleErrorKind> {
    let value = arg.required()?;
    let bad = || arg.bad(value);
    let mut parts = value.split(',').map(str::trim);
    let (Some(side), Some(op), Some(n), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let side = match side {
        "client" => StreamSide::Client,
        "server" => StreamSide::Server,
        "both" => StreamSide::Both,
        "either" => StreamSide::Either,
        _ => return Err(bad()),
    };
    let op = match op {
        "<" => DsizeOp::Less,
        "<=" => DsizeOp::AtMost,
        "=" => DsizeOp::Equal,
        "!=" => DsizeOp::Not,
        ">=" => DsizeOp::AtLeast,
        ">" => DsizeOp::Greater,
        _ => return Err(bad()),
    };
    let a = n.parse().map_err(|_| bad())?;
    Ok(StreamSize {
        side,
        size: Dsize { op, a, b: 0 },
    })
}

/// `[+*!]FLAGS[,IGNORED]`, the modifier before or after the flags.
pub(super) fn parse_tcp_flags(value: &str) -> Result<TcpFlagsMatch, RuleErrorKind> {
    let bad = || RuleErrorKind::BadValue {
        keyword: "flags".into(),
        value: value.to_owned(),
    };
    let bits = |text: &str| -> Result<(u8, Option<FlagsMode>), RuleErrorKind> {
        let (mut bits, mut mode) = (0u8, None);
        for c in text.trim().chars() {
            let bit = match c.to_ascii_uppercase() {
                'F' => tcp_flags::FIN,
                'S' => tcp_flags::SYN,
                'R' => tcp_flags::RST,
                'P' => tcp_flags::PSH,
                'A' => tcp_flags::ACK,
                'U' => tcp_flags::URG,
                'C' | '1' => tcp_flags::CWR,
                'E' | '2' => tcp_flags::ECE,
                '0' => 0,
                '+' | '*' | '!' if mode.is_none() => {
                    mode = Some(match c {
                        '+' => FlagsMode::All,
                        '*' => FlagsMode::Any,
                        _ => FlagsMode::Not,
                    });
                    continue;
                }
                _ => return Err(bad()),
            };
            bits |= bit;
        }
        Ok((bits, mode))
    };
    let (tested, ignored) = value.split_once(',').unwrap_or((value, ""));
    let (flags, mode) = bits(tested)?;
    let (ignored, ignored_mode) = bits(ignored)?;
    if tested.trim().is_empty() || ignored_mode.is_some() {
        return Err(bad());
    }
    Ok(TcpFlagsMatch {
        flags,
        ignored,
        mode: mode.unwrap_or(FlagsMode::Exactly),
    })
}

/// `[bytes N,] [offset N,] value OP X`, with `OP` one of `< <= > >= = !=`
/// or a range `A-B` (`!A-B` outside it).
pub(super) fn parse_entropy(value: &str) -> Result<Entropy, RuleErrorKind> {
    let bad = || RuleErrorKind::BadValue {
        keyword: "entropy".into(),
        value: value.to_owned(),
    };
    let millionths = |s: &str| -> Result<i64, RuleErrorKind> {
        let v: f64 = s.trim().parse().map_err(|_| bad())?;
        if !(0.0..=8.0).contains(&v) {
            return Err(bad());
        }
        Ok((v * 1e6).round() as i64)
    };
    let mut entropy = Entropy {
        bytes: None,
        offset: 0,
        op: DsizeOp::Equal,
        a: 0,
        b: 0,
    };
    let mut seen_value = false;
    for part in value.split(',').map(str::trim) {
        let (key, arg) = part.split_once(char::is_whitespace).ok_or_else(bad)?;
        let arg = arg.trim();
        match key {
            "bytes" => entropy.bytes = Some(arg.parse().map_err(|_| bad())?),
            "offset" => entropy.offset = arg.parse().map_err(|_| bad())?,
            "value" => {
                seen_value = true;
                let (op, rest) = [
                    ("<=", DsizeOp::AtMost),
                    (">=", DsizeOp::AtLeast),
                    ("!=", DsizeOp::Not),
                    ("<", DsizeOp::Less),
                    (">", DsizeOp::Greater),
                    ("=", DsizeOp::Equal),
                ]
                .into_iter()
                .find_map(|(sym, op)| arg.strip_prefix(sym).map(|rest| (op, rest)))
                .unwrap_or((DsizeOp::Equal, arg));
                let (negated, rest) = match rest.trim().strip_prefix('!') {
                    Some(rest) if op == DsizeOp::Equal => (true, rest),
                    _ => (false, rest.trim()),
                };
                match rest.split_once('-') {
                    Some((lo, hi)) if op == DsizeOp::Equal => {
                        entropy.op = if negated {
                            DsizeOp::Outside
                        } else {
                            DsizeOp::Between
                        };
                        entropy.a = millionths(lo)?;
                        entropy.b = millionths(hi)?;
                        if entropy.a >= entropy.b {
                            return Err(bad());
                        }
                    }
                    Some(_) => return Err(bad()),
                    None => {
                        entropy.op = if negated { DsizeOp::Not } else { op };
                        entropy.a = millionths(rest)?;
                    }
                }
            }
            _ => return Err(bad()),
        }
    }
    if !seen_value {
        return Err(bad());
    }
    Ok(entropy)
}

pub(super) fn parse_byte_jump(value: &str) -> Result<ByteJump, RuleErrorKind> {
    let bad = || RuleErrorKind::BadValue {
        keyword: "byte_jump".into(),
        value: value.to_owned(),
    };
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    let [bytes, offset, flags @ ..] = parts.as_slice() else {
        return Err(bad());
    };
    let mut jump = ByteJump {
        read: ByteRead {
            bytes: bytes.parse().map_err(|_| bad())?,
            offset: offset.parse().map_err(|_| bad())?,
            relative: false,
            little: false,
            base: None,
            bitmask: None,
        },
        multiplier: 1,
        post_offset: 0,
        align: false,
        from_beginning: false,
        from_end: false,
    };
    for flag in flags {
        if byte_read_flag(&mut jump.read, flag, "byte_jump")? {
            continue;
        }
        let (name, arg) = flag.split_once(char::is_whitespace).unwrap_or((flag, ""));
        let arg = arg.trim();
        match name {
            "align" => jump.align = true,
            "from_beginning" => jump.from_beginning = true,
            "from_end" => jump.from_end = true,
            "multiplier" => jump.multiplier = arg.parse().map_err(|_| bad())?,
            "post_offset" => jump.post_offset = arg.parse().map_err(|_| bad())?,
            _ => return Err(bad()),
        }
    }
    if !byte_read_fits(&jump.read) {
        return Err(bad());
    }
    Ok(jump)
}

/// Applies one of the flags `byte_test` and `byte_jump` share (`relative`,
/// `big`, `little`, `string`, `dec`, `hex`, `oct`, `bitmask M`, `dce`);
/// false when `flag` is not one of them.
fn byte_read_flag(read: &mut ByteRead, flag: &str, keyword: &str) -> Result<bool, RuleErrorKind> {
    match flag {
        "relative" => read.relative = true,
        "big" => read.little = false,
        "little" => read.little = true,
        "string" | "dec" => read.base = Some(10),
        "hex" => read.base = Some(16),
        "oct" => read.base = Some(8),
        "dce" => return Err(RuleErrorKind::Unsupported(format!("{keyword} dce"))),
        _ => match flag.strip_prefix("bitmask") {
            Some(mask) => {
                let mask = parse_number(mask.trim()).ok_or_else(|| RuleErrorKind::BadValue {
                    keyword: keyword.into(),
                    value: flag.to_owned(),
                })?;
                read.bitmask = Some(mask);
            }
            None => return Ok(false),
        },
    }
    Ok(true)
}

/// True when the number's size suits its form: 1 to 8 bytes binary, up to
/// 20 digits of text (0: all there are).
fn byte_read_fits(read: &ByteRead) -> bool {
    let most = if read.base.is_some() { 20 } else { 8 };
    read.bytes <= most && (read.bytes > 0 || read.base.is_some())
}

/// A decimal or `0x` hexadecimal number.
fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

pub(super) fn parse_byte_test(value: &str) -> Result<ByteTest, RuleErrorKind> {
    let bad = || RuleErrorKind::BadValue {
        keyword: "byte_test".into(),
        value: value.to_owned(),
    };
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    let [bytes, op, value_text, offset, flags @ ..] = parts.as_slice() else {
        return Err(bad());
    };
    let bytes: u8 = bytes.parse().map_err(|_| bad())?;
    let (negated, op) = match op.strip_prefix('!') {
        Some("=") | None if *op == "!=" => (true, "="),
        Some(rest) => (true, rest),
        None => (false, *op),
    };
    let op = match op {
        "<" => ByteOp::Less,
        ">" => ByteOp::Greater,
        "=" => ByteOp::Equal,
        "<=" => ByteOp::AtMost,
        ">=" => ByteOp::AtLeast,
        "&" => ByteOp::And,
        "^" => ByteOp::Xor,
        _ => return Err(bad()),
    };
    let mut test = ByteTest {
        read: ByteRead {
            bytes,
            offset: offset.parse().map_err(|_| bad())?,
            relative: false,
            little: false,
            base: None,
            bitmask: None,
        },
        op,
        negated,
        value: parse_number(value_text).ok_or_else(bad)?,
    };
    for flag in flags {
        if !byte_read_flag(&mut test.read, flag, "byte_test")? {
            return Err(bad());
        }
    }
    if !byte_read_fits(&test.read) {
        return Err(bad());
    }
    Ok(test)
}

pub(super) fn parse_flowbits(rule: &mut Rule, value: &str) -> Result<(), RuleErrorKind> {
    let (op, names) = match value.split_once(',') {
        Some((op, names)) => (op.trim(), Some(names.trim())),
        None => (value.trim(), None),
    };
    let op = match op {
        "noalert" => {
            rule.noalert = true;
            return Ok(());
        }
        "set" => FlowbitOp::Set,
        "isset" => FlowbitOp::IsSet,
        "isnotset" => FlowbitOp::IsNotSet,
        "unset" => FlowbitOp::Unset,
        "toggle" => FlowbitOp::Toggle,
        other => return Err(RuleErrorKind::Unsupported(format!("flowbits:{other}"))),
    };
    let names = names
        .filter(|n| !n.is_empty())
        .ok_or_else(|| RuleErrorKind::BadValue {
            keyword: "flowbits".into(),
            value: value.to_owned(),
        })?;
    let any = names.contains('|');
    let names = names
        .split(['|', '&'])
        .map(|n| n.trim().to_owned())
        .collect();
    rule.flowbits.push(Flowbit { op, names, any });
    Ok(())
}

pub(super) fn parse_threshold(arg: Arg<'_>) -> Result<Threshold, RuleErrorKind> {
    let value = arg.required()?;
    let bad = || arg.bad(value);
    let mut threshold = Threshold {
        kind: ThresholdKind::Limit,
        track: Track::BySrc,
        count: 0,
        seconds: 0,
    };
    let mut seen_count = false;
    for item in value.split(',') {
        let mut parts = item.split_whitespace();
        let (Some(key), Some(val)) = (parts.next(), parts.next()) else {
            return Err(bad());
        };
        match key {
            "type" => {
                threshold.kind = match val {
                    "limit" => ThresholdKind::Limit,
                    "threshold" => ThresholdKind::Threshold,
                    "both" => ThresholdKind::Both,
                    _ => return Err(bad()),
                }
            }
            "track" => {
                threshold.track = match val {
                    "by_src" => Track::BySrc,
                    "by_dst" => Track::ByDst,
                    "by_rule" => Track::ByRule,
                    "by_both" => Track::ByBoth,
                    "by_flow" => Track::ByFlow,
                    _ => return Err(bad()),
                }
            }
            "count" => {
                threshold.count = val.parse().map_err(|_| bad())?;
                seen_count = true;
            }
            "seconds" => threshold.seconds = val.parse().map_err(|_| bad())?,
            _ => return Err(bad()),
        }
    }
    if !seen_count {
        return Err(bad());
    }
    Ok(threshold)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rules::address::{AddressSpec, PortSpec};

    fn parse_ok(text: &str) -> Rule {
        parse(text, &Vars::default(), None).unwrap()
    }

    #[test]
    fn full_rule_parses_header_and_options_in_order() {
        let rule = parse_ok(
            r#"alert tcp $HOME_NET any -> $EXTERNAL_NET [80,8080:8090] (msg:"x\; y"; flow:established,to_server; content:"GET"; depth:3; content:!"|0d 0a|evil"; nocase; distance:0; within:20; pcre:"/a.b/si"; dsize:>10; flowbits:set,seen; threshold: type limit, track by_src, count 1, seconds 60; classtype:trojan-activity; reference:url,example.com; metadata: family webshell, created_at 2024_01_01; sid:1000001; rev:3;)"#,
        );
        assert_eq!(rule.action, Action::Alert);
        assert_eq!(rule.protocol, Protocol::Tcp);
        assert_eq!(rule.msg, "x; y");
        assert_eq!((rule.sid, rule.rev, rule.gid), (1_000_001, 3, 1));
        assert_eq!(rule.flow.established, Some(true));
        assert_eq!(rule.flow.to_server, Some(true));
        assert_eq!(rule.matches.len(), 3);
        let Match::Content(second) = &rule.matches[1] else {
            panic!()
        };
        assert!(second.negated && second.nocase);
        assert_eq!(second.bytes, b"\r\nevil");
        assert_eq!((second.distance, second.within), (Some(0), Some(20)));
        assert_eq!(
            rule.priority,
            Some(1),
            "trojan-activity, without a classification.config"
        );
        assert!(rule.dst_ports.matches(8085) && !rule.dst_ports.matches(81));
        assert_ne!(rule.src, AddressSpec::Any);
        assert_eq!(rule.src_ports, PortSpec::Any);
    }

    #[test]
    fn tcp_flags_compare_as_suricata_documents() {
        use tcp_flags::{ACK, CWR, ECE, FIN, PSH, SYN};
        let holds = |spec: &str, flags: u8| parse_tcp_flags(spec).unwrap().matches(flags);
        assert!(holds("S", SYN) && !holds("S", SYN | ACK));
        assert!(holds("S,12", SYN | CWR | ECE));
        assert!(holds("A+", ACK | PSH) && holds("+A", ACK) && !holds("A+", SYN));
        assert!(holds("*SF", FIN | ACK) && !holds("*SF", ACK));
        assert!(holds("!A", SYN) && !holds("!A", ACK | PSH));
        assert!(holds("0", 0) && !holds("0", ACK));
        assert!(holds("SUF+", SYN | 0x20 | FIN | PSH));
        for bad in ["", "X", "S,+", "++S"] {
            assert!(parse_tcp_flags(bad).is_err(), "{bad:?}");
        }
        let rule = parse_ok("alert icmp any any -> any any (itype:8; icode:>0; noalert; sid:1;)");
        assert_eq!(rule.itype.unwrap().a, 8);
        assert!(rule.icode.unwrap().matches(3) && !rule.icode.unwrap().matches(0));
        assert!(rule.noalert);
    }

    #[test]
    fn entropy_compares_bits_per_byte_as_written() {
        use super::super::shannon_entropy;
        assert_eq!(shannon_entropy(b"aabb"), 1.0);
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(shannon_entropy(&all), 8.0);
        let holds = |spec: &str, data: &[u8]| parse_entropy(spec).unwrap().matches(data);
        assert!(holds("value > 0.9", b"aabb"));
        assert!(holds("value = 1", b"aabb"));
        assert!(!holds("value != 1", b"aabb"));
        assert!(holds("value 0.5-1.5", b"aabb"));
        assert!(!holds("value !0.5-1.5", b"aabb"));
        assert!(holds("offset 2, value = 0", b"aabb"));
        assert!(holds("bytes 2, value = 0", b"aabb"));
        assert!(holds("value >= 7.99", &all));
        for bad in [
            "value > nine",
            "bytes 2",
            "value 5-4",
            "value > 9",
            "colour 1",
        ] {
            assert!(parse_entropy(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unsupported_keyword_is_named() {
        let err = parse(
            r#"alert tcp any any -> any any (msg:"m"; smb.share; content:"x"; sid:1;)"#,
            &Vars::default(),
            None,
        )
        .unwrap_err();
        assert_eq!(err, RuleErrorKind::Unsupported("smb.share".into()));
        let err = parse(
            r#"alert smb any any -> any any (msg:"m"; sid:1;)"#,
            &Vars::default(),
            None,
        )
        .unwrap_err();
        assert_eq!(err, RuleErrorKind::Unsupported("protocol smb".into()));
    }

    #[test]
    fn malformed_rules_are_errors() {
        let vars = Vars::default();
        let cases = [
            r#"alert tcp any any -> any any (msg:"unbalanced; sid:1;)"#,
            r#"alert tcp any any -> any any (content:"|4G|"; sid:1;)"#,
            r#"alert tcp $NOPE any -> any any (sid:1;)"#,
            r#"alert tcp any any -> any any (msg:"no sid";)"#,
            r#"alert tcp any any any any (sid:1;)"#,
            r#"alert tcp any any -> any any (nocase; sid:1;)"#,
            r#"alert tcp any any -> any any (sid:1; dsize:9<>3;)"#,
            r#"alert tcp any any -> any any sid:1;"#,
        ];
        for case in cases {
            let err = parse(case, &vars, None).unwrap_err();
            assert!(
                !matches!(err, RuleErrorKind::Unsupported(_)),
                "{case}: {err:?}"
            );
        }
    }

    #[test]
    fn classification_gives_the_default_priority() {
        let classes = parse_classifications(
            "# c\nconfig classification: trojan-activity,A Network Trojan was detected,1\n",
        );
        let text = r#"alert tcp any any -> any any (classtype:trojan-activity; sid:5;)"#;
        let rule = parse(text, &Vars::default(), Some(&classes)).unwrap();
        assert_eq!(rule.priority, Some(1));
        let unknown = r#"alert tcp any any -> any any (classtype:nope; sid:5;)"#;
        assert!(parse(unknown, &Vars::default(), Some(&classes)).is_err());
    }

    #[test]
    fn sid_is_found_even_when_the_rule_fails() {
        let parsed = parse_rule(
            r#"alert tcp any any -> any any (msg:"x"; smb.share; sid: 42; rev:1;)"#,
            &Vars::default(),
            None,
        );
        assert_eq!(parsed.sid, Some(42));
        assert!(parsed.result.is_err());
    }
}
