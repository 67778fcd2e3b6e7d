"""Output on a full disk (a small tmpfs the test mounts): the sensor keeps
reading, counts the records it could not write, leaves no unreadable
visible file, and writes again once space returns."""

import json
import os
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from conftest import mirador_bin, replay, summary_value
from test_bad_input import write_big_pcap


@pytest.fixture
def small_disk(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(path: Path) -> None:
    """Writes `path` until the disk has no room left."""
    with path.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


def wait_for_text(path: Path, text: str, proc: subprocess.Popen, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while text not in path.read_text():
        assert proc.poll() is None, path.read_text()
        assert time.monotonic() < deadline, f"no {text!r} in:\n{path.read_text()}"
        time.sleep(0.05)


def test_a_full_disk_drops_and_counts_records_then_writing_resumes(tmp_path: Path, small_disk: Path):
    first, second = tmp_path / "first.pcap", tmp_path / "second.pcap"
    write_big_pcap(first, 1500)
    data = first.read_bytes()
    header, body = data[:24], data[24:]
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * (3 << 20))
    out = small_disk / "out"
    log = tmp_path / "stderr"
    with log.open("w") as errors:
        rules = tmp_path / "syn.rules"
        rules.write_text('alert tcp any any -> any any (msg:"syn"; flags:S; sid:9500001; rev:1;)\n')
        proc = subprocess.Popen([mirador_bin(), "replay", "--out", str(out), "--rules", str(rules),
                                 "--set", "eve.enabled=true", "-"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors)
        proc.stdin.write(header + body)
        proc.stdin.flush()
        wait_for_text(log, "records are dropped", proc)
        # Room returns, more than the rest of the run takes.
        ballast.unlink()
        subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
        # The same packets again, a day later: new partitions.
        write_big_pcap(second, 20, shift_secs=86_400)
        proc.stdin.write(second.read_bytes()[24:])
        proc.stdin.close()
        stdout = proc.stdout.read().decode()
        assert proc.wait(timeout=300) == 0, log.read_text()
    assert "writing again" in log.read_text()
    assert "EVE: writing again" in log.read_text()
    eve = summary_value(stdout, "eve").split()
    lines = (out / "eve.json").read_text().splitlines()
    # The file holds whole lines only, each one counted as written; a batch
    # the full disk took in part was cut back off and counted as dropped.
    assert 0 < len(lines) == int(eve[0]) and int(eve[3]) > 0, stdout
    assert all(json.loads(line)["event_type"] == "alert" for line in lines)
    lost = summary_value(stdout, "write errors").split()
    assert int(lost[0]) > 0, stdout
    written = int(summary_value(stdout, "output").split()[0])
    # Files whose close met the full disk kept their rows in their
    # journals. A start on a disk still full leaves them for the next one:
    # nothing set aside as failed, no partial file taking room.
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(header)
    journals = sorted(out.rglob(".*.journal"))
    fill(small_disk / "ballast")
    full = replay(out, empty, check=False)
    assert not [p for p in out.rglob(".*") if not p.name.endswith(".journal")], full.stderr
    left = sorted(out.rglob(".*.journal"))
    assert set(left) <= set(journals), "no journal was made"
    # With room again the next start finishes them.
    (small_disk / "ballast").unlink()
    replay(out, empty, check=False)
    assert not list(out.rglob(".*"))
    files = list(out.rglob("*.parquet"))
    counts = {f: duckdb.sql(f"select count(*) from read_parquet('{f}')").fetchall()[0][0] for f in files}
    rows = sum(n for f, n in counts.items() if "flows" in f.parts)
    assert rows == written, "every flow row counted as written is in a readable file"
    days = duckdb.sql(f"select count(distinct ts_end::date) from read_parquet('{out}/flows/**/*.parquet')")
    assert days.fetchall()[0][0] >= 2, "the records after the space returned were written"
    print(f"full disk: {written} rows written in {len(files)} files, {lost[0]} flow rows lost; "
          f"EVE {eve[0]} lines written, {eve[3]} dropped; {len(left)} journals left by a start on the full disk")
