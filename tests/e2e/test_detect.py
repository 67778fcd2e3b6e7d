"""Rules against traffic: detections in Parquet, read back with DuckDB."""

import base64
import subprocess
from pathlib import Path

import duckdb

from conftest import PCAPS, dpdk_eal, replay, require, run_dpdk, summary_value

RULES = r'''
alert tcp any any -> any 8080 (msg:"split across out-of-order segments"; flow:established,to_server; content:"wxyz0123"; offset:590; depth:20; metadata: family test; sid:100; rev:2;)
alert tcp any 8080 -> any any (msg:"each response segment"; flow:to_client; content:"9876"; sid:101;)
alert udp any any -> any 53 (msg:"dns name"; content:"|07|EXAMPLE|03|com"; nocase; sid:102;)
alert icmp any any -> any any (msg:"icmp with data"; dsize:>0; sid:103;)
alert tcp any any -> any 8080 (msg:"after the gap"; content:"after the gap"; sid:104;)
alert tcp any any -> any any (msg:"set only"; content:"GET "; flowbits:set,get; flowbits:noalert; sid:105;)
alert tcp any any -> any any (msg:"gated by flowbit"; flowbits:isset,get; content:"HTTP/1.1 200"; sid:106;)
alert tcp any any -> any 8080 (msg:"never: lost bytes"; content:"LOST BYTES"; sid:107;)
alert udp any any -> any 53 (msg:"limited"; content:"|00 01 00 01|"; threshold: type limit, track by_rule, count 1, seconds 3600; sid:108;)
alert tcp any any -> any any (msg:"pcre relative"; content:"Host|3a| "; pcre:"/^[a-z0-9]+\.test\r\n/R"; sid:109;)
'''


def write_rules(tmp_path: Path) -> Path:
    path = tmp_path / "test.rules"
    path.write_text(RULES.strip() + "\n")
    return path


def detections(out: Path) -> list[tuple]:
    return duckdb.sql(
        f"select sid, count(*) from read_parquet('{out}/detections/**/*.parquet') group by sid order by sid"
    ).fetchall()


# The samples these rules were written against (the family samples have
# their own test, test_families.py).
CORE_SAMPLES = [PCAPS / name for name in ("basic.pcap", "tunnels.pcapng", "cooked-sll.pcap",
                                          "cooked-sll2.pcap", "stream.pcap", "evasion.pcap", "tls.pcap")]


def test_rules_fire_where_the_traffic_says(tmp_path: Path):
    rules = write_rules(tmp_path)
    result = replay(tmp_path / "out", *CORE_SAMPLES, extra=["--rules", str(rules)])
    assert "10 loaded, 0 skipped" in result.stdout
    counts = dict(detections(tmp_path / "out"))
    # One match at stream offset 598..606, across segments sent out of order.
    assert counts[100] == 1
    # Four response segments each bring a new "9876".
    assert counts[101] == 4
    # Two DNS queries for example.com (case-insensitive).
    assert counts[102] == 2
    assert counts[104] == 1
    assert 105 not in counts and 107 not in counts
    # Every HTTP response with a request seen first (flowbit set by sid 105).
    assert counts[106] == 7
    assert counts[108] == 1
    # Requests for the six hosts under .test (basic, tunnels, cooked samples).
    assert counts[109] == 6
    assert int(summary_value(result.stdout, "detections").split()[0]) == sum(counts.values())


def test_detection_rows_carry_flow_and_rule_fields(tmp_path: Path):
    rules = write_rules(tmp_path)
    replay(tmp_path / "out", PCAPS / "stream.pcap", extra=["--rules", str(rules), "--sensor", "s1"])
    out = tmp_path / "out"
    rel = duckdb.sql(
        f"select * from read_parquet('{out}/detections/**/*.parquet', hive_partitioning=true) where sid = 100"
    )
    rows = rel.fetchall()
    assert len(rows) == 1
    d = dict(zip(rel.columns, rows[0]))
    assert (d["src_ip"], d["src_port"], d["dst_ip"], d["dst_port"]) == ("10.7.0.5", 43000, "10.7.0.6", 8080)
    assert (d["gid"], d["rev"], d["family"], d["direction"]) == (1, 2, "test", "to_server")
    assert d["stream_offset"] == 606
    assert b"wxyz0123" in d["excerpt"]
    assert d["sensor"] == "s1" and d["metadata"] == "family test"
    assert d["community_id"].startswith("1:")
    flow = duckdb.sql(
        f"select alerted, detections, community_id from read_parquet('{out}/flows/**/*.parquet') "
        f"where flow_id = {d['flow_id']}"
    ).fetchall()
    assert flow == [(True, 5, d["community_id"])]


