"""Captures streamed on standard input (`mirador replay -`), as from
`tcpdump -w -` or a generator: the same flows as the file."""

import signal
import subprocess
import time
from pathlib import Path

import duckdb

from conftest import (PCAPS, mirador_bin, mirador_conversations, replay, require, summary_value,
                      tshark_conversations)


def records(out: Path) -> list[tuple]:
    return duckdb.sql(
        f"select * exclude (flow_id) from read_parquet('{out}/flows/**/*.parquet') order by all"
    ).fetchall()


def test_a_capture_piped_by_tshark_gives_the_flows_of_the_file(tmp_path: Path):
    pcap = PCAPS / "stream.pcap"
    producer = subprocess.Popen([require("tshark"), "-r", str(pcap), "-F", "pcapng", "-w", "-"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = tmp_path / "piped"
    result = subprocess.run([mirador_bin(), "replay", "--out", str(out), "-"],
                            stdin=producer.stdout, capture_output=True, text=True, timeout=300)
    producer.stdout.close()
    assert producer.wait() == 0
    assert result.returncode == 0, result.stderr
    frames = subprocess.run([require("capinfos"), "-c", "-M", "-T", "-r", str(pcap)],
                            capture_output=True, text=True, check=True).stdout.split()[-1]
    assert summary_value(result.stdout, "packets").split()[0] == frames
    replay(tmp_path / "file", pcap)
    assert records(out) == records(tmp_path / "file") != []
    theirs = {c["endpoints"] for c in tshark_conversations(pcap).values()}
    assert {c["endpoints"] for c in mirador_conversations(out).values()} == theirs


def test_a_stream_cut_short_keeps_what_arrived_and_says_where(tmp_path: Path):
    data = (PCAPS / "basic.pcap").read_bytes()
    out = tmp_path / "out"
    result = subprocess.run([mirador_bin(), "replay", "--out", str(out), "-"],
                            input=data[: len(data) // 2], capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert b"stdin: at byte offset" in result.stdout
    assert records(out)


def test_sigint_stops_a_replay_waiting_on_standard_input_and_writes_its_flows(tmp_path: Path):
    """The pipe stays open and idle: the signal alone must end the run, with
    every open flow written and every file finished."""
    data = (PCAPS / "stream.pcap").read_bytes()
    out = tmp_path / "out"
    proc = subprocess.Popen([mirador_bin(), "replay", "--out", str(out), "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(data)
    proc.stdin.flush()
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = (text.decode() for text in proc.communicate(timeout=30))
    assert proc.returncode == 0, stderr
    assert "stopped by signal" in stdout
    assert not list(out.rglob(".*"))
    theirs = {c["endpoints"] for c in tshark_conversations(PCAPS / "stream.pcap").values()}
    assert {c["endpoints"] for c in mirador_conversations(out).values()} == theirs
