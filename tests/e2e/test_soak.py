"""A one-minute soak (`scripts/soak.sh`): a new client in every flow, at a
thousand flows a second, with timeouts and detector caps small enough that
every structure reaches its steady size within the warm-up. After it, the
resident memory and the open flows must stay flat; the sensor's own
summary must account for every flow the generator sent."""

import csv
import os
import subprocess

from conftest import ROOT, mirador_bin, require, summary_value

SHORT_STATE = [
    *(f"flow.timeouts.{k}=5" for k in ("tcp_new", "tcp_established", "tcp_closed",
                                         "udp_new", "udp_established", "icmp_new",
                                         "icmp_established")),
    "defrag.timeout_secs=5",
    "detectors.webshell.max_sessions=2048",
    "detectors.cobalt.max_beacons=2048",
    "detectors.beacon.max_pairs=2048",
    "detectors.host_report.max_reports=2048",
    "detectors.mirai.max_hosts=2048",
    "detectors.dns_tunnel.max_groups=2048",
]
FLOWS = 60_000
WARMUP = 25


def pcapgen_bin() -> str:
    path = os.path.join(os.path.dirname(mirador_bin()), "pcapgen")
    assert os.path.exists(path), f"pcapgen not built at {path}: run scripts/test.sh"
    return path


def test_one_minute_soak_keeps_memory_and_state_flat(tmp_path):
    require("curl")
    out = tmp_path / "soak"
    options = [arg for setting in SHORT_STATE for arg in ("--set", setting)]
    env = dict(os.environ, MIRADOR_BIN=mirador_bin(), PCAPGEN_BIN=pcapgen_bin(),
               SOAK_INTERVAL="5", SOAK_WARMUP_SECS=str(WARMUP))
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "soak.sh"), "1", str(FLOWS), str(out), "--", *options],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    print(result.stdout)
    assert (out / "soak.png").stat().st_size > 10_000, "the plot was drawn"

    rows = [{k: int(v) for k, v in r.items()} for r in csv.DictReader(open(out / "soak.csv"))]
    assert len(rows) >= 10, rows
    steady = [r for r in rows if r["seconds"] > WARMUP]
    assert len(steady) >= 5, rows
    rss = [r["rss_kib"] for r in steady]
    assert max(rss) <= 1.10 * rss[0], f"resident memory grew after warm-up: {rss}"
    flows = [r["open_flows"] for r in steady]
    assert max(flows) <= 1.25 * min(flows), f"open flows did not settle: {flows}"
    for name, cap in (("detector_entries", 6 * 2048), ("fragments", 10_000)):
        assert max(r[name] for r in steady) <= cap, (name, [r[name] for r in steady])
    assert rows[-1]["packets"] > rows[0]["packets"], "traffic kept coming"

    summary = (out / "summary.txt").read_text()
    created = int(summary_value(summary, "flows").split()[0])
    # Every flow but the datagrams that lost their last fragment (one in
    # eight of the fragmented ones, one flow in eight) makes a flow.
    assert FLOWS * 0.97 <= created <= FLOWS, summary
    assert "0 records dropped" in summary, summary
