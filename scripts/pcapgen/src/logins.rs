//! Clear-text logins over every protocol mirador reads them in, with weak
//! and strong passwords, accepted and refused (`credentials.pcap`), and
//! credentials leaking in clear traffic (`leaks.pcap`).

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::build::*;
use crate::families::write;

const CLIENT: &str = "10.80.0.5";

/// One connection from `CLIENT:port` to `server`.
fn dialog(port: u16, server: (&str, u16), turns: &[(bool, Vec<u8>)]) -> Vec<Vec<u8>> {
    exchange((CLIENT, port), server, turns)
}

/// One connection from `client` to `server`: handshake, the turns (from
/// the client?, bytes) in order, FIN both ways.
pub fn exchange(
    client: (&str, u16),
    server: (&str, u16),
    turns: &[(bool, Vec<u8>)],
) -> Vec<Vec<u8>> {
    let mut conn = Tcp::new(
        client,
        server,
        0x4000_0000 + u32::from(client.1),
        0x9000_0000,
    );
    let mut packets = vec![
        conn.segment(true, SYN, b""),
        conn.segment(false, SYN | ACK, b""),
        conn.segment(true, ACK, b""),
    ];
    for (from_client, bytes) in turns {
        packets.push(conn.segment(*from_client, PSH | ACK, bytes));
        packets.push(conn.segment(!from_client, ACK, b""));
    }
    packets.push(conn.segment(true, FIN | ACK, b""));
    packets.push(conn.segment(false, FIN | ACK, b""));
    packets.push(conn.segment(true, ACK, b""));
    packets
}

pub fn client(text: &str) -> (bool, Vec<u8>) {
    (true, text.as_bytes().to_vec())
}

pub fn server(text: &str) -> (bool, Vec<u8>) {
    (false, text.as_bytes().to_vec())
}

fn http(port: u16, request: String, answer: &str) -> Vec<Vec<u8>> {
    dialog(
        port,
        ("10.80.1.80", 80),
        &[client(&request), server(answer)],
    )
}

