//! Rule groups: which rules a payload can match, decided before it is
//! scanned, as Suricata's signature group heads.
//!
//! A rule can only match a packet whose destination port its destination
//! ports name (or, `<>`, either way round), and whose direction its
//! `flow:to_server`/`to_client` allows. So each class of payload (TCP
//! packets, TCP packets of directions not reassembled, UDP, other IP,
//! reassembled streams) is split per direction and port: data to the
//! server by its destination port, data to the client by its source port
//! (the server's, in both cases). Ports whose rules are the same share a
//! group; the [`PRIORITY_PORTS`] keep theirs, and past [`MAX_GROUPS`] more
//! per direction the ports with the fewest port-specific rules share one. Each group has its own Hyperscan database of
//! its rules' fast patterns, so a payload is scanned only for the rules
//! that could match it. Grouping only ever leaves out rules whose header
//! could not match: the full header check still runs on every candidate.
//!
//! Within a database, rules that share a fast pattern share one Hyperscan
//! pattern, which reports every rule of it. In block mode each rule of a
//! pattern keeps where its fast pattern can end in the buffer, from an
//! absolute `offset`/`depth`, `startswith`, or `distance`/`within` after
//! contents that are themselves bounded, and a match ending elsewhere does
//! not list it. Hyperscan could take these bounds itself
//! (`min_offset`/`max_offset`), but the `hyperscan` crate compiles with
//! `hs_compile_multi`, which takes no expression extensions, and writing
//! them as anchored expressions (`^.{a,b}` before the literal) tripled the
//! compile time of ET Open.
//! Patterns may report more than once per scan: Hyperscan's `SINGLEMATCH`
//! cut the matches on the benign mix 45-fold but made the packet scans
//! slower (its per-scan bookkeeping costs more than the candidate stamps
//! that already drop repeats). The windows depend on every end being
//! reported: with `SINGLEMATCH`, a match outside a rule's window would hide
//! a later one inside it.

use std::collections::HashMap;
use std::path::Path;

use hyperscan::prelude::*;
use hyperscan::Serialized;
use sha1::{Digest, Sha1};

use super::engine::EngineError;
use super::rules::{Content, Match, PortSpec, Rule};

/// Ports that always get a group of their own when their rules differ
/// from the others' (Suricata's default TCP and UDP priority ports): the
/// services most traffic goes to.
pub const PRIORITY_PORTS: [u16; 13] = [
    53, 80, 135, 139, 443, 445, 1433, 3306, 3389, 5060, 6666, 6667, 8080,
];

/// Groups per direction of a class besides those of the priority ports and
/// the one of ports without port-specific rules; past it, the ports with
/// the fewest port-specific rules share one group.
pub const MAX_GROUPS: usize = 4;

/// What a database is scanned over; counters are kept per class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Payloads of TCP packets whose direction is reassembled: rules that
    /// look at packets only (`dsize`, `flags`, `tcp-pkt`, `ip`, ...).
    Tcp,
    /// Payloads of TCP packets whose direction is not reassembled: those
    /// rules and the plain `tcp` rules the stream would otherwise cover.
    TcpRaw,
    /// UDP payloads.
    Udp,
    /// Other IP payloads (ICMP, other protocols, broken transport headers).
    Other,
    /// Reassembled TCP streams.
    Stream,
    /// Application buffers (HTTP, DNS, TLS).
    App,
}

impl Class {
    /// Every class, in counter order.
    pub const ALL: [Class; 6] = [
        Class::Tcp,
        Class::TcpRaw,
        Class::Udp,
        Class::Other,
        Class::Stream,
        Class::App,
    ];

    /// The packet classes, in [`super::Engine::packet`] order.
    pub const PACKET: [Class; 4] = [Class::Tcp, Class::TcpRaw, Class::Udp, Class::Other];

    /// The class's name in logs, counters and cache files.
    pub fn name(self) -> &'static str {
        match self {
            Class::Tcp => "tcp-packet",
            Class::TcpRaw => "tcp-raw",
            Class::Udp => "udp",
            Class::Other => "other-ip",
            Class::Stream => "tcp-stream",
            Class::App => "app",
        }
    }

    /// True when the class's rules are split by port; the others have one
    /// group per direction (classes that see little traffic).
    pub fn by_port(self) -> bool {
        matches!(self, Class::Tcp | Class::Udp | Class::Stream)
    }

    /// Index in [`Class::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One group of rules with its prefilter.
