//! The compiled rule set, shared read-only by every worker.
//!
//! Rules are split by what they inspect, as Suricata groups signatures:
//! **packet** rules look at single packet payloads (UDP, ICMP, IP,
//! `tcp-pkt`, TCP rules with `dsize`, `flags`, `stream_size` or
//! `flow:no_stream`, rules
//! without payload matches, and plain TCP rules on directions that are not
//! reassembled); **stream** rules look at reassembled TCP data. Each class
//! of payload is split further by direction and server port
//! ([`super::groups`]), each group with a Hyperscan database of its rules'
//! fast patterns (the content marked `fast_pattern`, else the longest
//! positive content), used as a prefilter: only rules whose fast pattern
//! occurs are verified in full by [`PayloadProgram`]. Packet databases are
//! in block mode; stream databases in streaming mode, so that each TCP
//! direction keeps a Hyperscan stream and a fast pattern split over
//! segments is still seen. Rules without a positive content are verified
//! on every buffer of their group. Application rules (HTTP, DNS, TLS
//! buffers) form one group per buffer, keyed by the buffer of their fast
//! pattern, each a block database scanned over that buffer when a parser
//! hands on an event that has it.
//!
//! Compiled databases are cached on disk (serialized, named by a hash of
//! their patterns and the Hyperscan version), so a restart with unchanged
//! rules loads them instead of compiling.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyperscan::prelude::*;
use hyperscan::{Block, Streaming};

use super::app::{AppProgram, AppStage};
use super::dataset::Datasets;
use super::groups::{build_all, port_groups, Class, DatabaseSize, Group, GroupBuilder, PortGroups};
use super::ip_only::IpOnly;
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
    /// The rule reads payload (contents, pcres, byte tests, a `dsize`
    /// that needs bytes): it does not run on encrypted flows.
    pub needs_payload: bool,
}

impl CompiledRule {
    /// True when the rule only gates on flowbits (or is `pass`): it never
    /// produces a detection.
    pub fn is_silent(&self) -> bool {
        self.rule.noalert || self.rule.action == Action::Pass
    }
}

/// Why a rule set could not be compiled at all.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Hyperscan refused the pattern database.
    #[error("compiling the {group} prefilter with Hyperscan: {reason}")]
    Hyperscan {
        /// Which group.
        group: String,
        /// Hyperscan's reason.
        reason: String,
    },
}

/// The application rules evaluated at one stage whose fast pattern is in
/// one buffer, with their prefilter over that buffer.
#[derive(Debug)]
pub struct AppGroup {
    /// The stage (an HTTP message's headers or body, a DNS question, a TLS
    /// hello...).
    pub stage: AppStage,
    /// The buffer, with its transforms.
    pub inspected: Inspected,
    /// The rules and their database.
    pub group: Group<BlockDatabase>,
}

/// The compiled rules.
#[derive(Debug)]
pub struct Engine {
    /// Every rule, indexed by the groups.
    pub rules: Vec<CompiledRule>,
    /// Packet rules by class ([`Class::PACKET`] order), direction and port.
    pub packet: [PortGroups<BlockDatabase>; 4],
    /// Rules on reassembled TCP streams, by direction and port.
    pub stream: PortGroups<StreamingDatabase>,
    /// Application rules (HTTP, DNS, TLS buffers), a group per stage they
    /// run at and buffer their fast pattern is in: an event scans only
    /// the buffers of its own stage's rules.
    pub app: Vec<AppGroup>,
    /// IP-only rules, checked on the first packet of each flow direction.
    pub ip_only: IpOnly,
    /// Application rules without a positive content, by the stage they
    /// are evaluated at (at every event of it).
    pub app_always: Vec<(AppStage, Vec<u32>)>,
    /// Flowbit names, by bit index.
    pub flowbits: Vec<String>,
    /// The sets `dataset` and `datarep` look buffers up in.
    pub datasets: Datasets,
    /// How the databases were obtained.
    pub build: BuildReport,
}

