"""Floods (`pcapgen flood KIND`) streamed into `mirador replay -`: each
must leave the sensor's peak resident memory within what its caps allow,
show what it gave up in the summary's counters, and not crash.

Memory is judged against the sensor itself: a flood that fills a cap once
(`small`) against one twenty times that size, or against a run of the same
flood that holds nothing (one unit) plus the cap in bytes. Either way
`SLACK` is allowed for what does not grow with a flood: the writer encoding
a file at close (a row group at a time). The allocator is told to give
freed memory back at once (`MIMALLOC_PURGE_DELAY=0`), so that the resident
size is what the sensor holds rather than what mimalloc keeps cached for a
moment."""

import os
import re
import subprocess

import pytest

from conftest import flows, mirador_bin, summary_value

MIB = 1024
SLACK = 16 * MIB
# A short writer queue, so that what the worker hands over does not pile up
# in it (its capacity is a cap of its own: chunks of `chunk_records`).
WRITER = ("output.chunk_records=1024", "output.channel_chunks=4")
# The detectors' cross-flow tables (per host, per pair) filled by a small
# flood already, so that a big one is judged on its own state.
DETECTOR_CAPS = (
    "detectors.webshell.max_sessions=1024", "detectors.cobalt.max_beacons=1024",
    "detectors.beacon.max_pairs=1024", "detectors.host_report.max_reports=1024",
    "detectors.mirai.max_hosts=1024", "detectors.dns_tunnel.max_groups=1024",
)


def pcapgen_bin() -> str:
    path = os.path.join(os.path.dirname(mirador_bin()), "pcapgen")
    assert os.path.exists(path), f"pcapgen not built at {path}: run scripts/test.sh"
    return path


def flood(tmp_path, kind: str, count: int, settings=(), rules=None) -> str:
    """The summary of a replay of `count` units of flood `kind`."""
    out = tmp_path / f"{kind}-{count}"
    cmd = [mirador_bin(), "replay", "--out", str(out)]
    for setting in (*WRITER, *settings):
        cmd += ["--set", setting]
    if rules is not None:
        cmd += ["--rules", str(rules)]
    generator = subprocess.Popen([pcapgen_bin(), "flood", kind, "--count", str(count)],
                                 stdout=subprocess.PIPE)
    result = subprocess.run([*cmd, "-"], stdin=generator.stdout, capture_output=True,
                            text=True, timeout=900,
                            env=dict(os.environ, MIMALLOC_PURGE_DELAY="0"))
    generator.stdout.close()
    assert generator.wait() == 0
    assert result.returncode == 0, result.stdout + result.stderr
    assert "panicked" not in result.stderr, result.stderr
    return result.stdout


def peak_kib(summary: str) -> int:
    return int(re.search(r"peak resident (\d+) KiB", summary).group(1))


def count_of(summary: str, label: str) -> int:
    return int(summary_value(summary, label).split()[0])


def test_syn_flood_evicts_at_the_flow_cap_and_writes_every_record(tmp_path):
    settings = ["flow.max_flows=5000", *DETECTOR_CAPS]
    small = flood(tmp_path, "syn", 5_000, settings)
    big = flood(tmp_path, "syn", 300_000, settings)
    created = count_of(big, "flows")
    assert created == 300_000, big
    assert "peak 5000 open" in big, big
    assert "evicted 295000" in big, big
    assert len(flows(tmp_path / "syn-300000", "1")) == created, "every flow has its record"
    assert peak_kib(big) <= peak_kib(small) + SLACK, (peak_kib(small), peak_kib(big))


def test_tiny_streams_stay_within_the_flow_cap(tmp_path):
    settings = ["flow.max_flows=5000", *DETECTOR_CAPS]
    small = flood(tmp_path, "tiny-streams", 5_000, settings)
    big = flood(tmp_path, "tiny-streams", 200_000, settings)
    assert count_of(big, "flows") == 200_000, big
    assert "peak 5000 open" in big, big
    assert peak_kib(big) <= peak_kib(small) + SLACK, (peak_kib(small), peak_kib(big))


