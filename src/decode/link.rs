//! Link layer: from a captured frame to the network-layer bytes it carries.
//!
//! Handles Ethernet II with any stack of 802.1Q / 802.1ad / QinQ tags, MPLS
//! label stacks (with IP directly below, or an Ethernet pseudowire with its
//! control word), Linux cooked captures v1 and v2, BSD loopback, Cisco HDLC
//! and raw IP links.

use super::{DecodeError, Vlans};
use crate::capture::LinkType;

const ETHERNET_HEADER_LEN: usize = 14;
const VLAN_TAG_LEN: usize = 4;
const MPLS_LABEL_LEN: usize = 4;
const MPLS_CONTROL_WORD_LEN: usize = 4;
const SLL_HEADER_LEN: usize = 16;
const SLL2_HEADER_LEN: usize = 20;
/// Tags or labels followed before the frame is declared malformed.
const MAX_LINK_STACK: usize = 8;

/// EtherType values the link layer dispatches on.
pub mod ether_type {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ outer tag.
    pub const QINQ_OLD: u16 = 0x9100;
    /// MPLS unicast.
    pub const MPLS: u16 = 0x8847;
    /// MPLS multicast.
    pub const MPLS_MULTICAST: u16 = 0x8848;
}

/// What the link layer carries.
#[derive(Debug, Clone, Copy)]
pub enum Network<'a> {
    /// An IPv4 or IPv6 packet.
    Ip(&'a [u8]),
    /// An Ethernet frame (an MPLS Ethernet pseudowire).
    Ethernet(&'a [u8]),
    /// Something that is not IP.
    Other,
}

/// A frame with its link layer removed.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// VLAN tags seen, outermost first.
    pub vlans: Vlans,
    /// The payload below the link layer.
    pub network: Network<'a>,
}

/// Removes the link-layer header of a frame of type `link`.
pub fn strip(link: LinkType, data: &[u8]) -> Result<Frame<'_>, DecodeError> {
    let mut vlans = Vlans::default();
    let network = match link {
        LinkType::Ethernet => strip_ethernet(data, &mut vlans)?,
        LinkType::LinuxSll => {
            let header = data
                .get(..SLL_HEADER_LEN)
                .ok_or(DecodeError::LinkTruncated)?;
            let protocol = u16::from_be_bytes([header[14], header[15]]);
            dispatch(protocol, &data[SLL_HEADER_LEN..], &mut vlans, 0)?
        }
        LinkType::LinuxSll2 => {
            let header = data
                .get(..SLL2_HEADER_LEN)
                .ok_or(DecodeError::LinkTruncated)?;
            let protocol = u16::from_be_bytes([header[0], header[1]]);
            dispatch(protocol, &data[SLL2_HEADER_LEN..], &mut vlans, 0)?
        }
        LinkType::RawIp | LinkType::Ipv4 | LinkType::Ipv6 => Network::Ip(data),
        LinkType::Loopback => {
            let header = data.get(..4).ok_or(DecodeError::LinkTruncated)?;
            // The family is in the capturing host's byte order (LINKTYPE_NULL)
            // or in network order (LINKTYPE_LOOP): AF_INET is 2, AF_INET6 is
            // 10, 24, 28 or 30 depending on the system.
            let family = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
            let family = if family > 0xffff {
                family.swap_bytes()
            } else {
                family
            };
            match family {
                2 | 10 | 24 | 28 | 30 => Network::Ip(&data[4..]),
                _ => Network::Other,
            }
        }
        LinkType::CiscoHdlc => {
            let header = data.get(..4).ok_or(DecodeError::LinkTruncated)?;
            let protocol = u16::from_be_bytes([header[2], header[3]]);
            dispatch(protocol, &data[4..], &mut vlans, 0)?
        }
    };
    Ok(Frame { vlans, network })
}

/// Removes an Ethernet II header and any VLAN tags, adding their ids to `vlans`.
pub fn strip_ethernet<'a>(data: &'a [u8], vlans: &mut Vlans) -> Result<Network<'a>, DecodeError> {
    let header = data
        .get(..ETHERNET_HEADER_LEN)
        .ok_or(DecodeError::LinkTruncated)?;
    let ether_type = u16::from_be_bytes([header[12], header[13]]);
    dispatch(ether_type, &data[ETHERNET_HEADER_LEN..], vlans, 0)
}