/// Where state kept under one engine goes under the next (a reload).
#[derive(Debug, Clone, Default)]
pub struct Remap {
    /// Old flowbit index to new, for the names both have.
    pub bits: Vec<Option<u16>>,
    /// Old rule index to new, for the (gid, sid) both have.
    pub rules: Vec<Option<u32>>,
    /// (gid, sid) of every new rule.
    pub sids: HashSet<(u32, u32)>,
    /// New IP-only rules the old engine did not have, in rule order: the
    /// flow directions already checked are checked against these.
    pub ip_only_added: Vec<u32>,
}

/// How long building took and what it produced.
#[derive(Debug, Clone, Default)]
pub struct BuildReport {
    /// Time to compile (or load) both databases.
    pub elapsed: Duration,
    /// True when both came from the cache.
    pub cached: bool,
    /// Packet and stream groups, each with its database.
    pub groups: usize,
    /// Bytes of the packet databases.
    pub packet_bytes: usize,
    /// Bytes of the stream database.
    pub stream_bytes: usize,
    /// Bytes of the application-buffer databases.
    pub app_bytes: usize,
    /// Bytes of Hyperscan stream state per open stream (two per TCP flow),
    /// at most.
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
                || rule.stream_size.is_some()
                || rule.flow.no_stream =>
        {
            (true, false)
        }
        Protocol::Tcp | Protocol::Http | Protocol::Tls if rule.flow.only_stream => (false, true),
        // Streams when the flow is reassembled, packets when it is not.
        Protocol::Tcp | Protocol::Http | Protocol::Tls => (true, true),
    }
}

/// The packet classes whose payloads a packet rule is verified on;
/// `also_streams` when streams cover it where they are reassembled.
fn packet_classes(rule: &Rule, also_streams: bool) -> &'static [Class] {
    if also_streams {
        return &[Class::TcpRaw];
    }
    match rule.protocol {
        Protocol::Ip => &Class::PACKET,
        Protocol::Udp => &[Class::Udp],
        Protocol::Icmp => &[Class::Other],
        Protocol::Dns => &[Class::Tcp, Class::TcpRaw, Class::Udp],
        Protocol::Tcp | Protocol::TcpPkt | Protocol::TcpStream | Protocol::Http | Protocol::Tls => {
            &[Class::Tcp, Class::TcpRaw]
        }
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
    let mut best: Option<(&Content, (usize, u32))> = None;
    for content in positive {
        if content.fast_pattern {
            return Some(content);
        }
        let rank = (content.bytes.len(), strength(&content.bytes));
        if best.is_none_or(|(_, best)| rank > best) {
            best = Some((content, rank));
        }
    }
    best.map(|(content, _)| content)
}

