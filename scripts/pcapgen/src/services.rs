//! High-risk services on internal hosts (10.80.2.0/24), answering clients
//! outside (198.51.100.0/24) and inside (10.80.0.5) `HOME_NET`, with and
//! without authentication, and look-alikes that are no service
//! (`services.pcap`).

use std::path::Path;

use crate::families::write;
use crate::logins::{client, exchange, pg, pg_startup, server};

const OUTSIDE: &str = "198.51.100.23";
const OUTSIDE_2: &str = "198.51.100.77";
const INSIDE: &str = "10.80.0.5";

fn bytes(from_client: bool, data: &[u8]) -> (bool, Vec<u8>) {
    (from_client, data.to_vec())
}

/// A NetBIOS session message around `smb`.
fn netbios(smb: &[u8]) -> Vec<u8> {
    let mut out = (smb.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(smb);
    out
}

/// An SMB2 header of `command`, a response when `response`.
fn smb2_header(command: u16, response: bool) -> Vec<u8> {
    let mut h = b"\xfeSMB".to_vec();
    h.extend_from_slice(&64u16.to_le_bytes());
    h.extend_from_slice(&[0; 6]); // credit charge, status
    h.extend_from_slice(&command.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // credits
    h.extend_from_slice(&u32::from(response).to_le_bytes());
    h.extend_from_slice(&[0; 4]); // next command
    h.extend_from_slice(&[0; 8]); // message id
    h.extend_from_slice(&[0; 4 + 4 + 8 + 16]); // process, tree, session, signature
    h
}

fn smb2_negotiate() -> (Vec<u8>, Vec<u8>) {
    let mut request = smb2_header(0, false);
    request.extend_from_slice(&36u16.to_le_bytes());
    request.extend_from_slice(&4u16.to_le_bytes()); // dialects
    request.extend_from_slice(&1u16.to_le_bytes()); // signing enabled
    request.extend_from_slice(&[0; 2 + 4]);
    request.extend_from_slice(&[0x5a; 16]); // client guid
    request.extend_from_slice(&[0; 8]);
    for dialect in [0x0202u16, 0x0210, 0x0300, 0x0302] {
        request.extend_from_slice(&dialect.to_le_bytes());
    }
    let mut response = smb2_header(0, true);
    response.extend_from_slice(&65u16.to_le_bytes());
    response.extend_from_slice(&1u16.to_le_bytes());
    response.extend_from_slice(&0x0302u16.to_le_bytes());
    response.extend_from_slice(&0u16.to_le_bytes());
    response.extend_from_slice(&[0xa7; 16]); // server guid
    response.extend_from_slice(&7u32.to_le_bytes());
    for max in [8_388_608u32; 3] {
        response.extend_from_slice(&max.to_le_bytes());
    }
    response.extend_from_slice(&[0; 16]); // times
    response.extend_from_slice(&128u16.to_le_bytes());
    response.extend_from_slice(&0u16.to_le_bytes());
    response.extend_from_slice(&[0; 4]);
    response.push(0);
    (netbios(&request), netbios(&response))
}

/// A MySQL packet numbered `seq`.
fn mysql_packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_le_bytes()[..3].to_vec();
    out.push(seq);
    out.extend_from_slice(payload);
    out
}

fn mysql_login() -> Vec<(bool, Vec<u8>)> {
    let mut greeting = vec![10];
    greeting.extend_from_slice(b"8.0.35\0");
    greeting.extend_from_slice(&42u32.to_le_bytes());
    greeting.extend_from_slice(b"k3!x9Qa2\0");
    greeting.extend_from_slice(&0xffffu16.to_le_bytes());
    greeting.push(0xff);
    greeting.extend_from_slice(&2u16.to_le_bytes());
    greeting.extend_from_slice(&0xdfffu16.to_le_bytes());
    greeting.push(21);
    greeting.extend_from_slice(&[0; 10]);
    greeting.extend_from_slice(b"Zp4#r8Lw0q2T\0");
    greeting.extend_from_slice(b"caching_sha2_password\0");
    let mut login = 0x01af_a685u32.to_le_bytes().to_vec();
    login.extend_from_slice(&16_777_216u32.to_le_bytes());
    login.push(0xff);
    login.extend_from_slice(&[0; 23]);
    login.extend_from_slice(b"app\0");
    login.push(32);
    login.extend_from_slice(&[0x3c; 32]);
    login.extend_from_slice(b"caching_sha2_password\0");
    vec![
        bytes(false, &mysql_packet(0, &greeting)),
        bytes(true, &mysql_packet(1, &login)),
        bytes(false, &mysql_packet(2, &[0, 0, 0, 2, 0, 0, 0])),
    ]
}

/// A TDS pre-login packet of `kind` holding `version`.
fn prelogin(kind: u8, version: [u8; 6]) -> Vec<u8> {
    let lens = [6u16, 1, 1, 4, 1];
    let mut table = Vec::new();
    let mut data = Vec::new();
    let mut offset = (lens.len() * 5 + 1) as u16;
    for (token, len) in lens.iter().enumerate() {
        table.push(token as u8);
        table.extend_from_slice(&offset.to_be_bytes());
        table.extend_from_slice(&len.to_be_bytes());
        offset += len;
    }
    table.push(0xff);
    data.extend_from_slice(&version);
    data.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0]);
    let mut out = vec![kind, 1];
    out.extend_from_slice(&((8 + table.len() + data.len()) as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 1, 0]);
    out.extend_from_slice(&table);
    out.extend_from_slice(&data);
    out
}

