"""Detections as Suricata EVE alert lines: valid against Suricata 8.0.6's EVE
schema (when ../shared has it), and the same alerts, field by field, as the
Parquet detections of the same run."""

import json
import socket
import threading
from pathlib import Path

import communityid
import duckdb
import pytest

from conftest import PCAPS, SHARED, replay, summary_value

SCHEMA = SHARED / "eve-schema" / "schema.json"
FAMILIES = [PCAPS / f"{name}.pcap" for name in ("webshell", "c2", "mining", "mirai", "covert")]
PROTO = {6: "TCP", 17: "UDP", 1: "ICMP", 58: "IPv6-ICMP"}


def eve_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def parquet_detections(out: Path) -> list[dict]:
    rel = duckdb.sql(f"select * from read_parquet('{out}/detections/**/*.parquet')")
    return [dict(zip(rel.columns, row)) for row in rel.fetchall()]


def key(event: dict) -> tuple:
    return (event["flow_id"], event["alert"]["signature_id"], event["timestamp"])


def test_eve_alerts_match_the_parquet_detections(tmp_path: Path):
    out = tmp_path / "out"
    result = replay(out, *FAMILIES, extra=["--sensor", "edge-9", "--set", "eve.enabled=true"])
    events = eve_lines(out / "eve.json")
    rows = parquet_detections(out)
    assert len(events) == len(rows) > 10
    assert summary_value(result.stdout, "eve").split()[0] == str(len(rows))
    by_key = {}
    for row in rows:
        ts = row["ts"]
        stamp = ts.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+0000"
        by_key[(row["flow_id"], row["sid"], stamp)] = row
    for event in events:
        row = by_key[key(event)]
        assert event["event_type"] == "alert"
        assert event["host"] == row["sensor"] == "edge-9"
        assert event["src_ip"] == row["src_ip"] and event["dest_ip"] == row["dst_ip"]
        assert event["proto"] == PROTO[row["proto"]]
        if row["proto"] in (6, 17):
            assert (event["src_port"], event["dest_port"]) == (row["src_port"], row["dst_port"])
        assert event["community_id"] == row["community_id"]
        assert event["direction"] == row["direction"]
        assert event.get("app_proto") == row["app_proto"]
        alert = event["alert"]
        assert (alert["gid"], alert["signature_id"], alert["rev"]) == (row["gid"], row["sid"], row["rev"])
        assert alert["signature"] == row["msg"]
        assert alert["severity"] == row["priority"]
        assert alert.get("category") == row["classtype"]
        assert alert["metadata"]["family"][0] == row["family"]


def test_community_id_agrees_with_the_reference_implementation(tmp_path: Path):
    out = tmp_path / "out"
    replay(out, *FAMILIES, extra=["--set", "eve.enabled=true"])
    cid = communityid.CommunityID()
    checked = {"TCP": 0, "UDP": 0}
    for event in eve_lines(out / "eve.json"):
        if event["proto"] == "TCP":
            flow = communityid.FlowTuple.make_tcp(event["src_ip"], event["dest_ip"],
                                                  event["src_port"], event["dest_port"])
        elif event["proto"] == "UDP":
            flow = communityid.FlowTuple.make_udp(event["src_ip"], event["dest_ip"],
                                                  event["src_port"], event["dest_port"])
        else:
            continue
        assert event["community_id"] == cid.calc(flow)
        checked[event["proto"]] += 1
    assert all(checked.values()), checked


def test_eve_alerts_validate_against_suricatas_schema(tmp_path: Path):
    import jsonschema

    if not SCHEMA.exists():
        pytest.skip(f"SKIPPED: {SCHEMA} is not here; EVE lines were not checked against it")

    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    out = tmp_path / "out"
    replay(out, *FAMILIES, PCAPS / "tunnels.pcapng", PCAPS / "basic.pcap",
           extra=["--set", "eve.enabled=true"])
    events = eve_lines(out / "eve.json")
    assert events
    for event in events:
        errors = sorted(validator.iter_errors(event), key=str)
        assert not errors, f"{event}: {errors[0].message}"


def test_eve_alerts_reach_a_unix_socket(tmp_path: Path):
    path = tmp_path / "eve.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    received = []

    def read():
        conn, _ = server.accept()
        with conn:
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
        received.append(data)

    reader = threading.Thread(target=read)
    reader.start()
    out = tmp_path / "out"
    replay(out, *FAMILIES, extra=["--set", "eve.enabled=true", "--set", 'eve.target="unix_stream"',
                                  "--set", f'eve.path="{path}"'])
    reader.join(timeout=30)
    server.close()
    lines = received[0].decode().splitlines()
    assert len(lines) == len(parquet_detections(out)) > 10
    assert all(json.loads(line)["event_type"] == "alert" for line in lines)