def test_dpdk_run_detects_what_replay_detects(tmp_path: Path):
    rules = write_rules(tmp_path)
    pcap = PCAPS / "stream.pcap"
    replay(tmp_path / "replay", pcap, extra=["--rules", str(rules)])
    run_dpdk(tmp_path / "run", dpdk_eal(f"net_pcap0,rx_pcap={pcap}"), extra=["--rules", str(rules)])
    query = "select * exclude (flow_id) from read_parquet('{}/detections/**/*.parquet') order by all"
    live = duckdb.sql(query.format(tmp_path / "run")).fetchall()
    assert live and live == duckdb.sql(query.format(tmp_path / "replay")).fetchall()


def test_compiled_rules_are_cached_for_the_next_start(tmp_path: Path):
    rules = write_rules(tmp_path)
    config = tmp_path / "cache.toml"
    config.write_text(f'[rules]\ncache_dir = "{tmp_path / "cache"}"\n')
    extra = ["--rules", str(rules), "--config", str(config)]
    first = replay(tmp_path / "a", PCAPS / "stream.pcap", extra=extra)
    assert "cached=false" in first.stderr
    databases = sorted((tmp_path / "cache").glob("*.hsdb"))
    assert databases
    second = replay(tmp_path / "b", PCAPS / "stream.pcap", extra=extra)
    assert "cached=true" in second.stderr
    # One database missing: it is compiled again, the others still load.
    databases[0].unlink()
    third = replay(tmp_path / "c", PCAPS / "stream.pcap", extra=extra)
    assert "cached=false" in third.stderr and databases[0].exists()
    query = "select * exclude (flow_id) from read_parquet('{}/detections/**/*.parquet') order by all"
    assert duckdb.sql(query.format(tmp_path / "a")).fetchall() == \
        duckdb.sql(query.format(tmp_path / "b")).fetchall()


def test_header_only_rules_are_checked_once_per_flow_direction(tmp_path: Path):
    """Rules decided by protocol, addresses and ports alone are Suricata's
    IP-only signatures: they alert on the first packet of each flow
    direction. A packet whose transport header is broken belongs to no
    flow, and `ip` rules still see it."""
    rules = tmp_path / "ip.rules"
    rules.write_text('alert ip any any -> any any (msg:"every ip flow direction"; sid:200;)\n'
                     'alert tcp any any -> any any (msg:"every tcp flow direction"; sid:201;)\n'
                     'alert tcp any any -> any any (msg:"every packet"; flow:established; sid:202;)\n')
    pcap = PCAPS / "basic.pcap"
    replay(tmp_path / "out", pcap, extra=["--rules", str(rules)])

    def lines(flt: str, *fields: str) -> list[str]:
        cmd = [require("tshark"), "-r", str(pcap), "-Y", flt]
        if fields:
            cmd += ["-T", "fields", "-E", "separator=,"] + [a for f in fields for a in ("-e", f)]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()

    source = ("ip.src", "ipv6.src")
    directions = set(lines("(ip or ipv6) and not _ws.malformed", *source, "tcp.stream", "udp.stream",
                           "icmp.type", "icmp.ident"))
    tcp_directions = set(lines("tcp and not _ws.malformed", *source, "tcp.stream"))
    broken = lines("(ip or ipv6) and _ws.malformed")
    established = lines("tcp and not _ws.malformed and tcp.len > 0")
    counts = dict(detections(tmp_path / "out"))
    assert len(broken) == 1 and len(tcp_directions) > 1
    assert counts[200] == len(directions) + len(broken)
    assert counts[201] == len(tcp_directions)
    # A flow condition makes a rule a packet rule again: every data packet.
    assert counts[202] >= len(established)


