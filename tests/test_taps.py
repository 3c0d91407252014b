"""Spark tests of the JVM taps: histograms and exact key counts in the fused scan."""

from __future__ import annotations

import logging
import math
import random
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, LongType, StructField, StructType

from streamrec_spark.contracts.loader import load_contract
from streamrec_spark.contracts.model import Grid
from streamrec_spark.errors import InvalidRequestError
from streamrec_spark.validation import metrics as spark_metrics
from streamrec_spark.validation import taps
from streamrec_spark.validation.schema_check import check_schema

from rows import AS_OF, DAY, clean_rows, event, frame

LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1


@pytest.fixture(autouse=True)
def require_jar(spark):
    # The fallback tests below need the real taps as their reference result.
    if not taps.taps_available(spark):
        pytest.fail("streamrec-spark-jvm-1.jar is not on the test session's classpath; run scripts/setup.sh")


def long_frame(spark, values, partitions):
    schema = StructType([StructField("key", LongType())])
    return spark.createDataFrame([(v,) for v in values], schema).repartition(partitions)


def run_key_tap(spark, df):
    tap = taps.key_tap(spark, F.col("key"))
    tapped = df.select(tap.column.alias("t")).agg(F.count("t").alias("n")).collect()[0]["n"]
    return tap, tapped


def test_key_counts_exact_across_partitions(spark):
    # Repeats span partitions, and the extreme values fall in the first and the last bucket.
    values = [LONG_MIN, LONG_MIN, -5, 0, 0, 0, 7, 7, LONG_MAX, None, None] + list(range(100, 400))
    tap, tapped = run_key_tap(spark, long_frame(spark, values, partitions=4))

    assert tap.recorded() == tapped == len(values) - 2
    assert tap.counts() == (305, 3)


def test_key_counts_large_partitions(spark):
    # 20,000 keys a partition: about 80 a bucket, so the hash tables grow and probe.
    df = spark.range(0, 60_000, numPartitions=3).select(((F.col("id") * 7919) % 45_000).alias("key"))
    tap, tapped = run_key_tap(spark, df)

    assert tap.counts() == (45_000, 15_000)
    assert tapped == 60_000


def test_key_counts_large_merge_splits_over_cores(spark):
    # Above 2^20 keys the driver counts each range of buckets on its own thread.
    df = spark.range(0, 1_200_000, numPartitions=2).select((F.col("id") % 1_000_000).alias("key"))
    tap, tapped = run_key_tap(spark, df)

    assert tap.counts() == (1_000_000, 200_000)
    assert tapped == 1_200_000


def test_key_counts_empty_input(spark):
    tap, tapped = run_key_tap(spark, long_frame(spark, [None], partitions=1))

    assert tap.counts() == (0, 0)
    assert tapped == tap.recorded() == 0


def test_rerun_replaces_partition_states(spark):
    # A second job over the same partitions stands for a retried stage: every partition's
    # state is replaced, not added, so nothing is counted twice.
    df = spark.range(0, 1000, numPartitions=4).select((F.col("id") % 300).alias("key"))
    tap = taps.key_tap(spark, F.col("key"))
    counted = df.select(tap.column.alias("t")).agg(F.count("t").alias("n"))
    counted.collect()
    counted.collect()

    assert tap.recorded() == 1000
    assert tap.counts() == (300, 300)


def test_over_limit_returns_none(spark, monkeypatch):
    monkeypatch.setattr(taps, "MAX_KEYS_PER_BUFFER", 5)
    tap, _ = run_key_tap(spark, long_frame(spark, list(range(20)), partitions=2))

    assert tap.counts() is None


def test_key_sets_over_total_limit(spark, monkeypatch):
    # Each partition's 4 keys fit a buffer of 5, but the 8 together do not. The driver drops
    # them when the second task's keys arrive, instead of keeping them until counts().
    monkeypatch.setattr(taps, "MAX_KEYS_PER_BUFFER", 5)
    tap, tapped = run_key_tap(spark, long_frame(spark, list(range(8)), partitions=2))

    assert tapped == tap.recorded() == 8
    assert tap.accumulator.heldKeys() == 0
    assert tap.counts() is None


