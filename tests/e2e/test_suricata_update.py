"""suricata-update's merged output, made offline from a local source with
disable.conf, enable.conf and modify.conf, loads as it is: `mirador rules
check`, a replay, and a reload of a running sensor."""

import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import duckdb

from conftest import PCAPS, ROOT, dpdk_eal, mirador_bin, replay, udp_pcap, wait_for

EXTRA = (
    '# alert udp any any -> any 9999 (msg:"enable me"; content:"MARK-E"; sid:9300002; rev:1;)\n'
    'alert udp any any -> any 9999 (msg:"marker original"; content:"MARK-M"; sid:9300003; rev:1;)\n'
)


def suricata_update(tmp_path: Path, source: Path, out: Path, disable: str) -> subprocess.CompletedProcess:
    tool = Path(sys.executable).parent / "suricata-update"
    assert tool.exists(), "suricata-update is not installed: run scripts/setup.sh"
    (tmp_path / "disable.conf").write_text(disable)
    (tmp_path / "enable.conf").write_text("9300002\n")
    (tmp_path / "modify.conf").write_text('9300003 "marker original" "marker modified"\n')
    result = subprocess.run(
        [str(tool), "--no-test", "--no-reload", "--suricata-version", "8.0.0",
         "--data-dir", str(tmp_path / "data"), "--url", f"file://{source}",
         "--disable-conf", str(tmp_path / "disable.conf"), "--enable-conf", str(tmp_path / "enable.conf"),
         "--modify-conf", str(tmp_path / "modify.conf"), "-o", str(out)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def enabled(rules: Path) -> int:
    return sum(1 for l in rules.read_text().splitlines() if l.startswith(("alert", "drop", "pass", "reject")))


def test_suricata_update_output_loads_replays_and_reloads(tmp_path: Path):
    bundle = tmp_path / "rules"
    bundle.mkdir()
    text = "".join(p.read_text() for p in sorted((ROOT / "signatures").glob("*.rules")))
    (bundle / "mirador.rules").write_text(text + EXTRA)
    source = tmp_path / "source.tar.gz"
    with tarfile.open(source, "w:gz") as tar:
        tar.add(bundle, arcname="rules")
    out = tmp_path / "out"
    suricata_update(tmp_path, source, out, "9100003\n")
    merged = out / "suricata.rules"
    assert "# alert" in merged.read_text() and "marker modified" in merged.read_text()

    check = subprocess.run([mirador_bin(), "rules", "check", str(merged)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"{enabled(merged)} loaded, 0 skipped (unsupported keyword), 0 malformed" in check.stdout

    marks = tmp_path / "marks.pcap"
    udp_pcap(marks, range(5000, 5003), [b"MARK-E", b"MARK-M"])
    replay(tmp_path / "updated", PCAPS / "webshell.pcap", marks, extra=["--rules", str(merged)])
    replay(tmp_path / "bundled", PCAPS / "webshell.pcap")
    detections = lambda o: duckdb.sql(
        f"select sid, msg from read_parquet('{o}/detections/**/*.parquet')").fetchall()
    updated, bundled = detections(tmp_path / "updated"), detections(tmp_path / "bundled")
    sids = lambda rows: {sid for sid, _ in rows}
    assert 9100003 in sids(bundled) and 9100003 not in sids(updated), "disabled"
    assert sids(bundled) - {9100003} <= sids(updated)
    assert sum(1 for sid, _ in updated if sid == 9300002) == 3, "enabled"
    assert {msg for sid, msg in updated if sid == 9300003} == {"marker modified"}, "modified"

    # A running sensor takes the next update with a reload.
    socket = tmp_path / "ctl.sock"
    err = tmp_path / "stderr"
    eal = dpdk_eal(f"net_pcap0,rx_pcap={PCAPS / 'basic.pcap'},infinite_rx=1", lcores="-l 0-1 -m 256")
    with open(err, "w") as stderr:
        proc = subprocess.Popen(
            [mirador_bin(), "run", "--out", str(tmp_path / "live"), "--eal", eal, "--rules", str(out),
             "--set", f'control.socket="{socket}"'],
            stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            wait_for(err, "taking `mirador ctl` commands", 60)
            suricata_update(tmp_path, source, out, "9100003\n9300003\n")
            answer = subprocess.run([mirador_bin(), "ctl", "--socket", str(socket), "reload"],
                                    capture_output=True, text=True, timeout=120)
            assert answer.returncode == 0, answer.stdout
            assert answer.stdout.startswith(f"ok {enabled(merged)} rules loaded"), answer.stdout
        finally:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=120)
    assert proc.returncode == 0, err.read_text()
