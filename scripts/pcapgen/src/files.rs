//! The contents of each sample file.

use std::path::Path;

use crate::build::*;

/// 2024-03-01 12:00:00 UTC.
const T0: u64 = 1_709_294_400 * SECOND;

const LINK_ETHERNET: u16 = 1;
const LINK_RAW: u16 = 101;
const LINK_SLL: u16 = 113;
const LINK_SLL2: u16 = 276;

fn http_request(host: &str) -> Vec<u8> {
    format!(
        "GET /index.html HTTP/1.1\r\nHost: {host}\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"
    )
    .into_bytes()
}

fn http_response(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn add_all(capture: &mut Capture, packets: Vec<(u64, Vec<u8>)>, frame: impl Fn(&[u8]) -> Vec<u8>) {
    for (ts, ip) in packets {
        capture.add(ts, LINK_ETHERNET, frame(&ip));
    }
}

/// Re-writes an IPv4 packet with a 4-byte option field (NOP, NOP, NOP, EOL).
fn with_ipv4_options(ip: Vec<u8>) -> Vec<u8> {
    let proto = ip[9];
    let id = u16::from_be_bytes([ip[4], ip[5]]);
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    let src = std::net::IpAddr::from([ip[12], ip[13], ip[14], ip[15]]);
    let dst = std::net::IpAddr::from([ip[16], ip[17], ip[18], ip[19]]);
    ipv4_full(src, dst, proto, id, frag, &[1, 1, 1, 0], &ip[20..])
}

fn vlan(ids: &[u16], ip: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        body.extend_from_slice(&id.to_be_bytes());
        let next = if i + 1 < ids.len() {
            0x8100
        } else {
            ether_type_of(ip)
        };
        body.extend_from_slice(&u16::to_be_bytes(next));
    }
    body.extend_from_slice(ip);
    ethernet(if ids.len() > 1 { 0x88a8 } else { 0x8100 }, &body)
}

fn mpls(labels: &[u32], ip: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        let bottom = u32::from(i + 1 == labels.len());
        body.extend_from_slice(&((label << 12) | (bottom << 8) | 64).to_be_bytes());
    }
    body.extend_from_slice(ip);
    ethernet(0x8847, &body)
}

