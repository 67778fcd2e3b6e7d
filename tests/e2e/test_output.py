"""The Parquet output read back by independent readers (DuckDB, pyarrow)."""

import stat
import subprocess
from pathlib import Path

import communityid
import pyarrow.parquet as pq

from conftest import PCAPS, flows, replay, require, summary_value
from test_bad_input import write_big_pcap


def test_duckdb_totals_equal_the_replay_summary(tmp_path: Path):
    result = replay(tmp_path, PCAPS)
    rows = flows(tmp_path, "flow_id, pkts_toserver + pkts_toclient as pkts, "
                           "bytes_toserver + bytes_toclient as bytes")
    tracked = summary_value(result.stdout, "tracked").split()
    created = int(summary_value(result.stdout, "flows").split()[0])
    output_rows = int(summary_value(result.stdout, "output").split()[0])
    assert len(rows) == output_rows
    assert len({r["flow_id"] for r in rows}) == created
    assert sum(r["pkts"] for r in rows) == int(tracked[0])
    assert sum(r["bytes"] for r in rows) == int(tracked[2])


def test_files_are_hive_partitioned_zstd_with_schema_version(tmp_path: Path):
    """The samples' files are small, and small files are written
    uncompressed; a file of many rows is ZSTD."""
    big = tmp_path / "big.pcap"
    write_big_pcap(big, 600)
    replay(tmp_path / "out", PCAPS, big, extra=["--sensor", "edge-7"])
    files = sorted((tmp_path / "out" / "flows").rglob("*.parquet"))
    assert files
    compression = {}
    for f in files:
        date, hour = f.parent.parent.name, f.parent.name
        assert date.startswith("date=") and hour.startswith("hour=")
        assert f.name.startswith("edge-7-")
        meta = pq.ParquetFile(f).metadata
        compression[meta.num_rows] = meta.row_group(0).column(0).compression
        assert compression[meta.num_rows] in ("ZSTD", "UNCOMPRESSED")
        assert meta.metadata[b"mirador.schema_version"] == b"2"
        table = pq.read_table(f)
        assert set(table.column("sensor").to_pylist()) == {"edge-7"}
        for ts in table.column("ts_end").to_pylist():
            assert ts.strftime("date=%Y-%m-%d") == date
            assert ts.strftime("hour=%H") == hour
    assert compression[max(compression)] == "ZSTD", compression
    assert compression[min(compression)] == "UNCOMPRESSED", compression
    assert not list(tmp_path.rglob(".*"))


def test_community_id_matches_the_reference_implementation(tmp_path: Path):
    replay(tmp_path, PCAPS)
    cid = communityid.CommunityID()
    rows = flows(tmp_path, "proto, src_ip, dst_ip, src_port, dst_port, community_id")
    assert rows
    for r in rows:
        make = {
            6: communityid.FlowTuple.make_tcp,
            17: communityid.FlowTuple.make_udp,
            1: communityid.FlowTuple.make_icmp,
            58: communityid.FlowTuple.make_icmp6,
        }[r["proto"]]
        expected = cid.calc(make(r["src_ip"], r["dst_ip"], r["src_port"], r["dst_port"]))
        assert r["community_id"] == expected, r


def test_capture_formats_give_identical_flows(tmp_path: Path):
    """basic.pcap rewritten by editcap as pcapng and as nanosecond pcap."""
    editcap = require("editcap")
    variants = {"pcap": PCAPS / "basic.pcap"}
    for fmt, name in (("pcapng", "basic.pcapng"), ("nsecpcap", "basic-ns.pcap")):
        path = tmp_path / name
        subprocess.run([editcap, "-F", fmt, str(PCAPS / "basic.pcap"), str(path)], check=True)
        variants[fmt] = path
    columns = ("community_id, ts_start, ts_end, src_ip, src_port, dst_ip, dst_port, vlan, "
               "pkts_toserver, pkts_toclient, bytes_toserver, bytes_toclient, history, state, end_reason")
    results = {}
    for fmt, path in variants.items():
        out = tmp_path / f"out-{fmt}"
        replay(out, path)
        results[fmt] = sorted(map(str, flows(out, columns)))
    assert results["pcap"] and results["pcap"] == results["pcapng"] == results["nsecpcap"]


def test_flow_record_fields_of_known_sessions(tmp_path: Path):
    replay(tmp_path, PCAPS / "basic.pcap", PCAPS / "tunnels.pcapng")
    rows = {(r["src_ip"], r["src_port"], r["end_reason"]): r for r in flows(tmp_path)}
    web = rows[("10.0.0.10", 40000, "fin")]
    assert (web["history"], web["state"], web["dst_port"]) == ("ShADadFf", "SF", 80)
    assert web["tcp_flags_toserver"] == 0x1B and web["tcp_flags_toclient"] == 0x1B
    rejected = rows[("10.0.0.10", 40001, "rst")]
    assert (rejected["history"], rejected["state"]) == ("Sr", "REJ")
    interim = rows[("10.0.0.10", 40004, "active")]
    assert interim["state"] == "S1"
    qinq = rows[("192.168.20.5", 40007, "fin")]
    assert list(qinq["vlan"]) == [10, 20]
    vxlan = rows[("10.1.0.5", 41000, "fin")]
    assert vxlan["tunnel"] == {"type": "vxlan", "src_ip": "172.31.0.1", "dst_ip": "172.31.0.2", "id": 42}
    erspan = rows[("10.4.0.5", 41003, "fin")]
    assert erspan["tunnel"]["type"] == "erspan3" and erspan["tunnel"]["id"] == 6
    assert rows[("10.0.0.10", 53000, "idle")]["tunnel"] is None


def test_every_file_written_is_readable_by_owner_and_group_only(tmp_path: Path):
    out = tmp_path / "out"
    replay(out, PCAPS / "webshell.pcap", PCAPS / "basic.pcap",
           extra=["--set", "eve.enabled=true", "--set", "evidence.enabled=true"])
    files = [p for p in out.rglob("*") if p.is_file()]
    kinds = {p.suffix for p in files}
    assert {".parquet", ".json", ".pcapng"} <= kinds, kinds
    modes = {oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert modes == {"0o640"}, modes
