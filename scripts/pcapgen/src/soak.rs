//! `pcapgen soak`: a stream of ordinary traffic for long runs of `mirador
//! replay -`. Flows come in a fixed rotation (HTTP, DNS, TLS, UDP, a
//! fragmented datagram, TCP with segments out of order and retransmitted,
//! ICMP echo, an unanswered or refused SYN), each from a client address and
//! port not used before, so that every flow is new to the sensor and what
//! it keeps per flow must be freed for memory to stay flat.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::build::*;
use crate::stream::{until_reader_leaves, PcapStream, Rng};

/// 2024-03-01 12:00:00 UTC: where packet time starts unless paced.
const T0: u64 = 1_709_294_400 * SECOND;
/// Kinds of flow in the rotation.
const KINDS: u64 = 8;

/// What to generate.
pub struct Soak {
    /// Flows to write; 0 for no end.
    pub flows: u64,
    /// New flows per second of packet time.
    pub rate: u64,
    /// Pace the output so that packet time keeps up with the wall clock
    /// (and starts at the current time).
    pub realtime: bool,
    pub seed: u64,
}

impl Soak {
    pub fn run(&self) -> io::Result<()> {
        until_reader_leaves(|| self.generate())
    }

    fn generate(&self) -> io::Result<()> {
        let mut out = PcapStream::stdout()?;
        let mut rng = Rng::new(self.seed);
        let started = Instant::now();
        let t0 = if self.realtime {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(T0, |d| d.as_nanos() as u64)
        } else {
            T0
        };
        let spacing = SECOND / self.rate.max(1);
        let mut n = 0u64;
        while self.flows == 0 || n < self.flows {
            let offset = n * spacing;
            out.release(t0 + offset)?;
            if self.realtime {
                let due = Duration::from_nanos(offset);
                let elapsed = started.elapsed();
                if due > elapsed + Duration::from_millis(2) {
                    out.flush()?;
                    std::thread::sleep(due - elapsed);
                }
            }
            let ends = Ends::of(n, &mut rng);
            flow(&mut out, &mut rng, n % KINDS, &ends, t0 + offset);
            n += 1;
        }
        out.finish()
    }
}

/// A flow's client and server.
struct Ends {
    client: IpAddr,
    server: IpAddr,
    sport: u16,
}

impl Ends {
    /// Flow `n`'s client is the n-th address of 10.0.0.0/8 (past 2^24
    /// flows, the port tells them apart); servers come from a pool.
    fn of(n: u64, rng: &mut Rng) -> Self {
        let host = (n & 0x00ff_ffff) as u32;
        let client = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | host));
        let server = IpAddr::V4(Ipv4Addr::new(
            172,
            16,
            rng.below(16) as u8,
            1 + rng.below(254) as u8,
        ));
        let sport = 1024 + ((n >> 24).wrapping_mul(7_919) + rng.below(60_000)) as u16 % 64_000;
        Self {
            client,
            server,
            sport,
        }
    }

    fn tcp(&self, dport: u16, rng: &mut Rng) -> Tcp {
        Tcp {
            client: (self.client, self.sport),
            server: (self.server, dport),
            cseq: rng.next() as u32,
            sseq: rng.next() as u32,
        }
    }
}

fn flow(out: &mut PcapStream, rng: &mut Rng, kind: u64, ends: &Ends, t: u64) {
    let step = MILLI / 2 + rng.below(MILLI);
    let packets = match kind {
        0 => http(rng, ends),
        1 => dns(rng, ends),
        2 => tls(rng, ends),
        3 => datagrams(rng, ends),
        4 => fragmented(rng, ends),
        5 => out_of_order(rng, ends),
        6 => echo(rng, ends),
        _ => syn(rng, ends),
    };
    for (i, ip) in packets.into_iter().enumerate() {
        out.ip(t + i as u64 * step, &ip);
    }
}

fn http(rng: &mut Rng, ends: &Ends) -> Vec<Vec<u8>> {
    let host = format!("{}.example.com", rng.label(8));
    let len = 1 + rng.below(20) as usize;
    let path = rng.label(len);
    let request = format!(
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\n\r\n"
    );
    let len = 100 + rng.below(1_200) as usize;
    let body = rng.label(len);
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut conn = ends.tcp(80, rng);
    conn.conversation(0, 0, request.as_bytes(), response.as_bytes())
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

fn dns(rng: &mut Rng, ends: &Ends) -> Vec<Vec<u8>> {
    const DOMAINS: [&str; 4] = ["example.com", "example.net", "example.org", "test"];
    let len = 3 + rng.below(10) as usize;
    let name = format!("{}.{}", rng.label(len), DOMAINS[rng.below(4) as usize]);
    let query = dns_query(rng.next() as u16, &name);
    let mut answer = query.clone();
    answer[2..4].copy_from_slice(&[0x81, 0x80]);
    answer[6..8].copy_from_slice(&1u16.to_be_bytes());
    answer.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4]);
    answer.extend_from_slice(&rng.bytes(4));
    let resolver = IpAddr::V4(Ipv4Addr::new(172, 16, 0, 53));
    vec![
        ip(
            ends.client,
            resolver,
            UDP,
            &udp(ends.client, resolver, ends.sport, 53, &query),
        ),
        ip(
            resolver,
            ends.client,
            UDP,
            &udp(resolver, ends.client, 53, ends.sport, &answer),
        ),
    ]
}

