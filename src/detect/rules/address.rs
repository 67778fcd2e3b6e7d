//! Rule header addresses and ports: lists, negation, ranges and variables.
//!
//! Suricata's grammar: `any`, a single address or CIDR, `[a, b, ...]` lists
//! (nested), `!x` negation, and `$NAME` variables from the configuration's
//! address and port groups. A list matches when one of its positive items
//! matches and none of its negated items does (a list of negated items only
//! matches everything else).

use std::collections::HashMap;
use std::net::IpAddr;

use super::RuleErrorKind;

/// An IPv4 or IPv6 network: address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d`, `a.b.c.d/N`, `a.b.c.d/netmask` or an IPv6 network.
    pub fn parse(text: &str) -> Option<Self> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                // A dotted netmask (192.168.0.0/255.255.0.0).
                _ => match p.parse::<std::net::Ipv4Addr>() {
                    Ok(mask) if addr.is_ipv4() => u32::from(mask).count_ones() as u8,
                    _ => return None,
                },
            },
        };
        Some(Self { addr, prefix })
    }

    /// True when `ip` is inside the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let shift = 32 - u32::from(self.prefix);
                shift == 32 || (u32::from(net) >> shift) == (u32::from(ip) >> shift)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let shift = 128 - u32::from(self.prefix);
                shift == 128 || (u128::from(net) >> shift) == (u128::from(ip) >> shift)
            }
            _ => false,
        }
    }
}

impl Cidr {
    /// The first and last address of the network, as integers (IPv4 in
    /// the low 32 bits).
    fn range(&self) -> (bool, u128, u128) {
        match self.addr {
            IpAddr::V4(a) => {
                let host = 32 - u32::from(self.prefix);
                let mask = if host == 32 { 0 } else { u32::MAX << host };
                let lo = u32::from(a) & mask;
                (true, u128::from(lo), u128::from(lo | !mask))
            }
            IpAddr::V6(a) => {
                let host = 128 - u32::from(self.prefix);
                let mask = if host == 128 { 0 } else { u128::MAX << host };
                let lo = u128::from(a) & mask;
                (false, lo, lo | !mask)
            }
        }
    }
}

/// A list of networks as sorted, merged address ranges: a lookup is a
/// binary search however long the list (IP reputation rules list hundreds).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetSet {
    v4: Vec<(u128, u128)>,
    v6: Vec<(u128, u128)>,
}

impl NetSet {
    fn from_nets(nets: &[Cidr]) -> Self {
        let mut set = Self::default();
        for net in nets {
            let (v4, lo, hi) = net.range();
            if v4 { &mut set.v4 } else { &mut set.v6 }.push((lo, hi));
        }
        set.merged()
    }

    /// Every network of `sets`, in one set.
    pub fn union<'a>(sets: impl IntoIterator<Item = &'a NetSet>) -> Self {
        let mut set = Self::default();
        for other in sets {
            set.v4.extend_from_slice(&other.v4);
            set.v6.extend_from_slice(&other.v6);
        }
        set.merged()
    }

    /// How many addresses the set holds (saturating).
    pub fn addresses(&self) -> u128 {
        let span = |ranges: &[(u128, u128)]| {
            ranges.iter().fold(0u128, |n, (lo, hi)| {
                n.saturating_add(hi - lo).saturating_add(1)
            })
        };
        span(&self.v4).saturating_add(span(&self.v6))
    }

    /// The ranges sorted, with those that touch or overlap merged.
    fn merged(mut self) -> Self {
        for ranges in [&mut self.v4, &mut self.v6] {
            ranges.sort_unstable();
            let mut merged: Vec<(u128, u128)> = Vec::with_capacity(ranges.len());
            for &(lo, hi) in ranges.iter() {
                match merged.last_mut() {
                    Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                    _ => merged.push((lo, hi)),
                }
            }
            *ranges = merged;
        }
        self
    }

    /// True when `ip` is in one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (ranges, value) = match ip {
            IpAddr::V4(a) => (&self.v4, u128::from(u32::from(a))),
            IpAddr::V6(a) => (&self.v6, u128::from(a)),
        };
        let at = ranges.partition_point(|r| r.1 < value);
        ranges.get(at).is_some_and(|r| r.0 <= value)
    }
}

