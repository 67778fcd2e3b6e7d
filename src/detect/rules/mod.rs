//! The rule language: a documented subset of Suricata 8's, parsed into
//! [`Rule`]s.
//!
//! [`RuleSet::load`] reads rule files (or folders of `*.rules`), one rule per
//! line with `\` continuing a line and `#` starting a comment. A rule that
//! uses a keyword outside the subset is skipped and counted by keyword; a
//! malformed rule (unbalanced quotes, bad hex, an unknown variable, a
//! duplicate sid ...) is an error naming file, line and sid. Neither stops the
//! other rules from loading. `docs/rules.md` lists the subset.
//!
//! This module owns syntax and meaning only; compiling rules into matchers is
//! the detection engine's job.

pub mod address;
pub mod buffer;
pub mod dataset;
pub mod keywords;
pub mod parse;
pub mod pattern;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

pub use address::{AddressSpec, NetSet, PortSpec, Vars};
pub use buffer::{Buffer, DnsBuffer, HttpBuffer, Side, TlsBuffer, Transform, Transforms};
pub use dataset::{DatasetKind, DatasetMatch, DatasetOp, RepOp};
pub use parse::{parse_classifications, Classifications};
pub use pattern::{Content, Pcre};

/// Name of the classtype file looked for beside rule files.
pub const CLASSIFICATION_FILE: &str = "classification.config";

/// What a rule does when it matches (mirador is passive: all but `pass` alert).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    /// `alert`.
    #[default]
    Alert,
    /// `pass`: matching traffic is exempt from other rules.
    Pass,
    /// `drop` (an alert on a passive sensor).
    Drop,
    /// `reject` and its variants (an alert on a passive sensor).
    Reject,
}

/// The protocol a rule's header names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// `tcp`: packets and the reassembled stream.
    #[default]
    Tcp,
    /// `udp`.
    Udp,
    /// `icmp` (v4 and v6).
    Icmp,
    /// `ip`: any IP packet.
    Ip,
    /// `tcp-pkt`: TCP packet payloads only.
    TcpPkt,
    /// `tcp-stream`: the reassembled TCP stream only.
    TcpStream,
    /// `http`: HTTP transactions (their buffers), or the stream of HTTP
    /// flows for matches outside them.
    Http,
    /// `dns`: DNS queries (their buffers), or DNS packets (UDP or TCP).
    Dns,
    /// `tls`: TLS hellos (their buffers), or the stream of TLS flows.
    Tls,
}

/// One payload match, in rule order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// `content` and its modifiers.
    Content(Content),
    /// `pcre`.
    Pcre(Pcre),
    /// `bsize`: a condition on the size of the buffer.
    Bsize(Dsize, Inspected),
    /// `isdataat`.
    IsDataAt(IsDataAt, Inspected),
    /// `byte_test`.
    ByteTest(ByteTest, Inspected),
    /// `byte_jump`.
    ByteJump(ByteJump, Inspected),
    /// `dataset` or `datarep`: checked once the rule's other matches hold.
    Dataset(DatasetMatch, Inspected),
    /// `entropy`: a condition on the Shannon entropy of the buffer.
    Entropy(Entropy, Inspected),
    /// `base64_decode`: base64 text of the buffer decoded, for the matches
    /// after a `base64_data`.
    Base64Decode(Base64Decode, Inspected),
    /// `base64_data`: the matches after it read what `base64_decode`
    /// decoded.
    Base64Data(Inspected),
}

/// `base64_decode:[bytes N][, offset N][, relative]`: decodes base64 text
/// from `offset` (after the previous match when relative), at most `bytes`
/// of it, up to the first byte that is not base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Base64Decode {
    /// Encoded bytes read at most.
    pub bytes: Option<u32>,
    /// Bytes skipped first.
    pub offset: u32,
    /// From the end of the previous match.
    pub relative: bool,
}

/// `entropy: [bytes N,] [offset N,] value OP X`: the Shannon entropy (bits
/// per byte, 0 to 8) of `bytes` bytes from `offset` (all by default)
/// compared with `X`. Values are kept in millionths, so rules compare as
/// written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entropy {
    /// Bytes measured (none: to the end).
    pub bytes: Option<u32>,
    /// Where they start.
    pub offset: u32,
    /// The comparison, on millionths of a bit.
    pub op: DsizeOp,
    /// Its operand, millionths.
    pub a: i64,
    /// The upper bound of a range, millionths.
    pub b: i64,
}