pub fn basic(path: &Path) -> std::io::Result<()> {
    let mut c = Capture::default();
    let step = 10 * MILLI;

    let mut web = Tcp::new(("10.0.0.10", 40000), ("93.184.216.34", 80), 1000, 5000);
    add_all(
        &mut c,
        web.conversation(
            T0,
            step,
            &http_request("example.com"),
            &http_response("<html>hello</html>"),
        ),
        eth_ip,
    );

    let mut rejected = Tcp::new(("10.0.0.10", 40001), ("10.0.0.20", 22), 7000, 0);
    let syn = rejected.segment(true, SYN, b"");
    let rst = rejected.segment(false, RST | ACK, b"");
    add_all(
        &mut c,
        vec![(T0 + SECOND, syn), (T0 + SECOND + MILLI, rst)],
        eth_ip,
    );

    let mut unanswered = Tcp::new(("10.0.0.10", 40002), ("10.0.0.30", 443), 9000, 0);
    let first = unanswered.segment(true, SYN, b"");
    unanswered.cseq = 9000;
    let again = unanswered.segment(true, SYN, b"");
    add_all(
        &mut c,
        vec![(T0 + 2 * SECOND, first), (T0 + 3 * SECOND, again)],
        eth_ip,
    );

    for (i, start) in [T0 + 4 * SECOND, T0 + 6 * SECOND].into_iter().enumerate() {
        let mut reuse = Tcp::new(
            ("10.0.0.10", 40003),
            ("10.0.0.40", 8080),
            20_000 + i as u32 * 100_000,
            30_000,
        );
        add_all(
            &mut c,
            reuse.conversation(start, step, b"ping", b"pong"),
            eth_ip,
        );
    }

    let mut long = Tcp::new(("10.0.0.10", 40004), ("10.0.0.50", 5000), 50_000, 60_000);
    let mut packets = vec![
        (T0 + 10 * SECOND, long.segment(true, SYN, b"")),
        (
            T0 + 10 * SECOND + MILLI,
            long.segment(false, SYN | ACK, b""),
        ),
        (T0 + 10 * SECOND + 2 * MILLI, long.segment(true, ACK, b"")),
    ];
    for i in 1..=8u64 {
        let t = T0 + 10 * SECOND + i * 500 * SECOND;
        packets.push((t, long.segment(true, PSH | ACK, b"keepalive")));
        packets.push((t + MILLI, long.segment(false, ACK, b"")));
    }
    add_all(&mut c, packets, eth_ip);

    let mut optioned = Tcp::new(("10.0.0.11", 40005), ("10.0.0.60", 80), 70_000, 80_000);
    let conversation = optioned.conversation(
        T0 + 12 * SECOND,
        step,
        &http_request("options.test"),
        &http_response("ok"),
    );
    add_all(&mut c, conversation, |ip| {
        eth_ip(&with_ipv4_options(ip.to_vec()))
    });

    let mut v6 = Tcp::new(
        ("2001:db8::10", 40006),
        ("2001:db8::80", 443),
        90_000,
        100_000,
    );
    add_all(
        &mut c,
        v6.conversation(
            T0 + 14 * SECOND,
            step,
            b"\x16\x03\x01hello",
            b"\x16\x03\x03world",
        ),
        eth_ip,
    );

    let (h6a, h6b) = (addr("2001:db8::10"), addr("2001:db8::53"));
    let mut hop_by_hop = vec![UDP, 0, 1, 4, 0, 0, 0, 0];
    hop_by_hop.extend_from_slice(&udp(
        h6a,
        h6b,
        53001,
        53,
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x1c\x00\x01",
    ));
    c.add(
        T0 + 15 * SECOND,
        LINK_ETHERNET,
        eth_ip(&ipv6(h6a, h6b, 0, &hop_by_hop)),
    );

    let (client, resolver) = (addr("10.0.0.10"), addr("10.0.0.53"));
    let query =
        b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01";
    let mut answer = query.to_vec();
    answer[2] = 0x81;
    answer[3] = 0x80;
    answer[7] = 1;
    answer.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\x5d\xb8\xd8\x22");
    c.add(
        T0 + 16 * SECOND,
        LINK_ETHERNET,
        eth_ip(&ip(
            client,
            resolver,
            UDP,
            &udp(client, resolver, 53000, 53, query),
        )),
    );
    c.add(
        T0 + 16 * SECOND + 5 * MILLI,
        LINK_ETHERNET,
        eth_ip(&ip(
            resolver,
            client,
            UDP,
            &udp(resolver, client, 53, 53000, &answer),
        )),
    );

    let gateway = addr("10.0.0.1");
    for i in 0..2u64 {
        let seq = [0, 1, 0, i as u8 + 1];
        let t = T0 + 17 * SECOND + i * SECOND;
        c.add(
            t,
            LINK_ETHERNET,
            eth_ip(&ip(
                client,
                gateway,
                ICMP,
                &icmp(client, gateway, 8, 0, seq, &[0x61; 32]),
            )),
        );
        c.add(
            t + MILLI,
            LINK_ETHERNET,
            eth_ip(&ip(
                gateway,
                client,
                ICMP,
                &icmp(gateway, client, 0, 0, seq, &[0x61; 32]),
            )),
        );
    }
    let quoted = ip(
        client,
        addr("10.0.0.99"),
        UDP,
        &udp(client, addr("10.0.0.99"), 33434, 33435, b""),
    );
    c.add(
        T0 + 19 * SECOND,
        LINK_ETHERNET,
        eth_ip(&ip(
            gateway,
            client,
            ICMP,
            &icmp(gateway, client, 3, 3, [0; 4], &quoted),
        )),
    );

    let (v1, v2) = (addr("192.168.100.5"), addr("192.168.100.6"));
    for i in 0..2u64 {
        c.add(
            T0 + 20 * SECOND + i * MILLI,
            LINK_ETHERNET,
            vlan(
                &[100],
                &ip(v1, v2, UDP, &udp(v1, v2, 5000, 6000, b"syslog line")),
            ),
        );
    }

    let mut qinq = Tcp::new(
        ("192.168.20.5", 40007),
        ("192.168.20.6", 80),
        110_000,
        120_000,
    );
    let conversation = qinq.conversation(
        T0 + 21 * SECOND,
        step,
        &http_request("qinq.test"),
        &http_response("tagged"),
    );
    add_all(&mut c, conversation, |ip| vlan(&[10, 20], ip));

    let mut labelled = Tcp::new(("172.16.0.5", 40008), ("172.16.0.6", 443), 130_000, 140_000);
    let conversation =
        labelled.conversation(T0 + 22 * SECOND, step, b"mpls request", b"mpls response");
    add_all(&mut c, conversation, |ip| mpls(&[100, 200], ip));

    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 10];
    arp.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 0, 0, 1]);
    c.add(T0 + 23 * SECOND, LINK_ETHERNET, ethernet(0x0806, &arp));

    let (b1, b2) = (addr("10.0.0.77"), addr("10.0.0.78"));
    let mut cut = ip(b1, b2, TCP, &tcp(b1, b2, 1, 2, 3, 4, SYN, b""));
    cut.truncate(30);
    c.add(T0 + 24 * SECOND, LINK_ETHERNET, eth_ip(&cut));

    write_pcap(path, &c.sorted(), u32::from(LINK_ETHERNET), false, false)
}

