//! Named sets of values that rules look buffers up in (`dataset`,
//! `datarep`), as Suricata keeps them.
//!
//! [`Datasets`] holds every set the rules name, with the values read from
//! their `load` (and `state`) files, shared read-only by all workers. A set
//! some rule changes (`dataset:set` or `unset`) is copied into each worker
//! ([`WorkerSets`]) so that workers never share a lock; at shutdown the
//! workers' copies are merged (their union) and written to the set's
//! `save` file. File formats are Suricata's: one value per line, base64 for
//! strings and hex for digests, each optionally followed by `,REPUTATION`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rustc_hash::FxHashMap;

use super::rules::{DatasetKind, DatasetMatch, DatasetOp};

/// Values of one set and their reputations.
pub type Values = FxHashMap<Vec<u8>, u16>;

/// A set file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file could not be read or written.
    #[error("dataset {name}: {path}: {source}")]
    Io {
        /// The set.
        name: String,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is not a value of the set's kind.
    #[error("dataset {name}: {path}:{line}: {reason}")]
    Line {
        /// The set.
        name: String,
        /// The file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Two rules declare the set differently.
    #[error("dataset {name} is of type {first}, not {second}")]
    Conflict {
        /// The set.
        name: String,
        /// Its kind.
        first: &'static str,
        /// The kind the later rule gave.
        second: &'static str,
    },
}

/// One named set.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Its name in the rules.
    pub name: String,
    /// What its values are.
    pub kind: DatasetKind,
    /// Its values as loaded.
    pub values: Values,
    /// Bytes of values it holds at most.
    pub memcap: Option<u64>,
    /// File written at shutdown, relative to the data folder.
    pub save: Option<PathBuf>,
    /// The save file also gives the initial values.
    pub state: bool,
    /// Some rule adds or removes values.
    pub mutable: bool,
    /// The `load` files read into it, each once.
    loaded: Vec<PathBuf>,
}

/// Every set the rules name.
#[derive(Debug, Clone, Default)]
pub struct Datasets {
    sets: Vec<Dataset>,
    by_name: HashMap<String, usize>,
}

impl Datasets {
    /// True when no rule names a set.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// The sets.
    pub fn sets(&self) -> &[Dataset] {
        &self.sets
    }

    /// Registers the set a rule's lookup names (reading its `load` file
    /// the first time), and returns its index.
    pub fn register(&mut self, lookup: &DatasetMatch) -> Result<usize, DatasetError> {
        let id = match self.by_name.get(&lookup.name) {
            Some(&id) => {
                let set = &self.sets[id];
                if set.kind != lookup.kind {
                    return Err(DatasetError::Conflict {
                        name: lookup.name.clone(),
                        first: set.kind.as_str(),
                        second: lookup.kind.as_str(),
                    });
                }
                id
            }
            None => {
                self.sets.push(Dataset {
                    name: lookup.name.clone(),
                    kind: lookup.kind,
                    values: Values::default(),
                    memcap: None,
                    save: None,
                    state: false,
                    mutable: false,
                    loaded: Vec::new(),
                });
                self.by_name
                    .insert(lookup.name.clone(), self.sets.len() - 1);
                self.sets.len() - 1
            }
        };
        let set = &mut self.sets[id];
        if let Some(path) = lookup.load.as_ref().filter(|p| !set.loaded.contains(p)) {
            let values = read_values(&lookup.name, lookup.kind, path)?;
            set.values.extend(values);
            set.loaded.push(path.clone());
        }
        set.mutable |= lookup.op.mutates();
        set.memcap = lookup.memcap.or(set.memcap);
        if lookup.save.is_some() {
            set.save.clone_from(&lookup.save);
            set.state |= lookup.state;
        }
        Ok(id)
    }

    /// Reads the `state` files of the sets that have one from `data_dir`;
    /// a file not there yet is an empty start.
    pub fn load_state(&mut self, data_dir: &Path) -> Result<(), DatasetError> {
        for set in self.sets.iter_mut().filter(|s| s.state) {
            let Some(save) = &set.save else { continue };
            let path = data_dir.join(save);
            if path.exists() {
                let values = read_values(&set.name, set.kind, &path)?;
                set.values.extend(values);
            }
        }
        Ok(())
    }