impl Entropy {
    /// True when the entropy of `buffer` passes.
    pub fn matches(&self, buffer: &[u8]) -> bool {
        let from = (self.offset as usize).min(buffer.len());
        let to = self
            .bytes
            .map_or(buffer.len(), |n| (from + n as usize).min(buffer.len()));
        let value = (shannon_entropy(&buffer[from..to]) * 1e6).round() as i64;
        self.op.holds(value, self.a, self.b)
    }
}

/// Shannon entropy of `bytes`, bits per byte.
pub fn shannon_entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    entropy_of_counts(&counts, bytes.len())
}

/// Shannon entropy, bits per byte, of `total` bytes whose values were
/// counted in `counts`.
pub fn entropy_of_counts(counts: &[u32; 256], total: usize) -> f64 {
    let n = total as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// How a number is stored in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRead {
    /// Bytes read (1-8; for text, up to 20, 0 for all digits there).
    pub bytes: u8,
    /// Where it starts (after the previous match when relative).
    pub offset: i32,
    /// From the end of the previous match.
    pub relative: bool,
    /// Binary numbers are little-endian.
    pub little: bool,
    /// Text numbers in this base (none: binary).
    pub base: Option<u32>,
    /// Bits kept (and shifted down).
    pub bitmask: Option<u64>,
}

/// `byte_jump:N,OFFSET[,relative][,multiplier M][,post_offset P][,align][,from_beginning|from_end]...`:
/// moves the match position by a number read from the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteJump {
    /// The number.
    pub read: ByteRead,
    /// It is multiplied by this.
    pub multiplier: u64,
    /// Added after the jump.
    pub post_offset: i64,
    /// The position is rounded up to a multiple of 4.
    pub align: bool,
    /// Jump from the buffer's start (else from the number's end).
    pub from_beginning: bool,
    /// Jump back from the buffer's end.
    pub from_end: bool,
}

/// The comparison of a `byte_test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOp {
    /// `<`.
    Less,
    /// `>`.
    Greater,
    /// `=`.
    Equal,
    /// `<=`.
    AtMost,
    /// `>=`.
    AtLeast,
    /// `&`: some bit in common.
    And,
    /// `^`: some bit different.
    Xor,
}

/// `byte_test:N,[!]OP,VALUE,OFFSET[,relative][,big|little][,string,hex|dec|oct][,bitmask M]`:
/// a number read from the buffer compared with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteTest {
    /// The number.
    pub read: ByteRead,
    /// The comparison.
    pub op: ByteOp,
    /// `!`: the comparison must fail.
    pub negated: bool,
    /// What the number is compared with.
    pub value: u64,
}

/// Which buffer a match reads, and how it is transformed first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Inspected {
    /// The buffer.
    pub buffer: Buffer,
    /// Its transforms.
    pub transforms: Transforms,
}

/// `isdataat:[!]N[,relative]`: data at offset N (of the buffer, or after
/// the previous match).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsDataAt {
    /// The offset.
    pub offset: u32,
    /// From the end of the previous match.
    pub relative: bool,
    /// `!`: there must be no data there.
    pub negated: bool,
}

impl Match {
    /// The buffer the match inspects, and its transforms.
    pub fn inspected(&self) -> &Inspected {
        match self {
            Match::Content(c) => &c.inspected,
            Match::Pcre(p) => &p.inspected,
            Match::Bsize(_, inspected)
            | Match::IsDataAt(_, inspected)
            | Match::ByteTest(_, inspected)
            | Match::ByteJump(_, inspected)
            | Match::Dataset(_, inspected)
            | Match::Entropy(_, inspected)
            | Match::Base64Decode(_, inspected)
            | Match::Base64Data(inspected) => inspected,
        }
    }

    /// The buffer the match inspects.
    pub fn buffer(&self) -> Buffer {
        self.inspected().buffer
    }
}

/// `flags:[+*!]FLAGS[,IGNORED]`: a condition on a TCP segment's flags
/// (`F S R P A U C E`, `0` for none; `1` and `2` are old names of `C` and
/// `E`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpFlagsMatch {
    /// The flags tested.
    pub flags: u8,
    /// Flags left out of the comparison.
    pub ignored: u8,
    /// How they are compared.
    pub mode: FlagsMode,
}

/// How `flags` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagsMode {
    /// Exactly these (besides the ignored ones).
    Exactly,
    /// `+`: these and maybe others.
    All,
    /// `*`: any of these.
    Any,
    /// `!`: not all of these.
    Not,
}

