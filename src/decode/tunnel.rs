//! Tunnels used to mirror cloud traffic: VXLAN (AWS, Azure and GCP packet
//! mirroring), GRE with ERSPAN type I, II and III (physical and virtual
//! switches), transparent-Ethernet GRE and IP-in-IP.
//!
//! Each function here reads one encapsulation header and returns the inner
//! payload with the tunnel's identifier (VNI, GRE key or ERSPAN session).

use std::net::IpAddr;

use super::link::ether_type;
use super::DecodeError;

/// UDP destination port of VXLAN (RFC 7348).
pub const VXLAN_PORT: u16 = 4789;
const VXLAN_HEADER_LEN: usize = 8;
/// VXLAN flags byte: the VNI field is valid.
const VXLAN_FLAG_VNI: u8 = 0x08;

const GRE_BASE_LEN: usize = 4;
const GRE_FLAG_CHECKSUM: u16 = 0x8000;
const GRE_FLAG_ROUTING: u16 = 0x4000;
const GRE_FLAG_KEY: u16 = 0x2000;
const GRE_FLAG_SEQUENCE: u16 = 0x1000;
const GRE_VERSION_MASK: u16 = 0x0007;
/// GRE protocol: Transparent Ethernet Bridging.
const GRE_PROTO_ETHERNET: u16 = 0x6558;
/// GRE protocol: ERSPAN type I and II.
const GRE_PROTO_ERSPAN_II: u16 = 0x88be;
/// GRE protocol: ERSPAN type III.
const GRE_PROTO_ERSPAN_III: u16 = 0x22eb;
/// GRE protocol: PPP (PPTP and other PPP-over-GRE tunnels).
const GRE_PROTO_PPP: u16 = 0x880b;
/// Enhanced GRE (RFC 2637, PPTP): the acknowledgment number is present.
const GRE_FLAG_ACK: u16 = 0x0080;
/// PPP protocol numbers of IPv4 and IPv6.
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
const ERSPAN_II_HEADER_LEN: usize = 8;
const ERSPAN_III_HEADER_LEN: usize = 12;
const ERSPAN_III_PLATFORM_LEN: usize = 8;
const ERSPAN_SESSION_MASK: u16 = 0x03ff;

/// The kind of tunnel a packet was carried in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelKind {
    /// VXLAN over UDP.
    Vxlan,
    /// GRE carrying IP or Ethernet.
    Gre,
    /// ERSPAN type I or II over GRE.
    ErspanII,
    /// ERSPAN type III over GRE.
    ErspanIII,
    /// IPv4 or IPv6 directly inside IP.
    IpInIp,
}

impl TunnelKind {
    /// Name used in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vxlan => "vxlan",
            Self::Gre => "gre",
            Self::ErspanII => "erspan2",
            Self::ErspanIII => "erspan3",
            Self::IpInIp => "ipip",
        }
    }
}

/// The outer side of a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tunnel {
    /// Encapsulation.
    pub kind: TunnelKind,
    /// Outer source address.
    pub src: IpAddr,
    /// Outer destination address.
    pub dst: IpAddr,
    /// VXLAN VNI, GRE key or ERSPAN session id, when the header has one.
    pub id: Option<u32>,
}

/// The payload of a VXLAN packet.
#[derive(Debug, Clone, Copy)]
pub struct VxlanPayload<'a> {
    /// VXLAN network identifier.
    pub vni: Option<u32>,
    /// Inner Ethernet frame.
    pub frame: &'a [u8],
}

/// Reads a VXLAN header; `None` when the bytes are not VXLAN (no valid-VNI
/// flag, or too short), so the datagram is tracked as plain UDP.
pub fn vxlan_payload(data: &[u8]) -> Option<VxlanPayload<'_>> {
    let header = data.get(..VXLAN_HEADER_LEN)?;
    if header[0] & VXLAN_FLAG_VNI == 0 {
        return None;
    }
    let vni = u32::from_be_bytes([0, header[4], header[5], header[6]]);
    Some(VxlanPayload {
        vni: Some(vni),
        frame: &data[VXLAN_HEADER_LEN..],
    })
}

