"""The real threat captures in ../shared/pcaps/threats/: public captures of
the tools, taken by other people with their own keys, passwords and
profiles, that the project's detectors were not written from one constant
of. Each file of a family folder must raise a detection of that family on
a flow that carries the threat, as tshark (the oracle) sees it; the
benign look-alikes and clear-text logins must raise no threat family.
Replayed with the shipped signatures and detectors, as a new user would.

When ../shared is not here these tests are skipped, and say so."""

import subprocess
from pathlib import Path

import duckdb
import pytest

from conftest import ROOT, SHARED, replay, require

THREATS = SHARED / "pcaps" / "threats"
SIGNATURES = ROOT / "signatures"
THREAT_FAMILIES = {"webshell", "c2", "mining", "mirai", "dns-tunnel", "icmp-tunnel"}

# What carries each family's threat, in tshark's words: the flows of these
# packets are where its detections belong. Raw TCP that tshark cannot name
# is `data`.
CARRIERS = {
    "webshell": 'http.request.method == "POST" || http.response',
    "c2": "http || tls || data",
    "dns-tunnel": "dns",
    "mining": 'tcp contains "\\"method\\"" || tcp contains "\\"result\\""',
}


def captures(*families: str) -> list[Path]:
    if not THREATS.exists():
        return []
    return sorted(p for f in families for p in (THREATS / f).iterdir() if p.suffix in (".pcap", ".pcapng"))


def skip_without_threats():
    if not THREATS.exists():
        pytest.skip(f"SKIPPED: {THREATS} is not here; the real threat captures were not checked")


def detections(out: Path) -> list[dict]:
    if not list((out / "detections").rglob("*.parquet")):
        return []
    rel = duckdb.sql(f"select * from read_parquet('{out}/detections/**/*.parquet')")
    return [dict(zip(rel.columns, row)) for row in rel.fetchall()]


def carrier_flows(pcap: Path, display_filter: str) -> set[frozenset]:
    """The endpoint pairs of the flows tshark shows packets of `display_filter` on."""
    fields = ["ip.src", "ipv6.src", "ip.dst", "ipv6.dst", "tcp.srcport", "udp.srcport", "tcp.dstport", "udp.dstport"]
    cmd = [require("tshark"), "-r", str(pcap), "-Y", display_filter, "-T", "fields"]
    for field in fields:
        cmd += ["-e", field]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True).stdout
    pairs = set()
    for line in out.splitlines():
        v4s, v6s, v4d, v6d, ts, us, td, ud = (line.split("\t") + [""] * 8)[:8]
        src, dst = (v4s or v6s).split(",")[0], (v4d or v6d).split(",")[0]
        sport, dport = (ts or us).split(",")[0], (td or ud).split(",")[0]
        if src and dst and sport and dport:
            pairs.add(frozenset({(src, int(sport)), (dst, int(dport))}))
    return pairs


@pytest.fixture(scope="module")
def threat_dir():
    skip_without_threats()
    return THREATS


@pytest.mark.parametrize("pcap", captures("webshell", "c2", "dns-tunnel", "mining") or [None],
                         ids=lambda p: p.relative_to(THREATS).as_posix() if p else "missing")
def test_each_threat_capture_is_named_on_the_flow_that_carries_it(tmp_path: Path, threat_dir, pcap):
    family = pcap.parent.name
    out = tmp_path / "out"
    replay(out, pcap, extra=["--rules", str(SIGNATURES)])
    found = [d for d in detections(out) if d["family"] == family]
    assert found, f"no {family} detection in {pcap.name}"
    carriers = carrier_flows(pcap, CARRIERS[family])
    on_carriers = [d for d in found
                   if frozenset({(d["src_ip"], d["src_port"]), (d["dst_ip"], d["dst_port"])}) in carriers]
    assert on_carriers, f"{family} detections on no flow tshark shows carrying it: {found}"


@pytest.mark.parametrize("pcap", captures("benign", "credentials") or [None],
                         ids=lambda p: p.relative_to(THREATS).as_posix() if p else "missing")
def test_benign_look_alikes_and_logins_raise_no_threat(tmp_path: Path, threat_dir, pcap):
    out = tmp_path / "out"
    replay(out, pcap, extra=["--rules", str(SIGNATURES)])
    threats = [d for d in detections(out) if d["family"] in THREAT_FAMILIES]
    assert threats == [], threats


def tls_pairs(pcap: Path) -> dict[frozenset, tuple[str, str]]:
    """The JA3 and JA3S tshark computes for each TLS connection, by endpoint pair."""
    cmd = [require("tshark"), "-r", str(pcap), "-Y", "tls.handshake.type == 1 || tls.handshake.type == 2",
           "-T", "fields", "-e", "ip.src", "-e", "tcp.srcport", "-e", "ip.dst", "-e", "tcp.dstport",
           "-e", "tls.handshake.ja3", "-e", "tls.handshake.ja3s"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True).stdout
    hashes: dict[frozenset, list[str]] = {}
    for line in out.splitlines():
        src, sport, dst, dport, ja3, ja3s = (line.split("\t") + [""] * 6)[:6]
        pair = hashes.setdefault(frozenset({(src, int(sport)), (dst, int(dport))}), ["", ""])
        pair[0] = ja3 or pair[0]
        pair[1] = ja3s or pair[1]
    return {flow: (ja3, ja3s) for flow, (ja3, ja3s) in hashes.items() if ja3 and ja3s}


@pytest.mark.parametrize("pcap", [p for p in captures("c2") if "https" in p.name] or [None],
                         ids=lambda p: p.name if p else "missing")
def test_cobalt_strike_tls_pairs_are_the_ones_tshark_computes(tmp_path: Path, threat_dir, pcap):
    out = tmp_path / "out"
    replay(out, pcap)
    found = [d for d in detections(out) if d["sid"] == 9200006]
    assert found, f"no Cobalt Strike TLS pair in {pcap.name}"
    pairs = tls_pairs(pcap)
    for d in found:
        flow = frozenset({(d["src_ip"], d["src_port"]), (d["dst_ip"], d["dst_port"])})
        ja3, ja3s = pairs[flow]
        assert f"ja3 {ja3}, ja3s {ja3s}," in d["metadata"], (d["metadata"], ja3, ja3s)
