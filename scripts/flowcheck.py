#!/usr/bin/env python3
"""Compares mirador's flow records with tshark's TCP and UDP conversations.

    scripts/flowcheck.py PCAP [OUT]

Replays PCAP with target/release/mirador (or $MIRADOR_BIN) into OUT (a
temporary folder by default), asks tshark for every TCP and UDP frame, and
prints how many conversations agree on packets and bytes, and the ones that
do not. The end-to-end tests use the two readers below on the samples.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import duckdb

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
    tshark = shutil.which("tshark")
    if tshark is None:
        raise SystemExit("tshark is not installed: run scripts/setup.sh")
    # Per-packet dissection: with TCP reassembly on, tshark marks a benign
    # overlapping re-send (same bytes, other boundaries) as malformed.
    # tshark's SNMP dissector gives an agent's response a UDP stream index
    # of its own, apart from its request's; the addresses and ports say one
    # conversation, so SNMP is not dissected here.
    cmd = [tshark, "-r", str(pcap), "-o", "tcp.desegment_tcp_streams:FALSE", "--disable-protocol", "snmp",
           "-T", "fields", "-E", "separator=\t", "-E", "occurrence=l",
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
    rows = duckdb.connect().sql(
        f"select flow_id, proto, src_ip, src_port, dst_ip, dst_port, "
        f"pkts_toserver + pkts_toclient as pkts, bytes_toserver + bytes_toclient as bytes "
        f"from read_parquet('{out}/flows/**/*.parquet', hive_partitioning=true)"
    ).fetchall()
    rows = [dict(zip(["flow_id", "proto", "src_ip", "src_port", "dst_ip", "dst_port", "pkts", "bytes"], r))
            for r in rows]
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


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    pcap = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="flowcheck-"))
    binary = os.environ.get("MIRADOR_BIN", str(Path(__file__).resolve().parents[1] / "target/release/mirador"))
    subprocess.run([binary, "replay", "--out", str(out), str(pcap)], check=True, stdout=subprocess.DEVNULL)
    theirs = tshark_conversations(pcap)
    ours = mirador_conversations(out)
    key = lambda proto, c: (proto, c["endpoints"])
    t = Counter((key(k[0], c), c["frames"], c["bytes"]) for k, c in theirs.items())
    o = Counter((key(c["proto"], c), c["frames"], c["bytes"]) for c in ours.values())
    agree = sum((t & o).values())
    print(f"tshark: {sum(t.values())} TCP/UDP conversations, {sum(c['frames'] for c in theirs.values())} frames")
    print(f"mirador: {sum(o.values())} TCP/UDP flows, {sum(c['frames'] for c in ours.values())} packets")
    print(f"identical (endpoints, packets, bytes): {agree}")
    only_t = t - o
    only_o = o - t
    print(f"only in tshark: {sum(only_t.values())}, only in mirador: {sum(only_o.values())}")
    for label, diff in (("tshark", only_t), ("mirador", only_o)):
        for (k, frames, nbytes), n in sorted(diff.items(), key=lambda x: str(x))[:int(os.environ.get("FLOWCHECK_SHOW", "20"))]:
            proto, endpoints = k
            print(f"  {label:8} {proto} {sorted(endpoints)} frames={frames} bytes={nbytes} x{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
