//! Packet and capture-file construction.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::Path;

pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const ICMP: u8 = 1;
pub const ICMPV6: u8 = 58;
pub const GRE: u8 = 47;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

pub const SECOND: u64 = 1_000_000_000;
pub const MILLI: u64 = 1_000_000;

/// Internet checksum over `data`, starting from `sum`.
fn checksum(mut sum: u32, data: &[u8]) -> u16 {
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn pseudo_sum(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
    let mut bytes = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            bytes.extend_from_slice(&s.octets());
            bytes.extend_from_slice(&d.octets());
            bytes.extend_from_slice(&[0, proto]);
            bytes.extend_from_slice(&(len as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            bytes.extend_from_slice(&s.octets());
            bytes.extend_from_slice(&d.octets());
            bytes.extend_from_slice(&(len as u32).to_be_bytes());
            bytes.extend_from_slice(&[0, 0, 0, proto]);
        }
        _ => panic!("mixed address families"),
    }
    let mut sum = 0u32;
    for chunk in bytes.chunks(2) {
        sum += u32::from(u16::from_be_bytes([chunk[0], chunk[1]]));
    }
    sum
}

pub fn tcp(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    data: &[u8],
) -> Vec<u8> {
    let mut s = Vec::with_capacity(20 + data.len());
    s.extend_from_slice(&sport.to_be_bytes());
    s.extend_from_slice(&dport.to_be_bytes());
    s.extend_from_slice(&seq.to_be_bytes());
    s.extend_from_slice(&ack.to_be_bytes());
    s.extend_from_slice(&[0x50, flags, 0xfa, 0xf0, 0, 0, 0, 0]);
    s.extend_from_slice(data);
    let c = checksum(pseudo_sum(src, dst, TCP, s.len()), &s);
    s[16..18].copy_from_slice(&c.to_be_bytes());
    s
}

pub fn udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(8 + data.len());
    s.extend_from_slice(&sport.to_be_bytes());
    s.extend_from_slice(&dport.to_be_bytes());
    s.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    s.extend_from_slice(&[0, 0]);
    s.extend_from_slice(data);
    let c = checksum(pseudo_sum(src, dst, UDP, s.len()), &s);
    s[6..8].copy_from_slice(&c.to_be_bytes());
    s
}

pub fn icmp(src: IpAddr, dst: IpAddr, kind: u8, code: u8, rest: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut s = vec![kind, code, 0, 0];
    s.extend_from_slice(&rest);
    s.extend_from_slice(data);
    let start = if src.is_ipv6() {
        pseudo_sum(src, dst, ICMPV6, s.len())
    } else {
        0
    };
    let c = checksum(start, &s);
    s[2..4].copy_from_slice(&c.to_be_bytes());
    s
}