pub struct Group<D> {
    /// Hyperscan database of the fast patterns, when any rule has one.
    pub database: Option<D>,
    /// Where each pattern's rules start in `pattern_rules` (one more entry
    /// than patterns).
    pattern_starts: Vec<u32>,
    /// Rule indexes, pattern after pattern, each pattern's in rule order.
    pattern_rules: Vec<u32>,
    /// Where each entry of `pattern_rules` can end in its buffer: first
    /// and last end offset (`u32::MAX`: anywhere past the first).
    rule_ends: Vec<(u32, u32)>,
    /// Rules verified on every buffer (no positive content).
    pub always: Vec<u32>,
}

impl<D> Group<D> {
    /// The rules of pattern `id`.
    #[inline]
    pub fn rules_of(&self, id: u32) -> &[u32] {
        let id = id as usize;
        &self.pattern_rules[self.pattern_starts[id] as usize..self.pattern_starts[id + 1] as usize]
    }

    /// The rules of pattern `id` whose fast pattern can end at `end`: a
    /// match ending elsewhere is outside the rule's `offset`/`depth` window.
    #[inline]
    pub fn rules_ending(&self, id: u32, end: u64) -> impl Iterator<Item = u32> + '_ {
        let id = id as usize;
        let range = self.pattern_starts[id] as usize..self.pattern_starts[id + 1] as usize;
        let end = u32::try_from(end).unwrap_or(u32::MAX);
        self.pattern_rules[range.clone()]
            .iter()
            .zip(&self.rule_ends[range])
            .filter(move |(_, &(first, last))| first <= end && end <= last)
            .map(|(&rule, _)| rule)
    }

    /// Distinct patterns in the database.
    pub fn patterns(&self) -> usize {
        self.pattern_starts.len().saturating_sub(1)
    }
}

impl<D> std::fmt::Debug for Group<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("patterns", &self.patterns())
            .field("rules", &self.pattern_rules.len())
            .field("always", &self.always.len())
            .finish()
    }
}

/// A literal as a Hyperscan expression: every byte escaped.
fn literal_expression(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut expression = String::with_capacity(bytes.len() * 4);
    for &b in bytes {
        expression.push_str("\\x");
        expression.push(char::from(HEX[usize::from(b >> 4)]));
        expression.push(char::from(HEX[usize::from(b & 15)]));
    }
    expression
}

/// Where a rule's fast pattern can end in its buffer: (first, last) end
/// offset, `u64::MAX` when nothing bounds the last. Follows the rule's
/// matches in that buffer in order: an absolute content ends within its
/// `offset`/`depth`, a relative one within `distance`/`within` of where
/// the previous one can end (Suricata counts `within` from `distance`). A
/// `pcre` or `byte_jump` moves the cursor to where nothing bounds it; a
/// negated content does not move it. A buffer of several items (the
/// certificates of `tls.certs`) is scanned item by item, so offsets count
/// from each item's start there too.
fn fast_bounds(rule: &Rule, fast: &Content) -> Option<(u64, u64)> {
    let len = fast.bytes.len() as u64;
    // Where the previous match in the buffer can end; the start at first.
    let mut cursor = Some((0, 0));
    for m in &rule.matches {
        let content = match m {
            Match::Content(c) if c.inspected == fast.inspected => c,
            Match::Pcre(p) if p.inspected == fast.inspected && !p.negated => {
                cursor = None;
                continue;
            }
            Match::ByteJump(_, inspected) | Match::Base64Data(inspected)
                if *inspected == fast.inspected =>
            {
                cursor = None;
                continue;
            }
            _ => continue,
        };
        let ends = if content.is_relative() {
            cursor.map(|at| relative_ends(content, at))
        } else {
            Some(absolute_ends(content))
        };
        if std::ptr::eq(content, fast) {
            return ends.filter(|&(first, last)| first >= len && last >= first);
        }
        if !content.negated {
            cursor = ends;
        }
    }
    None
}

/// Where a relative content can end when the previous match ends between
/// `at`: from `distance` after the earliest, to `distance` + `within` after
/// the latest.
fn relative_ends(content: &Content, at: (u64, u64)) -> (u64, u64) {
    let len = content.bytes.len() as u64;
    let distance = i64::from(content.distance.unwrap_or(0));
    let shift = |end: u64, by: i64| end.saturating_add_signed(by);
    let first = shift(at.0, distance).saturating_add(len).max(len);
    let last = match content.within {
        Some(within) if at.1 != u64::MAX => shift(at.1, distance).saturating_add(u64::from(within)),
        _ => u64::MAX,
    };
    (first, last)
}

