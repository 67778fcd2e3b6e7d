//! Packet decode: from a captured frame to the typed view the flow table needs.
//!
//! Decode strips the link layer ([`link`]: Ethernet, 802.1Q/QinQ, MPLS, Linux
//! SLL/SLL2, raw IP), parses IPv4 (with options) and IPv6 (with extension
//! headers) through `etherparse`, reads the TCP, UDP or ICMP header, and opens
//! the tunnels used for cloud traffic mirroring ([`tunnel`]: VXLAN, GRE,
//! ERSPAN II/III, IP-in-IP) so that the inner packet is what is tracked and the
//! outer endpoints ride along on it. IP fragments come out as [`Fragment`]s for
//! the [`fragment::Defragmenter`]; the reassembled datagram re-enters through
//! [`decode_transport`].
//!
//! Decode never allocates and never panics: a frame it cannot read is a
//! [`DecodeError`] whose reason is counted in [`DecodeStats`].

pub mod checksum;
pub mod fragment;
pub mod link;
pub mod tunnel;

use std::net::IpAddr;

use etherparse::{LaxIpSlice, TcpSlice, UdpSlice};

use crate::capture::RawPacket;
pub use tunnel::{Tunnel, TunnelKind};

/// IANA protocol numbers decode treats specially.
pub mod ip_proto {
    /// Internet Control Message Protocol.
    pub const ICMP: u8 = 1;
    /// IPv4 encapsulated in IP.
    pub const IPIP: u8 = 4;
    /// Transmission Control Protocol.
    pub const TCP: u8 = 6;
    /// User Datagram Protocol.
    pub const UDP: u8 = 17;
    /// IPv6 encapsulated in IP.
    pub const IPV6_IN_IP: u8 = 41;
    /// Generic Routing Encapsulation.
    pub const GRE: u8 = 47;
    /// ICMP for IPv6.
    pub const ICMPV6: u8 = 58;
}

/// How many tunnels deep decode follows before giving up on a packet.
pub const MAX_TUNNEL_DEPTH: u8 = 3;

/// Length of an ICMP or ICMPv6 header, bytes.
const ICMP_HEADER_LEN: usize = 8;

/// TCP flag bits as they appear in the header's flags byte.
pub mod tcp_flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push function.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer field significant.
    pub const URG: u8 = 0x20;
    /// ECN echo.
    pub const ECE: u8 = 0x40;
    /// Congestion window reduced.
    pub const CWR: u8 = 0x80;
}

/// Up to two VLAN ids, outermost first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Vlans {
    ids: [u16; 2],
    len: u8,
}

impl Vlans {
    /// Adds a tag below those already seen; tags past the second are ignored.
    pub fn push(&mut self, id: u16) {
        if usize::from(self.len) < self.ids.len() {
            self.ids[usize::from(self.len)] = id;
            self.len += 1;
        }
    }

    /// The ids, outermost first.
    pub fn as_slice(&self) -> &[u16] {
        &self.ids[..usize::from(self.len)]
    }
}

/// What carried a packet to the sensor: its VLAN tags and outermost tunnel.
/// Flow and detection records both carry it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Carrier {
    /// VLAN tags of the (outer) frame.
    pub vlans: Vlans,
    /// The outermost tunnel.
    pub tunnel: Option<Tunnel>,
}

/// What is known of a packet before its IP layer: shared by fragments and
/// the packets reassembled from them.
#[derive(Debug, Clone, Copy)]
pub struct PacketMeta {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Frame length on the wire, bytes.
    pub wire_len: u32,
    /// VLAN tags of the (outer) frame.
    pub vlans: Vlans,
    /// The outermost tunnel the packet was carried in.
    pub tunnel: Option<Tunnel>,
}

impl PacketMeta {
    /// The packet's VLAN tags and tunnel.
    pub fn carrier(&self) -> Carrier {
        Carrier {
            vlans: self.vlans,
            tunnel: self.tunnel,
        }
    }
}

/// The transport header of a decoded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP segment.
    Tcp(TcpHeader),
    /// UDP datagram.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// ICMP or ICMPv6 message.
    Icmp {
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
        /// The header's last four bytes (identifier and sequence number of
        /// an echo).
        rest: u32,
    },
    /// Any other IP protocol; no ports.
    Other,
}

/// The TCP header fields flow tracking uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpHeader {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flag bits, see [`tcp_flags`].
    pub flags: u8,
    /// Receive window, unscaled.
    pub window: u16,
}

