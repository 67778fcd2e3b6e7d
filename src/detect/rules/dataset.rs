//! `dataset` and `datarep`: the buffer looked up in a named set of values.
//!
//! `dataset:<set|isset|isnotset|unset>,NAME[, type T][, load FILE][, save
//! FILE][, state FILE][, memcap SIZE][, hashsize N]` and `datarep:NAME, OP,
//! VALUE[, type T][, load FILE][, memcap SIZE][, hashsize N]`, as in
//! Suricata. `load` is read relative to the rule file's folder; `save` and
//! `state` are written (and `state` also read) relative to
//! `rules.data_dir`. The detection engine owns the sets themselves.

use std::path::PathBuf;

use super::RuleErrorKind;

/// What the values of a set are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DatasetKind {
    /// Any bytes; base64 in files.
    #[default]
    String,
    /// 16-byte MD5 digests; hex in files.
    Md5,
    /// 32-byte SHA-256 digests; hex in files.
    Sha256,
}

impl DatasetKind {
    /// The name rules and files use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Md5 => "md5",
            Self::Sha256 => "sha256",
        }
    }
}

/// A comparison of a value's reputation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepOp {
    /// `<`.
    Less,
    /// `<=`.
    AtMost,
    /// `>`.
    Greater,
    /// `>=`.
    AtLeast,
    /// `==`.
    Equal,
}

impl RepOp {
    /// True when `reputation OP value`.
    pub fn holds(self, reputation: u16, value: u16) -> bool {
        match self {
            Self::Less => reputation < value,
            Self::AtMost => reputation <= value,
            Self::Greater => reputation > value,
            Self::AtLeast => reputation >= value,
            Self::Equal => reputation == value,
        }
    }
}

/// What a lookup does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetOp {
    /// Adds the buffer; matches when it was not there.
    Set,
    /// Matches when the buffer is in the set.
    IsSet,
    /// Matches when it is not.
    IsNotSet,
    /// Removes the buffer; matches when it was there.
    Unset,
    /// Matches when the buffer is in the set with a reputation for which
    /// the comparison holds.
    Rep(RepOp, u16),
}

impl DatasetOp {
    /// True when the operation changes the set.
    pub fn mutates(self) -> bool {
        matches!(self, Self::Set | Self::Unset)
    }
}

/// One `dataset` or `datarep`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetMatch {
    /// The set's name.
    pub name: String,
    /// The lookup.
    pub op: DatasetOp,
    /// The values' kind.
    pub kind: DatasetKind,
    /// File of initial values (`load`), beside the rule file.
    pub load: Option<PathBuf>,
    /// File the set is written to at shutdown (`save` or `state`), in the
    /// data folder.
    pub save: Option<PathBuf>,
    /// `state`: the save file also gives the initial values.
    pub state: bool,
    /// Bytes of values the set holds at most (`memcap`).
    pub memcap: Option<u64>,
}

/// Parses a `dataset` value.
pub fn parse_dataset(value: &str) -> Result<DatasetMatch, RuleErrorKind> {
    let bad = || RuleErrorKind::BadValue {
        keyword: "dataset".into(),
        value: value.into(),
    };
    let mut parts = value.split(',').map(str::trim);
    let op = match parts.next().ok_or_else(bad)? {
        "set" => DatasetOp::Set,
        "isset" => DatasetOp::IsSet,
        "isnotset" => DatasetOp::IsNotSet,
        "unset" => DatasetOp::Unset,
        _ => return Err(bad()),
    };
    let name = parts.next().filter(|n| !n.is_empty()).ok_or_else(bad)?;
    options("dataset", value, name, op, parts)
}