/// Where an absolute content can end in its buffer: (first, last) end
/// offset, from its `offset`/`depth` or `startswith` (`u64::MAX`: nothing
/// bounds the last).
fn absolute_ends(content: &Content) -> (u64, u64) {
    let len = content.bytes.len() as u64;
    let offset = u64::from(content.offset.unwrap_or(0));
    let depth = match (content.depth, content.startswith) {
        (Some(depth), _) => u64::from(depth),
        (None, true) => len,
        (None, false) => return (offset + len, u64::MAX),
    };
    if depth >= len {
        (offset + len, offset + depth)
    } else {
        (len, u64::MAX)
    }
}

/// A pattern's identity in a database: its bytes and caselessness.
type PatternKey = (Vec<u8>, bool);

/// The rules of one group as Hyperscan patterns, before compiling.
pub struct GroupBuilder {
    name: String,
    block: bool,
    patterns: Vec<Pattern>,
    ids: HashMap<PatternKey, usize>,
    /// Each pattern's rules, with where the pattern can end for each.
    rules: Vec<Vec<(u32, (u32, u32))>>,
    always: Vec<u32>,
}

impl GroupBuilder {
    /// An empty group named `name` (in cache files and errors); `block`
    /// for a block-mode database, where patterns keep their bounds.
    pub fn new(name: impl Into<String>, block: bool) -> Self {
        Self {
            name: name.into(),
            block,
            patterns: Vec::new(),
            ids: HashMap::new(),
            rules: Vec::new(),
            always: Vec::new(),
        }
    }

    /// Adds rule `index` with its fast pattern (none: verified always).
    pub fn add(&mut self, index: u32, rule: &Rule, content: Option<&Content>) {
        let Some(content) = content else {
            self.always.push(index);
            return;
        };
        let ends = match self.block.then(|| fast_bounds(rule, content)).flatten() {
            Some((first, last)) => (
                u32::try_from(first).unwrap_or(u32::MAX),
                u32::try_from(last).unwrap_or(u32::MAX),
            ),
            None => (0, u32::MAX),
        };
        let key = (content.bytes.clone(), content.nocase);
        if let Some(&id) = self.ids.get(&key) {
            self.rules[id].push((index, ends));
            return;
        }
        let mut flags = CompileFlags::empty();
        if content.nocase {
            flags |= CompileFlags::CASELESS;
        }
        let id = self.patterns.len();
        self.patterns.push(Pattern {
            expression: literal_expression(&content.bytes),
            flags,
            id: Some(id),
            ext: Default::default(),
            som: None,
        });
        self.ids.insert(key, id);
        self.rules.push(vec![(index, ends)]);
    }

    /// Compiles the database in mode `M`, or loads it from `cache` when a
    /// database of the same patterns was compiled before. Returns whether it
    /// came from the cache.
    pub fn build<M: Mode>(
        self,
        cache: Option<&Path>,
    ) -> Result<(Group<Database<M>>, bool), EngineError> {
        let (database, cached) = compile::<M>(&self.name, self.patterns, cache)?;
        let mut pattern_starts = Vec::with_capacity(self.rules.len() + 1);
        let mut pattern_rules = Vec::new();
        let mut rule_ends = Vec::new();
        for rules in &self.rules {
            pattern_starts.push(pattern_rules.len() as u32);
            pattern_rules.extend(rules.iter().map(|&(rule, _)| rule));
            rule_ends.extend(rules.iter().map(|&(_, ends)| ends));
        }
        pattern_starts.push(pattern_rules.len() as u32);
        Ok((
            Group {
                database,
                pattern_starts,
                pattern_rules,
                rule_ends,
                always: self.always,
            },
            cached,
        ))
    }
}

