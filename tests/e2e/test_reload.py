"""Rule reload without a restart: `mirador run` on net_af_packet over a veth
pair swaps its rules (`mirador ctl reload`, SIGHUP) while tcpreplay sends.
Nothing is lost, a rule added alerts on what is sent after the reload, a
rule removed stops, and a broken rule file keeps the running set."""

import signal
import subprocess
import threading
import time
from pathlib import Path

import duckdb

from conftest import dpdk_eal, mirador_bin, require, summary_value, udp_pcap, wait_for

RULE_A = 'alert udp any any -> any 9999 (msg:"marker A"; content:"MARK-A"; sid:9100001; rev:1;)\n'
RULE_B = 'alert udp any any -> any 9999 (msg:"marker B"; content:"MARK-B"; sid:9100002; rev:1;)\n'


def alerts(out: Path) -> list[tuple[int, int]]:
    return duckdb.sql(
        f"select sid, src_port from read_parquet('{out}/detections/**/*.parquet') where sid > 9100000"
    ).fetchall()


def test_reload_swaps_rules_under_traffic_and_loses_nothing(tmp_path: Path, veth_namespace):
    tcpreplay = require("tcpreplay")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "local.rules").write_text(RULE_A)
    markers = [b"MARK-A", b"MARK-B"]
    before, after, broken = tmp_path / "before.pcap", tmp_path / "after.pcap", tmp_path / "broken.pcap"
    background = tmp_path / "background.pcap"
    sent = udp_pcap(before, range(1000, 1010), markers)
    sent += udp_pcap(after, range(2000, 2010), markers)
    sent += udp_pcap(broken, range(3000, 3010), markers)
    sent_background = udp_pcap(background, range(4000, 4400), [b"plain traffic " * 8])
    sent += sent_background
    socket = tmp_path / "ctl.sock"
    err = tmp_path / "stderr"
    out = tmp_path / "out"
    eal = dpdk_eal("net_af_packet0,iface=veth-mon", lcores="--lcores=0@0,1@1")
    netns = ["ip", "netns", "exec", veth_namespace]
    send = lambda pcap, pps: subprocess.run(
        [*netns, tcpreplay, "-q", "-i", "veth-in", f"--pps={pps}", str(pcap)], check=True, capture_output=True)
    ctl = lambda *args: subprocess.run([mirador_bin(), "ctl", "--socket", str(socket), *args],
                                       capture_output=True, text=True, timeout=120)
    cmd = [*netns, mirador_bin(), "run", "--out", str(out), "--eal", eal, "--rules", str(rules),
           "--set", f'control.socket="{socket}"', "--set", "detectors.enabled=false"]
    with open(err, "w") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            wait_for(err, "port started", 60)
            send(before, 200)
            time.sleep(0.5)
            # Reload while other traffic flows: A goes, B comes.
            flowing = threading.Thread(target=send, args=(background, 400))
            flowing.start()
            time.sleep(0.3)
            (rules / "local.rules").write_text(RULE_B)
            reloaded = ctl("reload")
            flowing.join()
            assert reloaded.returncode == 0 and reloaded.stdout.startswith("ok 1 rules loaded"), reloaded
            send(after, 200)
            # A broken file: the reload is refused and B keeps running.
            (rules / "broken.rules").write_text('alert udp any any -> any any (msg:"unclosed"; sid:9100003;\n')
            refused = ctl("reload")
            assert refused.returncode == 1 and refused.stdout.startswith("error"), refused
            assert "broken.rules" in refused.stdout
            send(broken, 200)
            # SIGHUP reloads too (and fails the same way, leaving B).
            proc.send_signal(signal.SIGHUP)
            wait_for(err, "rule reload failed", 30)
            stats = ctl("stats")
            assert stats.returncode == 0
            assert "mirador_rules_reloads_total 1\n" in stats.stdout
            version = ctl("version")
            assert version.stdout.startswith("ok mirador ")
            time.sleep(1)
        finally:
            proc.send_signal(signal.SIGINT)
            stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.read_text()
    assert not socket.exists()

    received = int(summary_value(stdout, "port 0").split("rx ")[1].split()[0])
    assert received == sent, (received, sent, stdout)
    found = alerts(out)
    phase = lambda port: port // 1000
    by = lambda sid, ph: sum(1 for s, p in found if s == sid and phase(p) == ph)
    assert by(9100001, 1) == 10 and by(9100002, 1) == 0, found
    assert by(9100001, 2) == 0 and by(9100002, 2) == 10, found
    assert by(9100001, 3) == 0 and by(9100002, 3) == 10, found
