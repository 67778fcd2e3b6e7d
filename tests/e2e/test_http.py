"""HTTP summary fields of flow records against tshark's HTTP dissector."""

import re
import subprocess
from collections import Counter
from pathlib import Path

from conftest import PCAPS, SAMPLES, flows, replay, require


def tshark_http(pcap: Path) -> Counter:
    """(client port, method, uri, host, user agent, status) per HTTP exchange."""
    tshark = require("tshark")
    fields = lambda flt, *names: [line.split("\t") for line in subprocess.run(
        [tshark, "-r", str(pcap), "-o", "tcp.reassemble_out_of_order:TRUE", "-Y", flt,
         "-T", "fields", "-E", "occurrence=f", *[a for n in names for a in ("-e", n)]],
        capture_output=True, text=True, check=True).stdout.splitlines()]
    requests = fields("http.request", "tcp.stream", "tcp.srcport", "http.request.method",
                      "http.request.uri", "http.host", "http.user_agent")
    responses = {row[0]: row[1] for row in fields("http.response", "tcp.stream", "http.response.code")}
    out = Counter()
    seen = set()
    for stream, port, method, uri, host, agent in requests:
        if stream in seen:
            continue
        seen.add(stream)
        status = int(responses[stream]) if stream in responses else None
        out[(int(port), method, uri, host or None, agent or None, status)] += 1
    return out


MASK = re.compile(r"\[(.)…(.) \((\d+) chars\)\]")


def as_pattern(masked: str) -> re.Pattern:
    """A masked URI as the URIs it may stand for: each `[a…b (n chars)]`
    is `a`, n - 2 characters, `b`."""
    parts, at = [], 0
    for m in MASK.finditer(masked):
        parts.append(re.escape(masked[at:m.start()]))
        parts.append(f"{re.escape(m[1])}.{{{int(m[3]) - 2}}}{re.escape(m[2])}")
        at = m.end()
    return re.compile("".join(parts) + re.escape(masked[at:]) + "$")


def test_first_request_and_response_match_tshark(tmp_path: Path):
    expected = Counter()
    for pcap in SAMPLES:
        expected += tshark_http(pcap)
    assert len(expected) >= 5, expected
    replay(tmp_path / "out", *SAMPLES)
    rows = flows(tmp_path / "out", "src_port, http_method, http_uri, http_host, http_user_agent, "
                                   "http_status, app_proto, end_reason")
    got = Counter((r["src_port"], r["http_method"], r["http_uri"], r["http_host"],
                   r["http_user_agent"], r["http_status"])
                  for r in rows if r["http_method"] is not None and r["end_reason"] != "active")
    # A URI with secrets is written masked: it must stand for tshark's.
    masked = [key for key in got if key[2] and MASK.search(key[2])]
    assert masked, "no masked URI: the samples' leaked keys were not masked"
    for key in masked:
        pattern = as_pattern(key[2])
        same = [k for k in expected if k[:2] + k[3:] == key[:2] + key[3:] and pattern.match(k[2])]
        assert len(same) == 1, (key, [k for k in expected if k[0] == key[0]])
        got[same[0]] += got.pop(key)
    assert got == expected
    assert all(r["app_proto"] == "http" for r in rows if r["http_method"] is not None)
    assert all(r["app_proto"] != "http" for r in rows if r["http_method"] is None)


def test_first_dns_query_and_response_match_tshark(tmp_path: Path):
    tshark = require("tshark")
    expected = Counter()
    for pcap in SAMPLES:
        rows = [line.split("\t") for line in subprocess.run(
            [tshark, "-r", str(pcap), "-Y", "dns", "-T", "fields", "-E", "occurrence=f",
             "-e", "udp.stream", "-e", "udp.srcport", "-e", "dns.flags.response", "-e", "dns.qry.name",
             "-e", "dns.qry.type", "-e", "dns.flags.rcode", "-e", "dns.a"],
            capture_output=True, text=True, check=True).stdout.splitlines()]
        streams = {}
        for stream, port, response, name, qtype, rcode, a in rows:
            entry = streams.setdefault(stream, {"port": None, "query": None, "qtype": None,
                                                "rcode": None, "a": None})
            if response == "0" and entry["query"] is None:
                entry.update(port=int(port), query=name, qtype=int(qtype))
            if response == "1" and entry["rcode"] is None:
                entry.update(rcode=int(rcode), a=a or None)
        for e in streams.values():
            expected[(e["port"], e["query"], e["qtype"], e["rcode"], e["a"])] += 1
    assert expected, "the samples carry DNS"
    replay(tmp_path / "out", *SAMPLES)
    rows = flows(tmp_path / "out", "src_port, dns_query, dns_qtype, dns_rcode, dns_answers, app_proto")
    got = Counter((r["src_port"], r["dns_query"], r["dns_qtype"], r["dns_rcode"],
                   (r["dns_answers"] or [None])[0] if r["dns_answers"] else None)
                  for r in rows if r["dns_query"] is not None)
    assert got == expected
    assert all(r["app_proto"] == "dns" for r in rows if r["dns_query"] is not None)