/// An address expression of a rule header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressSpec {
    /// `any`.
    Any,
    /// One network.
    Net(Cidr),
    /// `!x`.
    Not(Box<AddressSpec>),
    /// `[a, b, ...]`.
    List(Vec<AddressSpec>),
    /// A list of plain networks, as ranges.
    Set(NetSet),
}

impl AddressSpec {
    /// A list whose items are all plain networks becomes a [`NetSet`].
    fn list(items: Vec<AddressSpec>) -> Self {
        let nets: Option<Vec<Cidr>> = items
            .iter()
            .map(|item| match item {
                Self::Net(net) => Some(*net),
                _ => None,
            })
            .collect();
        match nets {
            Some(nets) if !nets.is_empty() => Self::Set(NetSet::from_nets(&nets)),
            _ => Self::List(items),
        }
    }

    /// The networks that hold every address this expression matches, when
    /// it names them (a network or a list of networks); `None` when it may
    /// match anywhere.
    pub fn bounds(&self) -> Option<NetSet> {
        match self {
            Self::Net(net) => Some(NetSet::from_nets(&[*net])),
            Self::Set(set) => Some(set.clone()),
            Self::Any | Self::Not(_) | Self::List(_) => None,
        }
    }

    /// True when `ip` matches.
    pub fn matches(&self, ip: IpAddr) -> bool {
        match self {
            Self::Any => true,
            Self::Net(net) => net.contains(ip),
            Self::Set(set) => set.contains(ip),
            Self::Not(inner) => !inner.matches(ip),
            Self::List(items) => list_matches(
                items,
                |item| item.matches(ip),
                |item| matches!(item, Self::Not(_)),
            ),
        }
    }
}

/// A port expression of a rule header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortSpec {
    /// `any`.
    Any,
    /// `lo:hi` (either side may be open), or a single port when equal.
    Range(u16, u16),
    /// `!x`.
    Not(Box<PortSpec>),
    /// `[a, b, ...]`.
    List(Vec<PortSpec>),
}

impl PortSpec {
    /// Adds the ports where this expression may change from matching to
    /// not: each range's first port and the one after its last. Between
    /// two consecutive boundaries every port matches alike.
    pub fn boundaries(&self, out: &mut Vec<u32>) {
        match self {
            Self::Any => {}
            Self::Range(lo, hi) => out.extend([u32::from(*lo), u32::from(*hi) + 1]),
            Self::Not(inner) => inner.boundaries(out),
            Self::List(items) => items.iter().for_each(|item| item.boundaries(out)),
        }
    }

    /// True when `port` matches.
    pub fn matches(&self, port: u16) -> bool {
        match self {
            Self::Any => true,
            Self::Range(lo, hi) => (*lo..=*hi).contains(&port),
            Self::Not(inner) => !inner.matches(port),
            Self::List(items) => list_matches(
                items,
                |item| item.matches(port),
                |item| matches!(item, Self::Not(_)),
            ),
        }
    }
}

fn list_matches<T>(items: &[T], hit: impl Fn(&T) -> bool, negated: impl Fn(&T) -> bool) -> bool {
    let mut any_positive = false;
    let mut positive_hit = false;
    for item in items {
        if negated(item) {
            if !hit(item) {
                return false;
            }
        } else {
            any_positive = true;
            positive_hit |= hit(item);
        }
    }
    positive_hit || !any_positive
}

/// Address and port groups that rules name as `$VAR`.
#[derive(Debug, Clone)]
pub struct Vars {
    addresses: HashMap<String, String>,
    ports: HashMap<String, String>,
}

impl Default for Vars {
    /// Suricata's default `address-groups` and `port-groups`.
    fn default() -> Self {
        let addresses = [
            ("HOME_NET", "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]"),
            ("EXTERNAL_NET", "!$HOME_NET"),
            ("HTTP_SERVERS", "$HOME_NET"),
            ("SMTP_SERVERS", "$HOME_NET"),
            ("SQL_SERVERS", "$HOME_NET"),
            ("DNS_SERVERS", "$HOME_NET"),
            ("TELNET_SERVERS", "$HOME_NET"),
            ("AIM_SERVERS", "$EXTERNAL_NET"),
            ("DC_SERVERS", "$HOME_NET"),
            ("DNP3_SERVER", "$HOME_NET"),
            ("DNP3_CLIENT", "$HOME_NET"),
            ("MODBUS_CLIENT", "$HOME_NET"),
            ("MODBUS_SERVER", "$HOME_NET"),
            ("ENIP_CLIENT", "$HOME_NET"),
            ("ENIP_SERVER", "$HOME_NET"),
        ];
        let ports = [
            ("HTTP_PORTS", "80"),
            ("SHELLCODE_PORTS", "!80"),
            ("ORACLE_PORTS", "1521"),
            ("SSH_PORTS", "22"),
            ("DNP3_PORTS", "20000"),
            ("MODBUS_PORTS", "502"),
            ("FILE_DATA_PORTS", "[$HTTP_PORTS,110,143]"),
            ("FTP_PORTS", "21"),
            ("GENEVE_PORTS", "6081"),
            ("VXLAN_PORTS", "4789"),
            ("TEREDO_PORTS", "3544"),
        ];
        let own = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        Self {
            addresses: own(&addresses),
            ports: own(&ports),
        }
    }
}

