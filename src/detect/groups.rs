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
//! pattern, which reports every rule of it. In block mode a fast pattern
//! with an absolute `offset`/`depth` carries the bounds of where it can end
//! (`min_offset`/`max_offset`). The `hyperscan` crate (0.3) compiles a
//! pattern set with `hs_compile_multi`, which takes no such extensions, so
//! the database reports these patterns anywhere for now; verification
//! applies `offset`/`depth` either way.
//! Patterns may report more than once per scan: Hyperscan's `SINGLEMATCH`
//! cut the matches on the benign mix 45-fold but made the packet scans
//! slower (its per-scan bookkeeping costs more than the candidate stamps
//! that already drop repeats).

use std::collections::HashMap;
use std::path::Path;

use hyperscan::prelude::*;
use hyperscan::{ExprExt, Serialized};
use sha1::{Digest, Sha1};

use super::engine::EngineError;
use super::rules::{Content, PortSpec, Rule};

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

/// Where a fast pattern can end in its buffer: (first, last) end offset,
/// from an absolute `offset`/`depth` or `startswith`.
fn end_bounds(content: &Content) -> Option<(u64, u64)> {
    if content.is_relative() {
        return None;
    }
    let len = content.bytes.len() as u64;
    let offset = u64::from(content.offset.unwrap_or(0));
    let depth = match (content.depth, content.startswith) {
        (Some(depth), _) => u64::from(depth),
        (None, true) => len,
        (None, false) if offset > 0 => return Some((offset + len, u64::MAX)),
        (None, false) => return None,
    };
    (depth >= len).then_some((offset + len, offset + depth))
}

/// A pattern's identity in a database: its bytes, caselessness and bounds.
type PatternKey = (Vec<u8>, bool, Option<(u64, u64)>);

/// The rules of one group as Hyperscan patterns, before compiling.
pub struct GroupBuilder {
    name: String,
    block: bool,
    patterns: Vec<Pattern>,
    ids: HashMap<PatternKey, usize>,
    rules: Vec<Vec<u32>>,
    always: Vec<u32>,
}

impl GroupBuilder {
    /// An empty group named `name` (in cache files and errors); `block`
    /// for a block-mode database, where patterns honour their bounds.
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
    pub fn add(&mut self, index: u32, content: Option<&Content>) {
        let Some(content) = content else {
            self.always.push(index);
            return;
        };
        let bounds = if self.block {
            end_bounds(content)
        } else {
            None
        };
        let key = (content.bytes.clone(), content.nocase, bounds);
        if let Some(&id) = self.ids.get(&key) {
            self.rules[id].push(index);
            return;
        }
        let mut flags = CompileFlags::empty();
        if content.nocase {
            flags |= CompileFlags::CASELESS;
        }
        let mut ext = ExprExt::default();
        if let Some((min, max)) = bounds {
            ext.set_min_offset(min);
            if max != u64::MAX {
                ext.set_max_offset(max);
            }
        }
        let id = self.patterns.len();
        self.patterns.push(Pattern {
            expression: literal_expression(&content.bytes),
            flags,
            id: Some(id),
            ext,
            som: None,
        });
        self.ids.insert(key, id);
        self.rules.push(vec![index]);
    }

    /// Compiles the database in mode `M`, or loads it from `cache` when a
    /// database of the same patterns was compiled before. Returns whether it
    /// came from the cache.
    pub fn build<M: Mode>(
        self,
        cache: Option<&Path>,
    ) -> Result<(Group<Database<M>>, bool), EngineError> {
        // A group without patterns has nothing to compile.
        let mut cached = true;
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
                            group: self.name.clone(),
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
        let mut pattern_starts = Vec::with_capacity(self.rules.len() + 1);
        let mut pattern_rules = Vec::new();
        for rules in &self.rules {
            pattern_starts.push(pattern_rules.len() as u32);
            pattern_rules.extend_from_slice(rules);
        }
        pattern_starts.push(pattern_rules.len() as u32);
        Ok((
            Group {
                database,
                pattern_starts,
                pattern_rules,
                always: self.always,
            },
            cached,
        ))
    }
}

/// The cache key of a database: its mode's group name is in the file name;
/// this hashes the Hyperscan version and every pattern with its flags and
/// bounds.
fn key_of(patterns: &[Pattern]) -> String {
    let mut hash = Sha1::new();
    hash.update(hyperscan::version_str().to_bytes());
    for p in patterns {
        hash.update(p.expression.as_bytes());
        hash.update(p.flags.bits().to_le_bytes());
        hash.update(p.id.unwrap_or(usize::MAX).to_le_bytes());
        for bound in [p.ext.min_offset(), p.ext.max_offset()] {
            hash.update(bound.unwrap_or(u64::MAX).to_le_bytes());
        }
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
                        builder.add(index, fast(rule_of[&index]));
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

    #[test]
    fn bounds_follow_absolute_offset_and_depth() {
        let content = |offset, depth, startswith| Content {
            bytes: b"abcd".to_vec(),
            negated: false,
            nocase: false,
            offset,
            depth,
            distance: None,
            within: None,
            startswith,
            endswith: false,
            fast_pattern: false,
            inspected: Default::default(),
        };
        assert_eq!(end_bounds(&content(None, Some(4), false)), Some((4, 4)));
        assert_eq!(
            end_bounds(&content(Some(2), Some(10), false)),
            Some((6, 12))
        );
        assert_eq!(
            end_bounds(&content(Some(2), None, false)),
            Some((6, u64::MAX))
        );
        assert_eq!(end_bounds(&content(None, None, true)), Some((4, 4)));
        assert_eq!(end_bounds(&content(None, None, false)), None);
    }
}
