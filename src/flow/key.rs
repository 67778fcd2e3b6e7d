//! The direction-free flow key.
//!
//! Both directions of a conversation map to one [`FlowKey`]: the endpoint that
//! sorts lower (address, then port) is side [`Side::A`]. ICMP messages use the
//! Community ID mapping of type and code to ports, so that an echo request and
//! its reply share a key while one-way messages (unreachable, redirect ...)
//! keep their own orientation.

use std::net::IpAddr;

use crate::decode::{ip_proto, DecodedPacket, Transport, Vlans};

/// One side of a flow key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The endpoint stored first in the key.
    A,
    /// The endpoint stored second.
    B,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }

    /// 0 for A, 1 for B, for indexing per-side arrays.
    pub fn index(self) -> usize {
        match self {
            Self::A => 0,
            Self::B => 1,
        }
    }
}

/// Key of a bidirectional flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Address of side A.
    pub addr_a: IpAddr,
    /// Address of side B.
    pub addr_b: IpAddr,
    /// Port of side A (ICMP: type or its Community ID equivalent).
    pub port_a: u16,
    /// Port of side B (ICMP: the counterpart type, or the code).
    pub port_b: u16,
    /// IANA protocol number.
    pub proto: u8,
    /// VLAN tags, outermost first.
    pub vlans: Vlans,
}

impl FlowKey {
    /// The key of `packet` and which side of it sent the packet.
    pub fn of(packet: &DecodedPacket<'_>) -> (Self, Side) {
        let (src_port, dst_port, one_way) = match packet.transport {
            Transport::Tcp(tcp) => (tcp.src_port, tcp.dst_port, false),
            Transport::Udp { src_port, dst_port } => (src_port, dst_port, false),
            Transport::Icmp {
                icmp_type, code, ..
            } => icmp_ports(icmp_type, code, packet.proto == ip_proto::ICMPV6),
            Transport::Other => (0, 0, false),
        };
        let ordered = (packet.src, src_port) <= (packet.dst, dst_port);
        let keep = one_way || ordered;
        let key = if keep {
            Self {
                addr_a: packet.src,
                addr_b: packet.dst,
                port_a: src_port,
                port_b: dst_port,
                proto: packet.proto,
                vlans: packet.meta.vlans,
            }
        } else {
            Self {
                addr_a: packet.dst,
                addr_b: packet.src,
                port_a: dst_port,
                port_b: src_port,
                proto: packet.proto,
                vlans: packet.meta.vlans,
            }
        };
        (key, if keep { Side::A } else { Side::B })
    }

    /// Address and port of one side.
    pub fn endpoint(&self, side: Side) -> (IpAddr, u16) {
        match side {
            Side::A => (self.addr_a, self.port_a),
            Side::B => (self.addr_b, self.port_b),
        }
    }
}

/// Community ID's mapping of an ICMP message to (source port, destination
/// port, one-way): request/reply pairs map to (type, counterpart type);
/// anything else to (type, code) and is one-way.
pub fn icmp_ports(icmp_type: u8, code: u8, v6: bool) -> (u16, u16, bool) {
    let counterpart = if v6 {
        match icmp_type {
            128 => Some(129),
            129 => Some(128),
            130 => Some(131),
            131 => Some(130),
            133 => Some(134),
            134 => Some(133),
            135 => Some(136),
            136 => Some(135),
            139 => Some(140),
            140 => Some(139),
            144 => Some(145),
            145 => Some(144),
            _ => None,
        }
    } else {
        match icmp_type {
            8 => Some(0),
            0 => Some(8),
            13 => Some(14),
            14 => Some(13),
            15 => Some(16),
            16 => Some(15),
            10 => Some(9),
            9 => Some(10),
            17 => Some(18),
            18 => Some(17),
            _ => None,
        }
    };
    match counterpart {
        Some(other) => (u16::from(icmp_type), other, false),
        None => (u16::from(icmp_type), u16::from(code), true),
    }
}
