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

fn write(path: &Path, sessions: Vec<Vec<Vec<u8>>>) -> std::io::Result<()> {
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
/// between `->|` and `|<-`), 51002 AntSword (its default User-Agent and
/// URL-encoded PHP prologue), 51003 Behinder 3 (AES body in base64 with its
/// fixed Accept header), 51004 Godzilla (PHP_XOR_BASE64 with the default
/// `pass`/`key`: the answer between md5(pass + md5(key)[..16]) halves).
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

    let antsword_body = format!(
        "ant={}",
        url_encode("@ini_set(\"display_errors\", \"0\");@set_time_limit(0);$opdir=@ini_get(\"open_basedir\");echo @getcwd();")
    );
    let antsword = session(
        ("10.20.0.5", 51002),
        server,
        &request(
            "POST",
            "/images/logo.php",
            &[
                ("Host", "10.20.0.80"),
                ("User-Agent", "antSword/v2.1"),
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Connection", "close"),
            ],
            antsword_body.as_bytes(),
        ),
        &response("text/html", b"a6c2e1/var/www/html/images0f9d3b"),
        3,
    );

    let behinder_body = STANDARD.encode(noise(3, 1_488));
    let behinder = session(
        ("10.20.0.5", 51003),
        ("10.20.0.80", 8080),
        &request(
            "POST",
            "/manager/shell.jsp",
            &[
                ("Content-type", "application/x-www-form-urlencoded"),
                ("Accept", "application/json, text/javascript, */*; q=0.01"),
                (
                    "Accept-Language",
                    "zh-CN,zh;q=0.8,zh-TW;q=0.7,zh-HK;q=0.5,en-US;q=0.3,en;q=0.2",
                ),
                ("User-Agent", BROWSER),
                ("Host", "10.20.0.80:8080"),
                ("Connection", "Keep-Alive"),
                ("Cookie", "JSESSIONID=5A3F8E2B9C1D7E4F6A0B2C8D3E9F1A7B"),
            ],
            behinder_body.as_bytes(),
        ),
        &response(
            "text/html;charset=UTF-8",
            STANDARD.encode(noise(4, 96)).as_bytes(),
        ),
        5,
    );

    let godzilla_body = format!("pass={}", url_encode(&STANDARD.encode(noise(5, 900))));
    let godzilla_answer = format!(
        "11CD6A8758984163{}6C37AC826A2A04BC",
        STANDARD.encode(noise(6, 120))
    );
    let godzilla = session(
        ("10.20.0.5", 51004),
        server,
        &request(
            "POST",
            "/wp-content/plugins/cache.php",
            &[
                ("User-Agent", BROWSER),
                (
                    "Accept",
                    "text/html,application/xhtml+xml,application/xml;q=0.9,image/webp,*/*;q=0.8",
                ),
                (
                    "Accept-Language",
                    "zh-CN,zh;q=0.8,zh-TW;q=0.7,zh-HK;q=0.5,en-US;q=0.3,en;q=0.2",
                ),
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Host", "10.20.0.80"),
            ],
            godzilla_body.as_bytes(),
        ),
        &response("text/html; charset=UTF-8", godzilla_answer.as_bytes()),
        4,
    );
    write(path, vec![chopper, antsword, behinder, godzilla])
}

/// Ordinary traffic shaped like the families, which must raise nothing:
/// 52001 a login form POST with a base64 CSRF token, 52002 a jQuery JSON
/// API call (the Accept header Behinder copies) with a form body, 52003 a
/// JSON-RPC call (`eth_blockNumber`), 52004 an upload of a base64 image in
/// a form field.
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
    write(path, vec![login, ajax, rpc, upload])
}