/// A packet decoded down to its transport payload.
#[derive(Debug, Clone, Copy)]
pub struct DecodedPacket<'a> {
    /// Timestamp, wire length, VLANs and tunnel.
    pub meta: PacketMeta,
    /// Source address (of the inner packet when tunnelled).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IANA protocol number of the transport.
    pub proto: u8,
    /// Transport header.
    pub transport: Transport,
    /// Transport payload length, bytes, from the IP length fields (may exceed
    /// `payload.len()` when the capture was cut short).
    pub payload_len: u32,
    /// Captured transport payload.
    pub payload: &'a [u8],
    /// The captured transport header and payload, for checksum validation.
    pub segment: &'a [u8],
}

impl DecodedPacket<'_> {
    /// Source port (0 for protocols without ports).
    pub fn src_port(&self) -> u16 {
        match self.transport {
            Transport::Tcp(tcp) => tcp.src_port,
            Transport::Udp { src_port, .. } => src_port,
            _ => 0,
        }
    }

    /// Destination port (0 for protocols without ports).
    pub fn dst_port(&self) -> u16 {
        match self.transport {
            Transport::Tcp(tcp) => tcp.dst_port,
            Transport::Udp { dst_port, .. } => dst_port,
            _ => 0,
        }
    }
}

/// One fragment of an IP datagram, for the defragmenter.
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    /// Timestamp, wire length, VLANs and tunnel of the frame carrying it.
    pub meta: PacketMeta,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Protocol of the datagram (next header after the fragment header in IPv6).
    pub proto: u8,
    /// IPv4 identification or IPv6 fragment identification.
    pub id: u32,
    /// Offset of this fragment's data in the datagram, bytes.
    pub offset: u32,
    /// True unless this is the last fragment.
    pub more: bool,
    /// The fragment's data.
    pub data: &'a [u8],
}