def test_key_sets_within_limit_kept(spark, monkeypatch):
    monkeypatch.setattr(taps, "MAX_KEYS_PER_BUFFER", 8)
    tap, _ = run_key_tap(spark, long_frame(spark, list(range(8)), partitions=2))

    assert tap.accumulator.heldKeys() == 8
    assert tap.counts() == (8, 0)


def test_tap_on_non_nullable_column(spark):
    # Spark turns count() of a column that cannot be null into count(1) and then drops the
    # unused column. The tap therefore reads as nullable, whatever its input.
    tap, tapped = run_key_tap(spark, spark.range(0, 1000, numPartitions=2).withColumnRenamed("id", "key"))

    assert tapped == tap.recorded() == 1000
    assert tap.counts() == (1000, 0)


def test_tap_without_codegen(spark):
    df = spark.range(0, 5000, numPartitions=3).select((F.col("id") % 700).alias("key"))
    spark.conf.set("spark.sql.codegen.wholeStage", "false")
    spark.conf.set("spark.sql.codegen.factoryMode", "NO_CODEGEN")
    try:
        tap, tapped = run_key_tap(spark, df)
    finally:
        spark.conf.unset("spark.sql.codegen.wholeStage")
        spark.conf.unset("spark.sql.codegen.factoryMode")

    assert tapped == tap.recorded() == 5000
    assert tap.counts() == (700, 700)


def test_tap_wrong_column_type(spark):
    tap = taps.key_tap(spark, F.col("key"))
    wrong = taps.histogram_tap(spark, F.col("key"), 4)
    df = long_frame(spark, [1, 2], partitions=1)

    with pytest.raises(Exception, match="HistogramAccumulator taps INT columns, got BIGINT"):
        df.select(wrong.column.alias("t")).agg(F.count("t")).collect()
    assert tap.recorded() == 0


def test_histogram_counts_bins_and_skips_nulls(spark):
    schema = StructType([StructField("bin", IntegerType())])
    values = [0, 0, 3, None, 2, 3, 3]
    df = spark.createDataFrame([(v,) for v in values], schema).repartition(3)
    tap = taps.histogram_tap(spark, F.col("bin"), 4)
    tapped = df.select(tap.column.alias("t")).agg(F.count("t").alias("n")).collect()[0]["n"]

    assert tap.counts() == [2, 0, 1, 3]
    assert tap.recorded() == tapped == 6


GRIDS = [
    Grid(0.0, 14400.0, 64, "log"),
    Grid(3.0, 50.0, 7, "log"),
    Grid(-5.0, 7.0, 12, "linear"),
]


def grid_probe_values(grid, seed=7):
    """Values on both sides of every edge, random values over the grid and beyond, specials."""
    values = [-0.0, 0.0, -1.0, 1e300, -1e300, math.inf, -math.inf, math.nan]
    for edge in grid.edges():
        below = above = edge
        values.append(edge)
        for _ in range(3):
            below, above = math.nextafter(below, -math.inf), math.nextafter(above, math.inf)
            values += [below, above]
    generator = random.Random(seed)
    span = grid.upper - grid.lower
    values += [grid.lower - span / 4 + generator.random() * span * 1.5 for _ in range(1500)]
    values += [grid.lower + math.expm1(generator.random() * math.log1p(span)) for _ in range(1500)]
    return values