def test_stream_size_follows_the_sequence_space_tshark_sees(tmp_path: Path):
    """`stream_size` compares the sequence space a side has used (the next
    sequence number less the initial one, so data plus SYN and FIN) as
    Suricata does. tshark's relative `tcp.nxtseq` is that number; a side's
    size at a packet is the largest it has reached so far."""
    pcap = PCAPS / "basic.pcap"
    rules = tmp_path / "size.rules"
    bounds = {301: ("server", ">", 70), 302: ("client", "<", 5), 303: ("either", ">=", 80),
              304: ("both", "<=", 10)}
    rules.write_text("".join(f'alert tcp any any -> any any (msg:"size"; stream_size:{s},{op},{n}; sid:{sid};)\n'
                             for sid, (s, op, n) in bounds.items()))
    replay(tmp_path / "out", pcap, extra=["--rules", str(rules)])

    fields = ["tcp.stream", "ip.src", "ipv6.src", "tcp.srcport", "tcp.flags.syn", "tcp.flags.ack", "tcp.nxtseq"]
    cmd = [require("tshark"), "-r", str(pcap), "-Y", "tcp and not _ws.malformed", "-T", "fields",
           "-E", "separator=,"] + [a for f in fields for a in ("-e", f)]
    rows = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()
    clients, reached = {}, {}
    expected = dict.fromkeys(bounds, 0)
    compare = {">": int.__gt__, "<": int.__lt__, ">=": int.__ge__, "<=": int.__le__}
    for row in rows:
        stream, src4, src6, port, syn, ack, nxtseq = row.split(",")
        sender = (src4 or src6, port)
        if syn == "1" and ack == "0":
            clients.setdefault(stream, sender)
        if stream not in clients:
            continue
        side = "client" if clients[stream] == sender else "server"
        reached[(stream, side)] = max(reached.get((stream, side), 0), int(nxtseq))
        sizes = {s: reached.get((stream, s), 0) for s in ("client", "server")}
        for sid, (which, op, n) in bounds.items():
            holds = [compare[op](sizes[s], n) for s in ("client", "server")]
            hit = {"client": holds[0], "server": holds[1], "both": all(holds), "either": any(holds)}[which]
            expected[sid] += hit
    assert len(clients) > 3 and all(expected.values())
    assert dict(detections(tmp_path / "out")) == expected


def test_application_buffers_on_the_samples(tmp_path: Path):
    """One rule per kind of application buffer, on samples whose contents
    tshark shows: the TLS hello and certificate of tls.pcap, the DNS
    questions and HTTP requests of basic.pcap."""
    rules = tmp_path / "app.rules"
    rules.write_text("\n".join([
        'alert tls any any -> any any (tls.sni; content:"tls.test"; bsize:8; sid:201;)',
        'alert tls any any -> any any (ja3s.hash; content:"303951d4c50efb2e991652225a6f02b1"; sid:202;)',
        'alert tls any any -> any any (tls.cert_subject; content:"CN=tls.test"; endswith; '
        'tls.cert_issuer; content:"O=Mirador Test"; sid:203;)',
        'alert dns any any -> any any (dns.query; content:"example.com"; nocase; endswith; sid:204;)',
        'alert http any any -> any any (http.method; content:"GET"; http.host; content:".test"; '
        'endswith; sid:205;)',
        'alert http any any -> any any (http.stat_code; content:"200"; file_data; content:"<"; sid:206;)',
    ]) + "\n")
    result = replay(tmp_path / "out", PCAPS / "tls.pcap", PCAPS / "basic.pcap",
                    extra=["--rules", str(rules)])
    assert "6 loaded, 0 skipped" in result.stdout
    counts = dict(detections(tmp_path / "out"))
    assert (counts.get(201), counts.get(202), counts.get(203)) == (1, 1, 1)
    tshark = require("tshark")
    def count(flt):
        out = subprocess.run([tshark, "-r", str(PCAPS / "basic.pcap"), "-Y", flt],
                             capture_output=True, text=True, check=True).stdout
        return len(out.splitlines())
    assert counts.get(204) == count('dns.flags.response == 0 and dns.qry.name matches "(?i)example\\\\.com$"')
    assert counts.get(205) == count('http.request.method == "GET" and http.host matches "\\\\.test$"')
    assert counts.get(206) == count('http.response.code == 200 and http.file_data contains "<"')
    protos = dict(duckdb.sql(
        f"select distinct sid, app_proto from read_parquet('{tmp_path}/out/detections/**/*.parquet')"
    ).fetchall())
    assert protos == {201: "tls", 202: "tls", 203: "tls", 204: "dns", 205: "http", 206: "http"}


