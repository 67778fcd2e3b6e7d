//! The compiled rule set, shared read-only by every worker.
//!
//! Rules are split by what they inspect, as Suricata groups signatures: the
//! **packet** group looks at single packet payloads (UDP, ICMP, IP, `tcp-pkt`,
//! TCP rules with `dsize` or `flow:no_stream`, rules without payload
//! matches, and TCP rules on flows that are not reassembled); the **stream**
//! group looks at reassembled TCP data. Each group has a Hyperscan database
//! of one literal per rule, its fast pattern (the content marked
//! `fast_pattern`, else the longest positive content), used as a prefilter:
//! only rules whose fast pattern occurs are verified in full by
//! [`PayloadProgram`]. The packet group's database is in block mode; the
//! stream group's is in streaming mode, so that each TCP direction keeps a
//! Hyperscan stream and a fast pattern split over segments is still seen.
//! Rules without a positive content are verified on every buffer of their
//! group. Application rules (HTTP, DNS, TLS buffers) form one group per
//! buffer, keyed by the buffer of their fast pattern, each a block database
//! scanned over that buffer when a parser hands on an event that has it.
//!
//! Compiled databases are cached on disk (serialized, named by a hash of
//! their patterns and the Hyperscan version), so a restart with unchanged
//! rules loads them instead of compiling.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyperscan::prelude::*;
use hyperscan::{Block, Serialized, Streaming};
use sha1::{Digest, Sha1};

use super::app::AppProgram;
use super::dataset::Datasets;
use super::matcher::{PayloadProgram, PcreError};
use super::rules::{
    Action, Buffer, Content, DatasetOp, FlowbitOp, Inspected, Match, Protocol, Rule, RuleError,
    RuleErrorKind, RuleSet,
};

/// A rule ready to run.
#[derive(Debug)]
pub struct CompiledRule {
    /// The parsed rule.
    pub rule: Rule,
    /// Its payload matches.
    pub program: PayloadProgram,
    /// Its application buffers and matches, for an application rule.
    pub app: Option<AppProgram>,
    /// Its flowbits as bit indexes: (operation, bits, any-of).
    pub flowbits: Vec<(FlowbitOp, Vec<u16>, bool)>,
    /// Threat family (`metadata: family X`, else `other`).
    pub family: Arc<str>,
    /// `msg`.
    pub msg: Arc<str>,
    /// `metadata` as `key value, key value`.
    pub metadata: Arc<str>,
    /// Its dataset lookups: the buffer, the set's index, the operation.
    pub datasets: Vec<(Inspected, usize, DatasetOp)>,
}

impl CompiledRule {
    /// True when the rule only gates on flowbits (or is `pass`): it never
    /// produces a detection.
    pub fn is_silent(&self) -> bool {
        self.rule.noalert || self.rule.action == Action::Pass
    }
}

/// One group of rules with its prefilter.
pub struct Group<D> {
    /// Hyperscan database of the fast patterns, when any rule has one.
    pub database: Option<D>,
    /// Rule index of each pattern id.
    pub pattern_rule: Vec<u32>,
    /// Rules verified on every buffer (no positive content).
    pub always: Vec<u32>,
    /// Longest fast pattern, bytes: how far back a stream rescan must reach.
    pub longest_pattern: usize,
}

impl<D> std::fmt::Debug for Group<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("patterns", &self.pattern_rule.len())
            .field("always", &self.always.len())
            .finish()
    }
}

/// Why a rule set could not be compiled at all.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Hyperscan refused the pattern database.
    #[error("compiling the {group} prefilter with Hyperscan: {reason}")]
    Hyperscan {
        /// Which group.
        group: &'static str,
        /// Hyperscan's reason.
        reason: String,
    },
}