/// Variables expand at most this deep (a variable naming itself is an error).
const MAX_VAR_DEPTH: usize = 8;

impl Vars {
    /// Sets an address group (`HOME_NET` = `[10.0.0.0/8]`).
    pub fn set_address(&mut self, name: &str, value: &str) {
        self.addresses.insert(name.to_owned(), value.to_owned());
    }

    /// Sets a port group.
    pub fn set_port(&mut self, name: &str, value: &str) {
        self.ports.insert(name.to_owned(), value.to_owned());
    }

    /// Parses an address expression.
    pub fn address(&self, text: &str) -> Result<AddressSpec, RuleErrorKind> {
        self.address_at(text.trim(), 0)
    }

    /// Parses a port expression.
    pub fn port(&self, text: &str) -> Result<PortSpec, RuleErrorKind> {
        self.port_at(text.trim(), 0)
    }

    fn address_at(&self, text: &str, depth: usize) -> Result<AddressSpec, RuleErrorKind> {
        let bad = || RuleErrorKind::Header(format!("bad address {text:?}"));
        if depth > MAX_VAR_DEPTH {
            return Err(RuleErrorKind::Header(format!("variable loop at {text:?}")));
        }
        if text.eq_ignore_ascii_case("any") {
            return Ok(AddressSpec::Any);
        }
        if let Some(rest) = text.strip_prefix('!') {
            return Ok(AddressSpec::Not(Box::new(
                self.address_at(rest.trim(), depth)?,
            )));
        }
        if let Some(name) = text.strip_prefix('$') {
            let value = self
                .addresses
                .get(name)
                .ok_or_else(|| RuleErrorKind::UnknownVariable(name.to_owned()))?;
            return self.address_at(value.trim(), depth + 1);
        }
        if let Some(inner) = text.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or_else(bad)?;
            let items = split_list(inner)
                .ok_or_else(bad)?
                .into_iter()
                .map(|item| self.address_at(item.trim(), depth))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(AddressSpec::list(items));
        }
        Cidr::parse(text).map(AddressSpec::Net).ok_or_else(bad)
    }

    fn port_at(&self, text: &str, depth: usize) -> Result<PortSpec, RuleErrorKind> {
        let bad = || RuleErrorKind::Header(format!("bad port {text:?}"));
        if depth > MAX_VAR_DEPTH {
            return Err(RuleErrorKind::Header(format!("variable loop at {text:?}")));
        }
        if text.eq_ignore_ascii_case("any") {
            return Ok(PortSpec::Any);
        }
        if let Some(rest) = text.strip_prefix('!') {
            return Ok(PortSpec::Not(Box::new(self.port_at(rest.trim(), depth)?)));
        }
        if let Some(name) = text.strip_prefix('$') {
            let value = self
                .ports
                .get(name)
                .ok_or_else(|| RuleErrorKind::UnknownVariable(name.to_owned()))?;
            return self.port_at(value.trim(), depth + 1);
        }
        if let Some(inner) = text.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or_else(bad)?;
            let items = split_list(inner)
                .ok_or_else(bad)?
                .into_iter()
                .map(|item| self.port_at(item.trim(), depth))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(PortSpec::List(items));
        }
        let number = |s: &str| s.trim().parse::<u16>().map_err(|_| bad());
        match text.split_once(':') {
            Some((lo, hi)) => {
                let lo = if lo.trim().is_empty() { 0 } else { number(lo)? };
                let hi = if hi.trim().is_empty() {
                    u16::MAX
                } else {
                    number(hi)?
                };
                if lo > hi {
                    return Err(bad());
                }
                Ok(PortSpec::Range(lo, hi))
            }
            None => {
                let port = number(text)?;
                Ok(PortSpec::Range(port, port))
            }
        }
    }
}

