//! `pcapgen flood KIND`: traffic made to exhaust one kind of a sensor's
//! state, streamed as fast as the reader takes it. `--count` is how many of
//! the kind's units to send (see [`Kind`]).

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::build::*;
use crate::stream::{until_reader_leaves, PcapStream, Rng};

/// 2024-03-01 12:00:00 UTC.
const T0: u64 = 1_709_294_400 * SECOND;
/// Packets of a flood are this far apart.
const GAP: u64 = 1_000;
/// Bytes a compression bomb decompresses to.
const BOMB_BYTES: usize = 256 << 20;

/// What a flood is made of; the unit `--count` counts.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Kind {
    /// SYNs from random sources and ports, never answered (a SYN each).
    Syn,
    /// First fragments of datagrams that never complete (a fragment each).
    Fragments,
    /// Connections whose first data segment never comes, so that all that
    /// follows is held out of order (a 1,000-byte segment each).
    OutOfOrder,
    /// Whole TCP connections carrying one byte (a connection each).
    TinyStreams,
    /// DNS questions, each for a name never asked before (a question and
    /// its answer each).
    Dns,
    /// HTTP requests whose header block never ends (64 KiB each).
    HeaderBomb,
    /// HTTP responses whose bodies decompress to 256 MiB: gzip inside
    /// gzip, and LZMA (a response each, in turn).
    CompressionBomb,
    /// HTTP requests whose URI is a long run of one letter: a pathological
    /// `pcre` like `/(a+)+b/` backtracks over it (a request each).
    Pcre,
}

/// Streams `count` units of flood `kind`.
pub fn run(kind: Kind, count: u64, seed: u64) -> io::Result<()> {
    until_reader_leaves(|| {
        let mut flood = Flood {
            out: PcapStream::stdout()?,
            rng: Rng::new(seed),
            t: T0,
        };
        match kind {
            Kind::Syn => flood.syn(count)?,
            Kind::Fragments => flood.fragments(count)?,
            Kind::OutOfOrder => flood.out_of_order(count)?,
            Kind::TinyStreams => flood.tiny_streams(count)?,
            Kind::Dns => flood.dns(count)?,
            Kind::HeaderBomb => flood.header_bomb(count)?,
            Kind::CompressionBomb => flood.compression_bomb(count)?,
            Kind::Pcre => flood.pcre(count)?,
        }
        flood.out.finish()
    })
}

struct Flood {
    out: PcapStream,
    rng: Rng,
    t: u64,
}

const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(172, 16, 0, 1));

impl Flood {
    /// Writes `packets` one after the other.
    fn send(&mut self, packets: Vec<Vec<u8>>) -> io::Result<()> {
        for ip in packets {
            self.t += GAP;
            self.out.ip(self.t, &ip);
        }
        self.out.release(self.t)
    }