fn tls(rng: &mut Rng, ends: &Ends) -> Vec<Vec<u8>> {
    let name = format!("{}.example.com", rng.label(10));
    let mut sni = vec![0u8];
    sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni.extend_from_slice(name.as_bytes());
    let mut hello = vec![0x03, 0x03];
    hello.extend(rng.bytes(32));
    hello.push(0);
    hello.extend(with_length(&[0x13, 0x01, 0xc0, 0x2f]));
    hello.extend_from_slice(&[1, 0]);
    hello.extend(with_length(&tls_extension(0, &with_length(&sni))));
    let mut server = vec![0x03, 0x03];
    server.extend(rng.bytes(32));
    server.extend_from_slice(&[0, 0xc0, 0x2f, 0]);
    server.extend(with_length(&[]));
    let mut data = vec![0x17, 0x03, 0x03];
    let len = 64 + rng.below(900) as usize;
    let secret = rng.bytes(len);
    data.extend_from_slice(&(secret.len() as u16).to_be_bytes());
    data.extend(secret);
    let mut conn = ends.tcp(443, rng);
    vec![
        conn.segment(true, SYN, b""),
        conn.segment(false, SYN | ACK, b""),
        conn.segment(true, ACK, b""),
        conn.segment(true, PSH | ACK, &tls_handshake(1, &hello)),
        conn.segment(false, PSH | ACK, &tls_handshake(2, &server)),
        conn.segment(true, PSH | ACK, &data),
        conn.segment(false, PSH | ACK, &data),
        conn.segment(true, FIN | ACK, b""),
        conn.segment(false, FIN | ACK, b""),
        conn.segment(true, ACK, b""),
    ]
}

fn datagrams(rng: &mut Rng, ends: &Ends) -> Vec<Vec<u8>> {
    let dport = 10_000 + rng.below(50_000) as u16;
    (0..2 + rng.below(3))
        .map(|i| {
            let len = 20 + rng.below(500) as usize;
            let payload = rng.bytes(len);
            if i % 2 == 0 {
                ip(
                    ends.client,
                    ends.server,
                    UDP,
                    &udp(ends.client, ends.server, ends.sport, dport, &payload),
                )
            } else {
                ip(
                    ends.server,
                    ends.client,
                    UDP,
                    &udp(ends.server, ends.client, dport, ends.sport, &payload),
                )
            }
        })
        .collect()
}

/// A 3,000-byte UDP datagram in three IPv4 fragments; one in eight loses
/// its last fragment, so that unfinished datagrams must time out.
fn fragmented(rng: &mut Rng, ends: &Ends) -> Vec<Vec<u8>> {
    let payload = rng.bytes(3_000);
    let datagram = udp(ends.client, ends.server, ends.sport, 5_000, &payload);
    let id = rng.next() as u16;
    let mut fragments: Vec<Vec<u8>> = datagram
        .chunks(1_480)
        .enumerate()
        .map(|(i, part)| {
            let offset = (i * 1_480 / 8) as u16;
            let more = if (i + 1) * 1_480 < datagram.len() {
                0x2000
            } else {
                0
            };
            ipv4_full(ends.client, ends.server, UDP, id, more | offset, &[], part)
        })
        .collect();
    if rng.below(8) == 0 {
        fragments.pop();
    }
    fragments
}

/// Three data segments sent second, first, first again, third.
fn out_of_order(rng: &mut Rng, ends: &Ends) -> Vec<Vec<u8>> {
    let mut conn = ends.tcp(8_080, rng);
    let mut packets = vec![
        conn.segment(true, SYN, b""),
        conn.segment(false, SYN | ACK, b""),
        conn.segment(true, ACK, b""),
    ];
    let parts: Vec<Vec<u8>> = (0..3).map(|_| rng.bytes(500)).collect();
    let start = conn.cseq;
    let at = |i: usize| start.wrapping_add(500 * i as u32);
    let (c, s) = (conn.client, conn.server);
    let segment = |i: usize, data: &[u8]| {
        ip(
            c.0,
            s.0,
            TCP,
            &tcp(c.0, s.0, c.1, s.1, at(i), conn.sseq, PSH | ACK, data),
        )
    };
    packets.push(segment(1, &parts[1]));
    packets.push(segment(0, &parts[0]));
    packets.push(segment(0, &parts[0]));
    packets.push(segment(2, &parts[2]));
    conn.cseq = at(3);
    packets.extend([
        conn.segment(false, ACK, b""),
        conn.segment(true, FIN | ACK, b""),
        conn.segment(false, FIN | ACK, b""),
        conn.segment(true, ACK, b""),
    ]);
    packets
}

fn echo(rng: &mut Rng, ends: &Ends) -> Vec<Vec<u8>> {
    let rest = (rng.next() as u32).to_be_bytes();
    let data = rng.bytes(56);
    vec![
        ip(
            ends.client,
            ends.server,
            ICMP,
            &icmp(ends.client, ends.server, 8, 0, rest, &data),
        ),
        ip(
            ends.server,
            ends.client,
            ICMP,
            &icmp(ends.server, ends.client, 0, 0, rest, &data),
        ),
    ]
}

/// A SYN left unanswered, or refused.
fn syn(rng: &mut Rng, ends: &Ends) -> Vec<Vec<u8>> {
    let mut conn = ends.tcp(22 + rng.below(3_000) as u16, rng);
    let mut packets = vec![conn.segment(true, SYN, b"")];
    if rng.below(2) == 0 {
        packets.push(conn.segment(false, RST | ACK, b""));
    }
    packets
}