def test_detections_name_the_tunnel_and_vlan_their_flow_came_in(tmp_path: Path):
    """Every detection in a tunnel carries the outer addresses tshark shows
    for the packets between its inner endpoints, the others none; and each
    carries the VLAN tags (802.1ad service tag first) tshark shows."""
    rules = tmp_path / "tunnel.rules"
    rules.write_text('alert tcp any any -> any any (msg:"request"; content:"GET /"; sid:1;)\n')
    pcaps = [PCAPS / "tunnels.pcapng", PCAPS / "basic.pcap"]
    replay(tmp_path / "out", *pcaps, extra=["--rules", str(rules)])
    rows = duckdb.sql(
        f"select src_ip, dst_ip, tunnel.type, tunnel.src_ip, tunnel.dst_ip, vlan "
        f"from read_parquet('{tmp_path}/out/detections/**/*.parquet')"
    ).fetchall()
    fields = [line for pcap in pcaps for line in subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "tcp", "-T", "fields", "-E", "separator=|",
         "-e", "ip.src", "-e", "ip.dst", "-e", "ipv6.src", "-e", "ipv6.dst", "-e", "ieee8021ad.id", "-e", "vlan.id"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()]
    outer = {}
    for line in fields:
        src, dst, src6, dst6, service_tag, vlan = line.split("|")
        srcs, dsts = (src.split(",") + src6.split(",")), (dst.split(",") + dst6.split(","))
        srcs, dsts = [a for a in srcs if a], [a for a in dsts if a]
        tunnel = (srcs[0], dsts[0]) if len(srcs) > 1 else None
        outer[(srcs[-1], dsts[-1])] = (tunnel, [int(v) for v in f"{service_tag},{vlan}".split(",") if v] or None)
    assert len(rows) == 5
    tunnelled, tagged = 0, 0
    for src, dst, kind, tsrc, tdst, vlan in rows:
        tunnel, vlans = outer[(src, dst)]
        if tunnel is None:
            assert kind is None
        else:
            tunnelled += 1
            assert kind in ("vxlan", "gre", "erspan2", "erspan3", "ipip")
            assert (tsrc, tdst) == tunnel
        assert vlan == vlans
        tagged += vlan is not None
    assert tunnelled == 2 and tagged >= 1


def test_datasets_remember_values_and_read_reputations(tmp_path: Path):
    """`dataset:set` alerts once per new user agent and saves the set;
    `datarep` alerts on the names its list rates above the threshold.
    tshark's requests and queries are the oracle."""
    pcaps = [PCAPS / "basic.pcap", PCAPS / "benign.pcap"]
    tshark = require("tshark")
    fields = lambda flt, field: [v for p in pcaps for v in subprocess.run(
        [tshark, "-r", str(p), "-Y", flt, "-T", "fields", "-e", field],
        capture_output=True, text=True, check=True).stdout.splitlines() if v]
    agents = fields("http.request", "http.user_agent")
    names = fields("dns.flags.response == 0", "dns.qry.name")
    assert len(set(agents)) >= 2 and len(names) > len(set(names)) >= 2
    rated = max(sorted(set(names)), key=names.count)
    unrated = min(set(names) - {rated})
    b64 = lambda text: base64.b64encode(text.encode()).decode()
    (tmp_path / "names.rep").write_text(f"{b64(rated)},250\n{b64(unrated)},50\n")
    rules = tmp_path / "sets.rules"
    rules.write_text(
        'alert http any any -> any any (msg:"new agent"; http.user_agent; '
        'dataset:set,agents,type string,save agents.lst; sid:1;)\n'
        'alert dns any any -> any any (msg:"bad name"; dns.query; '
        'datarep:names, >, 200, load names.rep, type string; sid:2;)\n')
    data = tmp_path / "data"
    replay(tmp_path / "out", *pcaps,
           extra=["--rules", str(rules), "--set", f'rules.data_dir="{data}"'])
    counts = dict(detections(tmp_path / "out"))
    assert counts.get(1) == len(set(agents))
    assert counts.get(2) == names.count(rated)
    saved = (data / "agents.lst").read_text().split()
    assert sorted(saved) == sorted(b64(a) for a in set(agents))