@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: f"{g.scale}-{g.lower}-{g.upper}-{g.bins}")
def test_grid_tap_bins_match_sql_expression(spark, grid):
    values = grid_probe_values(grid)
    schema = StructType([StructField("position", IntegerType()), StructField("x", DoubleType())])
    df = spark.createDataFrame(list(enumerate(values)), schema)
    expected = {
        row["position"]: row["bin"]
        for row in df.select("position", spark_metrics.grid_index(F.col("x"), grid).alias("bin")).collect()
    }
    jvm_grid = spark._jvm.streamrec.spark.GridBins(
        grid.lower, grid.upper, grid.bins, grid.scale == "log", spark_metrics.grid_span(grid)
    )

    actual = {position: jvm_grid.bin(float(x)) for position, x in enumerate(values)}

    assert {p: b for p, b in actual.items() if b != -1} == {p: b for p, b in expected.items() if b is not None}
    assert [p for p, b in actual.items() if b == -1] == [p for p, b in expected.items() if b is None]
    assert actual[values.index(-0.0)] == actual[values.index(0.0)]
    assert expected[values.index(math.inf)] == grid.bins - 1


@pytest.mark.parametrize("codegen", [True, False], ids=["codegen", "interpreted"])
def test_grid_tap_skips_null_and_nan(spark, codegen):
    grid = GRIDS[0]
    values = [0.0, 0.1, 0.2, 1.0, 14399.0, 14400.0, 1e9, -3.0, None, math.nan, 60.0, 60.0]
    schema = StructType([StructField("x", DoubleType())])
    df = spark.createDataFrame([(v,) for v in values], schema).repartition(3)
    tap = taps.grid_tap(spark, F.col("x"), grid, spark_metrics.grid_span(grid))
    if not codegen:
        spark.conf.set("spark.sql.codegen.wholeStage", "false")
        spark.conf.set("spark.sql.codegen.factoryMode", "NO_CODEGEN")
    try:
        tapped = df.select(tap.column.alias("t")).agg(F.count("t").alias("n")).collect()[0]["n"]
    finally:
        spark.conf.unset("spark.sql.codegen.wholeStage")
        spark.conf.unset("spark.sql.codegen.factoryMode")

    expected = [0] * grid.bins
    for row in df.select(spark_metrics.grid_index(F.col("x"), grid).alias("bin")).collect():
        if row["bin"] is not None:
            expected[row["bin"]] += 1
    assert tap.counts() == expected
    assert tap.recorded() == tapped == 10
    assert expected[0] == 3
    assert expected[grid.bins - 1] == 3


def test_grid_tap_rejects_integer_column(spark):
    grid = GRIDS[0]
    tap = taps.grid_tap(spark, F.col("key"), grid, spark_metrics.grid_span(grid))

    with pytest.raises(Exception, match="HistogramAccumulator taps DOUBLE columns, got BIGINT"):
        long_frame(spark, [1, 2], partitions=1).select(tap.column.alias("t")).agg(F.count("t")).collect()


def suite_metrics(spark, rows):
    contract = load_contract(Path(__file__).resolve().parent / "data" / "click_stream_small.yaml")
    df = frame(spark, rows)
    report = check_schema(contract, df.schema)
    plan = spark_metrics.plan_metrics(contract, report, DAY, AS_OF)
    metrics = spark_metrics.compute_metrics(df.repartition(3), plan)
    keys = ("pk_duplicate_hashes", "distinct:user_id")
    return {key: metrics[key] for key in keys}, {k: v for k, v in metrics.items() if k.startswith("grid:")}


def duplicated_rows():
    rows = clean_rows()
    rows[3] = event(3, event_id="e-dup")
    rows[4] = event(4, event_id="e-dup")
    rows[5] = event(5, event_id="e-dup", user_id=None)
    rows[6] = event(6, event_id="e-other", user_id=99)
    rows[7] = event(7, event_id="e-other")
    return rows


EXPECTED_KEYS = {"pk_duplicate_hashes": 2, "distinct:user_id": 5}