/// Compiles `patterns` in mode `M` (none: no database), or loads the
/// database from `cache` when the same patterns were compiled before.
/// Returns whether it came from the cache.
fn compile<M: Mode>(
    name: &str,
    patterns: Vec<Pattern>,
    cache: Option<&Path>,
) -> Result<(Option<Database<M>>, bool), EngineError> {
    if patterns.is_empty() {
        return Ok((None, true));
    }
    let file = cache.map(|dir| dir.join(format!("{name}-{}.hsdb", key_of(&patterns))));
    let loaded = file
        .as_deref()
        .and_then(|f| std::fs::read(f).ok())
        .and_then(|bytes| bytes.deserialize::<M>().ok());
    if let Some(db) = loaded {
        return Ok((Some(db), true));
    }
    let db = Patterns(patterns)
        .build::<M>()
        .map_err(|e| EngineError::Hyperscan {
            group: name.to_string(),
            reason: e.to_string(),
        })?;
    if let Some(file) = &file {
        store(file, &db);
    }
    Ok((Some(db), false))
}

/// The cache key of a database: its mode's group name is in the file name;
/// this hashes the Hyperscan version and every pattern with its flags.
fn key_of(patterns: &[Pattern]) -> String {
    let mut hash = Sha1::new();
    hash.update(hyperscan::version_str().to_bytes());
    for p in patterns {
        hash.update(p.expression.as_bytes());
        hash.update(p.flags.bits().to_le_bytes());
        hash.update(p.id.unwrap_or(usize::MAX).to_le_bytes());
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
        // Groups of the same patterns may be compiled at once: one temporary
        // file each.
        let temp = file.with_extension(format!(
            "hsdb.{}.{:?}.inprogress",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&temp, &*bytes)?;
        std::fs::rename(&temp, file)
    })();
    if let Err(e) = written {
        tracing::warn!(path = %file.display(), "could not cache the compiled rules: {e}");
    }
}

/// The groups of one class, per direction and server port.
pub struct PortGroups<D> {
    /// Group index of each port: `[0]` to the server by destination port,
    /// `[1]` to the client by source port.
    by_port: [Box<[u8]>; 2],
    /// The distinct groups.
    pub groups: Vec<Group<D>>,
}

impl<D> PortGroups<D> {
    /// The group of a payload going `to_server` (else to the client)
    /// between these ports.
    #[inline]
    pub fn lookup(&self, to_server: bool, src_port: u16, dst_port: u16) -> &Group<D> {
        let (dir, port) = if to_server {
            (0, dst_port)
        } else {
            (1, src_port)
        };
        &self.groups[usize::from(self.by_port[dir][usize::from(port)])]
    }

    /// Bytes of all the groups' databases.
    pub fn database_bytes(&self) -> usize
    where
        D: DatabaseSize,
    {
        self.groups
            .iter()
            .filter_map(|g| g.database.as_ref().map(DatabaseSize::bytes))
            .sum()
    }
}

impl<D> std::fmt::Debug for PortGroups<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortGroups")
            .field("groups", &self.groups)
            .finish()
    }
}

/// A database's size, whatever its mode.
pub trait DatabaseSize {
    /// Bytes.
    fn bytes(&self) -> usize;
}

impl<M: Mode> DatabaseSize for Database<M> {
    fn bytes(&self) -> usize {
        self.size().unwrap_or(0)
    }
}

/// The ports a rule names for the server's side of data going `to_server`
/// (else to the client); `None` when the rule never sees that direction.
fn server_ports(rule: &Rule, to_server: bool) -> Option<Vec<&PortSpec>> {
    if rule.flow.to_server.is_some_and(|t| t != to_server) {
        return None;
    }
    let (named, other) = if to_server {
        (&rule.dst_ports, &rule.src_ports)
    } else {
        (&rule.src_ports, &rule.dst_ports)
    };
    Some(if rule.bidirectional {
        vec![named, other]
    } else {
        vec![named]
    })
}