/// An IPv4 packet; `options` must be a multiple of 4 bytes.
pub fn ipv4_full(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    id: u16,
    frag: u16,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src, dst) else {
        panic!("ipv4 needs v4 addresses")
    };
    let header_len = 20 + options.len();
    let mut p = Vec::with_capacity(header_len + payload.len());
    p.push(0x40 | (header_len / 4) as u8);
    p.push(0);
    p.extend_from_slice(&((header_len + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&s.octets());
    p.extend_from_slice(&d.octets());
    p.extend_from_slice(options);
    let c = checksum(0, &p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An IPv6 packet whose payload may start with extension headers (`next`
/// names the first).
pub fn ipv6(src: IpAddr, dst: IpAddr, next: u8, payload: &[u8]) -> Vec<u8> {
    let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) else {
        panic!("ipv6 needs v6 addresses")
    };
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend_from_slice(&s.octets());
    p.extend_from_slice(&d.octets());
    p.extend_from_slice(payload);
    p
}

/// An IP packet of the family of `src`.
pub fn ip(src: IpAddr, dst: IpAddr, proto: u8, payload: &[u8]) -> Vec<u8> {
    if src.is_ipv4() {
        ipv4_full(src, dst, proto, 1, 0x4000, &[], payload)
    } else {
        ipv6(src, dst, proto, payload)
    }
}

pub fn ethernet(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01];
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub fn ether_type_of(ip: &[u8]) -> u16 {
    if ip[0] >> 4 == 6 {
        0x86dd
    } else {
        0x0800
    }
}

pub fn eth_ip(ip: &[u8]) -> Vec<u8> {
    ethernet(ether_type_of(ip), ip)
}

/// A capture being assembled: (timestamp ns, link type, frame).
#[derive(Default)]
pub struct Capture {
    pub packets: Vec<(u64, u16, Vec<u8>)>,
}

impl Capture {
    pub fn add(&mut self, ts: u64, link: u16, frame: Vec<u8>) {
        self.packets.push((ts, link, frame));
    }

    pub fn sorted(mut self) -> Self {
        self.packets.sort_by_key(|p| p.0);
        self
    }
}

/// Writes a classic pcap file.
pub fn write_pcap(
    path: &Path,
    capture: &Capture,
    linktype: u32,
    big_endian: bool,
    nanos: bool,
) -> std::io::Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    let u32b = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u16b = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    w.write_all(&u32b(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }))?;
    w.write_all(&u16b(2))?;
    w.write_all(&u16b(4))?;
    w.write_all(&u32b(0))?;
    w.write_all(&u32b(0))?;
    w.write_all(&u32b(65_535))?;
    w.write_all(&u32b(linktype))?;
    for (ts, _, frame) in &capture.packets {
        let frac = if nanos {
            ts % SECOND
        } else {
            ts % SECOND / 1_000
        };
        w.write_all(&u32b((ts / SECOND) as u32))?;
        w.write_all(&u32b(frac as u32))?;
        w.write_all(&u32b(frame.len() as u32))?;
        w.write_all(&u32b(frame.len() as u32))?;
        w.write_all(frame)?;
    }
    w.flush()
}

fn pad4(w: &mut impl Write, len: usize) -> std::io::Result<()> {
    w.write_all(&[0u8; 3][..(4 - len % 4) % 4])
}

/// Writes a little-endian pcapng file with one interface per entry of
/// `interfaces` (link type, `if_tsresol` exponent of ten); each packet's
/// link type picks its interface.
pub fn write_pcapng(
    path: &Path,
    capture: &Capture,
    interfaces: &[(u16, u8)],
) -> std::io::Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut w, 0x0a0d_0d0a, &shb)?;
    for &(link, resol) in interfaces {
        let mut idb = Vec::new();
        idb.extend_from_slice(&link.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&0u32.to_le_bytes());
        idb.extend_from_slice(&9u16.to_le_bytes());
        idb.extend_from_slice(&1u16.to_le_bytes());
        idb.extend_from_slice(&[resol, 0, 0, 0]);
        idb.extend_from_slice(&[0, 0, 0, 0]);
        block(&mut w, 1, &idb)?;
    }
    for (ts, link, frame) in &capture.packets {
        let Some(index) = interfaces.iter().position(|(l, _)| l == link) else {
            panic!("no interface for link type {link}");
        };
        let units = ts / 10u64.pow(9 - u32::from(interfaces[index].1));
        let mut epb = Vec::new();
        epb.extend_from_slice(&(index as u32).to_le_bytes());
        epb.extend_from_slice(&((units >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(units as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(frame);
        let mut body = epb;
        let len = body.len();
        pad4(&mut body, len)?;
        block(&mut w, 6, &body)?;
    }
    w.flush()
}

fn block(w: &mut impl Write, kind: u32, body: &[u8]) -> std::io::Result<()> {
    let total = (12 + body.len()) as u32;
    w.write_all(&kind.to_le_bytes())?;
    w.write_all(&total.to_le_bytes())?;
    w.write_all(body)?;
    w.write_all(&total.to_le_bytes())
}

/// Both ends of a TCP connection and their next sequence numbers; every
/// segment is handed to `emit` as an IP packet.
pub struct Tcp {
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    pub cseq: u32,
    pub sseq: u32,
}

impl Tcp {
    pub fn new(client: (&str, u16), server: (&str, u16), cseq: u32, sseq: u32) -> Self {
        Self {
            client: (client.0.parse().unwrap(), client.1),
            server: (server.0.parse().unwrap(), server.1),
            cseq,
            sseq,
        }
    }

    /// One segment; `from_client` picks the direction. Sequence numbers advance.
    pub fn segment(&mut self, from_client: bool, flags: u8, data: &[u8]) -> Vec<u8> {
        let (src, dst, seq, ack) = if from_client {
            (self.client, self.server, self.cseq, self.sseq)
        } else {
            (self.server, self.client, self.sseq, self.cseq)
        };
        let ack = if flags & ACK != 0 { ack } else { 0 };
        let segment = tcp(src.0, dst.0, src.1, dst.1, seq, ack, flags, data);
        let advance = data.len() as u32 + u32::from(flags & (SYN | FIN) != 0);
        if from_client {
            self.cseq = self.cseq.wrapping_add(advance);
        } else {
            self.sseq = self.sseq.wrapping_add(advance);
        }
        ip(src.0, dst.0, TCP, &segment)
    }

    /// A whole conversation: handshake, one request, one response, FIN both
    /// ways, final ACK; packets `step` ns apart from `t`.
    pub fn conversation(
        &mut self,
        t: u64,
        step: u64,
        request: &[u8],
        response: &[u8],
    ) -> Vec<(u64, Vec<u8>)> {
        let segments = vec![
            self.segment(true, SYN, b""),
            self.segment(false, SYN | ACK, b""),
            self.segment(true, ACK, b""),
            self.segment(true, PSH | ACK, request),
            self.segment(false, ACK, b""),
            self.segment(false, PSH | ACK, response),
            self.segment(true, ACK, b""),
            self.segment(true, FIN | ACK, b""),
            self.segment(false, FIN | ACK, b""),
            self.segment(true, ACK, b""),
        ];
        segments
            .into_iter()
            .enumerate()
            .map(|(i, p)| (t + i as u64 * step, p))
            .collect()
    }
}

pub fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A DNS query for `name` (type A, recursion desired).
pub fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m
}

/// A TLS record of `kind` carrying one handshake message of `msg_type`.
pub fn tls_handshake(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut message = vec![msg_type];
    message.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    message.extend_from_slice(body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(message.len() as u16).to_be_bytes());
    record.extend_from_slice(&message);
    record
}

pub fn tls_extension(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut ext = kind.to_be_bytes().to_vec();
    ext.extend_from_slice(&(data.len() as u16).to_be_bytes());
    ext.extend_from_slice(data);
    ext
}

pub fn with_length(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}
