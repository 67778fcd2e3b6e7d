//! Clear-text logins over every protocol mirador reads them in, with weak
//! and strong passwords, accepted and refused: `credentials.pcap`.

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::build::*;
use crate::families::write;

const CLIENT: &str = "10.80.0.5";

/// One connection from `CLIENT:port` to `server`: handshake, the turns
/// (from the client?, bytes) in order, FIN both ways.
fn dialog(port: u16, server: (&str, u16), turns: &[(bool, Vec<u8>)]) -> Vec<Vec<u8>> {
    let mut conn = Tcp::new(
        (CLIENT, port),
        server,
        0x4000_0000 + u32::from(port),
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

fn client(text: &str) -> (bool, Vec<u8>) {
    (true, text.as_bytes().to_vec())
}

fn server(text: &str) -> (bool, Vec<u8>) {
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
/// - 56010 HTTP JSON `eve@example.org` / `eve2024` (short), answered 200.
pub fn credentials(path: &Path) -> std::io::Result<()> {
    let plain = STANDARD.encode(b"\0mailer\0Tr0ub4dor&3x");
    let form = "csrf=9f1c2a&username=dana&password=Gl4ss-Harbor-71&remember=on";
    let json = r#"{"email":"eve@example.org","password":"eve2024"}"#;
    let sessions = vec![
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
    ];
    write(path, sessions)
}
