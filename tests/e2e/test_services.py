"""High-risk services and their exposure: the generated capture
(pcaps/services.pcap: every service on internal hosts, answering outside and
inside clients, open and authenticating, and look-alikes) and the benign
traffic. tshark dissects the same packets: each banner's product and version
must be the one tshark reads, each server and its clients the ones of tshark's
TCP conversations, and an exposure raised exactly for each HOME_NET server
answering a client outside HOME_NET, once per host, port and service."""

import ipaddress
import subprocess
from pathlib import Path

import duckdb
import pytest

from conftest import PCAPS, SHARED, flows, replay, require

SERVICES = PCAPS / "services.pcap"
HOME_NET = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
EXPOSED, OPEN = 9201401, 9201402

# Server: service, product, version, open access (the generated capture).
EXPECTED = {
    ("10.80.2.10", 22): ("ssh", "OpenSSH", "9.3p1", None),
    ("10.80.2.11", 2222): ("ssh", "OpenSSH", "8.4p1", None),
    ("10.80.2.12", 23): ("telnet", None, None, None),
    ("10.80.2.13", 5900): ("vnc", "RFB", "3.8", "vnc without authentication"),
    ("10.80.2.14", 3389): ("rdp", "RDP", "credssp", None),
    ("10.80.2.15", 445): ("smb", "SMB", "3.0.2", None),
    ("10.80.2.16", 3306): ("mysql", "MySQL", "8.0.35", None),
    ("10.80.2.17", 1433): ("mssql", "Microsoft SQL Server", "15.0.2000", None),
    ("10.80.2.18", 5432): ("postgresql", "PostgreSQL", "15.4", "postgresql login without password"),
    ("10.80.2.19", 6379): ("redis", "Redis", "7.2.3", "redis INFO"),
    ("10.80.2.20", 6379): ("redis", "Redis", "6.2.14", None),
    ("10.80.2.21", 11211): ("memcached", "Memcached", "1.6.21", "memcached stats"),
    ("10.80.2.22", 27017): ("mongodb", "MongoDB", "6.0.11", "mongodb listDatabases"),
    ("10.80.2.23", 2375): ("docker", "Docker", "24.0.5", "docker /containers/json"),
    ("10.80.2.24", 9200): ("elasticsearch", "Elasticsearch", "7.17.9", "elasticsearch _cat"),
    ("10.80.2.25", 8080): ("kubernetes", "Kubernetes", "v1.28.2", None),
    ("10.80.2.26", 10255): ("kubelet", "kubelet", None, "kubelet /pods"),
    ("10.80.2.27", 2379): ("etcd", "etcd", "3.5.9", "etcd keys"),
    ("10.80.2.28", 8088): ("yarn", "Hadoop YARN", "3.3.6", "yarn new-application"),
    ("10.80.2.29", 8080): ("jenkins", "Jenkins", "2.414.1", "jenkins script console"),
    ("10.80.2.30", 8080): ("jenkins", "Jenkins", "2.426.1", None),
    ("203.0.113.50", 6379): ("redis", "Redis", "5.0.7", "redis INFO"),
}