def test_fragments_that_never_complete_stop_at_the_defrag_memcap(tmp_path):
    settings = ["defrag.memcap_mib=16"]
    empty = flood(tmp_path, "fragments", 1, settings)
    big = flood(tmp_path, "fragments", 100_000, settings)  # 140 MB of fragments
    dropped = int(re.search(r"fragment_memcap\s+(\d+)", big).group(1))
    assert dropped >= 100_000 - (16 << 20) // 1_400, big
    assert peak_kib(big) <= peak_kib(empty) + 16 * MIB + SLACK, (peak_kib(empty), peak_kib(big))


def test_out_of_order_storm_flushes_at_the_reassembly_memcap(tmp_path):
    # Bytes given up at the cap go on to the rules' stream windows: their cap
    # too.
    settings = ["reassembly.worker_memcap_mib=16", "rules.window_memcap_mib=16"]
    empty = flood(tmp_path, "out-of-order", 1, settings)
    big = flood(tmp_path, "out-of-order", 100_000, settings)  # 100 MB held back
    held, flushes = re.search(
        r"reassembly\s+(\d+) bytes held at most, (\d+) flushes", big).groups()
    # The cap, plus the segment that met it (held while its stream is given up).
    assert int(held) <= (16 << 20) + 65_535, big
    assert int(flushes) > 0, big
    assert peak_kib(big) <= peak_kib(empty) + 32 * MIB + SLACK, (peak_kib(empty), peak_kib(big))


def test_dns_names_never_seen_before_stay_within_the_detector_cap(tmp_path):
    settings = ["detectors.dns_tunnel.max_groups=4096", "flow.max_flows=4096"]
    small = flood(tmp_path, "dns", 4_096, settings)
    big = flood(tmp_path, "dns", 100_000, settings)
    evictions = int(re.search(r"(\d+) detector evictions", big).group(1))
    assert evictions >= 100_000 - 4_096 - 4_096 // 8, big
    assert peak_kib(big) <= peak_kib(small) + SLACK, (peak_kib(small), peak_kib(big))


def test_header_bombs_stop_at_the_header_limit(tmp_path):
    # The flows stay open: what rules keep of their streams is capped too.
    settings = ["rules.window_memcap_mib=16"]
    empty = flood(tmp_path, "header-bomb", 1, settings)
    big = flood(tmp_path, "header-bomb", 2_000, settings)  # 128 MiB of headers
    assert re.search(r"limits\s+2000 HTTP header blocks over 16 KiB", big), big
    # A flow keeps at most its 16 KiB of head, and only until it is given up.
    assert peak_kib(big) <= peak_kib(empty) + 16 * MIB + SLACK, (peak_kib(empty), peak_kib(big))


def test_nested_gzip_and_lzma_bombs_stop_at_the_body_limit(tmp_path):
    empty = flood(tmp_path, "compression-bomb", 2)
    big = flood(tmp_path, "compression-bomb", 200)  # 200 bodies of 256 MiB decoded
    assert re.search(r"HTTP header blocks over 16 KiB, 200 HTTP bodies decoded up to the body limit",
                     big), big
    assert peak_kib(big) <= peak_kib(empty) + SLACK, (peak_kib(empty), peak_kib(big))


@pytest.mark.parametrize("pattern", ["(a+)+$", "^(a|a)+$"])
def test_a_pathological_pcre_gives_up_at_the_pcre2_limits(tmp_path, pattern):
    rules = tmp_path / "pathological.rules"
    rules.write_text(
        f'alert tcp any any -> any 80 (msg:"pathological pcre"; flow:to_server; '
        f'content:"aaaa"; pcre:"/{pattern}/"; sid:9000001; rev:1;)\n')
    summary = flood(tmp_path, "pcre", 300, rules=rules)
    assert "1 loaded" in summary, summary
    hits = int(re.search(r"pcre limits\s+(\d+) pcre runs given up", summary).group(1))
    assert hits >= 300, summary
