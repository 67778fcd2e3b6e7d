//! IP-only rules: those that look at addresses, ports and protocol only,
//! decided once per flow direction, as Suricata's IP-only engine does.
//!
//! Most such rules list the hosts they are about (reputation lists of
//! hundreds of addresses against `$HOME_NET` or `any`). One interval set
//! holds the networks of every rule that names them on one side, the
//! narrower side of each: a flow direction neither of whose addresses is
//! in that set cannot match any of those rules, and costs two binary
//! searches however many rules there are. Rules that may match any
//! address on both sides are checked on every flow direction. This module
//! only narrows the rules; the full header check still runs on each.

use std::net::IpAddr;

use super::rules::{NetSet, Rule};

/// The IP-only rules, behind the interval set of the hosts they name.
#[derive(Debug, Default)]
pub struct IpOnly {
    /// Every network a bounded rule names on its narrower side.
    hosts: NetSet,
    /// Rules that can only match a flow with an address in `hosts`.
    bounded: Vec<u32>,
    /// Rules that may match any pair of addresses.
    open: Vec<u32>,
}

impl IpOnly {
    /// The set over `rules` (index, rule).
    pub fn new<'a>(rules: impl IntoIterator<Item = (u32, &'a Rule)>) -> Self {
        let mut bounds = Vec::new();
        let mut ip_only = Self::default();
        for (index, rule) in rules {
            let narrower = match (rule.src.bounds(), rule.dst.bounds()) {
                (Some(src), Some(dst)) if dst.addresses() < src.addresses() => Some(dst),
                (Some(src), _) => Some(src),
                (None, dst) => dst,
            };
            match narrower {
                Some(hosts) => {
                    bounds.push(hosts);
                    ip_only.bounded.push(index);
                }
                None => ip_only.open.push(index),
            }
        }
        ip_only.hosts = NetSet::union(&bounds);
        ip_only
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.bounded.len() + self.open.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when rule `index` is one of them.
    pub fn contains(&self, index: u32) -> bool {
        // Both lists are in rule order.
        self.bounded.binary_search(&index).is_ok() || self.open.binary_search(&index).is_ok()
    }

    /// The rules a flow direction from `src` to `dst` may match.
    pub fn candidates(&self, src: IpAddr, dst: IpAddr) -> impl Iterator<Item = u32> + '_ {
        let near = self.hosts.contains(src) || self.hosts.contains(dst);
        let bounded: &[u32] = if near { &self.bounded } else { &[] };
        self.open.iter().chain(bounded).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rules::{RuleSet, Vars};

    fn rules(text: &str) -> Vec<Rule> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.rules");
        std::fs::write(&path, text).unwrap();
        let set = RuleSet::load(&[path], &Vars::default());
        set.rules
    }

    #[test]
    fn only_flows_touching_a_named_host_reach_the_bounded_rules() {
        let rules = rules(concat!(
            "alert ip [192.0.2.1,198.51.100.0/24] any -> $HOME_NET any (sid:1;)\n",
            "alert ip $HOME_NET any -> 203.0.113.7 any (sid:2;)\n",
            "alert tcp any any -> any 23 (sid:3;)\n",
        ));
        let set = IpOnly::new(rules.iter().enumerate().map(|(i, r)| (i as u32, r)));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let of = |src: &str, dst: &str| set.candidates(ip(src), ip(dst)).collect::<Vec<_>>();
        assert_eq!(set.len(), 3);
        assert!((0..3).all(|i| set.contains(i)) && !set.contains(3));
        assert_eq!(of("10.0.0.1", "10.0.0.2"), [2]);
        assert_eq!(of("198.51.100.9", "10.0.0.2"), [2, 0, 1]);
        assert_eq!(of("10.0.0.2", "198.51.100.9"), [2, 0, 1]);
        assert_eq!(of("10.0.0.2", "203.0.113.7"), [2, 0, 1]);
        assert_eq!(of("10.0.0.2", "203.0.113.8"), [2]);
    }
}