/// The compiled rules.
#[derive(Debug)]
pub struct Engine {
    /// Every rule, indexed by the groups.
    pub rules: Vec<CompiledRule>,
    /// Rules on packet payloads.
    pub packet: Group<BlockDatabase>,
    /// Plain `tcp` payload rules, on packets of TCP directions that are not
    /// reassembled (the stream group covers the others).
    pub fallback: Group<BlockDatabase>,
    /// Rules on reassembled TCP streams.
    pub stream: Group<StreamingDatabase>,
    /// Application rules (HTTP, DNS, TLS buffers), a group per buffer their
    /// fast pattern is in.
    pub app: Vec<(Inspected, Group<BlockDatabase>)>,
    /// Application rules without a positive content, evaluated at every
    /// event.
    pub app_always: Vec<u32>,
    /// Distinct flowbit names.
    pub flowbit_count: usize,
    /// The sets `dataset` and `datarep` look buffers up in.
    pub datasets: Datasets,
    /// How the databases were obtained.
    pub build: BuildReport,
}

/// How long building took and what it produced.
#[derive(Debug, Clone, Default)]
pub struct BuildReport {
    /// Time to compile (or load) both databases.
    pub elapsed: Duration,
    /// True when both came from the cache.
    pub cached: bool,
    /// Bytes of the packet databases (packet and fallback groups).
    pub packet_bytes: usize,
    /// Bytes of the stream database.
    pub stream_bytes: usize,
    /// Bytes of the application-buffer databases.
    pub app_bytes: usize,
    /// Bytes of Hyperscan stream state per open stream (two per TCP flow).
    pub stream_state_bytes: usize,
}

/// Where a rule is inspected: (packets, streams); application rules are in
/// neither.
fn placement(rule: &Rule) -> (bool, bool) {
    let has_payload = !rule.matches.is_empty();
    if rule.is_app() {
        return (false, false);
    }
    match rule.protocol {
        Protocol::Udp | Protocol::Icmp | Protocol::Ip | Protocol::TcpPkt | Protocol::Dns => {
            (true, false)
        }
        Protocol::TcpStream => (false, true),
        Protocol::Tcp | Protocol::Http
            if !has_payload
                || rule.dsize.is_some()
                || rule.tcp_flags.is_some()
                || rule.flow.no_stream =>
        {
            (true, false)
        }
        Protocol::Tcp | Protocol::Http | Protocol::Tls if rule.flow.only_stream => (false, true),
        // Streams when the flow is reassembled, packets when it is not.
        Protocol::Tcp | Protocol::Http | Protocol::Tls => (true, true),
    }
}

/// The content a rule's prefilter looks for (an application rule's, in
/// one of its application buffers).
fn fast_pattern(rule: &Rule) -> Option<&Content> {
    let app = rule.is_app();
    // Contents after `base64_data` are in decoded bytes, not in the buffer.
    let mut decoded: Vec<&Inspected> = Vec::new();
    let positive = rule.matches.iter().filter_map(|m| match m {
        Match::Base64Data(inspected) => {
            decoded.push(inspected);
            None
        }
        Match::Content(c)
            if !(c.negated
                || app && c.inspected.buffer == Buffer::Payload
                || decoded.contains(&&c.inspected)) =>
        {
            Some(c)
        }
        _ => None,
    });
    let mut best: Option<&Content> = None;
    for content in positive {
        if content.fast_pattern {
            return Some(content);
        }
        if best.is_none_or(|b| content.bytes.len() > b.bytes.len()) {
            best = Some(content);
        }
    }
    best
}

/// A literal as a Hyperscan expression: every byte escaped.
fn literal_expression(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\x{b:02x}")).collect()
}

struct GroupBuilder {
    name: &'static str,
    patterns: Vec<Pattern>,
    pattern_rule: Vec<u32>,
    always: Vec<u32>,
    longest: usize,
}