fn vxlan(outer: (&str, &str), vni: u32, inner_ip: &[u8]) -> Vec<u8> {
    let (s, d) = (addr(outer.0), addr(outer.1));
    let mut payload = vec![0x08, 0, 0, 0];
    payload.extend_from_slice(&(vni << 8).to_be_bytes());
    payload.extend_from_slice(&eth_ip(inner_ip));
    eth_ip(&ip(s, d, UDP, &udp(s, d, 49152, 4789, &payload)))
}

fn gre(outer: (&str, &str), header: &[u8], inner: &[u8]) -> Vec<u8> {
    let (s, d) = (addr(outer.0), addr(outer.1));
    let mut payload = header.to_vec();
    payload.extend_from_slice(inner);
    ip(s, d, GRE, &payload)
}

pub fn tunnels(path: &Path) -> std::io::Result<()> {
    let mut c = Capture::default();
    let step = 7 * MILLI;
    let t = T0 + 3_600 * SECOND;

    let mut inner = Tcp::new(("10.1.0.5", 41000), ("10.1.0.6", 80), 1, 1_000);
    for (ts, ip) in inner.conversation(
        t,
        step,
        &http_request("vxlan.test"),
        &http_response("mirrored"),
    ) {
        c.add(
            ts,
            LINK_ETHERNET,
            vxlan(("172.31.0.1", "172.31.0.2"), 42, &ip),
        );
    }

    let mut inner = Tcp::new(("10.2.0.5", 41001), ("10.2.0.6", 80), 2, 2_000);
    let key_header = [0x20, 0x00, 0x08, 0x00, 0, 0, 0, 7];
    for (ts, ip) in inner.conversation(
        t + SECOND,
        step,
        &http_request("gre.test"),
        &http_response("tunnelled"),
    ) {
        c.add(
            ts,
            LINK_RAW,
            gre(("172.31.1.1", "172.31.1.2"), &key_header, &ip),
        );
    }

    let mut inner = Tcp::new(("10.3.0.5", 41002), ("10.3.0.6", 443), 3, 3_000);
    for (i, (ts, ip)) in inner
        .conversation(
            t + 2 * SECOND,
            step,
            b"erspan2 request",
            b"erspan2 response",
        )
        .into_iter()
        .enumerate()
    {
        let mut header = vec![0x10, 0x00, 0x88, 0xbe];
        header.extend_from_slice(&(i as u32).to_be_bytes());
        header.extend_from_slice(&[0x10, 0x00, 0x00, 0x05, 0, 0, 0, 0]);
        c.add(
            ts,
            LINK_ETHERNET,
            eth_ip(&gre(("172.31.2.1", "172.31.2.2"), &header, &eth_ip(&ip))),
        );
    }

    let mut inner = Tcp::new(("10.4.0.5", 41003), ("10.4.0.6", 8443), 4, 4_000);
    for (ts, ip) in inner.conversation(
        t + 3 * SECOND,
        step,
        b"erspan3 request",
        b"erspan3 response",
    ) {
        let mut header = vec![0x00, 0x00, 0x22, 0xeb];
        header.extend_from_slice(&[0x20, 0x00, 0x00, 0x06, 0, 0, 0, 0, 0, 0, 0, 0x01]);
        header.extend_from_slice(&[0u8; 8]);
        c.add(
            ts,
            LINK_ETHERNET,
            eth_ip(&gre(("172.31.3.1", "172.31.3.2"), &header, &eth_ip(&ip))),
        );
    }

    let (f1, f2) = (addr("10.5.0.5"), addr("10.5.0.6"));
    let datagram = udp(f1, f2, 7000, 7001, &[0x42; 3000]);
    let pieces: Vec<(usize, usize)> = vec![(0, 1480), (1480, 2960), (2960, datagram.len())];
    let mut fragments = Vec::new();
    for (start, end) in pieces {
        let more = if end < datagram.len() { 0x2000 } else { 0 };
        let frag = more | (start / 8) as u16;
        fragments.push(ipv4_full(
            f1,
            f2,
            UDP,
            0x1234,
            frag,
            &[],
            &datagram[start..end],
        ));
    }
    for (i, fragment) in fragments.into_iter().rev().enumerate() {
        c.add(
            t + 4 * SECOND + i as u64 * MILLI,
            LINK_ETHERNET,
            eth_ip(&fragment),
        );
    }
    c.add(
        t + 4 * SECOND + 10 * MILLI,
        LINK_ETHERNET,
        eth_ip(&ip(f2, f1, UDP, &udp(f2, f1, 7001, 7000, b"ack"))),
    );

    let (g1, g2) = (addr("2001:db8:5::5"), addr("2001:db8:5::6"));
    let datagram = udp(g1, g2, 7100, 7101, &[0x43; 2000]);
    let split = 1232;
    let frag_header = |offset: usize, more: bool| {
        let field = ((offset / 8) as u16) << 3 | u16::from(more);
        let mut h = vec![UDP, 0];
        h.extend_from_slice(&field.to_be_bytes());
        h.extend_from_slice(&0x0bad_cafeu32.to_be_bytes());
        h
    };
    let mut second = frag_header(split, false);
    second.extend_from_slice(&datagram[split..]);
    let mut first = frag_header(0, true);
    first.extend_from_slice(&datagram[..split]);
    c.add(
        t + 5 * SECOND,
        LINK_ETHERNET,
        eth_ip(&ipv6(g1, g2, 44, &second)),
    );
    c.add(
        t + 5 * SECOND + MILLI,
        LINK_ETHERNET,
        eth_ip(&ipv6(g1, g2, 44, &first)),
    );

    write_pcapng(path, &c.sorted(), &[(LINK_ETHERNET, 9), (LINK_RAW, 6)])
}