/// The rule lists of one direction: for each port, an index into the
/// returned lists (each in rule order).
fn partition(members: &[(u32, &Rule)], to_server: bool) -> (Vec<u8>, Vec<Vec<u32>>) {
    let mut any = Vec::new();
    let mut specific: Vec<(u32, Vec<&PortSpec>)> = Vec::new();
    let mut bounds = vec![0u32];
    for &(index, rule) in members {
        let Some(ports) = server_ports(rule, to_server) else {
            continue;
        };
        if ports.iter().any(|p| matches!(p, PortSpec::Any)) {
            any.push(index);
        } else {
            ports.iter().for_each(|p| p.boundaries(&mut bounds));
            specific.push((index, ports));
        }
    }
    bounds.retain(|&b| b < 65_536);
    bounds.sort_unstable();
    bounds.dedup();
    // The port-specific rules of each stretch of ports that match alike.
    let mut sets: HashMap<Vec<u32>, usize> = HashMap::new();
    let mut set_of_stretch = Vec::with_capacity(bounds.len());
    let mut ports_of_set: Vec<usize> = Vec::new();
    for (i, &start) in bounds.iter().enumerate() {
        let end = bounds.get(i + 1).copied().unwrap_or(65_536);
        let port = start as u16;
        let set: Vec<u32> = specific
            .iter()
            .filter(|(_, ports)| ports.iter().any(|p| p.matches(port)))
            .map(|(index, _)| *index)
            .collect();
        let next = sets.len();
        let id = *sets.entry(set).or_insert(next);
        if id == ports_of_set.len() {
            ports_of_set.push(0);
        }
        ports_of_set[id] += (end - start) as usize;
        set_of_stretch.push(id);
    }
    let mut lists: Vec<Vec<u32>> = vec![Vec::new(); sets.len()];
    for (set, id) in sets {
        lists[id] = set;
    }
    // The priority ports' sets and the set without port-specific rules
    // keep their own group, then the largest others up to the cap; the
    // rest share one group of all their rules.
    let priority: Vec<usize> = PRIORITY_PORTS
        .iter()
        .map(|&port| set_of_stretch[bounds.partition_point(|&b| b <= u32::from(port)) - 1])
        .collect();
    let mut order: Vec<usize> = (0..lists.len()).collect();
    order.sort_by_key(|&id| {
        let first = priority.contains(&id) || lists[id].is_empty();
        (!first, std::cmp::Reverse(lists[id].len()), id)
    });
    let mut final_of_set = vec![0usize; lists.len()];
    let mut finals: Vec<Vec<u32>> = Vec::new();
    let mut merged: Option<usize> = None;
    let mut others = 0;
    for &id in &order {
        let first = priority.contains(&id) || lists[id].is_empty();
        if first || others < MAX_GROUPS || order.len() <= finals.len() + 1 {
            others += usize::from(!first);
            final_of_set[id] = finals.len();
            finals.push(std::mem::take(&mut lists[id]));
        } else {
            let target = *merged.get_or_insert_with(|| {
                finals.push(Vec::new());
                finals.len() - 1
            });
            finals[target].append(&mut lists[id]);
            final_of_set[id] = target;
        }
    }
    let lists: Vec<Vec<u32>> = finals
        .into_iter()
        .map(|mut set| {
            set.extend_from_slice(&any);
            set.sort_unstable();
            set.dedup();
            set
        })
        .collect();
    let mut by_port = vec![0u8; 65_536];
    for (i, &start) in bounds.iter().enumerate() {
        let end = bounds.get(i + 1).copied().unwrap_or(65_536) as usize;
        let group = final_of_set[set_of_stretch[i]] as u8;
        by_port[start as usize..end].fill(group);
    }
    (by_port, lists)
}

/// A compiled group, and whether its database came from the cache.
type Built<M> = (Group<Database<M>>, bool);

/// Compiled groups in order, and whether every database came from the cache.
type BuiltAll<M> = (Vec<Group<Database<M>>>, bool);

