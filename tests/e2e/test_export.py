"""`mirador export` against a real S3-compatible server (moto, on loopback)
and a local lake: objects listed with boto3 and read back with pyarrow
must equal the local files; re-running replaces; an interrupted export
resumes; an unreachable destination fails clearly and touches nothing;
DuckDB queries the exported layout."""

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import duckdb
import pyarrow.parquet as pq
import pytest

from conftest import PCAPS, mirador_bin, replay

# The family samples carry flows and detections on one day.
SAMPLES = [PCAPS / f"{name}.pcap" for name in ("webshell", "c2", "mining", "mirai", "covert", "benign")]
BUCKET = "lake"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3():
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield {"client": client, "env": env, "server": server, "endpoint": endpoint}
    server.kill()
    server.wait()


def export(out: Path, date: str, to: str, env=None, check=True, extra=()):
    result = subprocess.run([mirador_bin(), "export", "--date", date, "--from", str(out), "--to", to, *extra],
                            capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"export exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def day_with_both_tables(out: Path) -> str:
    days = lambda table: {p.name.split("=", 1)[1] for p in (out / table).glob("date=*")}
    both = sorted(days("flows") & days("detections"))
    assert both, "the samples give flows and detections on one day"
    return both[0]


def objects(client) -> dict:
    listed = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {o["Key"]: o["ETag"] for o in listed}


def local_rows(out: Path, table: str, date: str) -> list[dict]:
    files = sorted((out / table / f"date={date}").rglob("*.parquet"))
    return sorted((r for f in files for r in pq.read_table(f).to_pylist()), key=repr)


def remote_rows(client, tmp: Path, prefix: str) -> tuple[list[dict], dict]:
    rows, manifest = [], None
    for key in objects(client):
        if not key.startswith(prefix):
            continue
        body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        if key.endswith("/_manifest.json"):
            manifest = json.loads(body)
            continue
        path = tmp / hashlib.sha256(key.encode()).hexdigest()
        path.write_bytes(body)
        assert pq.read_metadata(path).metadata[b"mirador.schema_version"] == b"2"
        rows.extend(pq.read_table(path).to_pylist())
    return sorted(rows, key=repr), manifest


def test_export_to_s3_equals_the_local_files_and_replaces_on_rerun(tmp_path: Path, s3):
    out = tmp_path / "out"
    replay(out, *SAMPLES, extra=["--sensor", "edge-1"])
    date = day_with_both_tables(out)
    result = export(out, date, f"s3://{BUCKET}/mirador", env=s3["env"])
    client = s3["client"]
    first = objects(client)
    for table in ("flows", "detections"):
        prefix = f"mirador/{table}/date={date}/sensor=edge-1/"
        assert f"{prefix}_manifest.json" in first and f"{prefix}part-0.parquet" in first
        rows, manifest = remote_rows(client, tmp_path, prefix)
        assert rows == local_rows(out, table, date)
        assert manifest["rows"] == len(rows) and manifest["schema_version"] == "2"
        for entry in manifest["files"]:
            body = client.get_object(Bucket=BUCKET, Key=prefix + entry["name"])["Body"].read()
            assert hashlib.sha256(body).hexdigest() == entry["sha256"]
            assert len(body) == entry["bytes"]
    assert (out / ".exported" / f"{date}.json").exists()
    assert "uploaded    2 part(s)" in result.stdout
    again = export(out, date, f"s3://{BUCKET}/mirador", env=s3["env"])
    assert objects(client) == first
    assert "0 part(s), 2 already there" in again.stdout


def test_an_interrupted_export_ends_complete_when_run_again(tmp_path: Path, s3):
    out = tmp_path / "out"
    replay(out, *SAMPLES, extra=["--sensor", "edge-1"])
    date = day_with_both_tables(out)
    to = f"s3://{BUCKET}/mirador"
    # Killed while the destination does not answer: nothing is marked.
    os.kill(s3["server"].pid, signal.SIGSTOP)
    try:
        run = subprocess.Popen([mirador_bin(), "export", "--date", date, "--from", str(out), "--to", to],
                               env={**os.environ, **s3["env"]}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        run.kill()
        run.wait()
    finally:
        os.kill(s3["server"].pid, signal.SIGCONT)
    assert not (out / ".exported" / f"{date}.json").exists()
    # What a kill between the parts and the manifest leaves: parts, one of
    # them cut short, an extra part of an earlier run, no manifest.
    export(out, date, to, env=s3["env"])
    client = s3["client"]
    complete = objects(client)
    prefix = f"mirador/flows/date={date}/sensor=edge-1/"
    client.delete_object(Bucket=BUCKET, Key=prefix + "_manifest.json")
    client.put_object(Bucket=BUCKET, Key=prefix + "part-0.parquet", Body=b"PAR1 cut short")
    client.put_object(Bucket=BUCKET, Key=prefix + "part-7.parquet", Body=b"from an earlier run")
    (out / ".exported" / f"{date}.json").unlink()
    result = export(out, date, to, env=s3["env"])
    assert objects(client) == complete
    assert "1 part(s), 1 already there, 1 stale object(s) removed" in result.stdout
    rows, _ = remote_rows(client, tmp_path, prefix)
    assert rows == local_rows(out, "flows", date)


def test_a_day_of_an_older_lake_resumes_and_loses_its_old_manifest(tmp_path: Path, s3):
    out = tmp_path / "out"
    replay(out, *SAMPLES, extra=["--sensor", "edge-1"])
    date = day_with_both_tables(out)
    to = f"s3://{BUCKET}/mirador"
    export(out, date, to, env=s3["env"])
    client = s3["client"]
    complete = objects(client)
    # What an export of an older version left: the manifest as
    # `manifest.json`, which Spark and Hive read as a data file.
    for table in ("flows", "detections"):
        prefix = f"mirador/{table}/date={date}/sensor=edge-1/"
        body = client.get_object(Bucket=BUCKET, Key=prefix + "_manifest.json")["Body"].read()
        client.delete_object(Bucket=BUCKET, Key=prefix + "_manifest.json")
        client.put_object(Bucket=BUCKET, Key=prefix + "manifest.json", Body=body)
    result = export(out, date, to, env=s3["env"])
    assert "0 part(s), 2 already there, 2 stale object(s) removed" in result.stdout
    assert objects(client) == complete


def test_pyarrow_reads_the_s3_lake_with_its_partitions(tmp_path: Path, s3):
    import pyarrow.dataset as ds
    out = tmp_path / "out"
    replay(out, *SAMPLES, extra=["--sensor", "edge-1"])
    date = day_with_both_tables(out)
    export(out, date, f"s3://{BUCKET}/mirador", env=s3["env"])
    host = s3["endpoint"].removeprefix("http://")
    for table in ("flows", "detections"):
        url = (f"s3://testing:testing@{BUCKET}/mirador/{table}"
               f"?region=us-east-1&scheme=http&endpoint_override={host}")
        lake = ds.dataset(url, format="parquet", partitioning="hive")
        got = lake.to_table()
        # Partition discovery adds `date` (pyarrow infers strings for days)
        # and finds `sensor` in the files' own column.
        assert got.schema.names[-1] == "date" and got.schema.field("date").type == "string"
        assert {(r["date"], r["sensor"]) for r in got.select(["date", "sensor"]).to_pylist()} == {(date, "edge-1")}
        rows = sorted(got.drop_columns(["date"]).to_pylist(), key=repr)
        assert rows == local_rows(out, table, date)


def test_an_unreachable_destination_fails_clearly_and_keeps_the_local_files(tmp_path: Path, s3):
    out = tmp_path / "out"
    replay(out, *SAMPLES)
    date = day_with_both_tables(out)
    digest = lambda: {p: hashlib.sha256(p.read_bytes()).hexdigest()
                      for p in out.rglob("*.parquet") if ".export" not in p.parts}
    before = digest()
    closed = {**s3["env"], "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    result = export(out, date, f"s3://{BUCKET}/mirador", env=closed, check=False, extra=["--delete"])
    assert result.returncode != 0
    assert "error:" in result.stderr and f"s3://{BUCKET}/mirador" in result.stderr
    assert digest() == before
    assert not (out / ".exported").exists()
    refused = export(out, date, "s3://no-such-bucket/mirador", env=s3["env"], check=False)
    assert refused.returncode != 0 and "no-such-bucket" in refused.stderr
    assert digest() == before
    # A file the sensor is still writing that day is not the export's.
    hour = next((out / "detections" / f"date={date}").glob("hour=*"))
    writing = hour / ".edge-1-still-writing.parquet.inprogress"
    writing.write_bytes(b"PAR1")
    export(out, date, f"s3://{BUCKET}/mirador", env=s3["env"], extra=["--delete"])
    assert (out / ".exported" / f"{date}.json").exists()
    assert not (out / "flows" / f"date={date}").exists()
    assert writing.exists() and not list((out / "detections" / f"date={date}").rglob("*.parquet"))


def test_duckdb_reads_the_exported_lake_of_two_sensors(tmp_path: Path):
    lake = tmp_path / "lake"
    counts = {}
    for sensor, samples in (("edge-1", SAMPLES[:3]), ("edge-2", SAMPLES[3:])):
        out = tmp_path / sensor
        replay(out, *samples, extra=["--sensor", sensor])
        for date in sorted({p.name.split("=", 1)[1] for p in (out / "detections").glob("date=*")}):
            export(out, date, f"file://{lake}")
        counts[sensor] = duckdb.sql(
            f"select family, count(*) from read_parquet('{out}/detections/**/*.parquet') group by family"
        ).fetchall()
    got = duckdb.sql(
        f"select sensor, family, count(*) from read_parquet('{lake}/detections/**/*.parquet', "
        f"hive_partitioning = true) group by sensor, family"
    ).fetchall()
    assert sorted(got) == sorted((s, f, n) for s, rows in counts.items() for f, n in rows)
    assert {s for s, _, _ in got} == {"edge-1", "edge-2"}
    talkers = duckdb.sql(
        f"select sensor, src_ip, sum(bytes_toserver + bytes_toclient) as bytes "
        f"from read_parquet('{lake}/flows/**/*.parquet', hive_partitioning = true) "
        f"group by sensor, src_ip order by bytes desc limit 5"
    ).fetchall()
    assert talkers and all(bytes > 0 for _, _, bytes in talkers)


def test_the_destination_can_be_configured_instead_of_the_environment(tmp_path: Path, s3):
    out = tmp_path / "out"
    replay(out, *SAMPLES)
    date = day_with_both_tables(out)
    env = {k: v for k, v in s3["env"].items() if k != "AWS_ENDPOINT_URL"}
    settings = ["--set", f'export.options.endpoint="{s3["endpoint"]}"',
                "--set", 'export.options.allow_http="true"']
    export(out, date, f"s3://{BUCKET}/configured", env=env, extra=settings)
    assert any(k.startswith("configured/flows/") for k in objects(s3["client"]))
    bad = export(out, date, f"s3://{BUCKET}/configured", env=env, check=False,
                 extra=["--set", 'export.options.colour="blue"'])
    assert bad.returncode != 0 and "unknown key \"colour\"" in bad.stderr


def test_export_credentials_never_reach_the_output_or_the_log(tmp_path: Path, s3):
    """A secret key given in the environment, and one given in the
    configuration's `export.options`, with every log level on: neither a
    working export nor a failing one prints them."""
    out = tmp_path / "out"
    replay(out, *SAMPLES, extra=["--sensor", "edge-1"])
    date = day_with_both_tables(out)
    from_env, from_config = "EnvSecret0123456789abcdefghijKLMNOPQRSTUV", "CfgSecret9876543210zyxwvutsrqKLMNOPQRSTUV"
    verbose = {"RUST_LOG": "trace"}
    working = export(out, date, f"s3://{BUCKET}/mirador",
                     env={**s3["env"], **verbose, "AWS_SECRET_ACCESS_KEY": from_env})
    assert "uploaded" in working.stdout or "part" in working.stdout, working.stdout
    configured = tmp_path / "export.toml"
    configured.write_text(f'[export.options]\naws_secret_access_key = "{from_config}"\n')
    failing = export(out, date, f"s3://{BUCKET}/elsewhere", check=False,
                     env={**s3["env"], **verbose, "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
                          "AWS_SECRET_ACCESS_KEY": from_env},
                     extra=["--config", str(configured)])
    assert failing.returncode != 0, failing.stdout + failing.stderr
    assert failing.stderr.strip(), "the failure is explained"
    for result in (working, failing):
        text = result.stdout + result.stderr
        for secret in (from_env, from_config):
            assert secret not in text, text
            assert secret[:20] not in text, text