impl GroupBuilder {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            patterns: Vec::new(),
            pattern_rule: Vec::new(),
            always: Vec::new(),
            longest: 0,
        }
    }

    fn add(&mut self, index: u32, rule: &Rule) {
        self.add_pattern(index, fast_pattern(rule));
    }

    fn add_pattern(&mut self, index: u32, content: Option<&Content>) {
        let Some(content) = content else {
            self.always.push(index);
            return;
        };
        let mut flags = CompileFlags::empty();
        if content.nocase {
            flags |= CompileFlags::CASELESS;
        }
        let id = self.patterns.len();
        let pattern = Pattern {
            expression: literal_expression(&content.bytes),
            flags,
            id: Some(id),
            ext: Default::default(),
            som: None,
        };
        self.patterns.push(pattern);
        self.pattern_rule.push(index);
        self.longest = self.longest.max(content.bytes.len());
    }

    /// Compiles the database in mode `M`, or loads it from `cache` when a
    /// database of the same patterns was compiled before. Returns whether it
    /// came from the cache.
    fn build<M: Mode>(
        self,
        cache: Option<&Path>,
    ) -> Result<(Group<Database<M>>, bool), EngineError> {
        let mut cached = false;
        let database = if self.patterns.is_empty() {
            None
        } else {
            let file =
                cache.map(|dir| dir.join(format!("{}-{}.hsdb", self.name, key_of(&self.patterns))));
            let loaded = file
                .as_deref()
                .and_then(|f| std::fs::read(f).ok())
                .and_then(|bytes| bytes.deserialize::<M>().ok());
            cached = loaded.is_some();
            let database = match loaded {
                Some(db) => db,
                None => {
                    let db = Patterns(self.patterns.clone()).build::<M>().map_err(|e| {
                        EngineError::Hyperscan {
                            group: self.name,
                            reason: e.to_string(),
                        }
                    })?;
                    if let Some(file) = &file {
                        store(file, &db);
                    }
                    db
                }
            };
            Some(database)
        };
        Ok((
            Group {
                database,
                pattern_rule: self.pattern_rule,
                always: self.always,
                longest_pattern: self.longest,
            },
            cached,
        ))
    }
}

