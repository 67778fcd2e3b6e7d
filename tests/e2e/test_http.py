"""HTTP summary fields of flow records against tshark's HTTP dissector."""

import subprocess
from collections import Counter
from pathlib import Path

from conftest import SAMPLES, flows, replay, require


def tshark_http(pcap: Path) -> Counter:
    """(client port, method, uri, host, user agent, status) per HTTP exchange."""
    tshark = require("tshark")
    fields = lambda flt, *names: [line.split("\t") for line in subprocess.run(
        [tshark, "-r", str(pcap), "-Y", flt, "-T", "fields", "-E", "occurrence=f",
         *[a for n in names for a in ("-e", n)]],
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
    assert got == expected
    assert all(r["app_proto"] == "http" for r in rows if r["http_method"] is not None)
    assert all(r["app_proto"] is None for r in rows if r["http_method"] is None)