def home(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    return any(address in net for net in HOME_NET)


def tshark(pcap: Path, display_filter: str, *fields: str, decode=()) -> list[list[str]]:
    cmd = [require("tshark"), "-r", str(pcap), "-Y", display_filter, "-T", "fields"]
    for rule in decode:
        cmd += ["-d", rule]
    for field in fields:
        cmd += ["-e", field]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def conversations(pcap: Path) -> dict[tuple[str, int], set[str]]:
    """Each server (the SYN-ACK's sender) and the clients it answered."""
    servers: dict[tuple[str, int], set[str]] = {}
    for src, port, dst in tshark(pcap, "tcp.flags.syn==1 && tcp.flags.ack==1",
                                 "ip.src", "tcp.srcport", "ip.dst"):
        servers.setdefault((src, int(port)), set()).add(dst)
    return servers


def table(out: Path, name: str) -> list[dict]:
    files = list((out / name).rglob("*.parquet"))
    if not files:
        return []
    rel = duckdb.sql(f"select * from read_parquet('{out}/{name}/**/*.parquet')")
    return [dict(zip(rel.columns, row)) for row in rel.fetchall()]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    assert SERVICES.exists(), f"{SERVICES} is missing: cargo run -p pcapgen -- pcaps"
    out = tmp_path_factory.mktemp("services") / "out"
    replay(out, SERVICES)
    return out


def test_each_service_is_recognised_with_the_version_tshark_reads(run: Path):
    rows = {(r["host"], r["port"]): r for r in table(run, "services")}
    assert set(rows) == set(EXPECTED), "the look-alikes (nginx, SMTP on port 22) are no service"
    for server, (service, product, version, access) in EXPECTED.items():
        row = rows[server]
        assert (row["service"], row["product"], row["version"], row["open_access"]) == (
            service, product, version, access), server
    # tshark's reading of the banners and handshakes.
    seen = {}
    decode = ["tcp.port==2222,ssh"]
    for ip, port, ssh, vnc, mysql, tds, pgsql, smb2, server in tshark(
            SERVICES, "tcp.len>0", "ip.src", "tcp.srcport", "ssh.protocol", "vnc.server_proto_ver",
            "mysql.version", "tds.prelogin.option.version", "pgsql.parameter_value", "smb2.dialect",
            "http.server", decode=decode):
        key = (ip, int(port))
        if key not in EXPECTED:
            continue  # a client's banner or request
        if ssh:
            product, _, version = ssh.split("-", 2)[2].split(" ")[0].partition("_")
            seen[key] = (product, version)
        elif vnc:
            major, minor = vnc.split(".")
            seen[key] = ("RFB", f"{int(major)}.{int(minor)}")
        elif mysql:
            seen[key] = ("MySQL", mysql)
        elif tds:
            v = int(tds)
            seen[key] = ("Microsoft SQL Server", f"{v >> 24}.{(v >> 16) & 0xff}.{v & 0xffff}")
        elif pgsql:
            seen[key] = ("PostgreSQL", pgsql.split(",")[0])
        elif smb2 and "," not in smb2:
            dialect = int(smb2, 16)
            seen[key] = ("SMB", f"{dialect >> 8}.{(dialect >> 4) & 0xf}.{dialect & 0xf}")
        elif server.startswith("Docker/"):
            seen[key] = ("Docker", server.split("/")[1].split()[0])
    assert len(seen) == 8, seen
    for key, (product, version) in seen.items():
        assert (rows[key]["product"], rows[key]["version"]) == (product, version), key
    jenkins = 0
    for ip, port, line in tshark(SERVICES, "http.response", "ip.src", "tcp.srcport", "http.response.line"):
        for header in line.split(","):
            if header.startswith("X-Jenkins: "):
                jenkins += 1
                value = header.split(": ")[1].removesuffix("\\r\\n")
                assert rows[(ip, int(port))]["version"] == value
    assert jenkins == 2


def test_clients_and_exposures_follow_tshark_conversations(run: Path):
    servers = conversations(SERVICES)
    rows = {(r["host"], r["port"]): r for r in table(run, "services")}
    for key, row in rows.items():
        clients = servers[key]
        assert row["clients_outside"] == sum(not home(c) for c in clients), key
        assert row["clients_inside"] == sum(home(c) for c in clients), key
        assert row["exposed"] == (home(key[0]) and any(not home(c) for c in clients)), key
    detections = table(run, "detections")
    exposures = [(d["src_ip"], d["src_port"], d["sid"]) for d in detections if d["family"] == "exposed-service"]
    assert len(exposures) == len(set(exposures)), "once per host, port and service"
    expected = {(h, p, EXPOSED) for (h, p), r in rows.items() if r["exposed"]}
    expected |= {(h, p, OPEN) for (h, p), r in rows.items() if r["exposed"] and r["open_access"]}
    assert set(exposures) == expected
    priorities = {d["sid"]: d["priority"] for d in detections if d["family"] == "exposed-service"}
    assert priorities[OPEN] < priorities[EXPOSED], "open access rises in priority"
    # The flows table names each flow's service.
    named = {(f["dst_ip"], f["dst_port"]): f["service"] for f in flows(run, "dst_ip, dst_port, service")}
    for key, row in rows.items():
        assert named[key] == row["service"], key


@pytest.mark.parametrize("pcap", ["ndpi-benign-mix.pcap", "threats/benign"])
def test_benign_traffic_exposes_nothing_but_its_one_outside_vnc_session(benign_run, pcap: str):
    out = benign_run(pcap, "exposures")
    path = SHARED / "pcaps" / pcap
    exposures = {(d["src_ip"], d["src_port"], d["dst_ip"]) for d in table(out, "detections")
                 if d["family"] == "exposed-service"}
    if pcap == "ndpi-benign-mix.pcap":
        # The mix holds one real VNC session from the Internet to an internal
        # host, which tshark dissects as such: an exposure by definition.
        vnc = tshark(path, "vnc.server_proto_ver", "ip.src", "tcp.srcport", "ip.dst")
        assert {(ip, int(port), dst) for ip, port, dst in vnc} == exposures
        assert all(home(ip) and not home(dst) for ip, _, dst in exposures)
    else:
        assert exposures == set()