/// Parses a `datarep` value.
pub fn parse_datarep(value: &str) -> Result<DatasetMatch, RuleErrorKind> {
    let bad = || RuleErrorKind::BadValue {
        keyword: "datarep".into(),
        value: value.into(),
    };
    let mut parts = value.split(',').map(str::trim);
    let name = parts.next().filter(|n| !n.is_empty()).ok_or_else(bad)?;
    let op = match parts.next().ok_or_else(bad)? {
        "<" => RepOp::Less,
        "<=" => RepOp::AtMost,
        ">" => RepOp::Greater,
        ">=" => RepOp::AtLeast,
        "==" => RepOp::Equal,
        _ => return Err(bad()),
    };
    let rep = parts.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    options("datarep", value, name, DatasetOp::Rep(op, rep), parts)
}

fn options<'a>(
    keyword: &str,
    value: &str,
    name: &str,
    op: DatasetOp,
    rest: impl Iterator<Item = &'a str>,
) -> Result<DatasetMatch, RuleErrorKind> {
    let bad = || RuleErrorKind::BadValue {
        keyword: keyword.into(),
        value: value.into(),
    };
    let mut found = DatasetMatch {
        name: name.to_owned(),
        op,
        kind: DatasetKind::String,
        load: None,
        save: None,
        state: false,
        memcap: None,
    };
    for option in rest {
        let (key, arg) = option.split_once(char::is_whitespace).ok_or_else(bad)?;
        let arg = arg.trim();
        match key {
            "type" => {
                found.kind = match arg {
                    "string" => DatasetKind::String,
                    "md5" => DatasetKind::Md5,
                    "sha256" => DatasetKind::Sha256,
                    other => {
                        return Err(RuleErrorKind::Unsupported(format!(
                            "{keyword} type {other}"
                        )))
                    }
                }
            }
            "load" => found.load = Some(PathBuf::from(arg)),
            "save" => found.save = Some(PathBuf::from(arg)),
            "state" => {
                found.save = Some(PathBuf::from(arg));
                found.state = true;
            }
            "memcap" => found.memcap = Some(parse_size(arg).ok_or_else(bad)?),
            // A sizing hint for Suricata's hash table; the sets here grow.
            "hashsize" => {
                arg.parse::<u64>().map_err(|_| bad())?;
            }
            _ => return Err(bad()),
        }
    }
    Ok(found)
}

/// `10mb`, `512kb`, `1gb` or plain bytes.
fn parse_size(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let (digits, unit) = match lower.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => lower.split_at(at),
        None => (lower.as_str(), ""),
    };
    let scale = match unit.trim() {
        "" | "b" => 1,
        "kb" | "kib" => 1 << 10,
        "mb" | "mib" => 1 << 20,
        "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_and_datarep_read_as_suricata_writes_them() {
        let set = parse_dataset("set,ua-seen,type string,save after.csv").unwrap();
        assert_eq!(set.op, DatasetOp::Set);
        assert_eq!(set.name, "ua-seen");
        assert_eq!(set.save, Some(PathBuf::from("after.csv")));
        assert_eq!(set.load, None);
        let state =
            parse_dataset("isset, bl, type sha256, state bl.lst, memcap 10mb, hashsize 1024")
                .unwrap();
        assert_eq!(state.kind, DatasetKind::Sha256);
        assert!(state.state && state.load.is_none());
        assert_eq!(state.save, Some(PathBuf::from("bl.lst")));
        assert_eq!(state.memcap, Some(10 << 20));
        let rep = parse_datarep("dns_string, >, 200, load dns_string.rep, type string").unwrap();
        assert_eq!(rep.op, DatasetOp::Rep(RepOp::Greater, 200));
        assert_eq!(rep.load, Some(PathBuf::from("dns_string.rep")));
        assert!(parse_dataset("add,x").is_err());
        assert!(parse_dataset("set").is_err());
        assert!(parse_datarep("x, >, big").is_err());
        assert!(parse_dataset("set,x,colour blue").is_err());
        assert_eq!(
            parse_dataset("isset,x,type ipv4").unwrap_err(),
            RuleErrorKind::Unsupported("dataset type ipv4".into())
        );
    }
}