/// Client ports and what each logs in with:
/// - 56001 FTP `deploy` / strong, accepted (230);
/// - 56002 FTP `admin` / `admin123` (dictionary), refused (530);
/// - 56003 POP3 `bob` / `12345678` (dictionary), accepted (`+OK`);
/// - 56004 IMAP `carol` / strong, quoted, refused (tagged `NO`);
/// - 56005 SMTP `AUTH PLAIN` `mailer` / strong, accepted (235);
/// - 56006 SMTP `AUTH LOGIN` `root` / `password`, refused (535);
/// - 56007 Redis RESP `AUTH foobared` (dictionary), accepted (`+OK`);
/// - 56008 HTTP Basic `admin:admin`, refused (401);
/// - 56009 HTTP form `dana` / strong, accepted (302 with a cookie);
/// - 56010 HTTP JSON `eve@example.org` / `eve2024` (short), answered 200;
/// - 56011 Telnet `support` / `support` (dictionary, and the user name), typed a key at a
///   time after option negotiation, accepted (a shell prompt);
/// - 56012 PostgreSQL `grafana` / `grafana` (the user name), asked in clear text, accepted;
/// - 56013 LDAP simple bind of a service account, strong, refused (result 49);
/// - 56014 LDAP simple bind `cn=admin,...` / `admin`, accepted;
/// - 56015 SNMP v2c `public`, answered;
/// - 56016 SNMP v2c with a strong community, unanswered.
pub fn credentials(path: &Path) -> std::io::Result<()> {
    let plain = STANDARD.encode(b"\0mailer\0Tr0ub4dor&3x");
    let form = "csrf=9f1c2a&username=dana&password=Gl4ss-Harbor-71&remember=on";
    let json = r#"{"email":"eve@example.org","password":"eve2024"}"#;
    let mut telnet = vec![
        (
            false,
            vec![255, 253, 24, 255, 253, 32, 255, 251, 1, 255, 251, 3],
        ),
        (
            true,
            vec![255, 252, 24, 255, 252, 32, 255, 253, 1, 255, 253, 3],
        ),
        server("\r\nrouter login: "),
    ];
    for key in "support\r".bytes() {
        telnet.push((true, vec![key]));
        telnet.push((false, vec![key]));
    }
    telnet.push(server("\nPassword: "));
    telnet.extend("support\r".bytes().map(|key| (true, vec![key])));
    telnet.push(server(
        "\r\nLast login: Mon Mar  4 09:12:01 2024\r\nrouter# ",
    ));
    let sessions = vec![
        dialog(56011, ("10.80.1.23", 23), &telnet),
        dialog(
            56001,
            ("10.80.1.21", 21),
            &[
                server("220 (vsFTPd 3.0.5)\r\n"),
                client("USER deploy\r\n"),
                server("331 Please specify the password.\r\n"),
                client("PASS Vq7#tLm2xW9pRz\r\n"),
                server("230 Login successful.\r\n"),
                client("QUIT\r\n"),
                server("221 Goodbye.\r\n"),
            ],
        ),
        dialog(
            56002,
            ("10.80.1.21", 21),
            &[
                server("220 (vsFTPd 3.0.5)\r\n"),
                client("USER admin\r\n"),
                server("331 Please specify the password.\r\n"),
                client("PASS admin123\r\n"),
                server("530 Login incorrect.\r\n"),
            ],
        ),
        dialog(
            56003,
            ("10.80.1.25", 110),
            &[
                server("+OK Dovecot ready.\r\n"),
                client("USER bob\r\n"),
                server("+OK\r\n"),
                client("PASS 12345678\r\n"),
                server("+OK Logged in.\r\n"),
            ],
        ),
        dialog(
            56004,
            ("10.80.1.25", 143),
            &[
                server("* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n"),
                client("a001 LOGIN carol \"N0t-So-Easy_9x\"\r\n"),
                server("a001 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
            ],
        ),
        dialog(
            56005,
            ("10.80.1.25", 587),
            &[
                server("220 mail.example.org ESMTP Postfix\r\n"),
                client("EHLO client.example.org\r\n"),
                server("250-mail.example.org\r\n250 AUTH PLAIN LOGIN\r\n"),
                client(&format!("AUTH PLAIN {plain}\r\n")),
                server("235 2.7.0 Authentication successful\r\n"),
            ],
        ),
        dialog(
            56006,
            ("10.80.1.25", 25),
            &[
                server("220 mail.example.org ESMTP Postfix\r\n"),
                client("EHLO client.example.org\r\n"),
                server("250 AUTH LOGIN\r\n"),
                client("AUTH LOGIN\r\n"),
                server("334 VXNlcm5hbWU6\r\n"),
                client(&format!("{}\r\n", STANDARD.encode("root"))),
                server("334 UGFzc3dvcmQ6\r\n"),
                client(&format!("{}\r\n", STANDARD.encode("password"))),
                server("535 5.7.8 Error: authentication failed\r\n"),
            ],
        ),
        dialog(
            56007,
            ("10.80.1.63", 6379),
            &[
                client("*2\r\n$4\r\nAUTH\r\n$8\r\nfoobared\r\n"),
                server("+OK\r\n"),
                client("*1\r\n$4\r\nPING\r\n"),
                server("+PONG\r\n"),
            ],
        ),
        http(
            56008,
            format!(
                "GET /admin/ HTTP/1.1\r\nHost: 10.80.1.80\r\nAuthorization: Basic {}\r\n\r\n",
                STANDARD.encode("admin:admin")
            ),
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"admin\"\r\nContent-Length: 0\r\n\r\n",
        ),
        http(
            56009,
            format!(
                "POST /login HTTP/1.1\r\nHost: 10.80.1.80\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
                form.len()
            ),
            "HTTP/1.1 302 Found\r\nLocation: /home\r\nSet-Cookie: session=7c1e; HttpOnly\r\nContent-Length: 0\r\n\r\n",
        ),
        http(
            56010,
            format!(
                "POST /api/v1/login HTTP/1.1\r\nHost: 10.80.1.80\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
                json.len()
            ),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}",
        ),
        dialog(
            56012,
            ("10.80.1.54", 5432),
            &[
                (true, pg_startup("grafana", "grafana")),
                (false, pg(b'R', &3u32.to_be_bytes())),
                (true, pg(b'p', b"grafana\0")),
                (false, [pg(b'R', &0u32.to_be_bytes()), pg(b'S', b"server_version\x0015.4\0"), pg(b'Z', b"I")].concat()),
            ],
        ),
        dialog(
            56013,
            ("10.80.1.38", 389),
            &[
                (true, ldap(1, 0x60, &bind("cn=svc-backup,ou=services,dc=corp,dc=example", "Zx9#mK2-vQ7w"))),
                (false, ldap(1, 0x61, &[0x0a, 1, 49, 0x04, 0, 0x04, 0])),
            ],
        ),
        dialog(
            56014,
            ("10.80.1.38", 389),
            &[
                (true, ldap(1, 0x60, &bind("cn=admin,dc=corp,dc=example", "admin"))),
                (false, ldap(1, 0x61, &[0x0a, 1, 0, 0x04, 0, 0x04, 0])),
            ],
        ),
        snmp_exchange(56015, "public", true),
        snmp_exchange(56016, "Pr1v-C0mm-88x", false),
    ];
    write(path, sessions)
}