/// What a GRE packet carries.
#[derive(Debug, Clone, Copy)]
pub enum GrePayload<'a> {
    /// An IP packet.
    Ip(&'a [u8]),
    /// An Ethernet frame (transparent bridging or ERSPAN).
    Ethernet(&'a [u8]),
}

/// A GRE packet's inner payload.
#[derive(Debug, Clone, Copy)]
pub struct GreInner<'a> {
    /// GRE or an ERSPAN type.
    pub kind: TunnelKind,
    /// GRE key or ERSPAN session id.
    pub id: Option<u32>,
    /// The encapsulated packet.
    pub payload: GrePayload<'a>,
}

/// The IP packet inside a PPP frame (address and control bytes, and a
/// compressed one-byte protocol field, allowed); `None` for other protocols.
fn ppp_ip(frame: &[u8]) -> Option<&[u8]> {
    let frame = frame.strip_prefix(&[0xff, 0x03]).unwrap_or(frame);
    let (&first, rest) = frame.split_first()?;
    let (protocol, inner) = if first & 0x01 == 1 {
        (u16::from(first), rest)
    } else {
        let (&second, rest) = rest.split_first()?;
        (u16::from_be_bytes([first, second]), rest)
    };
    matches!(protocol, PPP_IPV4 | PPP_IPV6).then_some(inner)
}

/// Enhanced GRE (version 1, PPTP): a key (payload length and call id),
/// optional sequence and acknowledgment numbers, then PPP.
fn enhanced_gre(
    data: &[u8],
    flags: u16,
    protocol: u16,
) -> Result<Option<GreInner<'_>>, DecodeError> {
    if protocol != GRE_PROTO_PPP || flags & GRE_FLAG_KEY == 0 {
        return Ok(None);
    }
    let key = data.get(4..8).ok_or(DecodeError::GreHeader)?;
    let call_id = u32::from(u16::from_be_bytes([key[2], key[3]]));
    let mut at = 8;
    if flags & GRE_FLAG_SEQUENCE != 0 {
        at += 4;
    }
    if flags & GRE_FLAG_ACK != 0 {
        at += 4;
    }
    let frame = data.get(at..).ok_or(DecodeError::GreHeader)?;
    Ok(ppp_ip(frame).map(|ip| GreInner {
        kind: TunnelKind::Gre,
        id: Some(call_id),
        payload: GrePayload::Ip(ip),
    }))
}