def test_suite_metrics_same_with_and_without_jar(spark, monkeypatch, caplog):
    keys, grid = suite_metrics(spark, duplicated_rows())
    assert keys == EXPECTED_KEYS
    assert grid and sum(grid.values()) == len(duplicated_rows())

    monkeypatch.setattr(taps, "KEY_SET_CLASS", "streamrec.spark.MissingAccumulator")
    monkeypatch.setattr(taps, "_warned_applications", set())
    with caplog.at_level(logging.WARNING, logger=taps.__name__):
        assert suite_metrics(spark, duplicated_rows()) == (EXPECTED_KEYS, grid)
        assert suite_metrics(spark, duplicated_rows()) == (EXPECTED_KEYS, grid)

    assert caplog.text.count("not found on the driver's classpath") == 1


def test_setting_turns_key_taps_off(spark, caplog):
    with caplog.at_level(logging.INFO, logger=spark_metrics.__name__):
        assert suite_metrics(spark, duplicated_rows())[0] == EXPECTED_KEYS
    assert "shuffle pass" not in caplog.text

    spark.conf.set(spark_metrics.KEY_TAPS_SETTING, "false")
    try:
        with caplog.at_level(logging.INFO, logger=spark_metrics.__name__):
            assert suite_metrics(spark, duplicated_rows())[0] == EXPECTED_KEYS
    finally:
        spark.conf.unset(spark_metrics.KEY_TAPS_SETTING)

    assert "counting pk, distinct:user_id exactly with a shuffle pass" in caplog.text


def test_suite_falls_back_over_limit(spark, monkeypatch, caplog):
    monkeypatch.setattr(taps, "MAX_KEYS_PER_BUFFER", 2)

    with caplog.at_level(logging.WARNING, logger=spark_metrics.__name__):
        assert suite_metrics(spark, duplicated_rows())[0] == EXPECTED_KEYS
    assert "exceeded the key buffers' memory limit" in caplog.text


def test_suite_recounts_when_a_tap_disagrees(spark, monkeypatch, caplog):
    # A tap whose recorded total differs from the aggregation's count of its column is not
    # trusted: the histogram is counted again and the keys go through the shuffle pass.
    expected = suite_metrics(spark, duplicated_rows())
    monkeypatch.setattr(taps.HistogramTap, "recorded", lambda self: -1)
    monkeypatch.setattr(taps.KeyTap, "recorded", lambda self: -1)

    with caplog.at_level(logging.WARNING, logger=spark_metrics.__name__):
        assert suite_metrics(spark, duplicated_rows()) == expected
    assert "counting it again with one aggregate per bin" in caplog.text
    assert "counting it with a shuffle pass instead" in caplog.text


@pytest.mark.parametrize("value", ["maybe", "0", ""])
def test_key_taps_setting_invalid(spark, value):
    spark.conf.set(spark_metrics.KEY_TAPS_SETTING, value)
    try:
        with pytest.raises(InvalidRequestError, match="is neither true nor false"):
            suite_metrics(spark, duplicated_rows())
    finally:
        spark.conf.unset(spark_metrics.KEY_TAPS_SETTING)


def test_result_size_limit_uses_shuffle(spark, caplog):
    # The key sets are task results. Above spark.task.maxDirectResultSize (1 MB) they travel
    # through the block manager, where the driver aborts the job past spark.driver.maxResultSize.
    # The keys are then counted with a shuffle pass instead.
    df = spark.range(0, 300_000, numPartitions=1).select(F.col("id").alias("key"))
    plan = spark_metrics.MetricPlan(
        projection={"key": F.col("key")}, exact_keys={"distinct:key": F.col("key")}
    )
    plan.add("rows", F.count(F.lit(1)))
    conf = spark.sparkContext._jsc.sc().conf()
    previous = conf.get("spark.driver.maxResultSize", "1g")
    conf.set("spark.driver.maxResultSize", "64k")
    try:
        with caplog.at_level(logging.WARNING, logger=spark_metrics.__name__):
            metrics = spark_metrics.compute_metrics(df, plan)
    finally:
        conf.set("spark.driver.maxResultSize", previous)

    assert metrics == {"rows": 300_000, "distinct:key": 300_000}
    assert "did not reach the driver (their total exceeds spark.driver.maxResultSize)" in caplog.text
