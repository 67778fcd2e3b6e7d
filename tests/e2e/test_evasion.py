"""Evasion through segmentation: every marker in pcaps/evasion.pcap must be
found in the reassembled stream exactly where the policy says, and never
where the bytes were not (a gap, past the depth, the losing side of an
overlap)."""

from pathlib import Path

import duckdb

from conftest import PCAPS, replay, summary_value

# sid: (marker, client port, must alert under first-wins, under last-wins,
# and when bytes wait for the server's acknowledgement and the server is an
# old Linux)
CASES = {
    1: ("EVIL-SPLIT-TWO", 50001, True, True, True),
    2: ("EVIL-ONE-BYTE", 50002, True, True, True),
    3: ("EVIL-OUT-OF-ORDER", 50003, True, True, True),
    4: ("EVIL-FIRST", 50004, True, False, False),
    5: ("EVIL-LAST!", 50004, False, True, True),
    6: ("EVIL-AFTER-GAP", 50005, True, True, True),
    7: ("GAP|EVIL-AFTER", 50005, False, False, False),
    8: ("EVIL-WRAP", 50006, True, True, True),
    9: ("EVIL-SHALLOW", 50007, True, True, True),
    10: ("EVIL-DEEP", 50007, False, False, False),
    # Inline, the request is inspected as first sent; the re-sent bytes
    # are a retransmission.
    11: ("EVIL-RESENT", 50008, False, False, True),
}


def rules(tmp_path: Path) -> Path:
    path = tmp_path / "evasion.rules"
    path.write_text("".join(
        f'alert tcp any {port} -> any 80 (msg:"{marker}"; flow:to_server; content:"{marker}"; sid:{sid};)\n'
        for sid, (marker, port, *_) in CASES.items()))
    return path


def alerts(out: Path) -> dict:
    files = list((out / "detections").rglob("*.parquet"))
    if not files:
        return {}
    return dict(duckdb.sql(
        f"select sid, count(*) from read_parquet('{out}/detections/**/*.parquet') group by sid").fetchall())


def check(out: Path, policy_index: int):
    got = alerts(out)
    for sid, case in CASES.items():
        expected = 1 if case[policy_index] else 0
        assert got.get(sid, 0) == expected, f"sid {sid} ({case[0]}): {got.get(sid, 0)} alerts, want {expected}"


def test_first_wins_policy_finds_every_hidden_marker_once(tmp_path: Path):
    result = replay(tmp_path / "out", PCAPS / "evasion.pcap", extra=["--rules", str(rules(tmp_path))])
    check(tmp_path / "out", 2)
    assert int(summary_value(result.stdout, "detections").split()[0]) == 7
    flows = duckdb.sql(
        f"select src_port, tcp_out_of_order, tcp_overlaps_conflicting, tcp_gaps, tcp_gap_bytes, "
        f"tcp_depth_reached from read_parquet('{tmp_path}/out/flows/**/*.parquet') order by src_port"
    ).fetchall()
    by_port = {row[0]: row[1:] for row in flows}
    assert by_port[50003][0] >= 1
    assert by_port[50004][1] == 1
    assert by_port[50005][2:4] == (1, 16)
    assert by_port[50007][4] is True


def test_last_wins_policy_keeps_the_later_bytes(tmp_path: Path):
    config = tmp_path / "last.toml"
    config.write_text('[reassembly]\noverlap_policy = "last"\n')
    replay(tmp_path / "out", PCAPS / "evasion.pcap",
           extra=["--rules", str(rules(tmp_path)), "--config", str(config)])
    check(tmp_path / "out", 3)


def test_acknowledged_mode_keeps_what_the_receivers_os_kept(tmp_path: Path):
    """Suricata's IDS mode with a host-os-policy: the server (10.8.0.6) is an
    old Linux, which keeps the later of two segments starting together; a
    default policy of `windows` covers everyone else."""
    config = tmp_path / "acked.toml"
    config.write_text('[reassembly]\ninline = false\n[reassembly.host_os_policy]\n'
                      'windows = ["0.0.0.0/0"]\nold-linux = ["10.8.0.6"]\n')
    replay(tmp_path / "out", PCAPS / "evasion.pcap",
           extra=["--rules", str(rules(tmp_path)), "--config", str(config)])
    check(tmp_path / "out", 4)


def test_acknowledged_mode_under_a_first_policy_keeps_the_first_request(tmp_path: Path):
    replay(tmp_path / "out", PCAPS / "evasion.pcap",
           extra=["--rules", str(rules(tmp_path)), "--set", "reassembly.inline=false"])
    got = alerts(tmp_path / "out")
    assert 11 not in got and got.get(4) == 1
