"""Spark tests of the exact key counts: the JVM aggregate and its shuffle fallback."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StructField, StructType

from streamrec_spark.contracts.loader import load_contract
from streamrec_spark.validation import key_counts
from streamrec_spark.validation import metrics as spark_metrics
from streamrec_spark.validation.schema_check import check_schema

from rows import AS_OF, DAY, clean_rows, event, frame

LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1


@pytest.fixture(autouse=True)
def require_jar(spark):
    # The fallback tests below need the real aggregate as their reference result.
    if not key_counts.jvm_counting_available(spark):
        pytest.fail("streamrec-spark-jvm-1.jar is not on the test session's classpath; run scripts/setup.sh")


def long_frame(spark, values, partitions):
    schema = StructType([StructField("key", LongType())])
    return spark.createDataFrame([(v,) for v in values], schema).repartition(partitions)


def test_counts_exact_across_partitions(spark):
    # Repeats span partitions, and the extreme values test the sorted-delta encoding.
    values = [LONG_MIN, LONG_MIN, -5, 0, 0, 0, 7, 7, LONG_MAX, None, None] + list(range(100, 400))
    df = long_frame(spark, values, partitions=4)

    counts = key_counts.count_long_keys(df, {"key": F.col("key")})

    assert counts["key"] == (305, 3)


def test_counts_two_keys_together(spark):
    df = spark.range(0, 1000, numPartitions=3).select(
        (F.col("id") % 250).alias("repeating"), F.col("id").alias("unique")
    )

    counts = key_counts.count_long_keys(df, {"a": F.col("repeating"), "b": F.col("unique")})

    assert counts == {"a": (250, 250), "b": (1000, 0)}


def test_counts_empty_input(spark):
    df = long_frame(spark, [None], partitions=1)

    assert key_counts.count_long_keys(df, {"key": F.col("key")}) == {"key": (0, 0)}


def test_over_limit_returns_none(spark, monkeypatch, caplog):
    monkeypatch.setattr(key_counts, "MAX_KEYS_PER_BUFFER", 5)
    df = long_frame(spark, list(range(20)), partitions=2)

    with caplog.at_level(logging.WARNING, logger=key_counts.__name__):
        counts = key_counts.count_long_keys(df, {"key": F.col("key")})

    assert counts == {"key": None}
    assert "exceeded the key-count aggregate's memory limit" in caplog.text


def suite_key_metrics(spark, rows):
    contract = load_contract(Path(__file__).resolve().parent / "data" / "click_stream_small.yaml")
    df = frame(spark, rows)
    report = check_schema(contract, df.schema)
    plan = spark_metrics.plan_metrics(contract, report, DAY, AS_OF)
    metrics = spark_metrics.compute_metrics(df.repartition(3), plan)
    return {key: metrics[key] for key in ("pk_duplicate_hashes", "distinct:user_id")}


def duplicated_rows():
    rows = clean_rows()
    rows[3] = event(3, event_id="e-dup")
    rows[4] = event(4, event_id="e-dup")
    rows[5] = event(5, event_id="e-dup", user_id=None)
    rows[6] = event(6, event_id="e-other", user_id=99)
    rows[7] = event(7, event_id="e-other")
    return rows


def test_suite_counts_same_with_and_without_jar(spark, monkeypatch, caplog):
    expected = {"pk_duplicate_hashes": 2, "distinct:user_id": 5}
    assert suite_key_metrics(spark, duplicated_rows()) == expected

    monkeypatch.setattr(key_counts, "AGGREGATOR_CLASS", "streamrec.spark.MissingAggregator")
    monkeypatch.setattr(key_counts, "_warned_applications", set())
    with caplog.at_level(logging.WARNING, logger=key_counts.__name__):
        assert suite_key_metrics(spark, duplicated_rows()) == expected
        assert suite_key_metrics(spark, duplicated_rows()) == expected

    assert caplog.text.count("not found on the driver's classpath") == 1


def test_suite_falls_back_over_limit(spark, monkeypatch):
    monkeypatch.setattr(key_counts, "MAX_KEYS_PER_BUFFER", 2)

    assert suite_key_metrics(spark, duplicated_rows()) == {"pk_duplicate_hashes": 2, "distinct:user_id": 5}