def test_tls_server_name_and_fingerprints_match_tshark(tmp_path: Path):
    tshark = require("tshark")
    expected = Counter()
    for pcap in SAMPLES:
        rows = [line.split("\t") for line in subprocess.run(
            [tshark, "-r", str(pcap), "-Y", "tls.handshake.type == 1 || tls.handshake.type == 2",
             "-T", "fields", "-E", "occurrence=f", "-e", "tcp.stream", "-e", "tcp.srcport",
             "-e", "tls.handshake.type", "-e", "tls.handshake.extensions_server_name",
             "-e", "tls.handshake.ja3", "-e", "tls.handshake.ja3s"],
            capture_output=True, text=True, check=True).stdout.splitlines()]
        streams = {}
        for stream, port, kind, sni, ja3, ja3s in rows:
            entry = streams.setdefault(stream, {})
            if kind == "1":
                entry.update(port=int(port), sni=sni or None, ja3=ja3)
            else:
                entry.update(ja3s=ja3s)
        for e in streams.values():
            expected[(e.get("port"), e.get("sni"), e.get("ja3"), e.get("ja3s"))] += 1
    assert expected, "the samples carry a TLS handshake"
    replay(tmp_path / "out", *SAMPLES)
    rows = flows(tmp_path / "out", "src_port, tls_sni, tls_ja3, tls_ja3s, app_proto")
    got = Counter((r["src_port"], r["tls_sni"], r["tls_ja3"], r["tls_ja3s"])
                  for r in rows if r["tls_ja3"] is not None)
    assert got == expected
    assert all(r["app_proto"] == "tls" for r in rows if r["tls_ja3"] is not None)


def test_server_certificate_fields_match_openssl(tmp_path: Path):
    """Subject and issuer as openssl prints them, SHA-256 of the DER bytes
    tshark extracts from the handshake."""
    import hashlib
    tshark, openssl = require("tshark"), require("openssl")
    expected = Counter()
    for pcap in SAMPLES:
        rows = [line.split("\t") for line in subprocess.run(
            [tshark, "-r", str(pcap), "-Y", "tls.handshake.certificate", "-T", "fields",
             "-E", "occurrence=f", "-e", "tcp.dstport", "-e", "tls.handshake.certificate"],
            capture_output=True, text=True, check=True).stdout.splitlines()]
        for port, cert in rows:
            der = bytes.fromhex(cert.replace(":", ""))
            der_path = tmp_path / "cert.der"
            der_path.write_bytes(der)
            text = subprocess.run([openssl, "x509", "-inform", "DER", "-in", str(der_path), "-noout",
                                   "-nameopt", "RFC2253", "-subject", "-issuer"],
                                  capture_output=True, text=True, check=True).stdout
            names = dict(line.split("=", 1) for line in text.splitlines())
            # RFC 2253 lists the most specific part first; the flow record keeps certificate order.
            order = lambda dn: ", ".join(reversed(dn.strip().split(",")))
            expected[(int(port), order(names["subject"]), order(names["issuer"]),
                      hashlib.sha256(der).hexdigest())] += 1
    assert expected, "the samples carry a certificate"
    replay(tmp_path / "out", *SAMPLES)
    rows = flows(tmp_path / "out", "src_port, tls_cert_subject, tls_cert_issuer, tls_cert_sha256")
    got = Counter((r["src_port"], r["tls_cert_subject"], r["tls_cert_issuer"], r["tls_cert_sha256"])
                  for r in rows if r["tls_cert_sha256"] is not None)
    assert got == expected