fn sll(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
    f.extend_from_slice(&u16::to_be_bytes(ether_type_of(ip)));
    f.extend_from_slice(ip);
    f
}

fn sll2(ip: &[u8]) -> Vec<u8> {
    let mut f = u16::to_be_bytes(ether_type_of(ip)).to_vec();
    f.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
    f.extend_from_slice(ip);
    f
}

pub fn cooked(sll_path: &Path, sll2_path: &Path) -> std::io::Result<()> {
    let t = T0 + 7_200 * SECOND;
    let mut c = Capture::default();
    let mut conn = Tcp::new(("10.6.0.5", 42000), ("10.6.0.6", 80), 10, 20);
    for (ts, ip) in conn.conversation(
        t,
        3 * MILLI,
        &http_request("sll.test"),
        &http_response("cooked"),
    ) {
        c.add(ts, LINK_SLL, sll(&ip));
    }
    write_pcap(sll_path, &c, u32::from(LINK_SLL), true, false)?;

    let mut c = Capture::default();
    let mut conn = Tcp::new(("2001:db8:7::5", 42001), ("2001:db8:7::6", 80), 30, 40);
    for (ts, ip) in conn.conversation(
        t + SECOND + 123,
        3 * MILLI,
        &http_request("sll2.test"),
        &http_response("cooked2"),
    ) {
        c.add(ts, LINK_SLL2, sll2(&ip));
    }
    write_pcap(sll2_path, &c, u32::from(LINK_SLL2), false, true)
}