impl TcpFlagsMatch {
    /// True when a segment with `flags` passes.
    pub fn matches(&self, flags: u8) -> bool {
        let seen = flags & !self.ignored;
        match self.mode {
            FlagsMode::Exactly => seen == self.flags,
            FlagsMode::All => seen & self.flags == self.flags,
            FlagsMode::Any => seen & self.flags != 0,
            FlagsMode::Not => seen & self.flags != self.flags,
        }
    }
}

/// `flow:` conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowMatch {
    /// `established` (true) or `not_established` (false).
    pub established: Option<bool>,
    /// `stateless`.
    pub stateless: bool,
    /// `to_server` (true) or `to_client` (false).
    pub to_server: Option<bool>,
    /// `only_stream`: reassembled data only.
    pub only_stream: bool,
    /// `no_stream`: packet payloads only.
    pub no_stream: bool,
}

/// The comparison of a `dsize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsizeOp {
    /// `N`.
    Equal,
    /// `!N`.
    Not,
    /// `<N`.
    Less,
    /// `<=N`.
    AtMost,
    /// `>N`.
    Greater,
    /// `>=N`.
    AtLeast,
    /// `A<>B`: strictly between.
    Between,
    /// Not strictly between (`entropy`'s `!A-B`).
    Outside,
}

/// `dsize`: a condition on the packet payload size, bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dsize {
    /// The comparison.
    pub op: DsizeOp,
    /// Its (first) operand, bytes.
    pub a: u32,
    /// The upper bound of `Between`, bytes.
    pub b: u32,
}

impl Dsize {
    /// True when a payload of `len` bytes satisfies the condition.
    pub fn matches(&self, len: u32) -> bool {
        self.op.holds(len, self.a, self.b)
    }

    /// True when the condition is about payload that is there (`>N`,
    /// `!N`, `A<>B`, `N` for N > 0: it fails on an empty payload, or
    /// singles one size out), as opposed to a bound on small packets
    /// (`<N`): Suricata skips the former on encrypted flows.
    pub fn requires_payload(&self) -> bool {
        !self.matches(0) || self.op == DsizeOp::Not
    }
}

/// Which TCP stream `stream_size` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamSide {
    /// The initiator's.
    Client,
    /// The responder's.
    Server,
    /// Both must satisfy the condition.
    Both,
    /// One of them must.
    Either,
}

/// `stream_size`: a condition on the sequence space each side of a TCP
/// connection has used, as Suricata measures it (the next sequence number
/// expected less the initial one: data bytes, plus one for the SYN and
/// one for a FIN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSize {
    /// The side or sides measured.
    pub side: StreamSide,
    /// The comparison.
    pub size: Dsize,
}

impl StreamSize {
    /// True when the sizes (client, server) satisfy the condition.
    pub fn matches(&self, [client, server]: [u64; 2]) -> bool {
        // Sequence numbers are 32 bits: the difference wraps as Suricata's does.
        let holds = |size: u64| self.size.matches(size as u32);
        match self.side {
            StreamSide::Client => holds(client),
            StreamSide::Server => holds(server),
            StreamSide::Both => holds(client) && holds(server),
            StreamSide::Either => holds(client) || holds(server),
        }
    }
}

impl DsizeOp {
    /// True when `value` compares with `a` (and `b`, for ranges) as the
    /// operation says.
    pub fn holds<T: PartialOrd>(self, value: T, a: T, b: T) -> bool {
        let between = value > a && value < b;
        match self {
            Self::Equal => value == a,
            Self::Not => value != a,
            Self::Less => value < a,
            Self::AtMost => value <= a,
            Self::Greater => value > a,
            Self::AtLeast => value >= a,
            Self::Between => between,
            Self::Outside => !between,
        }
    }
}

/// A `flowbits` operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowbitOp {
    /// `set`.
    Set,
    /// `isset`.
    IsSet,
    /// `isnotset`.
    IsNotSet,
    /// `unset`.
    Unset,
    /// `toggle`.
    Toggle,
}

/// `flowbits:op,name` (names joined by `|` for any, `&` for all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flowbit {
    /// The operation.
    pub op: FlowbitOp,
    /// The bit names.
    pub names: Vec<String>,
    /// True when the names were joined by `|` (any of them).
    pub any: bool,
}

/// Which of `threshold` and `detection_filter` a [`Threshold`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThresholdKind {
    /// Alert at most `count` times per `seconds`.
    Limit,
    /// Alert every `count`-th match per `seconds`.
    Threshold,
    /// Alert once per `seconds` after `count` matches.
    Both,
    /// `detection_filter`: alert on every match after the first `count`.
    DetectionFilter,
}