/// What decoding a frame gives.
#[derive(Debug, Clone, Copy)]
pub enum Decoded<'a> {
    /// A whole IP packet.
    Packet(DecodedPacket<'a>),
    /// A piece of a fragmented datagram.
    Fragment(Fragment<'a>),
    /// A frame that carries no IP (ARP, LLDP, STP ...): valid, but not tracked.
    NotIp,
    /// An IP packet whose TCP, UDP or ICMP header is broken: counted as a
    /// decode error and tracked in no flow, but still an IP packet (with
    /// [`Transport::Other`] and the bytes after the IP header as payload)
    /// for rules on `ip`.
    BadTransport(DecodedPacket<'a>, DecodeError),
}

/// Why a frame could not be decoded. Each reason has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[repr(u8)]
pub enum DecodeError {
    /// The frame ends inside its link-layer header.
    #[error("link_truncated")]
    LinkTruncated,
    /// The frame ends inside a VLAN tag.
    #[error("vlan_truncated")]
    VlanTruncated,
    /// The frame ends inside an MPLS label stack.
    #[error("mpls_truncated")]
    MplsTruncated,
    /// The IP version nibble is neither 4 nor 6.
    #[error("ip_version")]
    IpVersion,
    /// The IPv4 header is short or inconsistent.
    #[error("ipv4_header")]
    Ipv4Header,
    /// The IPv6 header is short or inconsistent.
    #[error("ipv6_header")]
    Ipv6Header,
    /// An IPv6 extension header (or IPv4 authentication header) is malformed.
    #[error("ip_extension_header")]
    IpExtensionHeader,
    /// The TCP header is short or its data offset is impossible.
    #[error("tcp_header")]
    TcpHeader,
    /// The UDP header is short.
    #[error("udp_header")]
    UdpHeader,
    /// The ICMP header is short.
    #[error("icmp_header")]
    IcmpHeader,
    /// A GRE header is short or uses an unknown version.
    #[error("gre_header")]
    GreHeader,
    /// An ERSPAN header is short.
    #[error("erspan_header")]
    ErspanHeader,
    /// A VXLAN header is short or lacks its valid-VNI flag.
    #[error("vxlan_header")]
    VxlanHeader,
    /// Tunnels nested deeper than [`MAX_TUNNEL_DEPTH`].
    #[error("tunnel_depth")]
    TunnelDepth,
    /// A fragment that does not fit a datagram (offset past 64 KiB, overlap conflict).
    #[error("fragment_invalid")]
    FragmentInvalid,
    /// Fragments dropped because the reassembly memory cap was reached.
    #[error("fragment_memcap")]
    FragmentMemcap,
    /// Datagrams whose fragments did not all arrive before the timeout.
    #[error("fragment_timeout")]
    FragmentTimeout,
    /// A TCP, UDP or ICMP checksum is wrong (counted only with checksum
    /// validation on).
    #[error("bad_checksum")]
    BadChecksum,
}

impl DecodeError {
    /// Every reason, in counter order.
    pub const ALL: [DecodeError; 18] = [
        Self::LinkTruncated,
        Self::VlanTruncated,
        Self::MplsTruncated,
        Self::IpVersion,
        Self::Ipv4Header,
        Self::Ipv6Header,
        Self::IpExtensionHeader,
        Self::TcpHeader,
        Self::UdpHeader,
        Self::IcmpHeader,
        Self::GreHeader,
        Self::ErspanHeader,
        Self::VxlanHeader,
        Self::TunnelDepth,
        Self::FragmentInvalid,
        Self::FragmentMemcap,
        Self::FragmentTimeout,
        Self::BadChecksum,
    ];
}

/// Per-worker decode counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Frames that decoded to an IP packet or fragment.
    pub ip: u64,
    /// Frames that carry no IP.
    pub not_ip: u64,
    /// Errors, indexed by `DecodeError as usize`.
    pub errors: [u64; DecodeError::ALL.len()],
}

impl DecodeStats {
    /// Counts one error.
    pub fn count(&mut self, error: DecodeError) {
        self.errors[error as usize] += 1;
    }

    /// Errors of every kind together.
    pub fn total_errors(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// (reason, count) for every reason that occurred.
    pub fn nonzero(&self) -> impl Iterator<Item = (DecodeError, u64)> + '_ {
        DecodeError::ALL
            .iter()
            .zip(self.errors.iter())
            .filter(|(_, n)| **n > 0)
            .map(|(e, n)| (*e, *n))
    }

    /// Adds another worker's counters.
    pub fn merge(&mut self, other: &DecodeStats) {
        self.ip += other.ip;
        self.not_ip += other.not_ip;
        for (a, b) in self.errors.iter_mut().zip(other.errors.iter()) {
            *a += b;
        }
    }
}

/// Decodes one captured frame.
pub fn decode(packet: RawPacket<'_>) -> Result<Decoded<'_>, DecodeError> {
    let frame = link::strip(packet.link, packet.data)?;
    let meta = PacketMeta {
        ts_ns: packet.ts_ns,
        wire_len: packet.wire_len,
        vlans: frame.vlans,
        tunnel: None,
    };
    match frame.network {
        link::Network::Ip(data) => decode_ip(meta, data, 0),
        link::Network::Ethernet(data) => decode_ethernet(meta, data, 0),
        link::Network::Other => Ok(Decoded::NotIp),
    }
}

/// Decodes an Ethernet frame carried inside a tunnel.
fn decode_ethernet(meta: PacketMeta, data: &[u8], depth: u8) -> Result<Decoded<'_>, DecodeError> {
    let mut meta = meta;
    let frame = link::strip_ethernet(data, &mut meta.vlans)?;
    match frame {
        link::Network::Ip(ip) => decode_ip(meta, ip, depth),
        link::Network::Ethernet(inner) => decode_ethernet(meta, inner, depth),
        link::Network::Other => Ok(Decoded::NotIp),
    }
}

/// Decodes an IPv4 or IPv6 packet and what it carries.
pub fn decode_ip(meta: PacketMeta, data: &[u8], depth: u8) -> Result<Decoded<'_>, DecodeError> {
    let version = data.first().map(|b| b >> 4);
    let (ip, ext_error) = LaxIpSlice::from_slice(data).map_err(|_| match version {
        Some(4) => DecodeError::Ipv4Header,
        Some(6) => DecodeError::Ipv6Header,
        _ => DecodeError::IpVersion,
    })?;
    if ext_error.is_some() {
        return Err(DecodeError::IpExtensionHeader);
    }
    let src = ip.source_addr();
    let dst = ip.destination_addr();
    let payload = ip.payload();
    let proto = payload.ip_number.0;
    let declared_len = match &ip {
        LaxIpSlice::Ipv4(v4) => {
            let header = v4.header();
            usize::from(header.total_len()).saturating_sub(data.len() - payload.payload.len())
        }
        LaxIpSlice::Ipv6(v6) => usize::from(v6.header().payload_length())
            .saturating_sub(data.len() - payload.payload.len() - 40),
    };
    let payload_len = if payload.incomplete {
        declared_len.max(payload.payload.len())
    } else {
        payload.payload.len()
    };
    if payload.fragmented {
        let (id, offset, more) = match &ip {
            LaxIpSlice::Ipv4(v4) => {
                let h = v4.header();
                (
                    u32::from(h.identification()),
                    u32::from(h.fragments_offset().byte_offset()),
                    h.more_fragments(),
                )
            }
            LaxIpSlice::Ipv6(v6) => {
                let fragment = v6
                    .extensions()
                    .clone()
                    .into_iter()
                    .find_map(|ext| match ext {
                        etherparse::Ipv6ExtensionSlice::Fragment(f) => Some(f),
                        _ => None,
                    });
                let Some(f) = fragment else {
                    return Err(DecodeError::IpExtensionHeader);
                };
                (
                    f.identification(),
                    u32::from(f.fragment_offset().byte_offset()),
                    f.more_fragments(),
                )
            }
        };
        return Ok(Decoded::Fragment(Fragment {
            meta,
            src,
            dst,
            proto,
            id,
            offset,
            more,
            data: payload.payload,
        }));
    }
    decode_transport(
        meta,
        src,
        dst,
        proto,
        payload.payload,
        payload_len as u32,
        depth,
    )
}