/// TCP sessions that only reassembly gets right: client sequence numbers that
/// wrap past 2^32, segments sent out of order, a retransmission, an
/// overlapping re-send (same bytes), and a session with bytes lost to the
/// capture (acknowledged by the server but never seen).
pub fn stream(path: &Path) -> std::io::Result<()> {
    const SEGMENT: usize = 600;
    let mut c = Capture::default();
    let t = T0 + 10_800 * SECOND;
    let body: Vec<u8> = (0..5 * SEGMENT)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36])
        .collect();

    let mut conn = Tcp::new(
        ("10.7.0.5", 43000),
        ("10.7.0.6", 8080),
        u32::MAX - 100,
        u32::MAX - 10,
    );
    let mut packets = vec![
        conn.segment(true, SYN, b""),
        conn.segment(false, SYN | ACK, b""),
        conn.segment(true, ACK, b""),
    ];
    let base = conn.cseq;
    let mut part = |first: usize, count: usize| {
        conn.cseq = base.wrapping_add((first * SEGMENT) as u32);
        conn.segment(
            true,
            PSH | ACK,
            &body[first * SEGMENT..(first + count) * SEGMENT],
        )
    };
    for (first, count) in [(0, 1), (2, 1), (1, 1), (2, 1), (4, 1), (1, 2), (3, 1)] {
        packets.push(part(first, count));
    }
    conn.cseq = base.wrapping_add(body.len() as u32);
    let response: Vec<u8> = body.iter().rev().copied().take(4 * 500).collect();
    for chunk in response.chunks(500) {
        packets.push(conn.segment(false, PSH | ACK, chunk));
    }
    packets.push(conn.segment(true, FIN | ACK, b""));
    packets.push(conn.segment(false, FIN | ACK, b""));
    packets.push(conn.segment(true, ACK, b""));

    let mut lossy = Tcp::new(("10.7.0.5", 43001), ("10.7.0.6", 8080), 5_000, 9_000);
    packets.push(lossy.segment(true, SYN, b""));
    packets.push(lossy.segment(false, SYN | ACK, b""));
    packets.push(lossy.segment(true, ACK, b""));
    packets.push(lossy.segment(true, PSH | ACK, b"first part|"));
    lossy.segment(true, PSH | ACK, b"LOST BYTES");
    packets.push(lossy.segment(true, PSH | ACK, b"|after the gap"));
    packets.push(lossy.segment(false, ACK, b""));
    packets.push(lossy.segment(true, FIN | ACK, b""));
    packets.push(lossy.segment(false, FIN | ACK, b""));
    packets.push(lossy.segment(true, ACK, b""));

    for (i, ip) in packets.into_iter().enumerate() {
        c.add(t + i as u64 * MILLI, LINK_ETHERNET, eth_ip(&ip));
    }
    write_pcap(path, &c, u32::from(LINK_ETHERNET), false, false)
}

