//! ICMP tunnels: echo traffic that carries data rather than pings.
//!
//! A host answers an echo request with the same payload; ping tools send
//! the same (or a counting) payload in every request. Tunnels (icmptunnel,
//! ptunnel, icmpsh) break both: replies carry other bytes than their
//! requests, payloads change from packet to packet and look random, and
//! some carry whole IP packets. A flow is reported once, when one of its
//! echoes carries an IPv4 packet, or when `mismatched_replies` replies
//! differ from their request, or `random_payloads` distinct high-entropy
//! payloads were seen (`[detectors.icmp]`).

use std::collections::HashMap;
use std::sync::Arc;

use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};

use super::{entropy, fingerprint, Detector, Events, Finding, Signature};
use crate::decode::ip_proto;
use crate::detect::inspect::PacketView;

const TUNNEL: Signature = Signature {
    sid: 9_200_401,
    msg: "MIRADOR ICMP tunnel: echo traffic carrying data",
    family: "icmp-tunnel",
    classtype: "policy-violation",
    priority: 2,
};

const ECHO_REPLY: u8 = 0;
const ECHO_REQUEST: u8 = 8;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

/// Requests remembered per flow for pairing with replies.
const MAX_PENDING: usize = 64;
/// Bytes of a payload that make its entropy meaningful.
const MIN_RANDOM_BYTES: usize = 64;
/// Bits per byte above which a payload looks random (compressed or
/// encrypted).
const RANDOM_BITS: f64 = 6.0;
/// `[detectors.icmp]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IcmpSettings {
    /// Echo replies unlike their request that make a tunnel.
    pub mismatched_replies: u32,
    /// Distinct random-looking echo payloads that make a tunnel.
    pub random_payloads: u32,
}

impl Default for IcmpSettings {
    fn default() -> Self {
        Self {
            mismatched_replies: 3,
            random_payloads: 5,
        }
    }
}

/// What an echo flow showed so far.
#[derive(Debug, Default)]
pub struct EchoFlow {
    /// Request payload hash by identifier and sequence number.
    requests: HashMap<u32, u64, FxBuildHasher>,
    mismatched: u32,
    random: Vec<u64>,
    reported: bool,
}

/// ICMP tunnels.
#[derive(Debug)]
pub struct IcmpTunnel {
    settings: IcmpSettings,
}

/// True when `bytes` start with an IPv4 header whose checksum holds.
fn carries_ipv4(bytes: &[u8]) -> bool {
    let Some(header) = bytes.get(..20) else {
        return false;
    };
    let len = usize::from(header[0] & 0x0f) * 4;
    if header[0] >> 4 != 4 || len < 20 || bytes.len() < len {
        return false;
    }
    let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if total < len || total > bytes.len() + 64 {
        return false;
    }
    let mut sum: u32 = bytes[..len]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

impl Detector for IcmpTunnel {
    const SIDS: std::ops::RangeInclusive<u32> = 9_200_400..=9_200_499;
    const SIGNATURES: &'static [Signature] = &[TUNNEL];
    const EVENTS: Events = Events::ICMP;
    type Settings = IcmpSettings;
    type Flow = Option<Box<EchoFlow>>;
    type Shared = ();

    fn new(settings: &IcmpSettings, _: &Arc<()>) -> Self {
        Self {
            settings: settings.clone(),
        }
    }

    fn packet(
        &mut self,
        flow: &mut Option<Box<EchoFlow>>,
        packet: &PacketView<'_>,
        out: &mut impl FnMut(Finding),
    ) {
        let Some((icmp_type, _, rest)) = packet.icmp else {
            return;
        };
        if !matches!(packet.proto, ip_proto::ICMP | ip_proto::ICMPV6) {
            return;
        }
        let request = matches!(icmp_type, ECHO_REQUEST | ECHO_REQUEST_V6);
        let reply = matches!(icmp_type, ECHO_REPLY | ECHO_REPLY_V6);
        if !(request || reply) || packet.payload.is_empty() {
            return;
        }
        let flow = flow.get_or_insert_with(Box::default);
        if flow.reported {
            return;
        }
        let payload = packet.payload;
        let digest = fingerprint(payload);
        let mut reason = None;
        if carries_ipv4(payload) {
            reason = Some("carries an IPv4 packet".to_owned());
        }
        if request {
            if flow.requests.len() >= MAX_PENDING {
                flow.requests.clear();
            }
            flow.requests.insert(rest, digest);
        } else if let Some(sent) = flow.requests.remove(&rest) {
            if sent != digest {
                flow.mismatched += 1;
                if flow.mismatched >= self.settings.mismatched_replies {
                    reason.get_or_insert_with(|| {
                        format!("{} replies differ from their request", flow.mismatched)
                    });
                }
            }
        }
        if payload.len() >= MIN_RANDOM_BYTES
            && entropy(payload) >= RANDOM_BITS
            && !flow.random.contains(&digest)
        {
            flow.random.push(digest);
            if flow.random.len() as u32 >= self.settings.random_payloads {
                reason.get_or_insert_with(|| {
                    format!("{} distinct random-looking payloads", flow.random.len())
                });
            }
        }
        if let Some(reason) = reason {
            flow.reported = true;
            let metadata = format!(
                "reason {reason}, payload_bytes {}, entropy {:.2}",
                payload.len(),
                entropy(payload)
            );
            out(Finding::new(&TUNNEL, metadata, payload));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv4_header_is_recognised_by_its_checksum() {
        let mut header = vec![
            0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let sum: u32 = header
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        let folded = (sum & 0xffff) + (sum >> 16);
        let checksum = !(folded as u16);
        header[10..12].copy_from_slice(&checksum.to_be_bytes());
        header.extend_from_slice(&[0; 8]);
        assert!(carries_ipv4(&header));
        header[15] ^= 1;
        assert!(!carries_ipv4(&header));
        assert!(!carries_ipv4(b"abcdefghijklmnopqrstuvwabcdefghi"));
    }
}