/// A PostgreSQL message of `kind`.
pub fn pg(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A PostgreSQL start-up message of `user` for `database`.
pub fn pg_startup(user: &str, database: &str) -> Vec<u8> {
    let mut body = 0x0003_0000u32.to_be_bytes().to_vec();
    for part in [
        "user",
        user,
        "database",
        database,
        "application_name",
        "pcapgen",
    ] {
        body.extend_from_slice(part.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut out = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// An LDAP message of `id` around operation `op` (short BER lengths).
fn ldap(id: u8, op: u8, body: &[u8]) -> Vec<u8> {
    let mut inner = vec![0x02, 1, id, op, body.len() as u8];
    inner.extend_from_slice(body);
    let mut out = vec![0x30, inner.len() as u8];
    out.extend_from_slice(&inner);
    out
}

/// A simple bind request's body: LDAPv3, `dn`, `password`.
fn bind(dn: &str, password: &str) -> Vec<u8> {
    let mut body = vec![0x02, 1, 3, 0x04, dn.len() as u8];
    body.extend_from_slice(dn.as_bytes());
    body.extend_from_slice(&[0x80, password.len() as u8]);
    body.extend_from_slice(password.as_bytes());
    body
}

/// An SNMP v2c GetRequest for sysDescr.0 with `community` from
/// `CLIENT:port` to 10.80.1.61:161, and the agent's response when it
/// knows the community.
fn snmp_exchange(port: u16, community: &str, answered: bool) -> Vec<Vec<u8>> {
    let message = |pdu: u8, value: &[u8]| {
        let mut varbind = vec![0x06, 8, 0x2b, 6, 1, 2, 1, 1, 1, 0];
        varbind.extend_from_slice(value);
        let mut varbinds = vec![0x30, varbind.len() as u8 + 2, 0x30, varbind.len() as u8];
        varbinds.extend_from_slice(&varbind);
        let mut body = vec![0x02, 2, 0x1f, port as u8, 0x02, 1, 0, 0x02, 1, 0];
        body.extend_from_slice(&varbinds);
        let mut inner = vec![0x02, 1, 1, 0x04, community.len() as u8];
        inner.extend_from_slice(community.as_bytes());
        inner.extend_from_slice(&[pdu, body.len() as u8]);
        inner.extend_from_slice(&body);
        let mut out = vec![0x30, inner.len() as u8];
        out.extend_from_slice(&inner);
        out
    };
    let (client, agent) = (addr(CLIENT), addr("10.80.1.61"));
    let mut packets = vec![ip(
        client,
        agent,
        UDP,
        &udp(client, agent, port, 161, &message(0xa0, &[0x05, 0])),
    )];
    if answered {
        let descr = b"Linux edge-sw-01 5.10.0";
        let mut value = vec![0x04, descr.len() as u8];
        value.extend_from_slice(descr);
        packets.push(ip(
            agent,
            client,
            UDP,
            &udp(agent, client, 161, port, &message(0xa2, &value)),
        ));
    }
    packets
}

/// `len` characters of `alphabet` drawn from `seed`, with both cases when
/// the alphabet has them (as real secrets have).
fn drawn(seed: u64, alphabet: &[u8], len: usize) -> String {
    let mut state = seed;
    loop {
        let text: String = (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                char::from(alphabet[(state >> 33) as usize % alphabet.len()])
            })
            .collect();
        let mixed = text.bytes().any(|b| b.is_ascii_lowercase())
            && text.bytes().any(|b| b.is_ascii_uppercase());
        if mixed || !alphabet.iter().any(u8::is_ascii_lowercase) {
            return text;
        }
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn post(port: u16, target: &str, content_type: &str, body: &str) -> Vec<Vec<u8>> {
    http(
        port,
        format!(
            "POST {target} HTTP/1.1\r\nHost: 10.80.1.80\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
        "HTTP/1.1 204 No Content\r\n\r\n",
    )
}

fn answer(port: u16, target: &str, body: &str) -> Vec<Vec<u8>> {
    http(
        port,
        format!("GET {target} HTTP/1.1\r\nHost: 10.80.1.80\r\n\r\n"),
        &format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// Credentials in clear traffic, by client port:
/// - 57001 an AWS key id and secret in a JSON request body;
/// - 57002 an Alibaba Cloud AccessKey pair in an answered `.env`;
/// - 57003 a GitHub token in a request header;
/// - 57004 an OpenSSH private key stored over a raw TCP (Redis) connection;
/// - 57005 an AWS key id without its secret (not a leak);
/// - 57006 AWS's documentation example pair (not a leak);
/// - 57007 a web page's Google browser key in an answer (not a leak);
/// - 57008 a Google API key a client sends in a query;
/// - 57009 a Tencent Cloud SecretId and SecretKey in a query;
/// - 57010 a Slack bot token in a form body.
pub fn leaks(path: &Path) -> std::io::Result<()> {
    let aws_id = format!("AKIA{}", drawn(1, B32, 16));
    let aws_secret = drawn(2, B64, 40);
    let ali = (format!("LTAI{}", drawn(3, ALNUM, 20)), drawn(4, ALNUM, 30));
    let github = format!("ghp_{}", drawn(5, ALNUM, 36));
    let key: String = (0..4).map(|i| drawn(10 + i, B64, 70) + "\n").collect();
    let google = |seed| format!("AIza{}", drawn(seed, ALNUM, 35));
    let tencent = (format!("AKID{}", drawn(6, ALNUM, 32)), drawn(7, ALNUM, 32));
    let slack = format!(
        "xoxb-{}-{}-{}",
        drawn(8, b"0123456789", 12),
        drawn(9, b"0123456789", 13),
        drawn(20, ALNUM, 24)
    );
    let stored =
        format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{key}-----END OPENSSH PRIVATE KEY-----\n");
    let redis = format!(
        "*3\r\n$3\r\nSET\r\n$10\r\ndeploy:key\r\n${}\r\n{stored}\r\n",
        stored.len()
    );
    let sessions = vec![
        post(
            57001,
            "/api/config",
            "application/json",
            &format!("{{\"accessKeyId\":\"{aws_id}\",\"secretAccessKey\":\"{aws_secret}\",\"region\":\"us-east-1\"}}"),
        ),
        answer(
            57002,
            "/.env",
            &format!("APP_ENV=production\nALIBABA_CLOUD_ACCESS_KEY_ID={}\nALIBABA_CLOUD_ACCESS_KEY_SECRET={}\n", ali.0, ali.1),
        ),
        http(
            57003,
            format!("GET /repos/acme/app HTTP/1.1\r\nHost: 10.80.1.80\r\nAuthorization: token {github}\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        ),
        dialog(57004, ("10.80.1.63", 6379), &[client(&redis), server("+OK\r\n")]),
        post(57005, "/api/audit", "application/json", &format!("{{\"rotated\":\"{}\"}}", format_args!("AKIA{}", drawn(30, B32, 16)))),
        answer(
            57006,
            "/docs/credentials.txt",
            "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
        ),
        answer(57007, "/map.html", &format!("<script src=\"https://maps.googleapis.com/maps/api/js?key={}\"></script>", google(40))),
        http(
            57008,
            format!("GET /v1/geocode?address=Berlin&key={} HTTP/1.1\r\nHost: 10.80.1.80\r\n\r\n", google(41)),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        ),
        http(
            57009,
            format!("GET /?Action=DescribeInstances&SecretId={}&SecretKey={}&Region=ap-guangzhou HTTP/1.1\r\nHost: 10.80.1.80\r\n\r\n", tencent.0, tencent.1),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        ),
        post(57010, "/hooks", "application/x-www-form-urlencoded", &format!("channel=ops&token={slack}&text=deploy")),
    ];
    write(path, sessions)
}