    /// A source address of 10.0.0.0/8, random.
    fn source(&mut self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(
            0x0a00_0000 | (self.rng.next() as u32 & 0x00ff_ffff),
        ))
    }

    /// A connection from a random source and port to the server's `port`.
    fn connection(&mut self, port: u16) -> Tcp {
        let client = (self.source(), 1_024 + self.rng.below(64_000) as u16);
        Tcp {
            client,
            server: (SERVER, port),
            cseq: self.rng.next() as u32,
            sseq: self.rng.next() as u32,
        }
    }

    fn handshake(conn: &mut Tcp) -> Vec<Vec<u8>> {
        vec![
            conn.segment(true, SYN, b""),
            conn.segment(false, SYN | ACK, b""),
            conn.segment(true, ACK, b""),
        ]
    }

    fn syn(&mut self, count: u64) -> io::Result<()> {
        for _ in 0..count {
            let mut conn = self.connection(80);
            self.send(vec![conn.segment(true, SYN, b"")])?;
        }
        Ok(())
    }

    fn fragments(&mut self, count: u64) -> io::Result<()> {
        let payload = self.rng.bytes(1_400);
        for _ in 0..count {
            let src = self.source();
            let id = self.rng.next() as u16;
            let first = ipv4_full(src, SERVER, UDP, id, 0x2000, &[], &payload);
            self.send(vec![first])?;
        }
        Ok(())
    }

    /// Connections of 64 segments each, the first of them never sent.
    fn out_of_order(&mut self, count: u64) -> io::Result<()> {
        const PER_CONNECTION: u64 = 64;
        let data = self.rng.bytes(1_000);
        let mut sent = 0;
        while sent < count {
            let mut conn = self.connection(80);
            let mut packets = Self::handshake(&mut conn);
            let (c, s, start) = (conn.client, conn.server, conn.cseq);
            for i in 1..PER_CONNECTION.min(count - sent + 1) {
                let seq = start.wrapping_add(1_000 * i as u32);
                let segment = tcp(c.0, s.0, c.1, s.1, seq, conn.sseq, PSH | ACK, &data);
                packets.push(ip(c.0, s.0, TCP, &segment));
                sent += 1;
            }
            self.send(packets)?;
        }
        Ok(())
    }

    fn tiny_streams(&mut self, count: u64) -> io::Result<()> {
        for _ in 0..count {
            let mut conn = self.connection(80);
            let mut packets = Self::handshake(&mut conn);
            packets.push(conn.segment(true, PSH | ACK | FIN, b"x"));
            packets.push(conn.segment(false, RST | ACK, b""));
            self.send(packets)?;
        }
        Ok(())
    }

    fn dns(&mut self, count: u64) -> io::Result<()> {
        let resolver = IpAddr::V4(Ipv4Addr::new(172, 16, 0, 53));
        for i in 0..count {
            let client = IpAddr::V4(Ipv4Addr::new(10, 1, (i >> 8) as u8 & 0x0f, i as u8));
            let sport = 1_024 + self.rng.below(64_000) as u16;
            let name = format!("{}-{i:x}.{}.example", self.rng.label(12), self.rng.label(6));
            let query = dns_query(self.rng.next() as u16, &name);
            let mut answer = query.clone();
            answer[2..4].copy_from_slice(&[0x81, 0x83]);
            self.send(vec![
                ip(
                    client,
                    resolver,
                    UDP,
                    &udp(client, resolver, sport, 53, &query),
                ),
                ip(
                    resolver,
                    client,
                    UDP,
                    &udp(resolver, client, 53, sport, &answer),
                ),
            ])?;
        }
        Ok(())
    }

    fn header_bomb(&mut self, count: u64) -> io::Result<()> {
        let mut head = b"GET / HTTP/1.1\r\nHost: bomb.example\r\n".to_vec();
        while head.len() < 64 << 10 {
            head.extend_from_slice(
                format!("X-Filler-{}: {}\r\n", head.len(), "a".repeat(40)).as_bytes(),
            );
        }
        for _ in 0..count {
            let mut conn = self.connection(80);
            let mut packets = Self::handshake(&mut conn);
            packets.extend(
                head.chunks(1_400)
                    .map(|part| conn.segment(true, PSH | ACK, part)),
            );
            packets.push(conn.segment(false, ACK, b""));
            self.send(packets)?;
        }
        Ok(())
    }

    fn compression_bomb(&mut self, count: u64) -> io::Result<()> {
        let zeros = vec![0u8; 1 << 20];
        let gzip = |data: &mut dyn FnMut(&mut GzEncoder<Vec<u8>>) -> io::Result<()>| {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
            data(&mut encoder)?;
            encoder.finish()
        };
        let inner = gzip(&mut |e| {
            for _ in 0..BOMB_BYTES / zeros.len() {
                e.write_all(&zeros)?;
            }
            Ok(())
        })?;
        let nested = gzip(&mut |e| e.write_all(&inner))?;
        let lzma = lzma_zeros(BOMB_BYTES)?;
        let bombs = [("gzip, gzip", nested), ("lzma", lzma)];
        for i in 0..count {
            let (coding, body) = &bombs[i as usize % bombs.len()];
            let mut conn = self.connection(80);
            let mut packets = Self::handshake(&mut conn);
            packets.push(conn.segment(
                true,
                PSH | ACK,
                b"GET /bomb HTTP/1.1\r\nHost: bomb.example\r\n\r\n",
            ));
            let mut response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: {coding}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            response.extend_from_slice(body);
            packets.extend(
                response
                    .chunks(1_400)
                    .map(|part| conn.segment(false, PSH | ACK, part)),
            );
            packets.extend([
                conn.segment(true, FIN | ACK, b""),
                conn.segment(false, FIN | ACK, b""),
                conn.segment(true, ACK, b""),
            ]);
            self.send(packets)?;
        }
        Ok(())
    }

    fn pcre(&mut self, count: u64) -> io::Result<()> {
        let request = format!(
            "GET /{} HTTP/1.1\r\nHost: pcre.example\r\n\r\n",
            "a".repeat(4_000)
        );
        for _ in 0..count {
            let mut conn = self.connection(80);
            let mut packets = Self::handshake(&mut conn);
            packets.extend(
                request
                    .as_bytes()
                    .chunks(1_400)
                    .map(|part| conn.segment(true, PSH | ACK, part)),
            );
            packets.extend([
                conn.segment(false, ACK, b""),
                conn.segment(true, FIN | ACK, b""),
                conn.segment(false, FIN | ACK, b""),
                conn.segment(true, ACK, b""),
            ]);
            self.send(packets)?;
        }
        Ok(())
    }
}

/// `len` zero bytes in LZMA's "alone" format (what `Content-Encoding:
/// lzma` carries), compressed with liblzma.
fn lzma_zeros(len: usize) -> io::Result<Vec<u8>> {
    let options = xz2::stream::LzmaOptions::new_preset(6).map_err(io::Error::other)?;
    let stream = xz2::stream::Stream::new_lzma_encoder(&options).map_err(io::Error::other)?;
    let mut encoder = xz2::write::XzEncoder::new_stream(Vec::new(), stream);
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..len / zeros.len() {
        encoder.write_all(&zeros)?;
    }
    encoder.finish()
}
