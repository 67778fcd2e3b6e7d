"""The exported lake read by Apache Spark (pyspark, local mode) as a new user
reads it: `spark.read.parquet` on a table's folder, no glob filter, no
options. The rows, partition columns and nested columns Spark sees must
equal what pyarrow reads from the sensors' own files, and a lake whose
days differ by a column added at the end reads with `mergeSchema`."""

import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import PCAPS, mirador_bin, replay, require

# Two sensors; the second sees tunnelled and VLAN-tagged traffic (tunnels,
# basic).
SENSORS = {
    "edge-1": [PCAPS / f"{name}.pcap" for name in ("webshell", "c2", "mining")],
    "edge-2": [PCAPS / "mirai.pcap", PCAPS / "covert.pcap", PCAPS / "tunnels.pcapng", PCAPS / "basic.pcap"],
}


@pytest.fixture(scope="module")
def spark():
    require("java")
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        pytest.fail("pyspark is not installed: run scripts/setup.sh")
    # Spark on loopback only.
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    session = (SparkSession.builder.master("local[1]").appName("mirador-lake")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.session.timeZone", "UTC")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """Each sensor's output, every day of it exported to one `file://` lake."""
    tmp = tmp_path_factory.mktemp("spark")
    lake, outs = tmp / "lake", {}
    for sensor, samples in SENSORS.items():
        out = outs[sensor] = tmp / sensor
        replay(out, *samples, extra=["--sensor", sensor])
        days = {p.name.split("=", 1)[1] for table in ("flows", "detections") for p in (out / table).glob("date=*")}
        for date in sorted(days):
            subprocess.run([mirador_bin(), "export", "--date", date, "--from", str(out), "--to", f"file://{lake}"],
                           check=True, capture_output=True, timeout=300)
    assert list(lake.rglob("_manifest.json")) and not list(lake.rglob("manifest.json"))
    return lake, outs


def local(outs: dict[str, Path], table: str) -> pa.Table:
    """Every row the sensors wrote to `table`, as pyarrow reads their files."""
    files = sorted(f for out in outs.values() for f in (out / table).rglob("*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")


def test_spark_reads_every_row_with_its_partitions(spark, lake):
    from pyspark.sql import types as T
    root, outs = lake
    flows = spark.read.parquet(str(root / "flows"))
    detections = spark.read.parquet(str(root / "detections"))
    for frame in (flows, detections):
        fields = {f.name: f.dataType for f in frame.schema.fields}
        assert fields["date"] == T.DateType() and fields["sensor"] == T.StringType(), frame.schema
    local_flows, local_detections = local(outs, "flows"), local(outs, "detections")
    per_sensor = Counter(local_flows.column("sensor").to_pylist())
    assert {r["sensor"]: r["count"] for r in flows.groupBy("sensor").count().collect()} == per_sensor
    per_family = Counter(zip(local_detections.column("sensor").to_pylist(),
                             local_detections.column("family").to_pylist()))
    got = {(r["sensor"], r["family"]): r["count"] for r in detections.groupBy("sensor", "family").count().collect()}
    assert got == per_family and len({s for s, _ in got}) == 2
    # The partition a row sits in is the day of its records.
    days = flows.selectExpr("date = to_date(ts_end) as same").groupBy("same").count().collect()
    assert {r["same"] for r in days} == {True}
    print(f"spark {spark.version}: {sum(per_sensor.values())} flows, {sum(per_family.values())} detections")


def test_nested_columns_and_timestamps_read_with_their_types(spark, lake):
    from pyspark.sql import types as T
    root, outs = lake
    flows = spark.read.parquet(str(root / "flows"))
    fields = {f.name: f.dataType for f in flows.schema.fields}
    assert fields["ts_start"] == T.TimestampType() and fields["ts_end"] == T.TimestampType()
    assert fields["vlan"] == T.ArrayType(T.IntegerType(), True), fields["vlan"]
    tunnel = fields["tunnel"]
    assert isinstance(tunnel, T.StructType)
    assert [(f.name, f.dataType) for f in tunnel.fields] == [
        ("type", T.StringType()), ("src_ip", T.StringType()), ("dst_ip", T.StringType()), ("id", T.LongType())]
    detections = spark.read.parquet(str(root / "detections"))
    assert {f.name: f.dataType for f in detections.schema.fields}["ts"] == T.TimestampType()
    # Values, not only types: instants to the microsecond, VLAN lists and
    # tunnel structs equal pyarrow's reading of the sensors' own files.
    rows = flows.selectExpr("sensor", "flow_id", "unix_micros(ts_start) as start", "unix_micros(ts_end) as end",
                            "vlan", "tunnel.type as tunnel_type", "tunnel.src_ip as tunnel_src",
                            "tunnel.id as tunnel_id").collect()
    spark_rows = sorted((r["sensor"], r["flow_id"], r["start"], r["end"], tuple(r["vlan"] or ()),
                         r["tunnel_type"], r["tunnel_src"], r["tunnel_id"]) for r in rows)
    table = local(outs, "flows")
    micros = lambda column: table.column(column).cast(pa.int64()).to_pylist()
    tunnels = table.column("tunnel").to_pylist()
    local_rows = sorted(zip(table.column("sensor").to_pylist(), table.column("flow_id").to_pylist(),
                            micros("ts_start"), micros("ts_end"),
                            (tuple(v or ()) for v in table.column("vlan").to_pylist()),
                            (t and t["type"] for t in tunnels), (t and t["src_ip"] for t in tunnels),
                            (t and t["id"] for t in tunnels)))
    assert spark_rows == local_rows
    assert any(r[4] for r in spark_rows) and any(r[5] for r in spark_rows), "the sample has VLANs and tunnels"


def test_a_lake_of_two_schema_versions_reads_with_merge_schema(spark, lake, tmp_path: Path):
    root, _ = lake
    # A copy of the lake, with one more sensor whose files have a column
    # added at the end: a later schema version beside the current one.
    merged = tmp_path / "lake"
    shutil.copytree(root, merged)
    source = sorted((merged / "flows").rglob("part-*.parquet"))[0]
    newer = pq.read_table(source)
    newer = newer.append_column("added_later", pa.array(["v"] * newer.num_rows, pa.string()))
    day = source.parent.parent.name
    target = merged / "flows" / day / "sensor=edge-3"
    target.mkdir()
    pq.write_table(newer, target / "part-0.parquet")
    flows = spark.read.option("mergeSchema", "true").parquet(str(merged / "flows"))
    names = [f.name for f in flows.schema.fields]
    assert "added_later" in names, names
    counts = {(r["sensor"], r["added_later"]): r["count"]
              for r in flows.groupBy("sensor", "added_later").count().collect()}
    assert counts[("edge-3", "v")] == newer.num_rows
    assert {s for s, v in counts if v is None} == set(SENSORS)
