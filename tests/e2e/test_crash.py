"""A sensor killed mid-run (SIGKILL) and started again on the same output:
the files it had open are finished from their journals, every visible file
reads, no row is written twice, and only records not yet handed to the
writer are lost."""

import signal
import subprocess
import time
from pathlib import Path

import duckdb

from conftest import PCAPS, mirador_bin, replay, require, summary_value
from test_bad_input import write_big_pcap


def journals(out: Path) -> list[Path]:
    return list(out.rglob(".*.journal"))


def journal_bytes(out: Path) -> int:
    """Bytes in the journals now (one may be removed while it is looked at)."""
    total = 0
    for path in journals(out):
        try:
            total += path.stat().st_size
        except FileNotFoundError:
            pass
    return total


def restart(out: Path, tmp_path: Path, header: bytes) -> tuple[int, int]:
    """Starts a replay of an empty capture on `out`; returns the files and
    rows it recovered, after checking that nothing unfinished is left and
    that every visible file reads."""
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(header)
    result = replay(out, empty, check=False)
    recovered = summary_value(result.stdout, "recovered").split()
    assert not journals(out) and not list(out.rglob(".*.inprogress"))
    for path in out.rglob("*.parquet"):
        duckdb.sql(f"select count(*) from read_parquet('{path}')").fetchall()
    return int(recovered[0]), int(recovered[3])


def kept_and_expected(out: Path, expected: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.sql(f"create view kept as select * exclude (flow_id) from read_parquet('{out}/flows/**/*.parquet')")
    con.sql(f"create view expected as {expected}")
    # A long flow writes several rows under one flow_id; a row written
    # twice repeats every column.
    rows = f"read_parquet('{out}/flows/**/*.parquet')"
    twice = duckdb.sql(f"select (select count(*) from {rows}) - (select count(*) from (select distinct * from {rows}))")
    assert twice.fetchall()[0][0] == 0, "a row was written twice"
    return con


def missing_and_extra(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    missing = con.sql("select count(*) from (from expected except all from kept)").fetchall()[0][0]
    extra = con.sql("select count(*) from (from kept except all from expected)").fetchall()[0][0]
    return missing, extra


def test_a_sensor_killed_while_idle_loses_no_row(tmp_path: Path):
    """The capture streams in on standard input, which stays open: once the
    sensor has handed every record to the writer (one record per chunk), it
    is killed. The rows kept are exactly those a run over the same packets
    wrote before its shutdown flushed the flows still open."""
    capture = tmp_path / "part.pcap"
    write_big_pcap(capture, 400)
    whole = tmp_path / "whole"
    replay(whole, capture, extra=["--sensor", "s1", "--set", "replay.batch_packets=1"])

    out = tmp_path / "out"
    proc = subprocess.Popen([mirador_bin(), "replay", "--out", str(out), "--sensor", "s1",
                             "--set", "output.chunk_records=1", "--set", "replay.batch_packets=1", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.stdin.write(capture.read_bytes())
    proc.stdin.flush()
    deadline, last, steady_since = time.monotonic() + 120, -1, time.monotonic()
    while time.monotonic() - steady_since < 2:
        assert proc.poll() is None and time.monotonic() < deadline
        size = journal_bytes(out)
        if size != last:
            last, steady_since = size, time.monotonic()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdin.close()
    assert journals(out)

    files, rows = restart(out, tmp_path, capture.read_bytes()[:24])
    assert files > 0 and rows > 0
    con = kept_and_expected(out, f"select * exclude (flow_id) from read_parquet('{whole}/flows/**/*.parquet') "
                                 "where end_reason <> 'shutdown'")
    missing, extra = missing_and_extra(con)
    kept = con.sql("select count(*) from kept").fetchall()[0][0]
    print(f"killed while idle: {kept} rows kept, {rows} of them recovered from {files} journal(s); "
          f"{missing} missing, {extra} extra")
    assert (missing, extra) == (0, 0)


def test_a_sensor_killed_while_busy_keeps_what_reached_the_writer(tmp_path: Path):
    big = tmp_path / "big.pcap"
    write_big_pcap(big, 8000)
    whole = tmp_path / "whole"
    replay(whole, big, extra=["--sensor", "s1"])

    out = tmp_path / "out"
    proc = subprocess.Popen([mirador_bin(), "replay", "--out", str(out), "--sensor", "s1", str(big)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while journal_bytes(out) < 64 << 10:
        assert proc.poll() is None, "the replay ended before it was killed: make the input bigger"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    files, rows = restart(out, tmp_path, big.read_bytes()[:24])
    assert files > 0 and rows > 0
    con = kept_and_expected(out, f"select * exclude (flow_id) from read_parquet('{whole}/flows/**/*.parquet')")
    missing, extra = missing_and_extra(con)
    print(f"killed while busy: {rows} rows recovered from {files} journal(s); "
          f"{missing} of the whole run's rows not reached")
    assert extra == 0, "every kept row is one the whole run wrote"


def test_evidence_captures_a_killed_sensor_left_open_are_kept(tmp_path: Path):
    """Flows that alerted stay open while standard input does, so their
    captures are still being written when the sensor is killed; the next
    start keeps each up to its last whole packet, and tshark reads them."""
    tshark = require("tshark")
    out = tmp_path / "out"
    captures = b"".join(p.read_bytes()[24:] for p in (PCAPS / "webshell.pcap", PCAPS / "c2.pcap"))
    proc = subprocess.Popen([mirador_bin(), "replay", "--out", str(out), "--set", "evidence.enabled=true",
                             "--set", "output.chunk_records=1", "--set", "replay.batch_packets=1", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.stdin.write((PCAPS / "webshell.pcap").read_bytes()[:24] + captures)
    proc.stdin.flush()
    open_captures = lambda: [p for p in out.rglob(".*.pcapng.inprogress") if p.stat().st_size > 0]
    deadline = time.monotonic() + 120
    while not open_captures():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1)
    left = len(open_captures())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdin.close()

    empty = tmp_path / "empty.pcap"
    empty.write_bytes((PCAPS / "webshell.pcap").read_bytes()[:24])
    result = replay(out, empty, check=False)
    kept = int(summary_value(result.stdout, "recovered").split("rows of an earlier run, ")[1].split()[0])
    assert kept >= left > 0, result.stdout
    assert not list(out.rglob(".*.inprogress"))
    files = list((out / "evidence").rglob("*.pcapng"))
    assert len(files) >= kept
    for path in files:
        read = subprocess.run([tshark, "-r", str(path)], capture_output=True, text=True)
        assert read.returncode == 0 and read.stdout.strip(), (path, read.stderr)
    print(f"killed with captures open: {left} open, {kept} kept")
