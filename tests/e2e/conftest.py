"""Helpers for the end-to-end tests: run the mirador binary, read its Parquet
with DuckDB, and ask tshark (the oracle) about the same capture."""

import os
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[2]
PCAPS = ROOT / "pcaps"
SAMPLES = sorted(p for p in PCAPS.iterdir() if p.suffix in (".pcap", ".pcapng"))


def mirador_bin() -> str:
    path = os.environ.get("MIRADOR_BIN", str(ROOT / "target" / "debug" / "mirador"))
    if not Path(path).exists():
        pytest.fail(f"mirador binary not found at {path}: run scripts/test.sh (it builds it)")
    return path


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: run scripts/setup.sh")
    return path


def replay(out: Path, *inputs, extra=(), check=True) -> subprocess.CompletedProcess:
    cmd = [mirador_bin(), "replay", "--out", str(out), *extra, *map(str, inputs)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def flows(out: Path, columns: str = "*") -> list[dict]:
    files = list((out / "flows").rglob("*.parquet"))
    if not files:
        return []
    con = duckdb.connect()
    rel = con.sql(
        f"select {columns} from read_parquet('{out}/flows/**/*.parquet', hive_partitioning=true)"
    )
    names = rel.columns
    return [dict(zip(names, row)) for row in rel.fetchall()]


def summary_value(stdout: str, label: str) -> str:
    for line in stdout.splitlines():
        if line.strip().startswith(label):
            return line.strip()[len(label):].strip()
    raise AssertionError(f"no '{label}' line in summary:\n{stdout}")


TSHARK_FIELDS = [
    "frame.number", "frame.len", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
    "tcp.stream", "tcp.srcport", "tcp.dstport", "udp.stream", "udp.srcport", "udp.dstport",
    "ip.fragments", "ipv6.fragments",
]


def tshark_conversations(pcap: Path) -> dict:
    """TCP and UDP conversations as tshark sees them: tshark's own stream
    index splits conversations (port reuse included). For tunnelled frames the
    innermost addresses and ports count, as mirador tracks the inner flow.
    Returns {(proto, stream): {"endpoints", "frames", "bytes", "reassembled"}}."""
    tshark = require("tshark")
    cmd = [tshark, "-r", str(pcap), "-T", "fields", "-E", "separator=\t", "-E", "occurrence=l",
           "-Y", "(tcp or udp) and not icmp and not icmpv6 and not _ws.malformed"]
    for f in TSHARK_FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    conv = defaultdict(lambda: {"endpoints": None, "frames": 0, "bytes": 0, "reassembled": False})
    for line in out.splitlines():
        v = dict(zip(TSHARK_FIELDS, line.split("\t")))
        src = v["ip.src"] or v["ipv6.src"]
        dst = v["ip.dst"] or v["ipv6.dst"]
        if v["tcp.stream"]:
            key, sport, dport = ("tcp", int(v["tcp.stream"])), v["tcp.srcport"], v["tcp.dstport"]
        else:
            key, sport, dport = ("udp", int(v["udp.stream"])), v["udp.srcport"], v["udp.dstport"]
        c = conv[key]
        c["endpoints"] = frozenset([(src, int(sport)), (dst, int(dport))])
        c["frames"] += 1
        c["bytes"] += int(v["frame.len"])
        c["reassembled"] |= bool(v["ip.fragments"] or v["ipv6.fragments"])
    return dict(conv)


def mirador_conversations(out: Path) -> dict:
    """TCP and UDP flows from mirador's Parquet, interim records summed per flow_id."""
    rows = flows(out, "flow_id, proto, src_ip, src_port, dst_ip, dst_port, "
                      "pkts_toserver + pkts_toclient as pkts, bytes_toserver + bytes_toclient as bytes")
    conv = defaultdict(lambda: {"endpoints": None, "frames": 0, "bytes": 0})
    for r in rows:
        if r["proto"] not in (6, 17):
            continue
        c = conv[r["flow_id"]]
        c["proto"] = "tcp" if r["proto"] == 6 else "udp"
        c["endpoints"] = frozenset([(r["src_ip"], r["src_port"]), (r["dst_ip"], r["dst_port"])])
        c["frames"] += r["pkts"]
        c["bytes"] += r["bytes"]
    return dict(conv)