/// What a threshold counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    /// Source address.
    BySrc,
    /// Destination address.
    ByDst,
    /// The rule as a whole.
    ByRule,
    /// Source and destination pair.
    ByBoth,
    /// The flow.
    ByFlow,
}

/// `threshold` or `detection_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    /// Kind.
    pub kind: ThresholdKind,
    /// What it counts by.
    pub track: Track,
    /// Matches.
    pub count: u32,
    /// Window, seconds.
    pub seconds: u32,
}

/// Where a rule was read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// The file.
    pub file: PathBuf,
    /// Its first line, 1-based.
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `alert`, `pass` ...
    pub action: Action,
    /// Header protocol.
    pub protocol: Protocol,
    /// Source addresses.
    pub src: AddressSpec,
    /// Source ports.
    pub src_ports: PortSpec,
    /// `<>`: the header matches either way round.
    pub bidirectional: bool,
    /// Destination addresses.
    pub dst: AddressSpec,
    /// Destination ports.
    pub dst_ports: PortSpec,
    /// Generator id (1 unless given).
    pub gid: u32,
    /// Signature id.
    pub sid: u32,
    /// Revision.
    pub rev: u32,
    /// `msg`.
    pub msg: String,
    /// `classtype`.
    pub classtype: Option<String>,
    /// `priority`, or the classtype's, or 3.
    pub priority: Option<u8>,
    /// `reference` values, as written.
    pub references: Vec<String>,
    /// `metadata` entries as (key, value).
    pub metadata: Vec<(String, String)>,
    /// Payload matches in order.
    pub matches: Vec<Match>,
    /// `flow` conditions.
    pub flow: FlowMatch,
    /// `dsize`.
    pub dsize: Option<Dsize>,
    /// `itype`: the ICMP type.
    pub itype: Option<Dsize>,
    /// `icode`: the ICMP code.
    pub icode: Option<Dsize>,
    /// `flags`: the TCP flags.
    pub tcp_flags: Option<TcpFlagsMatch>,
    /// `stream_size`: how far the TCP streams have come.
    pub stream_size: Option<StreamSize>,
    /// `urilen`: a condition on the length of `http.uri` (or, when the
    /// flag is set, `http.uri.raw`).
    pub urilen: Option<(Dsize, bool)>,
    /// `flowbits` operations in order.
    pub flowbits: Vec<Flowbit>,
    /// `flowbits:noalert`.
    pub noalert: bool,
    /// `threshold`.
    pub threshold: Option<Threshold>,
    /// `detection_filter`.
    pub detection_filter: Option<Threshold>,
    /// Where it was read.
    pub location: Location,
}

impl Default for Rule {
    fn default() -> Self {
        Self {
            action: Action::Alert,
            protocol: Protocol::Tcp,
            src: AddressSpec::Any,
            src_ports: PortSpec::Any,
            bidirectional: false,
            dst: AddressSpec::Any,
            dst_ports: PortSpec::Any,
            gid: 1,
            sid: 0,
            rev: 0,
            msg: String::new(),
            classtype: None,
            priority: None,
            references: Vec::new(),
            metadata: Vec::new(),
            matches: Vec::new(),
            flow: FlowMatch::default(),
            dsize: None,
            itype: None,
            icode: None,
            tcp_flags: None,
            stream_size: None,
            urilen: None,
            flowbits: Vec::new(),
            noalert: false,
            threshold: None,
            detection_filter: None,
            location: Location::default(),
        }
    }
}

impl Rule {
    /// Makes the rule's dataset `load` files relative to `dir`, the rule
    /// file's folder.
    fn resolve_dataset_files(&mut self, dir: &Path) {
        for m in &mut self.matches {
            if let Match::Dataset(lookup, _) = m {
                if let Some(load) = lookup.load.as_mut().filter(|p| p.is_relative()) {
                    *load = dir.join(&*load);
                }
            }
        }
    }

    /// The rule's dataset lookups, with the buffer each reads.
    pub fn datasets(&self) -> impl Iterator<Item = (&DatasetMatch, &Inspected)> {
        self.matches.iter().filter_map(|m| match m {
            Match::Dataset(lookup, inspected) => Some((lookup, inspected)),
            _ => None,
        })
    }