    /// Writes each set with a `save` file into `data_dir`: the union of the
    /// workers' copies for the sets rules change, the loaded values for the
    /// others. Written under a temporary name, then renamed.
    pub fn save(&self, data_dir: &Path, workers: &[WorkerSets]) -> Result<usize, DatasetError> {
        let mut written = 0;
        for (id, set) in self.sets.iter().enumerate() {
            let Some(save) = &set.save else { continue };
            let mut values = Values::default();
            if set.mutable {
                for worker in workers {
                    if let Some(Some(local)) = worker.local.get(id) {
                        values.extend(local.values.iter().map(|(k, v)| (k.clone(), *v)));
                    }
                }
            } else {
                values.clone_from(&set.values);
            }
            let path = data_dir.join(save);
            write_values(set, &values, &path).map_err(|source| DatasetError::Io {
                name: set.name.clone(),
                path: path.clone(),
                source,
            })?;
            written += 1;
        }
        Ok(written)
    }
}

/// One worker's copies of the sets rules change.
#[derive(Debug, Clone, Default)]
pub struct WorkerSets {
    local: Vec<Option<LocalSet>>,
}

/// A worker's copy of one set.
#[derive(Debug, Clone)]
struct LocalSet {
    values: Values,
    /// Bytes of the values, against the set's memcap.
    bytes: u64,
}

impl LocalSet {
    fn of(set: &Dataset) -> Self {
        Self {
            values: set.values.clone(),
            bytes: set.values.keys().map(|k| k.len() as u64).sum(),
        }
    }
}

impl WorkerSets {
    /// Copies of the mutable sets of `shared`.
    pub fn new(shared: &Datasets) -> Self {
        Self {
            local: shared
                .sets
                .iter()
                .map(|s| s.mutable.then(|| LocalSet::of(s)))
                .collect(),
        }
    }

    /// This worker's copies for the sets of `new` (a reload), keeping what
    /// it holds of the sets `old` had under the same name and kind.
    pub fn carried_over(self, old: &Datasets, new: &Datasets) -> Self {
        let mut kept: HashMap<(&str, DatasetKind), LocalSet> = old
            .sets
            .iter()
            .zip(self.local)
            .filter_map(|(set, local)| Some(((set.name.as_str(), set.kind), local?)))
            .collect();
        Self {
            local: new
                .sets
                .iter()
                .map(|set| {
                    set.mutable.then(|| {
                        kept.remove(&(set.name.as_str(), set.kind))
                            .unwrap_or_else(|| LocalSet::of(set))
                    })
                })
                .collect(),
        }
    }

    /// Runs lookup `op` of `value` in set `id`: true when it matches.
    pub fn apply(&mut self, shared: &Datasets, id: usize, op: DatasetOp, value: &[u8]) -> bool {
        let Some(set) = shared.sets.get(id) else {
            return false;
        };
        let fits = match set.kind {
            DatasetKind::String => true,
            DatasetKind::Md5 => value.len() == 16,
            DatasetKind::Sha256 => value.len() == 32,
        };
        let local = self.local.get_mut(id).and_then(Option::as_mut);
        match (op, local) {
            (DatasetOp::Set, Some(local)) => {
                let bytes = local.bytes + value.len() as u64;
                if !fits
                    || local.values.contains_key(value)
                    || set.memcap.is_some_and(|cap| bytes > cap)
                {
                    return false;
                }
                local.values.insert(value.to_vec(), 0);
                local.bytes = bytes;
                true
            }
            (DatasetOp::Unset, Some(local)) => {
                let removed = local.values.remove(value).is_some();
                if removed {
                    local.bytes -= value.len() as u64;
                }
                removed
            }
            (DatasetOp::Set | DatasetOp::Unset, None) => false,
            (DatasetOp::IsSet, local) => {
                fits && local.map_or(&set.values, |l| &l.values).contains_key(value)
            }
            (DatasetOp::IsNotSet, local) => {
                !(fits && local.map_or(&set.values, |l| &l.values).contains_key(value))
            }
            (DatasetOp::Rep(cmp, wanted), local) => local
                .map_or(&set.values, |l| &l.values)
                .get(value)
                .is_some_and(|&rep| cmp.holds(rep, wanted)),
        }
    }
}

