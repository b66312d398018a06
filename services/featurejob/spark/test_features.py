"""Checks spark/features.py against the golden fixture that the Go engine's
test (internal/local, TestGolden) checks too. Needs pyspark (and Java):

    cd services/featurejob/spark && python3 -m pytest -q test_features.py
"""

import csv
import datetime as dt
import json
import math
import os

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

import features

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "golden")


@pytest.fixture(scope="module")
def spark():
    s = (SparkSession.builder.master("local[1]").appName("features-test")
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.sql.shuffle.partitions", "1")
         .config("spark.ui.enabled", "false").getOrCreate())
    yield s
    s.stop()


def read_csv(spark, name, schema):
    """The fixture's CSV with the raw tables' types (empty = null)."""
    df = spark.read.csv(os.path.join(GOLDEN, name), header=True, schema=schema)
    for col, typ in [(c.split()[0], c.split()[1]) for c in schema.split(",")]:
        if typ == "string" and col.endswith(("_date", "_at")):
            df = df.withColumn(col, F.col(col).cast("timestamp" if col.endswith("_at") else "date"))
    return df


def inputs(spark):
    assets = read_csv(spark, "assets.csv", "id bigint, asset_tag string, vehicle_type string, status string, "
                                           "commissioned_date string, meter_reading double, engine_hours double")
    wos = read_csv(spark, "work_orders.csv", "id bigint, asset_id bigint, type string, status string, priority string, "
                                             "created_at string, completed_at string, due_date string, repair_hours double")
    plans = read_csv(spark, "maintenance_plans.csv", "id bigint, asset_id bigint, end_date string")
    with open(os.path.join(GOLDEN, "params.json")) as f:
        params = json.load(f)
    return assets, wos, plans, params


def expected(name):
    with open(os.path.join(GOLDEN, name), newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == [c for c, _ in features.COLUMNS], "golden header is not features.COLUMNS"
    return rows[1:]


def same(got, want):
    if want == "":
        return got is None
    if isinstance(got, float):
        return math.isclose(got, float(want), rel_tol=1e-9, abs_tol=1e-9)
    return str(got) == want


def check(df, name):
    want = expected(name)
    got = df.collect()
    assert [f.name for f in df.schema.fields] == [c for c, _ in features.COLUMNS]
    assert len(got) == len(want), f"{name}: {len(got)} rows, golden has {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        for (col, _), gv, wv in zip(features.COLUMNS, g, w):
            assert same(gv, wv), f"{name} row {i + 1} (asset {w[0]}, {w[2]}) {col} = {gv!r}, want {wv}"


def test_golden(spark):
    assets, wos, plans, p = inputs(spark)
    training, scoring = features.build(spark, assets, wos, plans, p["snapshot_date"],
                                       p["lookback_days"], p["label_window_days"])
    check(training, "training.csv")
    check(scoring, "scoring.csv")


def test_output_types(spark):
    assets, wos, plans, p = inputs(spark)
    training, _ = features.build(spark, assets, wos, plans, p["snapshot_date"], p["lookback_days"], p["label_window_days"])
    assert [(f.name, f.dataType.simpleString()) for f in training.schema.fields] == features.COLUMNS


def test_no_assets_is_bad_input(spark):
    assets, wos, plans, p = inputs(spark)
    with pytest.raises(features.BadInput, match="no rows"):
        features.build(spark, assets.limit(0), wos, plans, p["snapshot_date"])


def test_history_too_short_is_bad_input(spark):
    assets, wos, plans, p = inputs(spark)
    with pytest.raises(features.BadInput, match="no training snapshots"):
        features.build(spark, assets, wos, plans, "2025-08-01", p["lookback_days"], p["label_window_days"])


def test_snapshots():
    day = features.DAY_US
    earliest = features.unix_day(dt.date(2025, 1, 10)) * day + 8 * 3600 * 10**6
    snaps = features.snapshots(earliest, features.unix_day(dt.date(2026, 3, 1)), 180, 60)
    assert [str(features.EPOCH + dt.timedelta(days=s)) for s in snaps] == \
        ["2025-08-01", "2025-09-01", "2025-10-01", "2025-11-01", "2025-12-01"]
    assert features.snapshots(None, 0, 1, 1) == []


def test_write_single(spark, tmp_path):
    df = spark.createDataFrame([(1, "a"), (2, "b")], "x int, y string").repartition(3)
    path = str(tmp_path / "out.parquet")
    features.write_single(spark, df, path)
    assert os.path.isfile(path)
    assert sorted(r.x for r in spark.read.parquet(path).collect()) == [1, 2]
