"""Evidence captures: each flow that raises a detection gets a pcapng file
that tshark reads, holding that flow's packets only, the matching packet
among them, within the configured limits; detections and EVE alerts name
it; and a worker's kept packets stay within its memory cap."""

import json
import subprocess
from pathlib import Path

import duckdb

from conftest import PCAPS, replay, require, summary_value, udp_pcap

AFTER = 4
KEPT = 8


def tshark_packets(tshark: str, path: Path) -> list[tuple]:
    out = subprocess.run(
        [tshark, "-r", str(path), "-T", "fields", "-E", "separator=,",
         "-e", "frame.time_epoch", "-e", "ip.src", "-e", "ip.dst",
         "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "udp.srcport", "-e", "udp.dstport"],
        capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        ts, src, dst, tsp, tdp, usp, udp_ = line.split(",")
        rows.append((float(ts), src, dst, int(tsp or usp), int(tdp or udp_)))
    return rows


def test_captures_hold_their_flow_and_detection_name_them(tmp_path: Path):
    tshark = require("tshark")
    out = tmp_path / "out"
    result = replay(out, PCAPS / "webshell.pcap", PCAPS / "c2.pcap", extra=[
        "--set", "evidence.enabled=true", "--set", f"evidence.packets={KEPT}",
        "--set", f"evidence.after_packets={AFTER}", "--set", "eve.enabled=true"])
    rows = duckdb.sql(
        f"select epoch_us(ts) ts, src_ip, dst_ip, src_port, dst_port, proto, evidence "
        f"from read_parquet('{out}/detections/**/*.parquet') where proto in (6, 17)").fetchall()
    assert rows, result.stdout
    files = {}
    for ts, src, dst, sport, dport, proto, evidence in rows:
        assert evidence, "every detection with a flow names its capture"
        path = out / evidence
        assert path.is_file(), evidence
        packets = files.setdefault(path, tshark_packets(tshark, path))
        ends = {(src, sport), (dst, dport)}
        assert all({(p[1], p[3]), (p[2], p[4])} == ends for p in packets), f"{evidence} holds another flow"
        assert any(abs(p[0] * 1e6 - ts) < 2 for p in packets), f"{evidence} lacks the matching packet"
    for path, packets in files.items():
        # At most what is kept before the first detection (which the
        # matching packet ends), then the packets after it.
        assert 0 < len(packets) <= KEPT + AFTER, (path, len(packets))
    assert not list(out.rglob("*.inprogress"))
    captures = int(summary_value(result.stdout, "evidence").split()[0])
    assert captures == len(files)
    eve = [json.loads(l) for l in (out / "eve.json").read_text().splitlines()]
    named = {e["capture_file"] for e in eve if "capture_file" in e}
    assert named == {str(p.relative_to(out)) for p in files}


def test_kept_packets_stay_within_the_worker_cap_when_every_flow_alerts(tmp_path: Path):
    # 8,000 flows of ten 1,000-byte datagrams, interleaved, the last of each
    # alerting: 80 MB kept before any detection, against caps of 1 and 64 MiB.
    flows = 8_000
    pcap = tmp_path / "alerting.pcap"
    udp_pcap(pcap, range(10_000, 10_000 + flows), [b"x" * 1000] * 9 + [b"MARK" + b"x" * 996], interleave=True)
    rules = tmp_path / "mark.rules"
    rules.write_text('alert udp any any -> any 9999 (msg:"mark"; content:"MARK"; sid:9400001; rev:1;)\n')
    def run(name: str, *settings: str) -> tuple[int, str]:
        sets = [a for s in settings for a in ("--set", s)]
        result = replay(tmp_path / name, pcap, extra=["--rules", str(rules), "--set", "detectors.enabled=false", *sets])
        return int(summary_value(result.stdout, "memory").split()[2]), result.stdout
    off, _ = run("off")
    small, stdout = run("small", "evidence.enabled=true", "evidence.worker_memcap_mib=1", "evidence.after_packets=0")
    large, _ = run("large", "evidence.enabled=true", "evidence.worker_memcap_mib=64", "evidence.after_packets=0")
    overwritten = int(summary_value(stdout, "evidence").split("packets, ")[1].split()[0])
    assert overwritten > 60_000, stdout
    # Kept packets live in the arena only: 1 MiB, besides fixed buffers (2
    # MiB of parts on their way to the writer, the writer's open files).
    # Peaks of the process differ by several MiB from run to run, so the
    # bound is far from the 80 MB an unbounded store would hold; the 64 MiB
    # arena shows that the measure sees kept packets.
    assert small - off < 24 * 1024, (off, small, large)
    assert large - small > 32 * 1024, (off, small, large)
    files = list((tmp_path / "small" / "evidence").rglob("*.pcapng"))
    assert len(files) == flows
