"""`mirador run`: the DPDK capture path, driven without a NIC through DPDK's
own virtual devices (net_pcap reading files, net_af_packet on a veth pair)."""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

from conftest import (PCAPS, dpdk_eal, flows, mirador_bin, mirador_conversations, replay, require, run_dpdk,
                      summary_value, tshark_conversations, wait_for)

# Fields that depend on which run wrote a record, not on the traffic.
RUN_FIELDS = ("flow_id", "worker")


def records(out: Path) -> list[tuple]:
    con = duckdb.connect()
    excluded = ", ".join(RUN_FIELDS)
    return con.sql(
        f"select * exclude ({excluded}) from read_parquet('{out}/flows/**/*.parquet') order by all"
    ).fetchall()


def ethernet_only(tmp_path: Path) -> Path:
    """The Ethernet interface of the tunnel sample as a plain pcap (net_pcap
    reads Ethernet pcap only), written by tshark and editcap."""
    filtered, path = tmp_path / "tunnels-ethernet.pcapng", tmp_path / "tunnels-ethernet.pcap"
    subprocess.run(
        [require("tshark"), "-r", str(PCAPS / "tunnels.pcapng"), "-Y", "frame.interface_id == 0",
         "-w", str(filtered)],
        check=True, capture_output=True,
    )
    subprocess.run([require("editcap"), "-F", "pcap", "-T", "ether", str(filtered), str(path)],
                   check=True, capture_output=True)
    return path


@pytest.mark.parametrize("sample", ["basic", "stream", "tunnels-ethernet"])
def test_net_pcap_run_writes_the_same_flows_as_replay(tmp_path: Path, sample: str):
    pcap = ethernet_only(tmp_path) if sample == "tunnels-ethernet" else PCAPS / f"{sample}.pcap"
    live, offline = tmp_path / "run", tmp_path / "replay"
    result = run_dpdk(live, dpdk_eal(f"net_pcap0,rx_pcap={pcap}"))
    replay(offline, pcap)
    expected = records(offline)
    assert expected, "the sample has flows"
    assert records(live) == expected
    packets = subprocess.run([require("capinfos"), "-c", "-M", str(pcap)],
                             capture_output=True, text=True, check=True).stdout
    count = int(packets.strip().splitlines()[-1].split()[-1])
    assert int(summary_value(result.stdout, "packets").split()[0]) == count
    assert "rx_nombuf 0" in result.stdout


def test_two_files_on_two_queues_of_one_port_are_both_read(tmp_path: Path):
    pcap = ethernet_only(tmp_path)
    result = run_dpdk(tmp_path / "out",
                      dpdk_eal(f"net_pcap0,rx_pcap={PCAPS / 'basic.pcap'},rx_pcap={pcap}"))
    assert "queue 1" in result.stdout
    ids = {r["flow_id"] for r in flows(tmp_path / "out", "flow_id")}
    assert len(ids) == int(summary_value(result.stdout, "flows").split()[0])
    assert int(summary_value(result.stdout, "packets").split()[0]) == 105 + 36


def test_rx_only_counts_every_frame_and_writes_nothing(tmp_path: Path):
    result = run_dpdk(tmp_path / "out", dpdk_eal(f"net_pcap0,rx_pcap={PCAPS / 'basic.pcap'}"),
                      extra=["--rx-only"])
    assert "rx-only" in result.stdout
    assert int(summary_value(result.stdout, "packets").split()[0]) == 105
    assert not list((tmp_path / "out").rglob("*.parquet"))


def test_bad_eal_arguments_are_a_clear_error(tmp_path: Path):
    result = run_dpdk(tmp_path / "out", "-l 0-1 --no-huge --no-pci --no-shconf --bogus-option",
                      check=False)
    assert result.returncode == 1
    assert "EAL initialisation failed" in result.stderr


def test_a_capture_that_is_not_ethernet_is_refused_with_its_link_type(tmp_path: Path):
    """A sample with its Ethernet headers cut off by editcap (Raw IP, as
    capinfos reports): DPDK would hand its frames over as Ethernet, so the
    run refuses it, names the link type and points to replay, which reads
    the same conversations from it as tshark does from the original."""
    raw = tmp_path / "stream-rawip.pcap"
    subprocess.run([require("editcap"), "-C", "14", "-T", "rawip", "-F", "pcap",
                    str(PCAPS / "stream.pcap"), str(raw)], check=True, capture_output=True)
    info = subprocess.run([require("capinfos"), "-E", str(raw)], check=True, capture_output=True,
                          text=True).stdout
    assert "Raw IP" in info, info
    result = run_dpdk(tmp_path / "out", dpdk_eal(f"net_pcap0,rx_pcap={raw}"), check=False)
    assert result.returncode == 1
    assert "RawIp frames (link type 101)" in result.stderr, result.stderr
    assert f"use `mirador replay \"{raw}\"`" in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()
    replay(tmp_path / "replayed", raw)
    ours = {c["endpoints"] for c in mirador_conversations(tmp_path / "replayed").values()}
    assert ours == {c["endpoints"] for c in tshark_conversations(PCAPS / "stream.pcap").values()}


