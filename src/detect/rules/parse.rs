//! One rule's text into a [`Rule`]: the header, then the options in order.

use crate::decode::tcp_flags;
use std::collections::HashMap;

use super::address::Vars;
use super::buffer::{self, Buffer, HttpBuffer, Transform, Transforms};
use super::dataset;
use super::pattern::{parse_content, parse_pcre, Content};
use super::{
    Action, Base64Decode, ByteJump, ByteOp, ByteRead, ByteTest, Dsize, DsizeOp, Entropy, FlagsMode,
    FlowMatch, Flowbit, FlowbitOp, Inspected, IsDataAt, Match, Protocol, Rule, RuleErrorKind,
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

/// Option keywords the subset takes.
const SUPPORTED_KEYWORDS: &[&str] = &[
    "msg",
    "sid",
    "rev",
    "gid",
    "classtype",
    "priority",
    "reference",
    "metadata",
    "content",
    "nocase",
    "rawbytes",
    "fast_pattern",
    "startswith",
    "endswith",
    "depth",
    "offset",
    "distance",
    "within",
    "pcre",
    "flow",
    "dsize",
    "flowbits",
    "threshold",
    "detection_filter",
    "uricontent",
    "urilen",
    "bsize",
    "isdataat",
    "byte_test",
    "byte_jump",
    "target",
    "dataset",
    "datarep",
    "entropy",
    "itype",
    "icode",
    "flags",
    "noalert",
    "base64_decode",
    "base64_data",
];

/// True for a keyword of the subset (sticky buffers and modifiers included).
fn is_supported(keyword: &str) -> bool {
    SUPPORTED_KEYWORDS.contains(&keyword)
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
        apply_option(&mut rule, &keyword, value.as_deref(), &sticky)?;
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

/// Strips one pair of surrounding quotes.
fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

fn required<'a>(keyword: &str, value: Option<&'a str>) -> Result<&'a str, RuleErrorKind> {
    value.ok_or_else(|| RuleErrorKind::BadValue {
        keyword: keyword.to_owned(),
        value: String::new(),
    })
}

