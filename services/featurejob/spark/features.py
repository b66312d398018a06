"""cmmsflow feature engineering in PySpark: the Dataproc engine's job.

Computes exactly what featurejob's local Go engine computes
(services/featurejob/internal/local) with the same output schema
(libs/features.Row); the definitions are in the libs/features package
comment. The golden fixture in services/featurejob/testdata/golden is checked
by both: by `go test` for the Go engine and by spark/test_features.py here.

Usage (Dataproc passes these arguments):

    spark-submit features.py --raw gs://BUCKET/runs/RUN/raw/ \
        --out gs://BUCKET/runs/RUN/features/ --snapshot-date 2026-03-01 \
        [--lookback-days 365] [--label-window-days 90]

It reads <raw>assets.parquet, <raw>work_orders.parquet and
<raw>maintenance_plans.parquet and writes <out>training.parquet and
<out>scoring.parquet, each a single Parquet file (like the Go engine's), so
the trainer reads the same objects whichever engine ran.
"""

import argparse
import datetime as dt
import sys

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

# libs/features.Columns, in order, with the Spark types of libs/features.Row.
COLUMNS = [
    ("asset_id", "bigint"),
    ("vehicle_type", "string"),
    ("snapshot_date", "string"),
    ("asset_age_days", "int"),
    ("days_since_last_maintenance", "int"),
    ("total_work_orders", "int"),
    ("completed_work_orders", "int"),
    ("high_priority_work_orders", "int"),
    ("critical_work_orders", "int"),
    ("corrective_work_orders", "int"),
    ("missed_maintenance", "int"),
    ("avg_repair_hours", "double"),
    ("work_order_completion_rate", "double"),
    ("high_priority_ratio", "double"),
    ("meter_reading", "double"),
    ("engine_hours", "double"),
    ("label", "int"),
]

DEFAULT_LOOKBACK_DAYS = 365
DEFAULT_LABEL_WINDOW_DAYS = 90
UNLABELLED = -1
DAY_US = 86_400_000_000
EPOCH = dt.date(1970, 1, 1)


class BadInput(ValueError):
    """Input no retry can fix; the message says what is wrong."""


def unix_day(d: dt.date) -> int:
    return (d - EPOCH).days