fn dispatch<'a>(
    ether_type: u16,
    data: &'a [u8],
    vlans: &mut Vlans,
    depth: usize,
) -> Result<Network<'a>, DecodeError> {
    match ether_type {
        ether_type::IPV4 | ether_type::IPV6 => Ok(Network::Ip(data)),
        ether_type::VLAN | ether_type::QINQ | ether_type::QINQ_OLD => {
            if depth >= MAX_LINK_STACK {
                return Err(DecodeError::VlanTruncated);
            }
            let tag = data.get(..VLAN_TAG_LEN).ok_or(DecodeError::VlanTruncated)?;
            vlans.push(u16::from_be_bytes([tag[0], tag[1]]) & 0x0fff);
            let inner = u16::from_be_bytes([tag[2], tag[3]]);
            dispatch(inner, &data[VLAN_TAG_LEN..], vlans, depth + 1)
        }
        ether_type::MPLS | ether_type::MPLS_MULTICAST => strip_mpls(data),
        _ => Ok(Network::Other),
    }
}

/// Skips an MPLS label stack and guesses what lies below it from the first
/// nibble, as routers and Wireshark do: 4 or 6 is IP, 0 is a pseudowire
/// control word followed by an Ethernet frame.
fn strip_mpls(data: &[u8]) -> Result<Network<'_>, DecodeError> {
    let mut at = 0;
    for _ in 0..MAX_LINK_STACK {
        let label = data
            .get(at..at + MPLS_LABEL_LEN)
            .ok_or(DecodeError::MplsTruncated)?;
        at += MPLS_LABEL_LEN;
        let bottom_of_stack = label[2] & 0x01 != 0;
        if bottom_of_stack {
            let below = &data[at..];
            return match below.first().map(|b| b >> 4) {
                Some(4) | Some(6) => Ok(Network::Ip(below)),
                Some(0) => below
                    .get(MPLS_CONTROL_WORD_LEN..)
                    .map(Network::Ethernet)
                    .ok_or(DecodeError::MplsTruncated),
                Some(_) => Ok(Network::Other),
                None => Err(DecodeError::MplsTruncated),
            };
        }
    }
    Err(DecodeError::MplsTruncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ethernet(ether_type: u16, rest: &[u8]) -> Vec<u8> {
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&ether_type.to_be_bytes());
        frame.extend_from_slice(rest);
        frame
    }

    #[test]
    fn qinq_tags_are_kept_outermost_first() {
        let mut rest = vec![0x00, 0x64, 0x81, 0x00, 0x00, 0xc8, 0x08, 0x00];
        rest.extend_from_slice(&[0x45, 0, 0, 20]);
        let data = ethernet(ether_type::QINQ, &rest);
        let frame = strip(LinkType::Ethernet, &data).unwrap();
        assert_eq!(frame.vlans.as_slice(), &[100, 200]);
        assert!(matches!(frame.network, Network::Ip(ip) if ip[0] == 0x45));
    }

    #[test]
    fn mpls_stack_ends_at_bottom_of_stack_label() {
        let rest = [
            0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40, 0x60, 0, 0, 0,
        ];
        let data = ethernet(ether_type::MPLS, &rest);
        let frame = strip(LinkType::Ethernet, &data).unwrap();
        assert!(matches!(frame.network, Network::Ip(ip) if ip[0] == 0x60));
    }

    #[test]
    fn truncated_vlan_tag_is_an_error() {
        let frame = ethernet(ether_type::VLAN, &[0x00]);
        assert_eq!(
            strip(LinkType::Ethernet, &frame).unwrap_err(),
            DecodeError::VlanTruncated
        );
    }

    #[test]
    fn sll2_protocol_field_selects_ip() {
        let mut frame = vec![0x08, 0x00];
        frame.extend_from_slice(&[0u8; 18]);
        frame.extend_from_slice(&[0x45, 0, 0, 20]);
        let parsed = strip(LinkType::LinuxSll2, &frame).unwrap();
        assert!(matches!(parsed.network, Network::Ip(_)));
    }

    #[test]
    fn short_frame_is_link_truncated() {
        assert_eq!(
            strip(LinkType::Ethernet, &[0u8; 10]).unwrap_err(),
            DecodeError::LinkTruncated
        );
    }

    #[test]
    fn loopback_and_cisco_hdlc_carry_ip() {
        let ip = [0x45u8, 0, 0, 20];
        for header in [[2u8, 0, 0, 0], [0, 0, 0, 2], [30, 0, 0, 0]] {
            let frame = [&header[..], &ip].concat();
            let parsed = strip(LinkType::Loopback, &frame).unwrap();
            assert!(matches!(parsed.network, Network::Ip(p) if p == ip));
        }
        let other = [7u8, 0, 0, 0, 1, 2];
        assert!(matches!(
            strip(LinkType::Loopback, &other).unwrap().network,
            Network::Other
        ));
        let frame = [&[0x0fu8, 0, 0x08, 0x00][..], &ip].concat();
        let parsed = strip(LinkType::CiscoHdlc, &frame).unwrap();
        assert!(matches!(parsed.network, Network::Ip(p) if p == ip));
        assert_eq!(
            strip(LinkType::CiscoHdlc, &[0x0f, 0]).unwrap_err(),
            DecodeError::LinkTruncated
        );
    }
}
