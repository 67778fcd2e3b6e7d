"""Helpers for the end-to-end tests: run the mirador binary, read its Parquet
with DuckDB, and ask tshark (the oracle) about the same capture."""

import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from flowcheck import mirador_conversations, tshark_conversations  # noqa: E402,F401

ROOT = Path(__file__).resolve().parents[2]
# The checkout's defaults, whatever configuration this machine has installed.
os.environ["MIRADOR_CONFIG"] = ""
PCAPS = ROOT / "pcaps"
# The shared corpora some tests read; without them those tests skip.
SHARED = ROOT.parent / "shared"
SAMPLES = sorted(p for p in PCAPS.iterdir() if p.suffix in (".pcap", ".pcapng"))


def mirador_bin() -> str:
    path = os.environ.get("MIRADOR_BIN", str(ROOT / "target" / "debug" / "mirador"))
    if not Path(path).exists():
        pytest.fail(f"mirador binary not found at {path}: run scripts/test.sh (it builds it)")
    return path


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: run scripts/setup.sh")
    return path


def replay(out: Path, *inputs, extra=(), check=True) -> subprocess.CompletedProcess:
    cmd = [mirador_bin(), "replay", "--out", str(out), *extra, *map(str, inputs)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def flows(out: Path, columns: str = "*") -> list[dict]:
    files = list((out / "flows").rglob("*.parquet"))
    if not files:
        return []
    con = duckdb.connect()
    rel = con.sql(
        f"select {columns} from read_parquet('{out}/flows/**/*.parquet', hive_partitioning=true)"
    )
    names = rel.columns
    return [dict(zip(names, row)) for row in rel.fetchall()]


def summary_value(stdout: str, label: str) -> str:
    for line in stdout.splitlines():
        if line.strip().startswith(label):
            return line.strip()[len(label):].strip()
    raise AssertionError(f"no '{label}' line in summary:\n{stdout}")




def udp_pcap(path: Path, sports: range, payloads: list[bytes], interleave: bool = False) -> int:
    """Ethernet/IPv4/UDP frames 10.0.0.1:SPORT -> 10.0.0.2:9999, one per
    (port, payload), 1 ms apart: each port's in turn, or (`interleave`) the
    first payload of every port, then the second ...; returns how many."""
    pairs = [(p, d) for d in payloads for p in sports] if interleave else \
        [(p, d) for p in sports for d in payloads]
    frames = []
    for sport, payload in pairs:
        udp = struct.pack("!HHHH", sport, 9999, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                         bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
        checksum = sum(struct.unpack("!10H", ip))
        checksum = (checksum & 0xFFFF) + (checksum >> 16)
        ip = ip[:10] + struct.pack("!H", ~checksum & 0xFFFF) + ip[12:]
        frames.append(b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + udp)
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, frame in enumerate(frames):
            f.write(struct.pack("<IIII", 1_700_000_000 + i // 1000, (i % 1000) * 1000, len(frame), len(frame)))
            f.write(frame)
    return len(frames)


def wait_for(path: Path, text: str, seconds: float) -> None:
    """Waits until `text` appears in the file at `path`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise AssertionError(f"'{text}' did not appear in {path}:\n{path.read_text(errors='replace')}")


def dpdk_eal(*vdevs: str, lcores: str = "-l 0-1") -> str:
    """EAL arguments for a DPDK run with no NIC and no hugepages."""
    devices = " ".join(f"--vdev={v}" for v in vdevs)
    return f"{lcores} --no-huge --no-pci --no-shconf {devices}"


def run_dpdk(out: Path, eal: str, extra=(), check=True) -> subprocess.CompletedProcess:
    cmd = [mirador_bin(), "run", "--out", str(out), "--eal", eal, *extra]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def benign_run(tmp_path_factory):
    """The output of a midstream replay of a benign capture under
    ../shared/pcaps (a file or a folder), made once per session and shared
    by the tests that search it; a test skips loudly when it is not here."""
    runs: dict[str, Path] = {}

    def run(pcap: str, what: str) -> Path:
        path = SHARED / "pcaps" / pcap
        if not path.exists():
            pytest.skip(f"SKIPPED: {path} is not here; benign traffic was not checked for {what}")
        if pcap not in runs:
            inputs = sorted(path.iterdir()) if path.is_dir() else [path]
            out = tmp_path_factory.mktemp("benign") / "out"
            replay(out, *inputs, extra=["--midstream"])
            runs[pcap] = out
        return runs[pcap]

    return run


@pytest.fixture
def veth_namespace():
    """A network namespace holding a veth pair: frames sent into `veth-in`
    come out of `veth-mon`, the mirror port mirador captures from."""
    if os.geteuid() != 0:
        pytest.skip("creating a network namespace needs root")
    ip = require("ip")
    name = f"mirador-test-{os.getpid()}"
    subprocess.run([ip, "netns", "add", name], check=True)
    try:
        run = lambda *args: subprocess.run([ip, "netns", "exec", name, *args], check=True,
                                           capture_output=True)
        # Without IPv6 the kernel sends nothing of its own on the pair.
        run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1")
        run(ip, "link", "add", "veth-in", "type", "veth", "peer", "name", "veth-mon")
        run(ip, "link", "set", "veth-in", "up")
        run(ip, "link", "set", "veth-mon", "up")
        yield name
    finally:
        subprocess.run([ip, "netns", "del", name], check=False)


_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Skips are listed under a banner; with ../shared present, a skip
    fails the session, since then nothing should be missing."""
    if not _skipped:
        return
    where = "present: a skip is a failure" if SHARED.exists() else "absent"
    terminalreporter.section(f"{len(_skipped)} TESTS SKIPPED ({SHARED} {where})", sep="!")
    for nodeid in _skipped:
        terminalreporter.line(f"SKIPPED {nodeid}")


def pytest_sessionfinish(session, exitstatus):
    if _skipped and SHARED.exists() and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