/// The cache key of a database: its mode's group name is in the file name;
/// this hashes the Hyperscan version and every pattern with its flags.
fn key_of(patterns: &[Pattern]) -> String {
    let mut hash = Sha1::new();
    hash.update(hyperscan::version_str().to_bytes());
    for p in patterns {
        hash.update(p.expression.as_bytes());
        hash.update(format!("/{:?}/{:?};", p.flags, p.id).as_bytes());
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a database to the cache (write then rename); a failure only costs
/// the next start a compile, so it is logged and ignored.
fn store<M: Mode>(file: &Path, db: &Database<M>) {
    let written = (|| -> std::io::Result<()> {
        let bytes = db
            .serialize()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let temp = file.with_extension("hsdb.inprogress");
        std::fs::write(&temp, &*bytes)?;
        std::fs::rename(&temp, file)
    })();
    if let Err(e) = written {
        tracing::warn!(path = %file.display(), "could not cache the compiled rules: {e}");
    }
}

impl Engine {
    /// Compiles the rules of `set` (databases cached under `cache` when
    /// given); a rule whose pcre PCRE2 refuses is returned among the
    /// rejected, with its location.
    pub fn compile(
        set: &RuleSet,
        cache: Option<&Path>,
    ) -> Result<(Self, Vec<RuleError>), EngineError> {
        let started = Instant::now();
        let mut rules = Vec::new();
        let mut rejected = Vec::new();
        let mut bits: HashMap<String, u16> = HashMap::new();
        let mut datasets = Datasets::default();
        for rule in &set.rules {
            let lookups: Result<Vec<_>, _> = rule
                .datasets()
                .map(|(lookup, inspected)| {
                    datasets
                        .register(lookup)
                        .map(|id| (inspected.clone(), id, lookup.op))
                })
                .collect();
            let lookups = match lookups {
                Ok(lookups) => lookups,
                Err(error) => {
                    rejected.push(RuleError {
                        location: rule.location.clone(),
                        sid: Some(rule.sid),
                        kind: RuleErrorKind::BadValue {
                            keyword: "dataset".into(),
                            value: error.to_string(),
                        },
                        unsupported: Vec::new(),
                    });
                    continue;
                }
            };
            let compiled = if rule.is_app() {
                AppProgram::new(rule).map(|app| (PayloadProgram::new(&[]).ok(), Some(app)))
            } else {
                PayloadProgram::new(&rule.matches).map(|program| (Some(program), None))
            };
            let (program, app) = match compiled {
                Ok((program, app)) => (program.expect("no pcre to refuse"), app),
                Err(PcreError { pattern, reason }) => {
                    rejected.push(RuleError {
                        location: rule.location.clone(),
                        sid: Some(rule.sid),
                        kind: RuleErrorKind::BadValue {
                            keyword: "pcre".into(),
                            value: format!("{pattern} ({reason})"),
                        },
                        unsupported: Vec::new(),
                    });
                    continue;
                }
            };
            let flowbits = rule
                .flowbits
                .iter()
                .map(|fb| {
                    let ids = fb
                        .names
                        .iter()
                        .map(|name| {
                            let next = bits.len() as u16;
                            *bits.entry(name.clone()).or_insert(next)
                        })
                        .collect();
                    (fb.op, ids, fb.any)
                })
                .collect();
            let metadata: Vec<String> = rule
                .metadata
                .iter()
                .map(|(k, v)| {
                    if v.is_empty() {
                        k.clone()
                    } else {
                        format!("{k} {v}")
                    }
                })
                .collect();
            rules.push(CompiledRule {
                family: Arc::from(rule.family()),
                msg: Arc::from(rule.msg.as_str()),
                metadata: Arc::from(metadata.join(", ").as_str()),
                rule: rule.clone(),
                program,
                app,
                flowbits,
                datasets: lookups,
            });
        }
        let mut packet = GroupBuilder::new("packet");
        let mut fallback = GroupBuilder::new("fallback");
        let mut stream = GroupBuilder::new("stream");
        let mut app: std::collections::BTreeMap<Inspected, GroupBuilder> = Default::default();
        let mut app_always = Vec::new();
        for (index, compiled) in rules.iter().enumerate() {
            if compiled.app.is_some() {
                match fast_pattern(&compiled.rule) {
                    Some(content) => app
                        .entry(content.inspected.clone())
                        .or_insert_with(|| GroupBuilder::new(content.inspected.buffer.name()))
                        .add_pattern(index as u32, Some(content)),
                    None => app_always.push(index as u32),
                }
                continue;
            }
            let (on_packets, on_streams) = placement(&compiled.rule);
            match (on_packets, on_streams) {
                (true, true) => fallback.add(index as u32, &compiled.rule),
                (true, false) => packet.add(index as u32, &compiled.rule),
                _ => {}
            }
            if on_streams {
                stream.add(index as u32, &compiled.rule);
            }
        }
        let (packet, packet_cached) = packet.build::<Block>(cache)?;
        let (fallback, fallback_cached) = fallback.build::<Block>(cache)?;
        let (stream, stream_cached) = stream.build::<Streaming>(cache)?;
        let mut app_cached = true;
        let app = app
            .into_iter()
            .map(|(buffer, builder)| {
                let (group, cached) = builder.build::<Block>(cache)?;
                app_cached &= cached;
                Ok((buffer, group))
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        let build = BuildReport {
            elapsed: started.elapsed(),
            cached: packet_cached && fallback_cached && stream_cached && app_cached,
            app_bytes: app
                .iter()
                .filter_map(|(_, g)| g.database.as_ref().and_then(|d| d.size().ok()))
                .sum(),
            packet_bytes: [&packet, &fallback]
                .iter()
                .filter_map(|g| g.database.as_ref().and_then(|d| d.size().ok()))
                .sum(),
            stream_bytes: stream
                .database
                .as_ref()
                .and_then(|d| d.size().ok())
                .unwrap_or(0),
            stream_state_bytes: stream
                .database
                .as_ref()
                .and_then(|d| d.stream_size().ok())
                .unwrap_or(0),
        };
        Ok((
            Self {
                rules,
                packet,
                fallback,
                stream,
                app,
                app_always,
                flowbit_count: bits.len(),
                datasets,
                build,
            },
            rejected,
        ))
    }

    /// Every rule's fast pattern (bytes, case-insensitive), for benchmarks
    /// that scan with the prefilter alone.
    pub fn fast_patterns(&self) -> Vec<(Vec<u8>, bool)> {
        self.rules
            .iter()
            .filter_map(|r| fast_pattern(&r.rule))
            .map(|c| (c.bytes.clone(), c.nocase))
            .collect()
    }
}