/// Client-to-server sessions on port 80 from client ports 50001.., each hiding
/// one marker from a naive packet matcher (see `tests/e2e/test_evasion.py`):
/// split over two segments, sent one byte per segment, out of order,
/// overlapped with conflicting bytes, across a gap, across the sequence
/// number wrap, around the 1 MiB reassembly depth, and sent twice before
/// the server's acknowledgement.
pub fn evasion(path: &Path) -> std::io::Result<()> {
    let mut c = Capture::default();
    let mut t = T0 + 14_400 * SECOND;
    let mut tick = || {
        t += MILLI;
        t
    };
    let open = |port: u16, isn: u32| Tcp::new(("10.8.0.5", port), ("10.8.0.6", 80), isn, 70_000);
    let mut packets = Vec::new();
    let session =
        |conn: &mut Tcp, parts: Vec<(u32, Vec<u8>)>, end: u32, packets: &mut Vec<Vec<u8>>| {
            packets.push(conn.segment(true, SYN, b""));
            packets.push(conn.segment(false, SYN | ACK, b""));
            packets.push(conn.segment(true, ACK, b""));
            let base = conn.cseq;
            for (offset, data) in parts {
                conn.cseq = base.wrapping_add(offset);
                packets.push(conn.segment(true, PSH | ACK, &data));
            }
            conn.cseq = base.wrapping_add(end);
            packets.push(conn.segment(false, ACK, b""));
            packets.push(conn.segment(true, FIN | ACK, b""));
            packets.push(conn.segment(false, FIN | ACK, b""));
            packets.push(conn.segment(true, ACK, b""));
        };

    let two = b"GET /EVIL-SPLIT-TWO HTTP/1.0\r\n\r\n";
    session(
        &mut open(50001, 1_000),
        vec![(0, two[..12].to_vec()), (12, two[12..].to_vec())],
        two.len() as u32,
        &mut packets,
    );

    let bytes = b"EVIL-ONE-BYTE";
    let parts = bytes
        .iter()
        .enumerate()
        .map(|(i, b)| (i as u32, vec![*b]))
        .collect();
    session(
        &mut open(50002, 2_000),
        parts,
        bytes.len() as u32,
        &mut packets,
    );

    let ooo = b"xxEVIL-OUT-OF-ORDERxx";
    session(
        &mut open(50003, 3_000),
        vec![
            (14, ooo[14..].to_vec()),
            (0, ooo[..7].to_vec()),
            (7, ooo[7..14].to_vec()),
        ],
        ooo.len() as u32,
        &mut packets,
    );

    // Held "FIRST" at 5, then a conflicting "LAST!" at 5, then "EVIL-" fills the hole.
    session(
        &mut open(50004, 4_000),
        vec![
            (5, b"FIRST".to_vec()),
            (5, b"LAST!".to_vec()),
            (0, b"EVIL-".to_vec()),
        ],
        10,
        &mut packets,
    );

    // 16 bytes never captured between the two markers; the server acknowledges them.
    session(
        &mut open(50005, 5_000),
        vec![
            (0, b"EVIL-BEFORE-GAP|".to_vec()),
            (32, b"|EVIL-AFTER-GAP".to_vec()),
        ],
        47,
        &mut packets,
    );

    // Sent in order, then sent again with other bytes before the server
    // acknowledged either: the receiver's overlap policy decides which it kept.
    session(
        &mut open(50008, 8_000),
        vec![
            (0, b"GET /benign-page HTTP/1.0\r\n\r\n".to_vec()),
            (0, b"GET /EVIL-RESENT HTTP/1.0\r\n\r\n".to_vec()),
        ],
        29,
        &mut packets,
    );

    // Client sequence numbers wrap in the middle of the marker.
    let wrap = b"..EVIL-WRAP..";
    session(
        &mut open(50006, u32::MAX - 6),
        vec![(0, wrap[..6].to_vec()), (6, wrap[6..].to_vec())],
        wrap.len() as u32,
        &mut packets,
    );

    // 1 MiB of filler: one marker ends just inside the default depth, one just past it.
    const MIB: u32 = 1 << 20;
    const CHUNK: u32 = 8_192;
    let mut deep = Vec::new();
    let mut offset = 0;
    while offset < MIB + CHUNK {
        let mut chunk = vec![b'A'; CHUNK as usize];
        if offset == MIB - CHUNK {
            chunk[(CHUNK - 20) as usize..(CHUNK - 8) as usize].copy_from_slice(b"EVIL-SHALLOW");
        }
        if offset == MIB {
            chunk[100..109].copy_from_slice(b"EVIL-DEEP");
        }
        deep.push((offset, chunk));
        offset += CHUNK;
    }
    session(&mut open(50007, 7_000), deep, offset, &mut packets);

    for ip in packets {
        c.add(tick(), LINK_ETHERNET, eth_ip(&ip));
    }
    write_pcap(path, &c, u32::from(LINK_ETHERNET), false, false)
}