fn number<T: std::str::FromStr>(keyword: &str, value: Option<&str>) -> Result<T, RuleErrorKind> {
    let value = required(keyword, value)?;
    value.trim().parse().map_err(|_| RuleErrorKind::BadValue {
        keyword: keyword.to_owned(),
        value: value.to_owned(),
    })
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

fn apply_option(
    rule: &mut Rule,
    keyword: &str,
    value: Option<&str>,
    sticky: &Inspected,
) -> Result<(), RuleErrorKind> {
    match keyword {
        "msg" => rule.msg = unquote(required(keyword, value)?).replace("\\;", ";"),
        "sid" => rule.sid = number(keyword, value)?,
        "rev" => rule.rev = number(keyword, value)?,
        "gid" => rule.gid = number(keyword, value)?,
        "classtype" => rule.classtype = Some(required(keyword, value)?.to_owned()),
        "priority" => rule.priority = Some(number(keyword, value)?),
        "reference" => rule.references.push(required(keyword, value)?.to_owned()),
        "metadata" => {
            for entry in required(keyword, value)?.split(',') {
                let entry = entry.trim();
                if let Some((key, val)) = entry.split_once(char::is_whitespace) {
                    rule.metadata
                        .push((key.trim().to_owned(), val.trim().to_owned()));
                } else if !entry.is_empty() {
                    rule.metadata.push((entry.to_owned(), String::new()));
                }
            }
        }
        "content" | "uricontent" => {
            let inspected = if keyword == "uricontent" {
                Inspected {
                    buffer: Buffer::Http(HttpBuffer::Uri),
                    transforms: Transforms::default(),
                }
            } else {
                sticky.clone()
            };
            let raw = required(keyword, value)?;
            let (negated, raw) = match raw.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, raw),
            };
            if !(raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"')) {
                return Err(RuleErrorKind::Syntax("content must be quoted".into()));
            }
            rule.matches.push(Match::Content(Content {
                bytes: parse_content(&raw[1..raw.len() - 1])?,
                negated,
                inspected,
                ..Content::default()
            }));
        }
        "nocase" => last_content(rule, keyword)?.nocase = true,
        "rawbytes" => {
            last_content(rule, keyword)?;
        }
        "fast_pattern" => last_content(rule, keyword)?.fast_pattern = true,
        "startswith" => last_content(rule, keyword)?.startswith = true,
        "endswith" => last_content(rule, keyword)?.endswith = true,
        "depth" => {
            let n = number(keyword, value)?;
            last_content(rule, keyword)?.depth = Some(n);
        }
        "offset" => {
            let n = number(keyword, value)?;
            last_content(rule, keyword)?.offset = Some(n);
        }
        "distance" => {
            let n = number(keyword, value)?;
            last_content(rule, keyword)?.distance = Some(n);
        }
        "within" => {
            let n = number(keyword, value)?;
            last_content(rule, keyword)?.within = Some(n);
        }
        "pcre" => {
            let raw = required(keyword, value)?;
            let (negated, raw) = match raw.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, raw),
            };
            let mut pcre = parse_pcre(unquote(raw), negated)?;
            if pcre.inspected.buffer == Buffer::Payload {
                pcre.inspected = sticky.clone();
            }
            rule.matches.push(Match::Pcre(pcre));
        }
        "flow" => rule.flow = parse_flow(required(keyword, value)?)?,
        "dsize" => rule.dsize = Some(parse_dsize(keyword, required(keyword, value)?)?),
        // As `flowbits:noalert`: the rule only sets state.
        "noalert" => rule.noalert = true,
        "itype" => rule.itype = Some(parse_dsize(keyword, required(keyword, value)?)?),
        "icode" => rule.icode = Some(parse_dsize(keyword, required(keyword, value)?)?),
        "flags" => rule.tcp_flags = Some(parse_tcp_flags(required(keyword, value)?)?),
        "bsize" => {
            let size = parse_dsize(keyword, required(keyword, value)?)?;
            rule.matches.push(Match::Bsize(size, sticky.clone()));
        }
        "isdataat" => {
            let value = required(keyword, value)?;
            let (offset, flags) = value.split_once(',').unwrap_or((value, ""));
            let (negated, offset) = match offset.trim().strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, offset),
            };
            let offset = offset.trim().parse().map_err(|_| RuleErrorKind::BadValue {
                keyword: keyword.into(),
                value: value.into(),
            })?;
            let relative = flags.split(',').any(|f| f.trim() == "relative");
            let at = IsDataAt {
                offset,
                relative,
                negated,
            };
            rule.matches.push(Match::IsDataAt(at, sticky.clone()));
        }
        "byte_jump" => {
            let jump = parse_byte_jump(required(keyword, value)?)?;
            rule.matches.push(Match::ByteJump(jump, sticky.clone()));
        }
        "byte_test" => {
            let test = parse_byte_test(required(keyword, value)?)?;
            rule.matches.push(Match::ByteTest(test, sticky.clone()));
        }
        "base64_decode" => {
            let mut decode = Base64Decode::default();
            for option in value.unwrap_or_default().split(',').map(str::trim) {
                let bad = || RuleErrorKind::BadValue {
                    keyword: keyword.into(),
                    value: option.into(),
                };
                let number = |arg: &str| arg.trim().parse::<u32>().map_err(|_| bad());
                match option.split_once(char::is_whitespace) {
                    _ if option.is_empty() => {}
                    _ if option == "relative" => decode.relative = true,
                    Some(("bytes", n)) => decode.bytes = Some(number(n)?),
                    Some(("offset", n)) => decode.offset = number(n)?,
                    _ => return Err(bad()),
                }
            }
            rule.matches
                .push(Match::Base64Decode(decode, sticky.clone()));
        }
        "base64_data" => {
            if !rule
                .matches
                .iter()
                .any(|m| matches!(m, Match::Base64Decode(_, i) if i == sticky))
            {
                return Err(RuleErrorKind::Syntax(
                    "base64_data without a base64_decode before it".into(),
                ));
            }
            rule.matches.push(Match::Base64Data(sticky.clone()));
        }
        "entropy" => {
            let entropy = parse_entropy(required(keyword, value)?)?;
            rule.matches.push(Match::Entropy(entropy, sticky.clone()));
        }
        "dataset" | "datarep" => {
            let value = required(keyword, value)?;
            let lookup = if keyword == "dataset" {
                dataset::parse_dataset(value)?
            } else {
                dataset::parse_datarep(value)?
            };
            if sticky.buffer == Buffer::Payload {
                return Err(RuleErrorKind::Unsupported(format!(
                    "{keyword} on the payload"
                )));
            }
            rule.matches.push(Match::Dataset(lookup, sticky.clone()));
        }
        // Which end of an alert is the target: output only.
        "target" => {}
        "urilen" => {
            let value = required(keyword, value)?;
            let (size, form) = value.split_once(',').unwrap_or((value, "norm"));
            let raw = match form.trim() {
                "raw" => true,
                "norm" => false,
                other => {
                    return Err(RuleErrorKind::BadValue {
                        keyword: keyword.into(),
                        value: other.into(),
                    })
                }
            };
            rule.urilen = Some((parse_dsize(keyword, size.trim())?, raw));
        }
        "flowbits" => parse_flowbits(rule, required(keyword, value)?)?,
        "threshold" => rule.threshold = Some(parse_threshold(keyword, required(keyword, value)?)?),
        "detection_filter" => {
            let mut filter = parse_threshold(keyword, required(keyword, value)?)?;
            filter.kind = ThresholdKind::DetectionFilter;
            rule.detection_filter = Some(filter);
        }
        other => return Err(RuleErrorKind::Unsupported(other.to_owned())),
    }
    Ok(())
}

fn parse_flow(value: &str) -> Result<FlowMatch, RuleErrorKind> {
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

fn parse_dsize(keyword: &str, value: &str) -> Result<Dsize, RuleErrorKind> {
    let bad = || RuleErrorKind::BadValue {
        keyword: keyword.into(),
        value: value.to_owned(),
    };
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

/// `[+*!]FLAGS[,IGNORED]`, the modifier before or after the flags.
fn parse_tcp_flags(value: &str) -> Result<TcpFlagsMatch, RuleErrorKind> {
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
fn parse_entropy(value: &str) -> Result<Entropy, RuleErrorKind> {
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

fn parse_byte_jump(value: &str) -> Result<ByteJump, RuleErrorKind> {
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

fn parse_byte_test(value: &str) -> Result<ByteTest, RuleErrorKind> {
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

fn parse_flowbits(rule: &mut Rule, value: &str) -> Result<(), RuleErrorKind> {
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

fn parse_threshold(keyword: &str, value: &str) -> Result<Threshold, RuleErrorKind> {
    let bad = || RuleErrorKind::BadValue {
        keyword: keyword.to_owned(),
        value: value.to_owned(),
    };
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
