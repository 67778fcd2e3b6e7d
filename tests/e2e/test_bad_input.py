"""Damaged inputs: clear errors naming file and offset, nothing read is lost,
and the exit code says whether anything could be read at all."""

import os
import signal
import struct
import subprocess
import time
from pathlib import Path


from conftest import PCAPS, ROOT, flows, mirador_bin, replay, summary_value


def test_truncated_pcap_reports_offset_and_keeps_what_was_read(tmp_path: Path):
    data = (PCAPS / "basic.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) // 2])
    result = replay(tmp_path / "out", cut)
    assert result.returncode == 0
    assert "cut.pcap: at byte offset" in result.stdout
    assert "truncated pcap record" in result.stdout
    assert flows(tmp_path / "out")


def test_garbage_file_is_rejected_with_exit_code(tmp_path: Path):
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(os.urandom(4096))
    result = replay(tmp_path / "out", junk, check=False)
    assert result.returncode != 0
    assert "junk.pcap: at byte offset 0: not a pcap or pcapng file" in result.stdout


def test_empty_file_is_rejected(tmp_path: Path):
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    result = replay(tmp_path / "out", empty, check=False)
    assert result.returncode != 0
    assert "empty.pcap: at byte offset 0: file is empty" in result.stdout


def test_unsupported_link_type_names_it(tmp_path: Path):
    path = tmp_path / "usb.pcap"
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 189))
    result = replay(tmp_path / "out", path, check=False)
    assert result.returncode != 0
    assert "usb.pcap: at byte offset 20: unsupported link type 189" in result.stdout


def test_bad_file_beside_good_ones_does_not_stop_the_replay(tmp_path: Path):
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"definitely not a capture")
    result = replay(tmp_path / "out", junk, PCAPS / "basic.pcap")
    assert result.returncode == 0
    assert "junk.pcap" in result.stdout
    assert flows(tmp_path / "out")


def test_unfinished_files_of_a_crashed_run_are_removed(tmp_path: Path):
    leftover = tmp_path / "out" / "flows" / "date=2024-03-01" / "hour=12" / ".x.parquet.inprogress"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"partial")
    result = replay(tmp_path / "out", PCAPS / "basic.pcap")
    assert not leftover.exists()
    assert "removed" in result.stdout or "removed" in result.stderr


def write_big_pcap(path: Path, copies: int, shift_secs: int = 0):
    """basic.pcap's packets repeated with shifted times and addresses, so the
    replay takes long enough to be interrupted; `shift_secs` moves them all."""
    data = (PCAPS / "basic.pcap").read_bytes()
    header, body = data[:24], data[24:]
    records = []
    at = 0
    while at < len(body):
        sec, usec, caplen, wirelen = struct.unpack_from("<IIII", body, at)
        records.append((sec, usec, body[at + 16: at + 16 + caplen], wirelen))
        at += 16 + caplen
    with path.open("wb") as f:
        f.write(header)
        for i in range(copies):
            for sec, usec, frame, wirelen in records:
                frame = bytearray(frame)
                if len(frame) > 34 and frame[12:14] == b"\x08\x00":
                    frame[26] = (i >> 8) & 0xFF  # source address, second byte
                    frame[27] = 100 + (i & 0x7F)
                f.write(struct.pack("<IIII", sec + shift_secs + i * 30, usec, len(frame), wirelen))
                f.write(frame)