def test_a_single_lcore_leaves_no_worker_and_says_so(tmp_path: Path):
    result = run_dpdk(tmp_path / "out",
                      dpdk_eal(f"net_pcap0,rx_pcap={PCAPS / 'basic.pcap'}", lcores="-l 0"),
                      check=False)
    assert result.returncode == 1
    assert "no worker lcore" in result.stderr


def test_sigint_stops_a_looping_source_and_finalizes_every_file(tmp_path: Path):
    err = tmp_path / "stderr"
    eal = dpdk_eal(f"net_pcap0,rx_pcap={PCAPS / 'basic.pcap'},infinite_rx=1", lcores="-l 0-1 -m 256")
    with open(err, "w") as stderr:
        proc = subprocess.Popen([mirador_bin(), "run", "--out", str(tmp_path / "out"), "--eal", eal],
                                stdout=subprocess.PIPE, stderr=stderr, text=True)
        wait_for(err, "port started", 60)
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.read_text()
    assert "stopped by signal" in stdout
    assert int(summary_value(stdout, "packets").split()[0]) > 105
    assert not list((tmp_path / "out").rglob(".*inprogress"))
    rows = flows(tmp_path / "out", "end_reason")
    assert rows and int(summary_value(stdout, "output").split()[0]) == len(rows)


def flow_key(row: dict) -> tuple:
    a = (row["src_ip"], row["src_port"])
    b = (row["dst_ip"], row["dst_port"])
    return (row["proto"], tuple(row["vlan"] or ()), *sorted([a, b]))


def test_af_packet_mirror_port_with_two_queues_matches_replay(tmp_path: Path, veth_namespace):
    tcpreplay = require("tcpreplay")
    pcap = PCAPS / "basic.pcap"
    err = tmp_path / "stderr"
    # Two workers (lcores 1 and 2, sharing the second CPU), one per qpair.
    eal = dpdk_eal("net_af_packet0,iface=veth-mon,qpairs=2", lcores="--lcores=0@0,1@1,2@1")
    cmd = ["ip", "netns", "exec", veth_namespace, mirador_bin(), "run",
           "--out", str(tmp_path / "live"), "--eal", eal]
    with open(err, "w") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            wait_for(err, "port started", 60)
            subprocess.run(["ip", "netns", "exec", veth_namespace, tcpreplay, "-q",
                            "-i", "veth-in", "--pps=500", str(pcap)],
                           check=True, capture_output=True)
            time.sleep(1)
        finally:
            proc.send_signal(signal.SIGINT)
            stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.read_text()
    assert "queue 1" in stdout

    replay(tmp_path / "replay", pcap)
    # tcpreplay sends at its own pace, so timeouts split flows differently;
    # per connection, packets and bytes must add up the same.
    fields = "src_ip, dst_ip, src_port, dst_port, proto, vlan, worker, " \
             "pkts_toserver + pkts_toclient as pkts, bytes_toserver + bytes_toclient as bytes"
    def totals(rows):
        sums = defaultdict(lambda: [0, 0])
        for r in rows:
            sums[flow_key(r)][0] += r["pkts"]
            sums[flow_key(r)][1] += r["bytes"]
        return dict(sums)
    live_rows = flows(tmp_path / "live", fields)
    assert totals(live_rows) == totals(flows(tmp_path / "replay", fields))

    workers_of = defaultdict(set)
    for r in live_rows:
        workers_of[flow_key(r)].add(r["worker"])
    split = {k: w for k, w in workers_of.items() if len(w) > 1}
    assert not split, f"flows seen by both workers: {split}"
    assert {w for ws in workers_of.values() for w in ws} == {0, 1}, "both queues carried flows"


def test_run_switches_to_an_unprivileged_user_once_its_ports_are_up(tmp_path: Path):
    """`[run] user`: the run reads its capture through DPDK as root, then
    writes as `nobody` (every output file is theirs) the same flows as a
    replay; a user that does not exist stops the run before it captures."""
    assert os.geteuid() == 0, "the DPDK tests run as root"
    nobody = pwd.getpwnam("nobody")
    # A folder `nobody` can reach (pytest's own are private to root).
    base = Path(tempfile.mkdtemp(prefix="mirador-user-"))
    try:
        base.chmod(0o755)
        out = base / "out"
        out.mkdir()
        os.chown(out, nobody.pw_uid, nobody.pw_gid)
        pcap = PCAPS / "basic.pcap"
        result = run_dpdk(out, dpdk_eal(f"net_pcap0,rx_pcap={pcap}"),
                          extra=["--set", "run.user=nobody", "--set", f"rules.cache_dir={out / 'cache'}"])
        assert "running unprivileged from here on" in result.stderr, result.stderr
        written = [p for p in out.rglob("*") if p.is_file()]
        assert any(p.suffix == ".parquet" for p in written), written
        owners = {(p.stat().st_uid, p.stat().st_gid) for p in written}
        assert owners == {(nobody.pw_uid, nobody.pw_gid)}, owners
        replay(tmp_path / "replay", pcap)
        assert records(out) == records(tmp_path / "replay")

        refused = run_dpdk(base / "refused", dpdk_eal(f"net_pcap0,rx_pcap={pcap}"),
                           extra=["--set", "run.user=no-such-user-here"], check=False)
        assert refused.returncode != 0
        assert 'run.user "no-such-user-here": no such user' in refused.stderr, refused.stderr
        assert not (base / "refused" / "flows").exists()
    finally:
        shutil.rmtree(base)