/// Splits a list body on top-level commas; `None` when brackets don't balance.
fn split_list(text: &str) -> Option<Vec<&str>> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.checked_sub(1)?,
            ',' if depth == 0 => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return None;
    }
    items.push(&text[start..]);
    Some(items.into_iter().filter(|s| !s.trim().is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_union_of_sets_merges_their_ranges_and_counts_its_addresses() {
        let set = |text: &str| match Vars::default().address(text).unwrap() {
            AddressSpec::Set(set) => set,
            other => panic!("not a set: {other:?}"),
        };
        let a = set("[10.0.0.0/30,192.0.2.1]");
        let b = set("[10.0.0.4/30,2001:db8::/127]");
        let union = NetSet::union([&a, &b]);
        assert_eq!(union.addresses(), 8 + 1 + 2);
        for inside in ["10.0.0.7", "192.0.2.1", "2001:db8::1"] {
            assert!(union.contains(ip(inside)), "{inside}");
        }
        assert!(!union.contains(ip("10.0.0.8")));
        assert_eq!(AddressSpec::Any.bounds(), None);
        assert_eq!(
            Vars::default().address("!10.0.0.0/8").unwrap().bounds(),
            None
        );
    }

    #[test]
    fn external_net_is_everything_outside_home_net() {
        let vars = Vars::default();
        let external = vars.address("$EXTERNAL_NET").unwrap();
        assert!(external.matches(ip("8.8.8.8")));
        assert!(!external.matches(ip("10.1.2.3")));
        assert!(!external.matches(ip("192.168.1.1")));
        assert!(vars.address("$HOME_NET").unwrap().matches(ip("172.20.0.1")));
    }

    #[test]
    fn list_with_negation_excludes_inside_a_network() {
        let vars = Vars::default();
        let spec = vars
            .address("[10.0.0.0/8, !10.1.1.1, 2001:db8::/32]")
            .unwrap();
        assert!(spec.matches(ip("10.2.3.4")));
        assert!(!spec.matches(ip("10.1.1.1")));
        assert!(spec.matches(ip("2001:db8::1")));
        assert!(!spec.matches(ip("11.0.0.1")));
        let negated_only = vars.address("[!1.2.3.4,!5.6.7.8]").unwrap();
        assert!(negated_only.matches(ip("9.9.9.9")));
        assert!(!negated_only.matches(ip("5.6.7.8")));
    }

    #[test]
    fn ports_take_ranges_open_ends_lists_and_variables() {
        let vars = Vars::default();
        let spec = vars.port("[1024:, !8080, $HTTP_PORTS]").unwrap();
        assert!(spec.matches(80));
        assert!(spec.matches(50000));
        assert!(!spec.matches(8080));
        assert!(!spec.matches(443));
        assert!(vars.port(":1023").unwrap().matches(0));
        assert!(vars.port("!80").unwrap().matches(81));
    }

    #[test]
    fn long_network_lists_become_range_sets_with_the_same_answers() {
        let vars = Vars::default();
        let text = "[1.2.3.4, 10.0.0.0/8, 10.1.0.0/16, 192.168.1.0/255.255.255.0, 2001:db8::/32, 11.0.0.0/8]";
        let spec = vars.address(text).unwrap();
        assert!(matches!(spec, AddressSpec::Set(_)));
        for (ip, hit) in [
            ("1.2.3.4", true),
            ("1.2.3.5", false),
            ("10.200.1.1", true),
            ("11.255.255.255", true),
            ("12.0.0.0", false),
            ("192.168.1.77", true),
            ("192.168.2.1", false),
            ("2001:db8:ffff::1", true),
            ("2001:db9::1", false),
            ("0.0.0.0", false),
        ] {
            assert_eq!(spec.matches(ip.parse().unwrap()), hit, "{ip}");
        }
    }

    #[test]
    fn unknown_variable_and_bad_text_are_errors() {
        let vars = Vars::default();
        assert_eq!(
            vars.address("$NOPE").unwrap_err(),
            RuleErrorKind::UnknownVariable("NOPE".into())
        );
        assert!(vars.address("[10.0.0.0/8").is_err());
        assert!(vars.address("10.0.0.0/40").is_err());
        assert!(vars.port("90:80").is_err());
        assert!(vars.port("http").is_err());
    }
}
