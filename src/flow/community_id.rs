//! Community ID flow hashing, version 1.
//!
//! The hash lets a flow in mirador's output be joined with the same flow in
//! Zeek, Suricata or a firewall log. It is the SHA-1 of the seed, both
//! addresses, the protocol and both ports in network byte order, with the
//! endpoints ordered so that both directions hash alike, Base64-encoded and
//! prefixed with `1:` (specification: github.com/corelight/community-id-spec).

use std::net::IpAddr;

use base64::Engine;
use sha1::{Digest, Sha1};

use super::key::icmp_ports;
use crate::decode::ip_proto;

/// Community ID v1 of a flow.
///
/// `src_port` and `dst_port` are the transport ports; for ICMP and ICMPv6
/// they are the message type and code, mapped here as the specification says.
/// Protocols without ports hash with both ports zero.
pub fn community_id_v1(
    seed: u16,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    src_port: u16,
    dst_port: u16,
) -> String {
    let (mut sport, mut dport, one_way) = match proto {
        ip_proto::ICMP => icmp_ports(src_port as u8, dst_port as u8, false),
        ip_proto::ICMPV6 => icmp_ports(src_port as u8, dst_port as u8, true),
        _ => (src_port, dst_port, false),
    };
    let (mut a, mut b) = (src, dst);
    if !one_way && (a, sport) > (b, dport) {
        std::mem::swap(&mut a, &mut b);
        std::mem::swap(&mut sport, &mut dport);
    }
    let has_ports = matches!(
        proto,
        ip_proto::TCP | ip_proto::UDP | ip_proto::ICMP | ip_proto::ICMPV6 | SCTP
    );
    let mut hasher = Sha1::new();
    hasher.update(seed.to_be_bytes());
    hash_addr(&mut hasher, a);
    hash_addr(&mut hasher, b);
    hasher.update([proto, 0]);
    if has_ports {
        hasher.update(sport.to_be_bytes());
        hasher.update(dport.to_be_bytes());
    }
    let digest = hasher.finalize();
    format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// Stream Control Transmission Protocol: hashed with ports like TCP and UDP.
const SCTP: u8 = 132;

fn hash_addr(hasher: &mut Sha1, addr: IpAddr) {
    match addr {
        IpAddr::V4(v4) => hasher.update(v4.octets()),
        IpAddr::V6(v6) => hasher.update(v6.octets()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(src: &str, dst: &str, proto: u8, sport: u16, dport: u16) -> String {
        community_id_v1(
            0,
            src.parse().unwrap(),
            dst.parse().unwrap(),
            proto,
            sport,
            dport,
        )
    }

    /// The baseline values published with the specification
    /// (community-id-spec, `baseline/baseline_deflt.json`).
    #[test]
    fn matches_specification_baseline() {
        assert_eq!(
            id("128.232.110.120", "66.35.250.204", 6, 34855, 80),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
        assert_eq!(
            id("66.35.250.204", "128.232.110.120", 6, 80, 34855),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
        assert_eq!(
            id("192.168.1.52", "8.8.8.8", 17, 54585, 53),
            "1:d/FP5EW3wiY1vCndhwleRRKHowQ="
        );
        assert_eq!(
            id("192.168.0.89", "192.168.0.1", 1, 8, 0),
            "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="
        );
        assert_eq!(
            id("192.168.0.1", "192.168.0.89", 1, 0, 8),
            "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="
        );
        assert_eq!(
            id(
                "fe80::200:86ff:fe05:80da",
                "fe80::260:97ff:fe07:69ea",
                58,
                135,
                0
            ),
            "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="
        );
    }

    #[test]
    fn one_way_icmp_keeps_its_orientation() {
        assert_eq!(
            id("192.168.0.89", "192.168.0.1", 1, 3, 1),
            "1:LXCfhMUFbYXe+CEMrQuZCbiLY3o="
        );
        assert_eq!(
            id("192.168.0.1", "192.168.0.89", 1, 3, 1),
            "1:o3zT92uTgnRWv/YrDVeXcWumpC4="
        );
    }
}