    /// True when only the protocol, addresses and ports decide the rule
    /// (Suricata's IP-only signatures): `ip`, `tcp`, `udp` or `icmp`, and no
    /// payload, flow, packet or flowbit condition. Such a rule is checked
    /// on the first packet of each flow direction.
    pub fn is_ip_only(&self) -> bool {
        matches!(
            self.protocol,
            Protocol::Ip | Protocol::Tcp | Protocol::Udp | Protocol::Icmp
        ) && self.matches.is_empty()
            && self.flow == FlowMatch::default()
            && self.dsize.is_none()
            && self.itype.is_none()
            && self.icode.is_none()
            && self.tcp_flags.is_none()
            && self.stream_size.is_none()
            && self.urilen.is_none()
            && self.flowbits.is_empty()
    }

    /// True when the rule inspects what an application parser saw (HTTP
    /// transactions, DNS queries, TLS hellos): it names one of their
    /// buffers, or `urilen`.
    pub fn is_app(&self) -> bool {
        self.urilen.is_some() || self.matches.iter().any(|m| m.buffer() != Buffer::Payload)
    }

    /// The threat family from `metadata: family X`, else `other`.
    pub fn family(&self) -> &str {
        self.metadata
            .iter()
            .find(|(key, _)| key == "family")
            .map_or("other", |(_, value)| value.as_str())
    }
}

/// Why a rule did not load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleErrorKind {
    /// A keyword (or protocol, flag) outside the supported subset.
    #[error("unsupported keyword '{0}'")]
    Unsupported(String),
    /// Malformed option syntax.
    #[error("syntax: {0}")]
    Syntax(String),
    /// Malformed header.
    #[error("header: {0}")]
    Header(String),
    /// Bad hex inside `|...|`.
    #[error("bad hex in content {0:?}")]
    BadHex(String),
    /// `$NAME` is not an address or port group.
    #[error("unknown variable ${0}")]
    UnknownVariable(String),
    /// A keyword's value does not parse.
    #[error("bad value {value:?} for '{keyword}'")]
    BadValue {
        /// The keyword.
        keyword: String,
        /// Its value.
        value: String,
    },
    /// A content modifier with no content before it.
    #[error("'{0}' needs a content before it")]
    ModifierWithoutContent(String),
    /// No `sid`.
    #[error("no sid")]
    MissingSid,
    /// Another rule has the same gid and sid.
    #[error("duplicate sid (first at {0})")]
    DuplicateSid(Location),
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Read(String),
}

/// A rule that did not load, with where it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {}{kind}", sid.map(|s| format!("sid {s}: ")).unwrap_or_default())]
pub struct RuleError {
    /// File and line.
    pub location: Location,
    /// Its sid, when one was found.
    pub sid: Option<u32>,
    /// Why.
    pub kind: RuleErrorKind,
    /// For a skipped rule: every unsupported keyword it uses.
    pub unsupported: Vec<String>,
}

impl RuleError {
    /// True when the rule is well formed but uses something outside the subset.
    pub fn is_unsupported(&self) -> bool {
        matches!(self.kind, RuleErrorKind::Unsupported(_))
    }
}

/// The rules that loaded, and what happened to the others.
#[derive(Debug, Default)]
pub struct RuleSet {
    /// Loaded rules in file order.
    pub rules: Vec<Rule>,
    /// Rules skipped for an unsupported keyword, and malformed ones.
    pub rejected: Vec<RuleError>,
    /// Files read.
    pub files: Vec<PathBuf>,
}

impl RuleSet {
    /// Loads every rule file in `paths` (folders: their `*.rules`, sorted),
    /// with `vars` for `$NAME`s and, when a folder or a file's folder holds
    /// `classification.config`, its classtypes.
    pub fn load(paths: &[PathBuf], vars: &Vars) -> Self {
        let mut set = Self::default();
        let mut seen: HashMap<(u32, u32), Location> = HashMap::new();
        for file in expand(paths, &mut set.rejected) {
            let classes = file
                .parent()
                .map(|dir| dir.join(CLASSIFICATION_FILE))
                .and_then(|path| std::fs::read_to_string(path).ok())
                .map(|text| parse_classifications(&text));
            match std::fs::read_to_string(&file) {
                Ok(text) => set.add_text(&file, &text, vars, classes.as_ref(), &mut seen),
                Err(e) => set.rejected.push(RuleError {
                    location: Location {
                        file: file.clone(),
                        line: 0,
                    },
                    sid: None,
                    kind: RuleErrorKind::Read(e.to_string()),
                    unsupported: Vec::new(),
                }),
            }
            set.files.push(file);
        }
        set
    }