/// How selective a pattern is, as Suricata's `PatternStrength` scores it
/// to choose between fast-pattern candidates of one length: each distinct
/// byte counts 3 if a letter, 4 if printable (or 0x00, 0x01, 0xff), 6
/// otherwise; each repeat counts 1.
fn strength(bytes: &[u8]) -> u32 {
    let mut seen = [false; 256];
    bytes
        .iter()
        .map(|&b| {
            if std::mem::replace(&mut seen[usize::from(b)], true) {
                1
            } else if b.is_ascii_alphabetic() {
                3
            } else if (0x20..=0x7e).contains(&b) || matches!(b, 0x00 | 0x01 | 0xff) {
                4
            } else {
                6
            }
        })
        .sum()
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
                needs_payload: !rule.matches.is_empty()
                    || rule.dsize.is_some_and(|d| d.requires_payload()),
            });
        }
        let mut app: std::collections::BTreeMap<(AppStage, Inspected), GroupBuilder> =
            Default::default();
        let mut app_always: std::collections::BTreeMap<AppStage, Vec<u32>> = Default::default();
        let mut packet_members: [Vec<(u32, &Rule)>; 4] = Default::default();
        let mut stream_members = Vec::new();
        let mut ip_only_members = Vec::new();
        for (index, compiled) in rules.iter().enumerate() {
            let index = index as u32;
            let rule = &compiled.rule;
            if let Some(program) = &compiled.app {
                match fast_pattern(rule) {
                    Some(content) => {
                        for stage in program.stages() {
                            app.entry((stage, content.inspected.clone()))
                                .or_insert_with(|| {
                                    GroupBuilder::new(content.inspected.buffer.name(), true)
                                })
                                .add(index, rule, Some(content));
                        }
                    }
                    None => {
                        for stage in program.stages() {
                            app_always.entry(stage).or_default().push(index);
                        }
                    }
                }
                continue;
            }
            if rule.is_ip_only() {
                ip_only_members.push((index, rule));
                continue;
            }
            let (on_packets, on_streams) = placement(rule);
            if on_packets {
                for class in packet_classes(rule, on_streams) {
                    packet_members[class.index()].push((index, rule));
                }
            }
            if on_streams {
                stream_members.push((index, rule));
            }
        }
        let mut cached = true;
        let mut packet = Vec::with_capacity(4);
        for (class, members) in Class::PACKET.into_iter().zip(&packet_members) {
            let (groups, all) = port_groups::<Block>(class, members, fast_pattern, cache)?;
            cached &= all;
            packet.push(groups);
        }
        let packet: [PortGroups<BlockDatabase>; 4] =
            packet.try_into().expect("one group set per packet class");
        let (stream, all) =
            port_groups::<Streaming>(Class::Stream, &stream_members, fast_pattern, cache)?;
        cached &= all;
        let (keys, builders): (Vec<(AppStage, Inspected)>, Vec<GroupBuilder>) =
            app.into_iter().unzip();
        let (app_groups, all) = build_all::<Block>(builders, cache)?;
        cached &= all;
        let app: Vec<AppGroup> = keys
            .into_iter()
            .zip(app_groups)
            .map(|((stage, inspected), group)| AppGroup {
                stage,
                inspected,
                group,
            })
            .collect();
        let ip_only = IpOnly::new(ip_only_members);
        let build = BuildReport {
            elapsed: started.elapsed(),
            cached,
            app_bytes: app
                .iter()
                .filter_map(|a| a.group.database.as_ref().map(DatabaseSize::bytes))
                .sum(),
            packet_bytes: packet.iter().map(PortGroups::database_bytes).sum(),
            stream_bytes: stream.database_bytes(),
            stream_state_bytes: stream
                .groups
                .iter()
                .filter_map(|g| g.database.as_ref().and_then(|d| d.stream_size().ok()))
                .max()
                .unwrap_or(0),
            groups: packet.iter().map(|p| p.groups.len()).sum::<usize>() + stream.groups.len(),
        };
        Ok((
            Self {
                rules,
                packet,
                stream,
                app,
                ip_only,
                app_always: app_always.into_iter().collect(),
                flowbits: {
                    let mut names = vec![String::new(); bits.len()];
                    for (name, bit) in bits {
                        names[usize::from(bit)] = name;
                    }
                    names
                },
                datasets,
                build,
            },
            rejected,
        ))
    }

    /// How the state kept under `old` maps onto this engine: flowbits by
    /// name, rules by (gid, sid).
    pub fn remap_from(&self, old: &Engine) -> Remap {
        let bits: HashMap<&str, u16> = self
            .flowbits
            .iter()
            .enumerate()
            .map(|(i, name)| (name.as_str(), i as u16))
            .collect();
        let rules: HashMap<(u32, u32), u32> = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| ((r.rule.gid, r.rule.sid), i as u32))
            .collect();
        let old_sids: HashSet<(u32, u32)> =
            old.rules.iter().map(|r| (r.rule.gid, r.rule.sid)).collect();
        let ip_only_added = (0..self.rules.len() as u32)
            .filter(|&i| self.ip_only.contains(i))
            .filter(|&i| {
                let rule = &self.rules[i as usize].rule;
                !old_sids.contains(&(rule.gid, rule.sid))
            })
            .collect();
        Remap {
            ip_only_added,
            bits: old
                .flowbits
                .iter()
                .map(|name| bits.get(name.as_str()).copied())
                .collect(),
            rules: old
                .rules
                .iter()
                .map(|r| rules.get(&(r.rule.gid, r.rule.sid)).copied())
                .collect(),
            sids: rules.keys().copied().collect(),
        }
    }

    /// The application rules without a positive content evaluated at
    /// `stage`.
    pub fn app_always(&self, stage: AppStage) -> &[u32] {
        self.app_always
            .iter()
            .find(|(s, _)| *s == stage)
            .map_or(&[], |(_, rules)| rules)
    }

    /// One Hyperscan scratch that fits every database, for one thread
    /// (none when there is no database or Hyperscan refuses).
    pub fn scratch(&self) -> Option<Scratch> {
        /// Allocates the scratch for `db`, or grows it to fit.
        fn fit<M: Mode>(scratch: &mut Option<Scratch>, db: &Database<M>) -> Option<()> {
            match scratch.as_mut() {
                Some(s) => db.realloc_scratch(s).ok().map(drop),
                None => db.alloc_scratch().ok().map(|s| *scratch = Some(s)),
            }
        }
        let mut scratch = None;
        let blocks = self.packet.iter().flat_map(|p| &p.groups);
        let apps = self.app.iter().map(|a| &a.group);
        for db in blocks.chain(apps).filter_map(|g| g.database.as_ref()) {
            fit(&mut scratch, db)?;
        }
        for db in self
            .stream
            .groups
            .iter()
            .filter_map(|g| g.database.as_ref())
        {
            fit(&mut scratch, db)?;
        }
        scratch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::applayer::HttpStage;
    use crate::detect::rules::{RuleSet, Vars};

    #[test]
    fn application_groups_hold_only_the_rules_of_their_stage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.rules");
        let text = concat!(
            "alert http any any -> any any (http.uri; content:\"/login\"; sid:1;)\n",
            "alert http any any -> any any (http.uri; content:\"/admin\"; ",
            "http.stat_code; content:\"200\"; sid:2;)\n",
            "alert http any any -> any any (urilen:>50; sid:3;)\n",
        );
        std::fs::write(&path, text).unwrap();
        let set = RuleSet::load(&[path], &Vars::default());
        let (engine, rejected) = Engine::compile(&set, None).unwrap();
        assert!(rejected.is_empty());
        let sid = |index: &u32| engine.rules[*index as usize].rule.sid;
        let mut groups: Vec<(AppStage, &str, Vec<u32>)> = engine
            .app
            .iter()
            .map(|a| {
                let ids = 0..a.group.patterns() as u32;
                let sids = ids.flat_map(|id| a.group.rules_of(id).iter().map(sid));
                (a.stage, a.inspected.buffer.name(), sids.collect())
            })
            .collect();
        groups.sort();
        let request = AppStage::Http(HttpStage::RequestHeaders);
        let response = AppStage::Http(HttpStage::ResponseHeaders);
        assert_eq!(
            groups,
            [
                (request, "http-uri", vec![1]),
                (response, "http-uri", vec![2]),
            ]
        );
        let always = |stage| engine.app_always(stage).iter().map(sid).collect::<Vec<_>>();
        assert_eq!(always(request), [3]);
        assert!(always(response).is_empty());
    }

    #[test]
    fn the_fast_pattern_is_the_longest_content_then_the_strongest() {
        let rule = |options: &str| {
            let text = format!("alert tcp any any -> any any ({options} sid:1;)");
            crate::detect::rules::parse::parse_rule(&text, &Vars::default(), None)
                .result
                .unwrap()
        };
        let fast = |options: &str| fast_pattern(&rule(options)).unwrap().bytes.clone();
        assert_eq!(fast("content:\"abc\"; content:\"abcd\";"), b"abcd");
        // Same length: distinct non-printable bytes beat repeated zeros.
        assert_eq!(
            fast("content:\"|00 00 00 01|\"; content:\"|10 82 c3 04|\";"),
            [0x10, 0x82, 0xc3, 0x04]
        );
        assert_eq!(fast("content:\"zzzz\"; content:\"wxyz\";"), b"wxyz");
        assert_eq!(
            fast("content:\"abcd\"; fast_pattern; content:\"abcde\";"),
            b"abcd"
        );
        assert_eq!(strength(b"aab"), 3 + 1 + 3);
        assert_eq!(strength(&[0x00, 0x80, 0x80]), 4 + 6 + 1);
    }
}