/// A TLS 1.2 handshake's hellos (with GREASE values, which JA3 leaves out)
/// and some application data, for SNI, JA3 and JA3S.
pub fn tls(path: &Path) -> std::io::Result<()> {
    let mut c = Capture::default();
    let t = T0 + 18_000 * SECOND;
    let name = b"tls.test";
    let mut sni = vec![0u8];
    sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni.extend_from_slice(name);
    let mut extensions = tls_extension(0x1a1a, b"");
    extensions.extend(tls_extension(0x0000, &with_length(&sni)));
    extensions.extend(tls_extension(
        0x000a,
        &with_length(&[0x2a, 0x2a, 0x00, 0x1d, 0x00, 0x17]),
    ));
    extensions.extend(tls_extension(0x000b, &[1, 0]));
    extensions.extend(tls_extension(0x0023, b""));
    let mut hello = vec![0x03, 0x03];
    hello.extend_from_slice(&[0x11; 32]);
    hello.push(0);
    hello.extend(with_length(&[
        0x0a, 0x0a, 0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f,
    ]));
    hello.extend_from_slice(&[1, 0]);
    hello.extend(with_length(&extensions));
    let client_hello = tls_handshake(1, &hello);

    let mut server_ext = tls_extension(0xff01, &[0]);
    server_ext.extend(tls_extension(0x000b, &[1, 0]));
    let mut server = vec![0x03, 0x03];
    server.extend_from_slice(&[0x22; 32]);
    server.push(0);
    server.extend_from_slice(&[0xc0, 0x2f, 0]);
    server.extend(with_length(&server_ext));
    let mut server_flight = tls_handshake(2, &server);
    // A self-signed certificate (CN=tls.test, made once with openssl) and
    // ServerHelloDone, each in a record of its own.
    let der = include_bytes!("tls-test-cert.der");
    let mut entry = (der.len() as u32).to_be_bytes()[1..].to_vec();
    entry.extend_from_slice(der);
    let mut chain = (entry.len() as u32).to_be_bytes()[1..].to_vec();
    chain.extend_from_slice(&entry);
    server_flight.extend(tls_handshake(11, &chain));
    server_flight.extend(tls_handshake(14, b""));

    let mut conn = Tcp::new(("10.9.0.5", 44000), ("10.9.0.6", 443), 60_000, 80_000);
    let packets = vec![
        conn.segment(true, SYN, b""),
        conn.segment(false, SYN | ACK, b""),
        conn.segment(true, ACK, b""),
        conn.segment(true, PSH | ACK, &client_hello),
        conn.segment(false, PSH | ACK, &server_flight),
        conn.segment(true, PSH | ACK, &[0x17, 0x03, 0x03, 0x00, 0x04, 1, 2, 3, 4]),
        conn.segment(false, ACK, b""),
        conn.segment(true, FIN | ACK, b""),
        conn.segment(false, FIN | ACK, b""),
        conn.segment(true, ACK, b""),
    ];
    for (i, ip) in packets.into_iter().enumerate() {
        c.add(t + i as u64 * MILLI, LINK_ETHERNET, eth_ip(&ip));
    }
    write_pcap(path, &c, u32::from(LINK_ETHERNET), false, false)
}