def test_tls_certs_rules_match_inside_the_certificates_tshark_extracts(tmp_path: Path):
    """`tls.certs` sees each certificate of the chain as sent: bytes cut from
    the DER tshark shows match there, and bytes of no certificate do not."""
    import duckdb
    tshark = require("tshark")
    pcap = PCAPS / "tls.pcap"
    certs = [bytes.fromhex(c.replace(":", "")) for line in subprocess.run(
        [tshark, "-r", str(pcap), "-Y", "tls.handshake.certificate", "-T", "fields",
         "-e", "tls.handshake.certificate"],
        capture_output=True, text=True, check=True).stdout.splitlines() for c in line.split(",")]
    assert certs
    middle = certs[0][len(certs[0]) // 2:][:16]
    hexed = "|" + " ".join(f"{b:02x}" for b in middle) + "|"
    rules = tmp_path / "certs.rules"
    rules.write_text(
        f'alert tls any any -> any any (msg:"cut from the DER"; flow:to_client; tls.certs; content:"{hexed}"; sid:1;)\n'
        f'alert tls any any -> any any (msg:"starts a DER"; tls.certs; content:"|30 82|"; startswith; sid:2;)\n'
        f'alert tls any any -> any any (msg:"in no certificate"; tls.certs; content:"|de ad be ef 00 11 22 33|"; sid:3;)\n')
    assert all(bytes.fromhex("deadbeef00112233") not in c for c in certs)
    replay(tmp_path / "out", pcap, extra=["--rules", str(rules)])
    got = dict(duckdb.sql(f"select sid, count(*) from read_parquet('{tmp_path}/out/detections/**/*.parquet') "
                          f"group by sid").fetchall())
    assert got == {1: 1, 2: 1}


def test_http_start_is_the_head_as_sent(tmp_path: Path):
    """`http.start`: the start line and the header block, ending with the
    empty line, for every request and response tshark sees."""
    import duckdb
    tshark = require("tshark")
    pcaps = [PCAPS / "basic.pcap", PCAPS / "webshell.pcap", PCAPS / "c2.pcap"]
    count = lambda flt: sum(len(subprocess.run(
        [tshark, "-r", str(p), "-o", "tcp.reassemble_out_of_order:TRUE", "-Y", flt],
        capture_output=True, text=True, check=True).stdout.splitlines()) for p in pcaps)
    rules = tmp_path / "start.rules"
    rules.write_text(
        'alert http any any -> any any (msg:"GET head"; flow:to_server; http.start; content:"GET "; startswith; '
        'content:"|0d 0a 0d 0a|"; endswith; sid:1;)\n'
        'alert http any any -> any any (msg:"POST head"; flow:to_server; http.start; content:"POST /"; startswith; '
        'content:" HTTP/1."; distance:0; content:"|0d 0a|"; distance:1; within:2; sid:2;)\n'
        'alert http any any -> any any (msg:"response head"; flow:to_client; http.start; content:"HTTP/1."; startswith; '
        'content:"|0d 0a 0d 0a|"; endswith; sid:3;)\n')
    replay(tmp_path / "out", *pcaps, extra=["--rules", str(rules)])
    got = dict(duckdb.sql(f"select sid, count(*) from read_parquet('{tmp_path}/out/detections/**/*.parquet') "
                          f"where gid = 1 group by sid").fetchall())
    expected = {1: count('http.request.method == "GET"'), 2: count('http.request.method == "POST"'),
                3: count("http.response")}
    assert all(expected.values())
    assert got == expected


def test_base64_data_reads_what_python_decodes(tmp_path: Path):
    """`base64_decode` and `base64_data` on the China Chopper request's `z0`
    parameter: the rule alerts on each request whose decoded parameter
    (Python's base64 over the text tshark shows) holds the PHP call."""
    import base64
    import re

    import duckdb
    tshark = require("tshark")
    pcap = PCAPS / "webshell.pcap"
    bodies = subprocess.run(
        [tshark, "-r", str(pcap), "-o", "tcp.reassemble_out_of_order:TRUE", "-Y", "http.request",
         "-T", "fields", "-e", "http.file_data"], capture_output=True, text=True, check=True).stdout.splitlines()
    decoded = []
    for body in bodies:
        for text in re.findall(r"z0=([A-Za-z0-9+/]+)", body):
            decoded.append(base64.b64decode(text[: len(text) // 4 * 4]))
    expected = sum(b"@ini_set(" in d for d in decoded)
    assert expected > 0
    rules = tmp_path / "b64.rules"
    rules.write_text(
        'alert http any any -> any any (msg:"php in z0"; http.request_body; content:"z0="; '
        'base64_decode:offset 0,relative; base64_data; content:"@ini_set("; sid:1;)\n'
        'alert http any any -> any any (msg:"not in it"; http.request_body; content:"z0="; '
        'base64_decode:relative; base64_data; content:"system("; sid:2;)\n')
    replay(tmp_path / "out", pcap, extra=["--rules", str(rules)])
    got = dict(duckdb.sql(f"select sid, count(*) from read_parquet('{tmp_path}/out/detections/**/*.parquet') "
                          f"where gid = 1 group by sid").fetchall())
    assert all(b"system(" not in d for d in decoded)
    assert got == {1: expected}
