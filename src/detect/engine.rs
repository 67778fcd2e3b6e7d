//! The compiled rule set, shared read-only by every worker.
//!
//! Rules are split by what they inspect, as Suricata groups signatures: the
//! **packet** group looks at single packet payloads (UDP, ICMP, IP, `tcp-pkt`,
//! TCP rules with `dsize` or `flow:no_stream`, rules without payload
//! matches, and TCP rules on flows that are not reassembled); the **stream**
//! group looks at reassembled TCP data. Each group has a Hyperscan block
//! database of one literal per rule, its fast pattern (the content marked
//! `fast_pattern`, else the longest positive content), used as a prefilter:
//! only rules whose fast pattern occurs in a buffer are verified in full by
//! [`PayloadProgram`]. Rules without a positive content are verified on
//! every buffer of their group.

use std::collections::HashMap;
use std::sync::Arc;

use hyperscan::prelude::*;
use hyperscan::Block;

use super::matcher::{PayloadProgram, PcreError};
use super::rules::{
    Action, Content, FlowbitOp, Match, Protocol, Rule, RuleError, RuleErrorKind, RuleSet,
};

/// A rule ready to run.
#[derive(Debug)]
pub struct CompiledRule {
    /// The parsed rule.
    pub rule: Rule,
    /// Its payload matches.
    pub program: PayloadProgram,
    /// Its flowbits as bit indexes: (operation, bits, any-of).
    pub flowbits: Vec<(FlowbitOp, Vec<u16>, bool)>,
    /// Threat family (`metadata: family X`, else `other`).
    pub family: Arc<str>,
    /// `msg`.
    pub msg: Arc<str>,
    /// `metadata` as `key value, key value`.
    pub metadata: Arc<str>,
}

impl CompiledRule {
    /// True when the rule only gates on flowbits (or is `pass`): it never
    /// produces a detection.
    pub fn is_silent(&self) -> bool {
        self.rule.noalert || self.rule.action == Action::Pass
    }
}

/// One group of rules with its prefilter.
pub struct Group {
    /// Hyperscan database of the fast patterns, when any rule has one.
    pub database: Option<BlockDatabase>,
    /// Rule index of each pattern id.
    pub pattern_rule: Vec<u32>,
    /// Rules verified on every buffer (no positive content).
    pub always: Vec<u32>,
    /// Longest fast pattern, bytes: how far back a stream rescan must reach.
    pub longest_pattern: usize,
}

impl std::fmt::Debug for Group {
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
    pub packet: Group,
    /// Rules on reassembled TCP streams.
    pub stream: Group,
    /// Distinct flowbit names.
    pub flowbit_count: usize,
}

/// Where a rule is inspected.
fn placement(rule: &Rule) -> (bool, bool) {
    let has_payload = !rule.matches.is_empty();
    match rule.protocol {
        Protocol::Udp | Protocol::Icmp | Protocol::Ip | Protocol::TcpPkt => (true, false),
        Protocol::TcpStream => (false, true),
        Protocol::Tcp if !has_payload || rule.dsize.is_some() || rule.flow.no_stream => {
            (true, false)
        }
        Protocol::Tcp if rule.flow.only_stream => (false, true),
        // Streams when the flow is reassembled, packets when it is not.
        Protocol::Tcp => (true, true),
    }
}

/// The content a rule's prefilter looks for.
fn fast_pattern(rule: &Rule) -> Option<&Content> {
    let positive = rule.matches.iter().filter_map(|m| match m {
        Match::Content(c) if !c.negated => Some(c),
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
        let Some(content) = fast_pattern(rule) else {
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

    fn build(self) -> Result<Group, EngineError> {
        let database = if self.patterns.is_empty() {
            None
        } else {
            let patterns = Patterns(self.patterns);
            Some(
                patterns
                    .build::<Block>()
                    .map_err(|e| EngineError::Hyperscan {
                        group: self.name,
                        reason: e.to_string(),
                    })?,
            )
        };
        Ok(Group {
            database,
            pattern_rule: self.pattern_rule,
            always: self.always,
            longest_pattern: self.longest,
        })
    }
}

impl Engine {
    /// Compiles the rules of `set`; a rule whose pcre PCRE2 refuses is
    /// returned among the rejected, with its location.
    pub fn compile(set: &RuleSet) -> Result<(Self, Vec<RuleError>), EngineError> {
        let mut rules = Vec::new();
        let mut rejected = Vec::new();
        let mut bits: HashMap<String, u16> = HashMap::new();
        for rule in &set.rules {
            let program = match PayloadProgram::new(&rule.matches) {
                Ok(program) => program,
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
                flowbits,
            });
        }
        let mut packet = GroupBuilder::new("packet");
        let mut stream = GroupBuilder::new("stream");
        for (index, compiled) in rules.iter().enumerate() {
            let (on_packets, on_streams) = placement(&compiled.rule);
            if on_packets {
                packet.add(index as u32, &compiled.rule);
            }
            if on_streams {
                stream.add(index as u32, &compiled.rule);
            }
        }
        Ok((
            Self {
                rules,
                packet: packet.build()?,
                stream: stream.build()?,
                flowbit_count: bits.len(),
            },
            rejected,
        ))
    }

    /// True for plain `tcp` rules, which inspect packets only when their
    /// flow is not reassembled.
    pub fn on_both(&self, rule: u32) -> bool {
        placement(&self.rules[rule as usize].rule) == (true, true)
    }
}
