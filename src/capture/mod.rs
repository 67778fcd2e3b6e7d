//! Packet sources: where raw frames come from before decode.
//!
//! Every source hands the pipeline the same thing, a [`PacketBatch`] of
//! [`RawPacket`] views (timestamp, link type, captured bytes, wire length), so
//! the worker that decodes and tracks flows does not know whether its packets
//! came from a capture file or a NIC queue. This module owns the capture-file
//! formats ([`file`]: pcap and pcapng), the replay of several files in
//! timestamp order ([`replay`]), standard input as a source ([`stdin`]) and
//! the safe wrapper over DPDK ([`dpdk`]:
//! EAL, ports, queues, mbufs), the only code of the sensor that calls DPDK.
//! It does not interpret packet contents.

pub mod batch;
pub mod dpdk;
pub mod file;
pub mod replay;
pub mod stdin;

pub use batch::{PacketBatch, RawPacket};
pub use file::{CaptureError, CaptureErrorKind, CaptureFile};
pub use replay::Replay;

/// Link-layer type of a captured frame (the pcap `LINKTYPE_*` values we decode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1).
    Ethernet,
    /// `LINKTYPE_LINUX_SLL` (113): Linux "cooked" capture, version 1.
    LinuxSll,
    /// `LINKTYPE_LINUX_SLL2` (276): Linux "cooked" capture, version 2.
    LinuxSll2,
    /// `LINKTYPE_RAW` (101, and the BSD `DLT_RAW` values 12 and 14): a bare IPv4 or IPv6 packet.
    RawIp,
    /// `LINKTYPE_IPV4` (228).
    Ipv4,
    /// `LINKTYPE_IPV6` (229).
    Ipv6,
    /// `LINKTYPE_NULL` (0) and `LINKTYPE_LOOP` (108): BSD loopback, a 4-byte
    /// address family before the IP packet.
    Loopback,
    /// `LINKTYPE_C_HDLC` (104): Cisco HDLC, a 4-byte header ending in an
    /// EtherType.
    CiscoHdlc,
}

impl LinkType {
    /// Maps a pcap/pcapng link-type number to a supported [`LinkType`].
    pub fn from_linktype(value: u32) -> Option<Self> {
        match value {
            1 => Some(Self::Ethernet),
            113 => Some(Self::LinuxSll),
            276 => Some(Self::LinuxSll2),
            12 | 14 | 101 => Some(Self::RawIp),
            228 => Some(Self::Ipv4),
            229 => Some(Self::Ipv6),
            0 | 108 => Some(Self::Loopback),
            104 => Some(Self::CiscoHdlc),
            _ => None,
        }
    }

    /// The pcap/pcapng link-type number it is written as.
    pub fn linktype(self) -> u16 {
        match self {
            Self::Ethernet => 1,
            Self::LinuxSll => 113,
            Self::LinuxSll2 => 276,
            Self::RawIp => 101,
            Self::Ipv4 => 228,
            Self::Ipv6 => 229,
            Self::Loopback => 0,
            Self::CiscoHdlc => 104,
        }
    }
}