/// Decodes the transport layer of an IP packet (or of a reassembled datagram),
/// following tunnels.
pub fn decode_transport<'a>(
    meta: PacketMeta,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    data: &'a [u8],
    payload_len: u32,
    depth: u8,
) -> Result<Decoded<'a>, DecodeError> {
    let ip_packet = |transport, payload: &'a [u8], header_len: usize| DecodedPacket {
        meta,
        src,
        dst,
        proto,
        transport,
        payload_len: payload_len.saturating_sub(header_len as u32),
        payload,
        segment: data,
    };
    let packet = |transport, payload: &'a [u8], header_len: usize| {
        Decoded::Packet(ip_packet(transport, payload, header_len))
    };
    let broken = |error| {
        Ok(Decoded::BadTransport(
            ip_packet(Transport::Other, data, 0),
            error,
        ))
    };
    match proto {
        ip_proto::TCP => {
            let Ok(tcp) = TcpSlice::from_slice(data) else {
                return broken(DecodeError::TcpHeader);
            };
            let header = TcpHeader {
                src_port: tcp.source_port(),
                dst_port: tcp.destination_port(),
                seq: tcp.sequence_number(),
                ack: tcp.acknowledgment_number(),
                flags: data[13],
                window: tcp.window_size(),
            };
            Ok(packet(
                Transport::Tcp(header),
                tcp.payload(),
                tcp.header_slice().len(),
            ))
        }
        ip_proto::UDP => {
            let Ok(udp) = UdpSlice::from_slice_lax(data) else {
                return broken(DecodeError::UdpHeader);
            };
            let (src_port, dst_port) = (udp.source_port(), udp.destination_port());
            if dst_port == tunnel::VXLAN_PORT {
                if let Some(inner) = tunnel::vxlan_payload(udp.payload()) {
                    let meta = enter_tunnel(meta, TunnelKind::Vxlan, src, dst, inner.vni, depth)?;
                    return decode_ethernet(meta, inner.frame, depth + 1);
                }
            }
            Ok(packet(
                Transport::Udp { src_port, dst_port },
                udp.payload(),
                8,
            ))
        }
        ip_proto::ICMP | ip_proto::ICMPV6 => {
            if data.len() < 2 {
                return broken(DecodeError::IcmpHeader);
            }
            let payload = data.get(ICMP_HEADER_LEN..).unwrap_or_default();
            let transport = Transport::Icmp {
                icmp_type: data[0],
                code: data[1],
                rest: data
                    .get(4..ICMP_HEADER_LEN)
                    .map_or(0, |r| u32::from_be_bytes([r[0], r[1], r[2], r[3]])),
            };
            Ok(packet(transport, payload, ICMP_HEADER_LEN))
        }
        ip_proto::GRE => match tunnel::gre_payload(data)? {
            Some(inner) => {
                let meta = enter_tunnel(meta, inner.kind, src, dst, inner.id, depth)?;
                match inner.payload {
                    tunnel::GrePayload::Ethernet(frame) => decode_ethernet(meta, frame, depth + 1),
                    tunnel::GrePayload::Ip(ip) => decode_ip(meta, ip, depth + 1),
                }
            }
            None => Ok(packet(Transport::Other, data, 0)),
        },
        ip_proto::IPIP | ip_proto::IPV6_IN_IP => {
            let meta = enter_tunnel(meta, TunnelKind::IpInIp, src, dst, None, depth)?;
            decode_ip(meta, data, depth + 1)
        }
        _ => Ok(packet(Transport::Other, data, 0)),
    }
}

/// Records the outermost tunnel on `meta` and checks the nesting depth.
fn enter_tunnel(
    mut meta: PacketMeta,
    kind: TunnelKind,
    src: IpAddr,
    dst: IpAddr,
    id: Option<u32>,
    depth: u8,
) -> Result<PacketMeta, DecodeError> {
    if depth >= MAX_TUNNEL_DEPTH {
        return Err(DecodeError::TunnelDepth);
    }
    if meta.tunnel.is_none() {
        meta.tunnel = Some(Tunnel { kind, src, dst, id });
    }
    Ok(meta)
}