def test_sigint_flushes_open_flows_and_finalizes_files(tmp_path: Path):
    big = tmp_path / "big.pcap"
    write_big_pcap(big, 8000)
    out = tmp_path / "out"
    proc = subprocess.Popen([mirador_bin(), "replay", "--out", str(out), str(big)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    assert proc.poll() is None, "replay finished before the signal: make the input bigger"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "stopped by signal" in stdout
    assert not list(out.rglob("*.inprogress"))
    rows = flows(out, "end_reason, flow_id")
    created = int(summary_value(stdout, "flows").split()[0])
    assert len({r["flow_id"] for r in rows}) == created
    assert any(r["end_reason"] == "shutdown" for r in rows)


def test_rules_check_names_bad_rules_and_loads_the_rest(tmp_path: Path):
    rules = tmp_path / "local.rules"
    rules.write_text(
        'alert tcp any any -> any 80 (msg:"good"; content:"GET"; sid:1;)\n'
        'alert tcp any any -> any 80 (msg:"unbalanced; content:"x"; sid:2;)\n'
        'alert tcp any any -> any 80 (msg:"hex"; content:"|4G|"; sid:3;)\n'
        'alert tcp $NOWHERE any -> any 80 (msg:"var"; sid:4;)\n'
        'alert smb any any -> any any (msg:"app"; smb.share; content:"x"; sid:5;)\n'
        'alert tcp any any -> any 80 (msg:"dup"; content:"a"; sid:1;)\n'
        'alert tcp any any -> any 80 (msg:"good too"; pcre:"/a+b/i"; sid:6;)\n'
    )
    result = subprocess.run([mirador_bin(), "rules", "check", str(rules)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "7 read: 2 loaded, 1 skipped (unsupported keyword), 4 malformed" in result.stdout
    for line, sid, what in [(2, 2, "syntax: unbalanced quotes"), (3, 3, "bad hex"),
                            (4, 4, "unknown variable $NOWHERE"), (6, 1, "duplicate sid")]:
        assert f"local.rules:{line}: sid {sid}: {what}" in result.stdout, result.stdout
    assert "local.rules:5: sid 5: unsupported keyword 'protocol smb'" in result.stderr
    assert "smb.share" in result.stdout


def test_checksum_validation_skips_what_tshark_calls_bad(tmp_path: Path):
    data = bytearray((PCAPS / "stream.pcap").read_bytes())
    # Flip the last byte of every fifth frame (classic pcap, little-endian).
    offset, index = 24, 0
    while offset + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, offset + 8)[0]
        if index % 5 == 4:
            data[offset + 16 + caplen - 1] ^= 0x5a
        offset += 16 + caplen
        index += 1
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(bytes(data))
    tshark = subprocess.run(
        ["tshark", "-r", str(bad), "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
         "-Y", "tcp.checksum.status == 0 || udp.checksum.status == 0"],
        capture_output=True, text=True, check=True).stdout.splitlines()
    assert tshark, "some frames were corrupted"
    off = replay(tmp_path / "off", bad)
    on = replay(tmp_path / "on", bad, extra=["--checksum-validation", "on"])
    assert "bad_checksum" not in off.stdout
    assert int(summary_value(on.stdout, "bad_checksum")) == len(tshark)


def test_missing_rules_path_is_an_error(tmp_path: Path):
    missing = tmp_path / "no-such.rules"
    result = replay(tmp_path / "out", PCAPS / "basic.pcap", extra=["--rules", str(missing)], check=False)
    assert result.returncode != 0
    assert f'rules path "{missing}" does not exist' in result.stderr


def test_run_without_rules_warns_where_it_looked(tmp_path: Path):
    empty = tmp_path / "rules"
    empty.mkdir()
    result = replay(tmp_path / "out", PCAPS / "basic.pcap", extra=["--rules", str(empty)])
    warnings = [l for l in result.stderr.splitlines() if "WARN" in l and "no rules loaded" in l]
    assert warnings and str(empty) in warnings[0], result.stderr


def test_default_signatures_load_from_any_folder(tmp_path: Path):
    result = subprocess.run(
        [mirador_bin(), "replay", "--out", str(tmp_path / "out"), str(PCAPS / "webshell.pcap")],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert f"configuration: defaults, bundled files in {ROOT}" in result.stderr
    loaded = int(summary_value(result.stdout, "rules").split()[0])
    assert loaded > 0, result.stdout
    assert (tmp_path / ".mirador-cache").is_dir(), "state folders belong to the working folder"


def test_mirador_config_names_the_file_when_no_config_is_given(tmp_path: Path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "sensor.toml").write_text('sensor = "from-env"\n[output]\ndir = "lake"\n')
    result = subprocess.run(
        [mirador_bin(), "replay", str(PCAPS / "basic.pcap")],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env=os.environ | {"MIRADOR_CONFIG": str(conf / "sensor.toml")},
    )
    assert result.returncode == 0, result.stderr
    assert f"configuration: {conf / 'sensor.toml'}" in result.stderr
    assert list((conf / "lake" / "flows").rglob("mirador-*.parquet")) == []
    names = [p.name for p in (conf / "lake" / "flows").rglob("*.parquet")]
    assert names and all(n.startswith("from-env-") for n in names), names