def snapshots(earliest_us, snapshot_day: int, lookback_days: int, label_window_days: int) -> list:
    """The training snapshot days: the first of every month from the first one
    a full lookback window after the earliest work order, to the last one whose
    label window ends by the snapshot date."""
    if earliest_us is None:
        return []
    first = EPOCH + dt.timedelta(days=earliest_us // DAY_US + lookback_days)
    s = first if first.day == 1 else _next_month(first.replace(day=1))
    out = []
    while unix_day(s) + label_window_days <= snapshot_day:
        out.append(unix_day(s))
        s = _next_month(s)
    return out


def _next_month(d: dt.date) -> dt.date:
    return dt.date(d.year + d.month // 12, d.month % 12 + 1, 1)


def build(spark: SparkSession, assets: DataFrame, work_orders: DataFrame, plans: DataFrame,
          snapshot_date: str, lookback_days: int = DEFAULT_LOOKBACK_DAYS,
          label_window_days: int = DEFAULT_LABEL_WINDOW_DAYS):
    """Returns (training, scoring) DataFrames with the COLUMNS schema, ordered
    like the Go engine's output (snapshot, asset id / asset id)."""
    try:
        snapshot_day = unix_day(dt.date.fromisoformat(snapshot_date))
    except ValueError as e:
        raise BadInput(f"snapshot date {snapshot_date!r}: want YYYY-MM-DD") from e
    if lookback_days < 1 or label_window_days < 1:
        raise BadInput("lookback and label window must be at least one day")

    a = assets.select(
        F.col("id").cast("bigint").alias("asset_id"),
        F.col("vehicle_type").cast("string").alias("vehicle_type"),
        F.col("status").cast("string").alias("status"),
        F.expr("unix_date(cast(commissioned_date as date))").alias("comm"),
        F.col("meter_reading").cast("double").alias("meter"),
        F.col("engine_hours").cast("double").alias("hours"),
    ).cache()
    if a.limit(1).count() == 0:
        raise BadInput("the raw assets table has no rows: nothing to build features for")

    # A RETIRED asset's retirement day: its plans' latest end_date.
    ends = (plans.select(F.col("asset_id").cast("bigint").alias("asset_id"),
                         F.expr("unix_date(cast(end_date as date))").alias("end_day"))
            .where(F.col("end_day").isNotNull())
            .join(a.where(F.col("status") == "RETIRED").select("asset_id"), "asset_id")
            .groupBy("asset_id").agg(F.max("end_day").alias("end_day")))
    a = a.join(ends, "asset_id", "left")

    w = (work_orders.select(
        F.col("asset_id").cast("bigint").alias("asset_id"),
        F.expr("unix_micros(cast(created_at as timestamp))").alias("created_us"),
        F.expr("unix_micros(cast(completed_at as timestamp))").alias("completed_us"),
        F.expr("unix_date(cast(due_date as date))").alias("due"),
        F.col("type").cast("string").alias("type"),
        F.col("priority").cast("string").alias("priority"),
        F.col("repair_hours").cast("double").alias("repair"),
    ).join(a.select("asset_id"), "asset_id")).cache()  # work orders of known assets only

    earliest = w.agg(F.min("created_us")).first()[0]
    snaps = snapshots(earliest, snapshot_day, lookback_days, label_window_days)
    if not snaps:
        start = "nowhere (there are none)" if earliest is None else \
            (EPOCH + dt.timedelta(days=earliest // DAY_US)).isoformat()
        raise BadInput(
            f"no training snapshots: the work orders start {start}; a snapshot needs {lookback_days} days "
            f"of history before it and its {label_window_days}-day label window must end by {snapshot_date}")

    snap_df = spark.createDataFrame([(s,) for s in snaps], "s int")
    train_base = (a.crossJoin(snap_df)
                  .where((F.col("comm") < F.col("s")) & (F.col("end_day").isNull() | (F.col("end_day") >= F.col("s")))))
    score_base = a.where(F.col("status") == "ACTIVE").withColumn("s", F.lit(snapshot_day).cast("int"))

    training = _features(train_base, w, snapshot_day, lookback_days, label_window_days, True) \
        .orderBy("snapshot_date", "asset_id")
    scoring = _features(score_base, w, snapshot_day, lookback_days, label_window_days, False) \
        .orderBy("asset_id")
    return training, scoring


def _features(base: DataFrame, w: DataFrame, snapshot_day: int, lookback_days: int,
              label_window_days: int, labelled: bool) -> DataFrame:
    c = F.col
    s_us = c("s").cast("bigint") * F.lit(DAY_US)
    before = c("created_us") < s_us
    in_window = before & (c("created_us") >= s_us - F.lit(lookback_days * DAY_US))
    done_before = c("completed_us").isNotNull() & (c("completed_us") < s_us)
    preventive = c("type") == "PREVENTIVE"
    missed = (before & preventive & c("due").isNotNull()
              & (c("due") >= c("s") - F.lit(lookback_days)) & (c("due") < c("s"))
              & (c("completed_us").isNull() | (c("completed_us") >= (c("due").cast("bigint") + 1) * F.lit(DAY_US))))
    label_hit = ((c("type") == "CORRECTIVE") & (c("created_us") >= s_us)
                 & (c("created_us") < s_us + F.lit(label_window_days * DAY_US)))
    with_repair = in_window & done_before & c("repair").isNotNull()

    def count(cond):
        return F.sum(F.when(cond, 1).otherwise(0)).cast("int")

    agg = (base.join(w, "asset_id", "left")
           .groupBy("asset_id", "vehicle_type", "s", "comm", "meter", "hours")
           .agg(count(in_window).alias("total"),
                count(in_window & done_before).alias("completed"),
                count(in_window & c("priority").isin("HIGH", "CRITICAL")).alias("high"),
                count(in_window & (c("priority") == "CRITICAL")).alias("critical"),
                count(in_window & (c("type") == "CORRECTIVE")).alias("corrective"),
                count(missed).alias("missed"),
                F.sum(F.when(with_repair, c("repair"))).alias("repair_sum"),
                count(with_repair).alias("repairs"),
                F.max(F.when(before & preventive & done_before, c("completed_us"))).alias("last_maint_us"),
                F.max(F.when(label_hit, 1).otherwise(0)).alias("hit")))

    age = F.greatest(c("s") - c("comm"), F.lit(0))
    age_now = F.lit(snapshot_day) - c("comm")
    last_day = F.expr(f"(last_maint_us - pmod(last_maint_us, {DAY_US})) div {DAY_US}")
    scaled = (age_now > 0) & (age < age_now)
    out = agg.select(
        c("asset_id"),
        c("vehicle_type"),
        F.date_format(F.expr("date_from_unix_date(s)"), "yyyy-MM-dd").alias("snapshot_date"),
        age.alias("asset_age_days"),
        F.when(c("last_maint_us").isNull(), age).otherwise(c("s") - last_day).alias("days_since_last_maintenance"),
        c("total").alias("total_work_orders"),
        c("completed").alias("completed_work_orders"),
        c("high").alias("high_priority_work_orders"),
        c("critical").alias("critical_work_orders"),
        c("corrective").alias("corrective_work_orders"),
        c("missed").alias("missed_maintenance"),
        F.when(c("repairs") > 0, c("repair_sum") / c("repairs")).otherwise(F.lit(0.0)).alias("avg_repair_hours"),
        F.when(c("total") > 0, c("completed") / c("total")).otherwise(F.lit(0.0)).alias("work_order_completion_rate"),
        F.when(c("total") > 0, c("high") / c("total")).otherwise(F.lit(0.0)).alias("high_priority_ratio"),
        F.when(scaled, c("meter") * age / age_now).otherwise(c("meter")).alias("meter_reading"),
        F.when(scaled, c("hours") * age / age_now).otherwise(c("hours")).alias("engine_hours"),
        (c("hit") if labelled else F.lit(UNLABELLED)).alias("label"),
    )
    return out.select([F.col(name).cast(typ).alias(name) for name, typ in COLUMNS])


def write_single(spark: SparkSession, df: DataFrame, path: str) -> None:
    """Writes df as one Parquet file at path (not a folder of parts): a
    single-partition write to path + ".parts/", then the part is renamed."""
    tmp = path + ".parts"
    df.coalesce(1).write.mode("overwrite").parquet(tmp)
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    Path = jvm.org.apache.hadoop.fs.Path
    fs = Path(tmp).getFileSystem(conf)
    parts = [st.getPath() for st in fs.listStatus(Path(tmp)) if st.getPath().getName().startswith("part-")]
    if len(parts) != 1:
        raise RuntimeError(f"{tmp}: {len(parts)} part files, want 1")
    dst = Path(path)
    if fs.exists(dst):
        fs.delete(dst, False)
    if not fs.rename(parts[0], dst):
        raise RuntimeError(f"rename {parts[0]} to {path} failed")
    fs.delete(Path(tmp), True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--raw", required=True, help="folder of the raw tables (gs://.../raw/)")
    p.add_argument("--out", required=True, help="folder for training.parquet and scoring.parquet")
    p.add_argument("--snapshot-date", required=True, help="YYYY-MM-DD")
    p.add_argument("--lookback-days", type=int, default=DEFAULT_LOOKBACK_DAYS)
    p.add_argument("--label-window-days", type=int, default=DEFAULT_LABEL_WINDOW_DAYS)
    args = p.parse_args(argv)
    raw = args.raw if args.raw.endswith("/") else args.raw + "/"
    out = args.out if args.out.endswith("/") else args.out + "/"

    spark = (SparkSession.builder.appName("cmmsflow-features")
             .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    try:
        tables = {}
        for t in ("assets", "work_orders", "maintenance_plans"):
            try:
                tables[t] = spark.read.parquet(raw + t + ".parquet")
            except Exception as e:  # AnalysisException: missing or unreadable
                raise BadInput(f"raw {t} object {raw}{t}.parquet is missing or not readable Parquet: {e}") from e
        training, scoring = build(spark, tables["assets"], tables["work_orders"], tables["maintenance_plans"],
                                  args.snapshot_date, args.lookback_days, args.label_window_days)
        write_single(spark, training, out + "training.parquet")
        write_single(spark, scoring, out + "scoring.parquet")
    except BadInput as e:
        print(f"bad input: {e}", file=sys.stderr)
        return 2
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