/// Compiles (or loads) the databases of `builders`, on as many threads as
/// there are cores; returns the groups in order and whether all came from
/// the cache.
pub fn build_all<M: Mode>(
    builders: Vec<GroupBuilder>,
    cache: Option<&Path>,
) -> Result<BuiltAll<M>, EngineError>
where
    Database<M>: Send,
{
    let count = builders.len();
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(count.max(1));
    let queue = std::sync::Mutex::new(builders.into_iter().enumerate());
    let mut built: Vec<(usize, Result<Built<M>, EngineError>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                        let Some((i, builder)) = next else {
                            break;
                        };
                        done.push((i, builder.build::<M>(cache)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    built.sort_by_key(|(i, _)| *i);
    let mut all_cached = true;
    let mut groups = Vec::with_capacity(count);
    for (_, result) in built {
        let (group, cached) = result?;
        all_cached &= cached;
        groups.push(group);
    }
    Ok((groups, all_cached))
}

/// Builds the port groups of a class from its rules (`members`: index and
/// rule), each rule's prefilter pattern given by `fast`. Returns whether
/// every database came from the cache.
pub fn port_groups<'a, M: Mode>(
    class: Class,
    members: &[(u32, &'a Rule)],
    fast: impl Fn(&'a Rule) -> Option<&'a Content>,
    cache: Option<&Path>,
) -> Result<(PortGroups<Database<M>>, bool), EngineError> {
    let block = M::is_block();
    let rule_of: HashMap<u32, &Rule> = members.iter().copied().collect();
    let mut builders = Vec::new();
    let mut group_of_list: HashMap<Vec<u32>, u8> = HashMap::new();
    let mut by_port: [Box<[u8]>; 2] = Default::default();
    for (dir, to_server) in [true, false].into_iter().enumerate() {
        let (ports, lists) = if class.by_port() {
            partition(members, to_server)
        } else {
            let mut all: Vec<u32> = members
                .iter()
                .filter(|(_, rule)| server_ports(rule, to_server).is_some())
                .map(|(index, _)| *index)
                .collect();
            all.sort_unstable();
            (vec![0; 65_536], vec![all])
        };
        let mut local = Vec::with_capacity(lists.len());
        for list in lists {
            let id = match group_of_list.get(&list) {
                Some(&group) => group,
                None => {
                    let mut builder = GroupBuilder::new(class.name(), block);
                    for &index in &list {
                        let rule = rule_of[&index];
                        builder.add(index, rule, fast(rule));
                    }
                    let id = u8::try_from(builders.len()).map_err(|_| EngineError::Hyperscan {
                        group: class.name().into(),
                        reason: "more than 256 rule groups".into(),
                    })?;
                    builders.push(builder);
                    group_of_list.insert(list, id);
                    id
                }
            };
            local.push(id);
        }
        by_port[dir] = ports.iter().map(|&set| local[usize::from(set)]).collect();
    }
    let (groups, all_cached) = build_all::<M>(builders, cache)?;
    Ok((PortGroups { by_port, groups }, all_cached))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rules::{RuleSet, Vars};

    fn rules(text: &str) -> RuleSet {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.rules");
        std::fs::write(&path, text).unwrap();
        RuleSet::load(&[path], &Vars::default())
    }

    fn members(set: &RuleSet) -> Vec<(u32, &Rule)> {
        set.rules
            .iter()
            .enumerate()
            .map(|(i, r)| (i as u32, r))
            .collect()
    }

    fn sids(set: &RuleSet, list: &[u32]) -> Vec<u32> {
        list.iter().map(|&i| set.rules[i as usize].sid).collect()
    }

    #[test]
    fn groups_by_server_port_and_direction() {
        let set = rules(concat!(
            "alert tcp any any -> any 445 (content:\"smb\"; sid:1;)\n",
            "alert tcp any any -> any any (content:\"all\"; sid:2;)\n",
            "alert tcp any 80 -> any any (flow:to_client; content:\"web\"; sid:3;)\n",
            "alert tcp any any -> any 1024: (flow:to_server; content:\"high\"; sid:4;)\n",
            "alert tcp any 53 <> any any (content:\"dns\"; sid:5;)\n",
        ));
        let members = members(&set);
        let (ports, lists) = partition(&members, true);
        let at = |port: usize| sids(&set, &lists[usize::from(ports[port])]);
        assert_eq!(at(445), [1, 2, 5]);
        assert_eq!(at(80), [2, 5]);
        assert_eq!(at(53), [2, 5]);
        assert_eq!(at(8080), [2, 4, 5]);
        let (ports, lists) = partition(&members, false);
        let at = |port: usize| sids(&set, &lists[usize::from(ports[port])]);
        // To the client, by source port: sid 1 names any.
        assert_eq!(at(80), [1, 2, 3, 5]);
        assert_eq!(at(53), [1, 2, 5]);
        assert_eq!(at(445), [1, 2, 5]);
    }

    #[test]
    fn past_the_cap_the_smallest_groups_merge() {
        // Ports 10, 20, ... (none a priority port) and 80 and 53.
        let mut text: String = (1..=(MAX_GROUPS as u32 + 10))
            .map(|sid| {
                let port = sid * 10 + 1;
                format!("alert udp any any -> any {port} (content:\"p{sid}\"; sid:{sid};)\n")
            })
            .collect();
        text += "alert udp any any -> any 80 (content:\"web\"; sid:100;)\n";
        text += "alert udp any any -> any 53 (content:\"dns\"; sid:101;)\n";
        text += "alert udp any any -> any 2000:2100 (content:\"big\"; sid:102;)\n";
        text += "alert udp any any -> any 2050 (content:\"big2\"; sid:103;)\n";
        let set = rules(&text);
        let members = members(&set);
        let (ports, lists) = partition(&members, true);
        // The empty set, 80, 53, four more, and the merged rest.
        assert_eq!(lists.len(), 3 + MAX_GROUPS + 1, "{lists:?}");
        // Every port still finds its rule.
        for sid in 1..=(MAX_GROUPS as u32 + 10) {
            let list = &lists[usize::from(ports[(sid * 10 + 1) as usize])];
            assert!(sids(&set, list).contains(&sid), "sid {sid}");
        }
        assert_eq!(sids(&set, &lists[usize::from(ports[80])]), [100]);
        assert_eq!(sids(&set, &lists[usize::from(ports[53])]), [101]);
        assert_eq!(sids(&set, &lists[usize::from(ports[2050])]), [102, 103]);
        assert!(lists[usize::from(ports[7])].is_empty());
    }

    /// Over generated headers (port lists, ranges, negations, `<>`,
    /// directions), every rule whose ports and direction let it match a
    /// payload is in that payload's group.
    #[test]
    fn no_rule_that_could_match_is_left_out() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let port = |next: &mut dyn FnMut(u64) -> u64| -> String {
            let common = [22, 53, 80, 443, 445, 1024, 8080, 65535];
            let one = |next: &mut dyn FnMut(u64) -> u64| match next(3) {
                0 => common[next(common.len() as u64) as usize].to_string(),
                _ => next(65_536).to_string(),
            };
            match next(6) {
                0 => "any".into(),
                1 => one(next),
                2 => format!("{}:", one(next)),
                3 => format!("[{},{}]", one(next), one(next)),
                4 => format!("!{}", one(next)),
                _ => {
                    let (a, b) = (next(65_536), next(65_536));
                    format!("{}:{}", a.min(b), a.max(b))
                }
            }
        };
        let mut text = String::new();
        for sid in 1..=300 {
            let (sp, dp) = (port(&mut next), port(&mut next));
            let arrow = if next(5) == 0 { "<>" } else { "->" };
            let flow = ["", "flow:to_server; ", "flow:to_client; "][next(3) as usize];
            text +=
                &format!("alert udp any {sp} {arrow} any {dp} ({flow}content:\"x\"; sid:{sid};)\n");
        }
        let set = rules(&text);
        assert_eq!(set.rules.len(), 300);
        let members = members(&set);
        let directions = [partition(&members, true), partition(&members, false)];
        for _ in 0..20_000 {
            let (sp, dp) = (next(65_536) as u16, next(65_536) as u16);
            let to_server = next(2) == 0;
            let (ports, lists) = &directions[usize::from(!to_server)];
            let key = if to_server { dp } else { sp };
            let group = &lists[usize::from(ports[usize::from(key)])];
            for (index, rule) in &members {
                let forward = rule.src_ports.matches(sp) && rule.dst_ports.matches(dp);
                let backward =
                    rule.bidirectional && rule.src_ports.matches(dp) && rule.dst_ports.matches(sp);
                let direction = rule.flow.to_server.is_none_or(|t| t == to_server);
                if (forward || backward) && direction {
                    assert!(group.contains(index), "sid {} {sp} -> {dp}", rule.sid);
                }
            }
        }
    }

    /// The end bounds of each rule's fast pattern (its longest content).
    fn bounds_of(text: &str) -> Vec<Option<(u64, u64)>> {
        let set = rules(text);
        assert!(set.rejected.is_empty(), "{:?}", set.rejected);
        set.rules
            .iter()
            .map(|rule| {
                let fast = rule
                    .matches
                    .iter()
                    .filter_map(|m| match m {
                        Match::Content(c) if !c.negated => Some(c),
                        _ => None,
                    })
                    .max_by_key(|c| c.bytes.len())
                    .unwrap();
                fast_bounds(rule, fast)
            })
            .collect()
    }

    #[test]
    fn bounds_follow_absolute_offset_and_depth() {
        let bounds = bounds_of(concat!(
            "alert udp any any -> any any (content:\"abcd\"; depth:4; sid:1;)\n",
            "alert udp any any -> any any (content:\"abcd\"; offset:2; depth:10; sid:2;)\n",
            "alert udp any any -> any any (content:\"abcd\"; offset:2; sid:3;)\n",
            "alert udp any any -> any any (content:\"abcd\"; startswith; sid:4;)\n",
            "alert udp any any -> any any (content:\"abcd\"; sid:5;)\n",
            "alert udp any any -> any any (content:\"abcd\"; depth:9000; sid:6;)\n",
        ));
        assert_eq!(
            bounds,
            [
                Some((4, 4)),
                Some((6, 12)),
                Some((6, u64::MAX)),
                Some((4, 4)),
                Some((4, u64::MAX)),
                Some((4, 9000)),
            ]
        );
    }

    #[test]
    fn bounds_follow_relative_chains() {
        let bounds = bounds_of(concat!(
            // ET's Vuze DHT rule: the fast pattern ends exactly at 22.
            "alert udp any any -> any any (content:\"|00 00 04|\"; depth:3; ",
            "content:\"|00 00 00 00 00|\"; distance:14; within:5; sid:1;)\n",
            "alert udp any any -> any any (content:\"ab\"; offset:1; depth:4; ",
            "content:\"wxyz\"; distance:-1; within:10; sid:2;)\n",
            // Unbounded before: unbounded after, past the first end.
            "alert udp any any -> any any (content:\"ab\"; content:\"wxyz\"; within:10; sid:3;)\n",
            // A pcre moves the cursor where nothing bounds it.
            "alert udp any any -> any any (content:\"ab\"; depth:2; pcre:\"/c+/R\"; ",
            "content:\"wxyz\"; within:10; sid:4;)\n",
            // A negated content does not move it.
            "alert udp any any -> any any (content:\"ab\"; depth:2; content:!\"q\"; ",
            "content:\"wxyz\"; distance:0; within:6; sid:5;)\n",
            // A relative content first in its buffer counts from its start.
            "alert udp any any -> any any (content:\"wxyz\"; distance:3; within:4; sid:6;)\n",
            // Contents of another buffer do not count.
            "alert tcp any any -> any any (content:\"GET\"; http_method; content:\"wxyz\"; ",
            "http_uri; distance:0; within:4; sid:7;)\n",
            // The certificates are scanned one by one; the depth counts in
            // each.
            "alert tls any any -> any any (tls.certs; content:\"wxyz\"; depth:400; sid:8;)\n",
        ));
        assert_eq!(
            bounds,
            [
                Some((22, 22)),
                Some((6, 14)),
                Some((6, u64::MAX)),
                None,
                Some((6, 8)),
                Some((7, 7)),
                Some((4, 4)),
                Some((4, 400)),
            ]
        );
    }

    /// Matches of a block database built from `text` over `data`: sids.
    fn matches(text: &str, data: &[u8]) -> Vec<u32> {
        let set = rules(text);
        let mut builder = GroupBuilder::new("test", true);
        for (index, rule) in members(&set) {
            let fast = rule.matches.iter().find_map(|m| match m {
                Match::Content(c) => Some(c),
                _ => None,
            });
            builder.add(index, rule, fast);
        }
        let (group, _) = builder.build::<hyperscan::Block>(None).unwrap();
        let db = group.database.as_ref().unwrap();
        let scratch = db.alloc_scratch().unwrap();
        let mut found = Vec::new();
        db.scan(data, &scratch, |id, _, end, _| {
            found.extend(
                group
                    .rules_ending(id, end)
                    .map(|i| set.rules[i as usize].sid),
            );
            Matching::Continue
        })
        .unwrap();
        found.sort_unstable();
        found.dedup();
        found
    }

    #[test]
    fn rules_are_listed_only_where_their_pattern_can_end() {
        let text = concat!(
            "alert udp any any -> any any (content:\"|00 01|\"; depth:2; sid:1;)\n",
            "alert udp any any -> any any (content:\"ab\"; offset:3; depth:4; nocase; sid:2;)\n",
            "alert udp any any -> any any (content:\"ab\"; sid:3;)\n",
            // One pattern with sid 2, another window.
            "alert udp any any -> any any (content:\"ab\"; offset:6; nocase; sid:4;)\n",
        );
        assert_eq!(matches(text, b"\x00\x01xab"), [1, 2, 3]);
        assert_eq!(matches(text, b"xxx\x00\x01xab"), [3, 4]);
        assert_eq!(matches(text, b"\n\n\n\nAb"), [2]);
        assert_eq!(matches(text, b"xxxxxxab\x00\x01"), [3, 4]);
    }
}