/// Reads a GRE header (RFC 2784/2890, and PPTP's enhanced GRE) and any
/// ERSPAN or PPP header below it. `Ok(None)` for GRE that carries something
/// other than IP or Ethernet, which is then tracked as a GRE flow.
pub fn gre_payload(data: &[u8]) -> Result<Option<GreInner<'_>>, DecodeError> {
    let base = data.get(..GRE_BASE_LEN).ok_or(DecodeError::GreHeader)?;
    let flags = u16::from_be_bytes([base[0], base[1]]);
    let protocol = u16::from_be_bytes([base[2], base[3]]);
    match flags & GRE_VERSION_MASK {
        0 => {}
        1 => return enhanced_gre(data, flags, protocol),
        _ => return Ok(None),
    }
    let mut at = GRE_BASE_LEN;
    if flags & (GRE_FLAG_CHECKSUM | GRE_FLAG_ROUTING) != 0 {
        at += 4;
    }
    let mut key = None;
    if flags & GRE_FLAG_KEY != 0 {
        let k = data.get(at..at + 4).ok_or(DecodeError::GreHeader)?;
        key = Some(u32::from_be_bytes([k[0], k[1], k[2], k[3]]));
        at += 4;
    }
    let has_sequence = flags & GRE_FLAG_SEQUENCE != 0;
    if has_sequence {
        at += 4;
    }
    let inner = data.get(at..).ok_or(DecodeError::GreHeader)?;
    let found = match protocol {
        ether_type::IPV4 | ether_type::IPV6 => GreInner {
            kind: TunnelKind::Gre,
            id: key,
            payload: GrePayload::Ip(inner),
        },
        GRE_PROTO_ETHERNET => GreInner {
            kind: TunnelKind::Gre,
            id: key,
            payload: GrePayload::Ethernet(inner),
        },
        GRE_PROTO_PPP => match ppp_ip(inner) {
            Some(ip) => GreInner {
                kind: TunnelKind::Gre,
                id: key,
                payload: GrePayload::Ip(ip),
            },
            None => return Ok(None),
        },
        GRE_PROTO_ERSPAN_II if !has_sequence => GreInner {
            kind: TunnelKind::ErspanII,
            id: None,
            payload: GrePayload::Ethernet(inner),
        },
        GRE_PROTO_ERSPAN_II => {
            let header = inner
                .get(..ERSPAN_II_HEADER_LEN)
                .ok_or(DecodeError::ErspanHeader)?;
            GreInner {
                kind: TunnelKind::ErspanII,
                id: Some(u32::from(session_id(header))),
                payload: GrePayload::Ethernet(&inner[ERSPAN_II_HEADER_LEN..]),
            }
        }
        GRE_PROTO_ERSPAN_III => {
            let header = inner
                .get(..ERSPAN_III_HEADER_LEN)
                .ok_or(DecodeError::ErspanHeader)?;
            let platform_subheader = header[11] & 0x01 != 0;
            let skip = ERSPAN_III_HEADER_LEN
                + if platform_subheader {
                    ERSPAN_III_PLATFORM_LEN
                } else {
                    0
                };
            GreInner {
                kind: TunnelKind::ErspanIII,
                id: Some(u32::from(session_id(header))),
                payload: GrePayload::Ethernet(inner.get(skip..).ok_or(DecodeError::ErspanHeader)?),
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(found))
}

fn session_id(erspan: &[u8]) -> u16 {
    u16::from_be_bytes([erspan[2], erspan[3]]) & ERSPAN_SESSION_MASK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppp_over_gre_carries_ip_in_both_gre_versions() {
        let ip = [0x45, 0, 0, 20];
        let mut plain = vec![0x00, 0x00, 0x88, 0x0b, 0x00, 0x21];
        plain.extend_from_slice(&ip);
        let inner = gre_payload(&plain).unwrap().unwrap();
        assert!(matches!(inner.payload, GrePayload::Ip(p) if p == ip));
        // PPTP: version 1, key (length, call id 7), sequence, address/control, compressed protocol.
        let mut pptp = vec![
            0x30, 0x01, 0x88, 0x0b, 0x00, 0x05, 0x00, 0x07, 0, 0, 0, 1, 0xff, 0x03, 0x21,
        ];
        pptp.extend_from_slice(&ip);
        let inner = gre_payload(&pptp).unwrap().unwrap();
        assert_eq!(inner.id, Some(7));
        assert!(matches!(inner.payload, GrePayload::Ip(p) if p == ip));
        // PPP carrying LCP (0xc021) is not IP.
        assert!(gre_payload(&[0x00, 0x00, 0x88, 0x0b, 0xc0, 0x21, 1])
            .unwrap()
            .is_none());
    }

    #[test]
    fn vxlan_without_vni_flag_is_not_vxlan() {
        assert!(vxlan_payload(&[0u8; 16]).is_none());
        let parsed = vxlan_payload(&[0x08, 0, 0, 0, 0, 0x12, 0x34, 0, 0xaa]).unwrap();
        assert_eq!(parsed.vni, Some(0x1234));
        assert_eq!(parsed.frame, &[0xaa]);
    }

    #[test]
    fn gre_key_and_sequence_are_skipped() {
        let data = [0x30, 0x00, 0x08, 0x00, 0, 0, 0, 7, 0, 0, 0, 1, 0x45];
        let inner = gre_payload(&data).unwrap().unwrap();
        assert_eq!(inner.id, Some(7));
        assert!(matches!(inner.payload, GrePayload::Ip(ip) if ip == [0x45]));
    }

    #[test]
    fn erspan3_platform_subheader_is_skipped() {
        let mut data = vec![0x00, 0x00, 0x22, 0xeb];
        let mut erspan = [0u8; 12];
        erspan[2] = 0x01;
        erspan[3] = 0x05;
        erspan[11] = 0x01;
        data.extend_from_slice(&erspan);
        data.extend_from_slice(&[0u8; 8]);
        data.push(0xee);
        let inner = gre_payload(&data).unwrap().unwrap();
        assert_eq!(inner.kind, TunnelKind::ErspanIII);
        assert_eq!(inner.id, Some(0x105));
        assert!(matches!(inner.payload, GrePayload::Ethernet(f) if f == [0xee]));
    }

    #[test]
    fn truncated_enhanced_gre_is_a_header_error() {
        // Sequence and acknowledgment flagged but cut off.
        assert!(matches!(
            gre_payload(&[0x30, 0x81, 0x88, 0x0b, 0, 0, 0, 0]),
            Err(DecodeError::GreHeader)
        ));
    }
}