fn redis_info(version: &str) -> String {
    let text = format!(
        "# Server\r\nredis_version:{version}\r\nredis_mode:standalone\r\nos:Linux 6.1.0 x86_64\r\n"
    );
    format!("${}\r\n{text}\r\n", text.len())
}

/// A BSON document of `(type, name, value)` elements.
fn bson(elements: &[(u8, &str, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (kind, name, value) in elements {
        body.push(*kind);
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        body.extend_from_slice(value);
    }
    body.push(0);
    let mut out = ((body.len() + 4) as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

fn bson_str(text: &str) -> Vec<u8> {
    let mut out = ((text.len() + 1) as u32).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out.push(0);
    out
}

/// An OP_MSG numbered `id` answering `to`, holding `doc`.
fn op_msg(id: u32, to: u32, doc: &[u8]) -> Vec<u8> {
    let mut out = ((16 + 4 + 1 + doc.len()) as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&to.to_le_bytes());
    out.extend_from_slice(&2013u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 0]);
    out.extend_from_slice(doc);
    out
}

fn mongodb_list() -> Vec<(bool, Vec<u8>)> {
    let request = bson(&[
        (0x10, "listDatabases", 1i32.to_le_bytes().to_vec()),
        (0x02, "$db", bson_str("admin")),
    ]);
    let admin = bson(&[
        (0x02, "name", bson_str("admin")),
        (0x01, "sizeOnDisk", 40960f64.to_le_bytes().to_vec()),
        (0x08, "empty", vec![0]),
    ]);
    let list = bson(&[(0x03, "0", admin)]);
    let answer = bson(&[
        (0x04, "databases", list),
        (0x01, "totalSize", 40960f64.to_le_bytes().to_vec()),
        (0x01, "ok", 1f64.to_le_bytes().to_vec()),
    ]);
    let build = bson(&[
        (0x10, "buildInfo", 1i32.to_le_bytes().to_vec()),
        (0x02, "$db", bson_str("admin")),
    ]);
    let built = bson(&[
        (0x02, "version", bson_str("6.0.11")),
        (0x01, "ok", 1f64.to_le_bytes().to_vec()),
    ]);
    vec![
        bytes(true, &op_msg(7, 0, &build)),
        bytes(false, &op_msg(301, 7, &built)),
        bytes(true, &op_msg(8, 0, &request)),
        bytes(false, &op_msg(302, 8, &answer)),
    ]
}

fn get(path: &str, host: &str) -> (bool, Vec<u8>) {
    client(&format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: curl/8.4.0\r\nAccept: */*\r\n\r\n"
    ))
}

fn answer(status: &str, headers: &str, body: &str) -> (bool, Vec<u8>) {
    server(&format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

const JSON: &str = "Content-Type: application/json\r\n";

/// Client ports, servers and what each shows (all servers in 10.80.2.0/24,
/// clients outside unless said):
/// - 58001 SSH 10.80.2.10:22 (OpenSSH 9.3p1);
/// - 58002 SSH 10.80.2.11:2222, an inside client only: a row, no exposure;
/// - 58003 Telnet 10.80.2.12:23;
/// - 58004 VNC 10.80.2.13:5900 offering no authentication: open;
/// - 58005 RDP 10.80.2.14:3389 picking CredSSP;
/// - 58006 SMB 10.80.2.15:445 (dialect 3.0.2);
/// - 58007 MySQL 10.80.2.16:3306 (8.0.35);
/// - 58008 MSSQL 10.80.2.17:1433 (15.0.2000);
/// - 58009 PostgreSQL 10.80.2.18:5432 trusting the login (15.4): open;
/// - 58010 and 58011 Redis 10.80.2.19:6379 answering INFO without AUTH
///   (7.2.3), from two outside clients: open, raised once;
/// - 58012 Redis 10.80.2.20:6379: INFO refused, AUTH, INFO answered;
/// - 58013 Memcached 10.80.2.21:11211 answering stats (1.6.21): open;
/// - 58014 MongoDB 10.80.2.22:27017 answering listDatabases (6.0.11): open;
/// - 58015 Docker 10.80.2.23:2375 listing containers (24.0.5): open;
/// - 58016 Elasticsearch 10.80.2.24:9200 (7.17.9), then `_cat`: open;
/// - 58017 Kubernetes API 10.80.2.25:8080 `/version` (v1.28.2);
/// - 58018 kubelet 10.80.2.26:10255 `/pods`: open;
/// - 58019 etcd 10.80.2.27:2379 `/version` (3.5.9), then `/v2/keys`: open;
/// - 58020 YARN 10.80.2.28:8088 cluster info (3.3.6), new-application: open;
/// - 58021 Jenkins 10.80.2.29:8080 script console (2.414.1): open;
/// - 58022 Jenkins 10.80.2.30:8080 script console refused (403);
/// - 58023 Redis 203.0.113.50:6379 outside, an inside client: a row only;
/// - 58024 nginx 10.80.2.31:80 with a JSON version: no service;
/// - 58025 SMTP on 10.80.2.32:22: no service.
pub fn services(path: &Path) -> std::io::Result<()> {
    let ssh_kex = [
        &[0, 0, 1, 0x2c, 6, 20][..],
        &[0x7e; 16],
        b"curve25519-sha256",
    ]
    .concat();
    let cr = b"\x03\x00\x00\x2b\x26\xe0\x00\x00\x00\x00\x00Cookie: mstshash=admin\r\n\x01\x00\x08\x00\x03\x00\x00\x00";
    let cc = b"\x03\x00\x00\x13\x0e\xd0\x00\x00\x12\x34\x00\x02\x00\x08\x00\x02\x00\x00\x00";
    let (negotiate, negotiated) = smb2_negotiate();
    let pg_ok = [
        pg(b'R', &0u32.to_be_bytes()),
        pg(b'S', b"server_version\x0015.4\0"),
        pg(b'S', b"server_encoding\0UTF8\0"),
        pg(b'Z', b"I"),
    ]
    .concat();
    let info = "*1\r\n$4\r\nINFO\r\n";
    let redis_open = |port| {
        exchange(
            (if port == 58010 { OUTSIDE } else { OUTSIDE_2 }, port),
            ("10.80.2.19", 6379),
            &[client(info), server(&redis_info("7.2.3"))],
        )
    };
    let web = |port: u16, host: &str, server_port: u16, turns: &[(bool, Vec<u8>)]| {
        exchange((OUTSIDE, port), (host, server_port), turns)
    };
    let sessions = vec![
        exchange(
            (OUTSIDE, 58001),
            ("10.80.2.10", 22),
            &[
                server("SSH-2.0-OpenSSH_9.3p1 Debian-1\r\n"),
                client("SSH-2.0-Go\r\n"),
                bytes(true, &ssh_kex),
            ],
        ),
        exchange(
            (INSIDE, 58002),
            ("10.80.2.11", 2222),
            &[server("SSH-2.0-OpenSSH_8.4p1\r\n"), client("SSH-2.0-OpenSSH_9.6\r\n")],
        ),
        exchange(
            (OUTSIDE, 58003),
            ("10.80.2.12", 23),
            &[
                bytes(false, &[255, 253, 24, 255, 253, 32, 255, 253, 35, 255, 253, 39]),
                bytes(true, &[255, 252, 24, 255, 252, 32, 255, 252, 35, 255, 252, 39]),
                server("\r\nlogin: "),
            ],
        ),
        exchange(
            (OUTSIDE, 58004),
            ("10.80.2.13", 5900),
            &[
                server("RFB 003.008\n"),
                client("RFB 003.008\n"),
                bytes(false, &[1, 1]),
                bytes(true, &[1]),
                bytes(false, &[0, 0, 0, 0]),
            ],
        ),
        exchange((OUTSIDE, 58005), ("10.80.2.14", 3389), &[bytes(true, cr), bytes(false, cc)]),
        exchange(
            (OUTSIDE, 58006),
            ("10.80.2.15", 445),
            &[bytes(true, &negotiate), bytes(false, &negotiated)],
        ),
        exchange((OUTSIDE, 58007), ("10.80.2.16", 3306), &mysql_login()),
        exchange(
            (OUTSIDE, 58008),
            ("10.80.2.17", 1433),
            &[
                bytes(true, &prelogin(0x12, [0x10, 0, 0x04, 0xd2, 0, 0])),
                bytes(false, &prelogin(0x04, [15, 0, 0x07, 0xd0, 0, 0])),
            ],
        ),
        exchange(
            (OUTSIDE, 58009),
            ("10.80.2.18", 5432),
            &[
                bytes(true, &pg_startup("postgres", "postgres")),
                bytes(false, &pg_ok),
                bytes(true, &pg(b'Q', b"SELECT datname FROM pg_database;\0")),
            ],
        ),
        redis_open(58010),
        redis_open(58011),
        exchange(
            (OUTSIDE, 58012),
            ("10.80.2.20", 6379),
            &[
                client(info),
                server("-NOAUTH Authentication required.\r\n"),
                client("*2\r\n$4\r\nAUTH\r\n$20\r\nq8#Vt2-Lm9!xR4wZ7pK0\r\n"),
                server("+OK\r\n"),
                client(info),
                server(&redis_info("6.2.14")),
            ],
        ),
        exchange(
            (OUTSIDE, 58013),
            ("10.80.2.21", 11211),
            &[
                client("stats\r\n"),
                server("STAT pid 1\r\nSTAT uptime 86400\r\nSTAT version 1.6.21\r\nSTAT curr_items 12\r\nEND\r\n"),
            ],
        ),
        exchange((OUTSIDE, 58014), ("10.80.2.22", 27017), &mongodb_list()),
        web(
            58015,
            "10.80.2.23",
            2375,
            &[
                get("/v1.43/containers/json", "10.80.2.23:2375"),
                answer(
                    "200 OK",
                    &format!("Api-Version: 1.43\r\n{JSON}Docker-Experimental: false\r\nOstype: linux\r\nServer: Docker/24.0.5 (linux)\r\n"),
                    r#"[{"Id":"4c01db0b339c","Image":"nginx:1.25","State":"running"}]"#,
                ),
            ],
        ),
        web(
            58016,
            "10.80.2.24",
            9200,
            &[
                get("/", "10.80.2.24:9200"),
                answer(
                    "200 OK",
                    JSON,
                    r#"{"name":"es01","cluster_name":"prod","version":{"number":"7.17.9","build_flavor":"default"},"tagline":"You Know, for Search"}"#,
                ),
                get("/_cat/indices", "10.80.2.24:9200"),
                answer("200 OK", "Content-Type: text/plain; charset=UTF-8\r\n", "green open logs-2024.11 5 1 1200 0 1.2mb 600kb\n"),
            ],
        ),
        web(
            58017,
            "10.80.2.25",
            8080,
            &[
                get("/version", "10.80.2.25:8080"),
                answer(
                    "200 OK",
                    &format!("Audit-Id: 2f7a4c1e-9b3d-4e8a-a1c5-6d0f2b9e7a31\r\n{JSON}X-Kubernetes-Pf-Flowschema-Uid: 8e1c4b2a-5d7f-4a3e-9c6b-1f2e3d4c5b6a\r\nX-Kubernetes-Pf-Prioritylevel-Uid: 3a9b8c7d-6e5f-4d3c-2b1a-0f9e8d7c6b5a\r\n"),
                    r#"{"major":"1","minor":"28","gitVersion":"v1.28.2","gitCommit":"89a4ea3e","goVersion":"go1.20.8","compiler":"gc","platform":"linux/amd64"}"#,
                ),
            ],
        ),
        web(
            58018,
            "10.80.2.26",
            10255,
            &[
                get("/pods", "10.80.2.26:10255"),
                answer("200 OK", JSON, r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[]}"#),
            ],
        ),
        web(
            58019,
            "10.80.2.27",
            2379,
            &[
                get("/version", "10.80.2.27:2379"),
                answer("200 OK", JSON, r#"{"etcdserver":"3.5.9","etcdcluster":"3.5.0"}"#),
                get("/v2/keys/?recursive=true", "10.80.2.27:2379"),
                answer(
                    "200 OK",
                    &format!("{JSON}X-Etcd-Cluster-Id: cdf818194e3a8c32\r\nX-Etcd-Index: 4\r\n"),
                    r#"{"action":"get","node":{"dir":true,"nodes":[{"key":"/registry","dir":true}]}}"#,
                ),
            ],
        ),
        web(
            58020,
            "10.80.2.28",
            8088,
            &[
                get("/ws/v1/cluster/info", "10.80.2.28:8088"),
                answer(
                    "200 OK",
                    JSON,
                    r#"{"clusterInfo":{"id":1700000000000,"state":"STARTED","resourceManagerVersion":"3.3.6","hadoopVersion":"3.3.6"}}"#,
                ),
                client("POST /ws/v1/cluster/apps/new-application HTTP/1.1\r\nHost: 10.80.2.28:8088\r\nContent-Length: 0\r\n\r\n"),
                answer(
                    "200 OK",
                    JSON,
                    r#"{"application-id":"application_1700000000000_0001","maximum-resource-capability":{"memory":8192,"vCores":4}}"#,
                ),
            ],
        ),
        web(
            58021,
            "10.80.2.29",
            8080,
            &[
                get("/script", "10.80.2.29:8080"),
                answer("200 OK", "X-Jenkins: 2.414.1\r\nContent-Type: text/html;charset=utf-8\r\n", "<html><title>Script Console [Jenkins]</title></html>"),
            ],
        ),
        web(
            58022,
            "10.80.2.30",
            8080,
            &[
                get("/script", "10.80.2.30:8080"),
                answer("403 Forbidden", "X-Jenkins: 2.426.1\r\nContent-Type: text/html;charset=utf-8\r\n", "<html>Authentication required</html>"),
            ],
        ),
        exchange(
            (INSIDE, 58023),
            ("203.0.113.50", 6379),
            &[client(info), server(&redis_info("5.0.7"))],
        ),
        web(
            58024,
            "10.80.2.31",
            80,
            &[
                get("/", "10.80.2.31"),
                answer("200 OK", &format!("Server: nginx/1.25.3\r\n{JSON}"), r#"{"version":"2.1.0","status":"ok"}"#),
            ],
        ),
        exchange(
            (OUTSIDE, 58025),
            ("10.80.2.32", 22),
            &[server("220 relay.example.org ESMTP\r\n"), client("EHLO scanner\r\n"), server("250 relay.example.org\r\n")],
        ),
    ];
    write(path, sessions)
}