fn read_values(name: &str, kind: DatasetKind, path: &Path) -> Result<Values, DatasetError> {
    let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Io {
        name: name.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    let mut values = Values::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: &str| DatasetError::Line {
            name: name.to_owned(),
            path: path.to_owned(),
            line: i + 1,
            reason: reason.to_owned(),
        };
        let (value, rep) = match line.split_once(',') {
            Some((value, rep)) => (
                value.trim(),
                rep.trim()
                    .parse::<u16>()
                    .map_err(|_| bad("reputation is not a number from 0 to 65535"))?,
            ),
            None => (line, 0),
        };
        let bytes = match kind {
            DatasetKind::String => base64::engine::general_purpose::STANDARD
                .decode(value)
                .map_err(|_| bad("not base64"))?,
            DatasetKind::Md5 | DatasetKind::Sha256 => {
                let want = if kind == DatasetKind::Md5 { 16 } else { 32 };
                let bytes = hex(value).ok_or_else(|| bad("not hex"))?;
                if bytes.len() != want {
                    return Err(bad(&format!("not a {} digest", kind.as_str())));
                }
                bytes
            }
        };
        values.insert(bytes, rep);
    }
    Ok(values)
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn write_values(set: &Dataset, values: &Values, path: &Path) -> std::io::Result<()> {
    let mut lines: Vec<String> = values
        .iter()
        .map(|(value, rep)| {
            let text = match set.kind {
                DatasetKind::String => base64::engine::general_purpose::STANDARD.encode(value),
                DatasetKind::Md5 | DatasetKind::Sha256 => {
                    value.iter().map(|b| format!("{b:02x}")).collect()
                }
            };
            if *rep == 0 {
                text
            } else {
                format!("{text},{rep}")
            }
        })
        .collect();
    lines.sort();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rules::dataset::{parse_datarep, parse_dataset};
    use crate::detect::rules::RepOp;

    #[test]
    fn set_and_unset_match_when_they_change_the_set_and_are_saved() {
        let dir = std::env::temp_dir().join(format!("mirador-datasets-{}", std::process::id()));
        let mut sets = Datasets::default();
        let set = sets
            .register(&parse_dataset("set,ua,type string,save ua.csv").unwrap())
            .unwrap();
        let unset = sets.register(&parse_dataset("unset,ua").unwrap()).unwrap();
        assert_eq!(set, unset);
        let mut worker = WorkerSets::new(&sets);
        assert!(worker.apply(&sets, set, DatasetOp::Set, b"agent1"));
        assert!(!worker.apply(&sets, set, DatasetOp::Set, b"agent1"));
        assert!(worker.apply(&sets, set, DatasetOp::Set, b"agent2"));
        assert!(worker.apply(&sets, set, DatasetOp::IsSet, b"agent2"));
        assert!(worker.apply(&sets, set, DatasetOp::Unset, b"agent1"));
        assert!(!worker.apply(&sets, set, DatasetOp::Unset, b"agent1"));
        assert!(worker.apply(&sets, set, DatasetOp::IsNotSet, b"agent1"));
        assert_eq!(sets.save(&dir, &[worker]).unwrap(), 1);
        // Suricata's expected/after.csv for the same steps.
        assert_eq!(
            std::fs::read_to_string(dir.join("ua.csv")).unwrap(),
            "YWdlbnQy\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reputations_are_read_and_compared() {
        let dir = std::env::temp_dir().join(format!("mirador-datarep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("names.rep");
        std::fs::write(&file, "Z29vZ2xlLmNvbQ==,255\nZXhhbXBsZS5jb20=,10\n").unwrap();
        let mut lookup = parse_datarep("names, >, 200").unwrap();
        lookup.load = Some(file.clone());
        let mut sets = Datasets::default();
        let id = sets.register(&lookup).unwrap();
        let mut worker = WorkerSets::new(&sets);
        let rep = DatasetOp::Rep(RepOp::Greater, 200);
        assert!(worker.apply(&sets, id, rep, b"google.com"));
        assert!(!worker.apply(&sets, id, rep, b"example.com"));
        assert!(!worker.apply(&sets, id, rep, b"other.com"));
        // A second rule naming the same file does not read it again.
        std::fs::write(&file, "Z29vZ2xlLmNvbQ==,big\n").unwrap();
        assert_eq!(sets.register(&lookup).unwrap(), id);
        let err = Datasets::default().register(&lookup).unwrap_err();
        assert!(err.to_string().contains("names.rep:1"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
