"""The signature packs in signatures/ against the family samples the project
writes (pcaps/webshell.pcap) and their benign look-alikes (pcaps/benign.pcap):
each family session raises detections of its family and tool on its own
flow, the look-alikes raise none, and neither does the real benign traffic
mix when it is present."""

from pathlib import Path

import duckdb
import pytest

from conftest import PCAPS, ROOT, flows, replay

SIGNATURES = ROOT / "signatures"
BENIGN_MIX = ROOT.parent / "shared" / "pcaps" / "ndpi-benign-mix.pcap"

# Client port of each session in webshell.pcap, and the tool it plays.
WEBSHELL_SESSIONS = {51001: "china-chopper", 51002: "antsword", 51003: "behinder", 51004: "godzilla"}


def detections(out: Path) -> list[dict]:
    files = list((out / "detections").rglob("*.parquet"))
    if not files:
        return []
    rel = duckdb.sql(f"select * from read_parquet('{out}/detections/**/*.parquet')")
    return [dict(zip(rel.columns, row)) for row in rel.fetchall()]


def test_each_webshell_session_is_named_on_its_flow(tmp_path: Path):
    out = tmp_path / "out"
    replay(out, PCAPS / "webshell.pcap", extra=["--rules", str(SIGNATURES)])
    flow_of = {r["src_port"]: r["flow_id"] for r in flows(out, "src_port, flow_id")}
    found = detections(out)
    assert found, "no detections"
    for port, tool in WEBSHELL_SESSIONS.items():
        mine = [d for d in found if d["flow_id"] == flow_of[port]]
        assert mine, f"nothing on the {tool} session (client port {port})"
        assert {d["family"] for d in mine} == {"webshell"}
        assert all(f"tool {tool}" in d["metadata"] for d in mine), mine
    assert {d["flow_id"] for d in found} <= set(flow_of[p] for p in WEBSHELL_SESSIONS)
    record = {r["src_port"]: r for r in flows(out, "src_port, alerted, detections")}
    assert all(record[p]["alerted"] and record[p]["detections"] >= 1 for p in WEBSHELL_SESSIONS)


def test_benign_look_alikes_raise_nothing(tmp_path: Path):
    out = tmp_path / "out"
    replay(out, PCAPS / "benign.pcap", extra=["--rules", str(SIGNATURES)])
    assert len(flows(out, "flow_id")) == 4
    assert detections(out) == []


@pytest.mark.skipif(not BENIGN_MIX.exists(), reason=f"{BENIGN_MIX} is not here")
def test_the_real_benign_mix_raises_nothing(tmp_path: Path):
    out = tmp_path / "out"
    replay(out, BENIGN_MIX, extra=["--rules", str(SIGNATURES)])
    assert detections(out) == []