    fn add_text(
        &mut self,
        file: &Path,
        text: &str,
        vars: &Vars,
        classes: Option<&Classifications>,
        seen: &mut HashMap<(u32, u32), Location>,
    ) {
        for (line, rule_text) in logical_lines(text) {
            let location = Location {
                file: file.to_owned(),
                line,
            };
            let parsed = parse::parse_rule(&rule_text, vars, classes);
            match parsed.result {
                Ok(mut rule) => {
                    rule.location = location.clone();
                    rule.resolve_dataset_files(file.parent().unwrap_or(Path::new(".")));
                    if let Some(first) = seen.get(&(rule.gid, rule.sid)) {
                        self.rejected.push(RuleError {
                            location,
                            sid: Some(rule.sid),
                            kind: RuleErrorKind::DuplicateSid(first.clone()),
                            unsupported: Vec::new(),
                        });
                        continue;
                    }
                    seen.insert((rule.gid, rule.sid), location);
                    self.rules.push(rule);
                }
                Err(kind) => self.rejected.push(RuleError {
                    location,
                    sid: parsed.sid,
                    kind,
                    unsupported: parsed.unsupported,
                }),
            }
        }
    }

    /// Rules skipped for a keyword outside the subset.
    pub fn skipped(&self) -> impl Iterator<Item = &RuleError> {
        self.rejected.iter().filter(|e| e.is_unsupported())
    }

    /// Malformed rules.
    pub fn errors(&self) -> impl Iterator<Item = &RuleError> {
        self.rejected.iter().filter(|e| !e.is_unsupported())
    }

    /// How many skipped rules use each unsupported keyword, most used first
    /// (a rule using several counts for each).
    pub fn unsupported_keywords(&self) -> Vec<(String, usize)> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for error in self.skipped() {
            for keyword in &error.unsupported {
                *counts.entry(keyword.clone()).or_default() += 1;
            }
        }
        let mut counts: Vec<_> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts
    }
}

fn expand(paths: &[PathBuf], rejected: &mut Vec<RuleError>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            match std::fs::read_dir(path) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
                        .collect();
                    found.sort();
                    files.extend(found);
                }
                Err(e) => rejected.push(RuleError {
                    location: Location {
                        file: path.clone(),
                        line: 0,
                    },
                    sid: None,
                    kind: RuleErrorKind::Read(e.to_string()),
                    unsupported: Vec::new(),
                }),
            }
        } else {
            files.push(path.clone());
        }
    }
    files
}

/// Joins `\`-continued lines and drops blanks and comments; yields each
/// rule's text with its first line number.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut rules = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let (start, mut joined) = match pending.take() {
            Some(p) => p,
            None => {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                (index + 1, String::new())
            }
        };
        match line.strip_suffix('\\') {
            Some(head) => {
                joined.push_str(head);
                pending = Some((start, joined));
            }
            None => {
                joined.push_str(line);
                rules.push((start, joined));
            }
        }
    }
    if let Some(p) = pending {
        rules.push(p);
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_rules_name_file_line_and_sid_and_the_rest_load() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("local.rules");
        std::fs::write(
            &file,
            "# a comment\n\
             alert tcp any any -> any 80 (msg:\"ok\"; content:\"a\"; sid:1;)\n\
             \n\
             alert tcp any any -> any 80 (msg:\"bad hex\"; content:\"|zz|\"; sid:2;)\n\
             alert tcp any any -> any 80 (msg:\"continued\"; \\\n    content:\"b\"; sid:3;)\n\
             alert smb any any -> any any (msg:\"app\"; sid:4;)\n\
             alert tcp any any -> any 80 (msg:\"dup\"; sid:1;)\n",
        )
        .unwrap();
        let set = RuleSet::load(&[dir.path().to_owned()], &Vars::default());
        let sids: Vec<u32> = set.rules.iter().map(|r| r.sid).collect();
        assert_eq!(sids, [1, 3]);
        assert_eq!(set.rules[1].location.line, 5);
        let errors: Vec<String> = set.errors().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].ends_with("local.rules:4: sid 2: bad hex in content \"|zz|\""),
            "{}",
            errors[0]
        );
        assert!(
            errors[1].contains("local.rules:8: sid 1: duplicate sid (first at"),
            "{}",
            errors[1]
        );
        assert_eq!(set.unsupported_keywords(), [("protocol smb".to_owned(), 1)]);
    }
}
