//! Transport checksums (RFC 1071 one's-complement sums), checked only when
//! `decode.checksum_validation` is on: captures often carry checksums the
//! NIC never filled in (offload), so replay leaves them alone by default.

use std::net::IpAddr;

use super::{ip_proto, DecodedPacket};

/// Adds `bytes` to a one's-complement sum, as big-endian 16-bit words.
fn add(mut sum: u64, bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(2);
    for word in &mut words {
        sum += u64::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(u16::from_be_bytes([*last, 0]));
    }
    sum
}

fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The sum of the IPv4 or IPv6 pseudo-header.
fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u64 {
    let mut sum = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => add(add(0, &s.octets()), &d.octets()),
        (IpAddr::V6(s), IpAddr::V6(d)) => add(add(0, &s.octets()), &d.octets()),
        _ => 0,
    };
    sum += u64::from(proto) + len as u64;
    sum
}

/// True when the packet's transport checksum is right, or cannot be
/// checked (a capture cut short, a protocol without one, a UDP/IPv4
/// datagram sent without one).
pub fn transport_ok(packet: &DecodedPacket<'_>) -> bool {
    let segment = packet.segment;
    let header_len = segment.len() - packet.payload.len();
    if segment.len() < header_len + packet.payload_len as usize {
        return true;
    }
    let with_pseudo = |proto| {
        fold(add(
            pseudo_header(packet.src, packet.dst, proto, segment.len()),
            segment,
        )) == 0xffff
    };
    match packet.proto {
        ip_proto::TCP => with_pseudo(ip_proto::TCP),
        ip_proto::UDP => {
            let unset = segment.get(6..8) == Some(&[0, 0]) && packet.src.is_ipv4();
            unset || with_pseudo(ip_proto::UDP)
        }
        ip_proto::ICMPV6 => with_pseudo(ip_proto::ICMPV6),
        ip_proto::ICMP => fold(add(0, segment)) == 0xffff,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use etherparse::PacketBuilder;

    use super::*;
    use crate::capture::{LinkType, RawPacket};
    use crate::decode::{decode, Decoded};

    fn check(frame: &[u8]) -> bool {
        let raw = RawPacket {
            ts_ns: 0,
            link: LinkType::Ethernet,
            wire_len: frame.len() as u32,
            data: frame,
        };
        match decode(raw) {
            Ok(Decoded::Packet(p)) => transport_ok(&p),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn correct_checksums_pass_and_a_flipped_bit_fails() {
        let mut frames = Vec::new();
        for payload in [&b"hello"[..], b"odd", b""] {
            let mut f = Vec::new();
            PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .tcp(1000, 80, 7, 100)
                .write(&mut f, payload)
                .unwrap();
            frames.push(f);
            let mut f = Vec::new();
            PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv6([0x20; 16], [0x21; 16], 64)
                .udp(53, 5353)
                .write(&mut f, payload)
                .unwrap();
            frames.push(f);
            let mut f = Vec::new();
            PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .icmpv4_echo_request(1, 2)
                .write(&mut f, payload)
                .unwrap();
            frames.push(f);
        }
        for frame in frames {
            assert!(check(&frame), "{frame:02x?}");
            let mut bad = frame.clone();
            let last = bad.len() - 1;
            bad[last] ^= 0x01;
            if frame.len() > 54 {
                assert!(!check(&bad), "{bad:02x?}");
            }
        }
    }
}