def test_header_keywords_count_what_tshark_counts(tmp_path: Path):
    """`flags`, `itype` and `icode` on every packet, against tshark's
    filters over the same captures."""
    pcaps = [PCAPS / "mirai.pcap", PCAPS / "covert.pcap", PCAPS / "basic.pcap", PCAPS / "benign.pcap"]
    tshark = require("tshark")
    count = lambda flt: sum(len(subprocess.run([tshark, "-r", str(p), "-Y", flt], capture_output=True,
                                               text=True, check=True).stdout.splitlines()) for p in pcaps)
    rules = tmp_path / "header.rules"
    rules.write_text(
        'alert tcp any any -> any any (msg:"syn only"; flags:S,12; sid:1;)\n'
        'alert tcp any any -> any any (msg:"syn-ack"; flags:SA; sid:2;)\n'
        'alert icmp any any -> any any (msg:"echo request"; itype:8; icode:0; sid:3;)\n'
        'alert icmp any any -> any any (msg:"not an echo"; itype:>8; sid:4;)\n')
    replay(tmp_path / "out", *pcaps, extra=["--rules", str(rules)])
    counts = dict(detections(tmp_path / "out"))
    expected = {1: count("tcp.flags & 0x3f == 0x02"), 2: count("tcp.flags & 0xff == 0x12"),
                3: count("icmp.type == 8 && icmp.code == 0"), 4: count("icmp.type > 8")}
    assert expected[1] > 0 and expected[3] > 0
    assert {sid: counts.get(sid, 0) for sid in expected} == expected


def test_encrypted_tls_payload_is_left_to_tls_keywords_and_header_rules(tmp_path: Path):
    """The frame tshark reads a TLS application data record in begins the
    encrypted part: by default (track) payload rules no longer match it, the
    handshake and header-only rules still do; `inspect` reads it as any
    bytes; `bypass` inspects nothing after it."""
    pcap = PCAPS / "tls.pcap"
    fields = subprocess.run(
        [require("tshark"), "-r", str(pcap), "-Y", "tls.record.content_type == 23",
         "-T", "fields", "-e", "frame.number", "-e", "tcp.payload"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    assert len(fields) == 2, fields
    frame, payload = int(fields[0]), fields[1]
    hello = subprocess.run(
        [require("tshark"), "-r", str(pcap), "-Y", "tls.handshake.type == 1",
         "-T", "fields", "-e", "tls.handshake.random"],
        capture_output=True, text=True, check=True,
    ).stdout.split()[0].replace(":", "")
    fins_after = int(subprocess.run(
        [require("tshark"), "-r", str(pcap), "-Y", f"tcp.flags.fin == 1 && frame.number > {frame}",
         "-T", "fields", "-e", "frame.number"],
        capture_output=True, text=True, check=True,
    ).stdout.count("\n"))
    assert fins_after > 0
    hex_spaced = lambda text: " ".join(text[i:i + 2] for i in range(0, len(text), 2))
    spaced = hex_spaced(payload)
    rules = tmp_path / "tls.rules"
    rules.write_text(
        f'alert tcp any any -> any any (msg:"app data"; content:"|{spaced}|"; sid:1;)\n'
        f'alert tcp any any -> any any (msg:"hello"; content:"|{hex_spaced(hello)}|"; sid:2;)\n'
        'alert tcp any any -> any any (msg:"fin"; flags:F+; sid:3;)\n'
    )
    seen = {}
    for mode in ("track", "inspect", "bypass"):
        out = tmp_path / mode
        result = replay(out, pcap, extra=["--rules", str(rules), "--set", f"rules.encrypted={mode}"])
        seen[mode] = dict(detections(out))
        if mode == "inspect":
            assert "encrypted " not in result.stdout
        else:
            assert summary_value(result.stdout, "encrypted") == \
                f"1 TLS flows, {len(payload) // 2} stream bytes after their application data began"
    assert seen["track"] == {2: 1, 3: fins_after}
    assert seen["inspect"] == {1: 1, 2: 1, 3: fins_after}
    assert seen["bypass"] == {2: 1}
