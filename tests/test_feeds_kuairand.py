"""Spark tests of the snapshot feeds on the real KuaiRand feature tables: conversion, the
contracts passing on purpose despite the quirks, and readable recorded failures when a column
is renamed upstream."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from streamrec_spark.contracts.registry import load_registry
from streamrec_spark.errors import InputDataError
from streamrec_spark.feeds.item_metadata import convert_item_metadata
from streamrec_spark.feeds.snapshot import convert_snapshot
from streamrec_spark.feeds.user_profiles import convert_user_profiles
from streamrec_spark.validate_job import ValidationRequest, validate_partition
from streamrec_spark.validation.results import ERRORED, FAILED, PASSED, Reason
from streamrec_spark.validation.suite import run_suite

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "kuairand"
SNAPSHOT = date(2022, 4, 21)
AS_OF = datetime(2022, 4, 22, 1, 0, tzinfo=timezone.utc)
DATABASE = "streamrec_test_feeds"


@pytest.fixture(scope="module")
def registry():
    return load_registry(REPO / "conf" / "registry.yaml")


@pytest.fixture(scope="module")
def feeds(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("feeds")
    convert_item_metadata(spark, str(DATA / "video_features_basic_pure.csv.gz"), str(root / "items"))
    convert_user_profiles(spark, str(DATA / "user_features_pure.csv.gz"), str(root / "users"))
    return root


def _request(root: Path, dataset: str, folder: str) -> ValidationRequest:
    return ValidationRequest(dataset=dataset, partition_date=SNAPSHOT, input_path=str(root / folder),
                             as_of=AS_OF, warehouse=str(root / "warehouse"), database=DATABASE)


def test_item_feed_written_as_snapshot(spark, feeds):
    df = spark.read.parquet(str(feeds / "items"))
    exported = df.select(F.unix_timestamp("exported_at").alias("t")).distinct().collect()

    assert (feeds / "items" / "snapshot_date=2022-04-21").is_dir()
    assert df.count() == 7583
    assert df.columns[-2:] == ["exported_at", "snapshot_date"]
    assert [row["t"] for row in exported] == [int(datetime(2022, 4, 22, tzinfo=timezone.utc).timestamp())]
    assert dict(df.dtypes)["video_duration"] == "double"
    assert dict(df.dtypes)["upload_dt"] == "date"


def test_item_feed_passes_with_its_quirks(spark, feeds, registry):
    run = validate_partition(spark, registry.contract("item_metadata"),
                             _request(feeds, "item_metadata", "items"))
    results = {r.expectation_id: r for r in run.results}

    assert run.exit_code == 0
    assert run.record.status == "warned"
    assert [k for k, r in results.items() if r.status != PASSED] == ["drift_video_duration"]
    assert results["drift_video_duration"].reason_code == Reason.NO_REFERENCE
    # The real missing shares, allowed on purpose by the contract's thresholds.
    assert results["complete_video_duration"].failed_count == 239
    assert results["complete_tag"].failed_count == 96
    assert results["range_tag_format"].evaluated_count == 7583 - 96
    assert results["fresh_newest_upload"].observed_value == 10.0
    stored = (
        spark.read.format("delta").load(str(feeds / "warehouse" / "expectation_results"))
        .where(F.col("dataset") == "item_metadata")
    )
    assert stored.count() == 15


def test_user_feed_passes_with_sentinel(spark, feeds, registry):
    contract = registry.contract("user_profiles")
    df = spark.read.option("basePath", str(feeds / "users")).parquet(
        str(feeds / "users" / "snapshot_date=2022-04-21"))

    outcome = run_suite(df, contract, SNAPSHOT, AS_OF, lambda current: {})

    results = {r.expectation_id: r for r in outcome.results}
    assert [k for k, r in results.items() if r.status != PASSED] == ["drift_is_live_streamer"]
    assert results["range_is_live_streamer"].evaluated_count == 27285
    assert results["complete_onehot_feat12"].failed_count == 714
    counts = {m.bin_label: m.count for m in outcome.metric_rows
              if m.metric_name == "value_count" and m.column == "is_live_streamer"}
    assert counts == {"1": 6158, "-124": 21127}


def test_renamed_column_recorded_readably(spark, feeds, registry):
    source = spark.read.option("basePath", str(feeds / "items")).parquet(
        str(feeds / "items" / "snapshot_date=2022-04-21"))
    renamed = source.withColumnRenamed("video_duration", "duration_ms")
    renamed.write.partitionBy("snapshot_date").parquet(str(feeds / "items_renamed"))

    run = validate_partition(spark, registry.contract("item_metadata"),
                             _request(feeds, "item_metadata", "items_renamed"))

    results = {r.expectation_id: r for r in run.results}
    assert run.record.status == "failed"
    # A standard feed: the failure is recorded, and only checks marked blocks_pipeline stop it.
    assert run.exit_code == 0
    assert results["schema_columns_present"].reason_code == Reason.COLUMN_MISSING
    assert "missing columns: video_duration" in results["schema_columns_present"].message
    assert results["schema_no_unexpected_columns"].status == FAILED
    assert "duration_ms" in results["schema_no_unexpected_columns"].message
    for expectation_id in ("complete_video_duration", "range_video_duration", "drift_video_duration"):
        assert results[expectation_id].status == ERRORED
        assert results[expectation_id].reason_code == Reason.COLUMN_UNAVAILABLE
    assert results["complete_tag"].status == PASSED
    stored = (
        spark.read.format("delta").load(str(feeds / "warehouse" / "expectation_results"))
        .where((F.col("dataset") == "item_metadata")
               & (F.col("expectation_id") == "schema_columns_present"))
        .select("status", "reason_code").collect()
    )
    assert [(row["status"], row["reason_code"]) for row in stored] == [("failed", "COLUMN_MISSING")]


def test_values_of_wrong_type_rejected(spark, tmp_path):
    csv = tmp_path / "export.csv"
    csv.write_text("id,clicks\n1,2\n2,1.5\n3,many\n4,\n", encoding="utf-8")

    with pytest.raises(InputDataError, match=r"'clicks' \(int\): 2 values such as \['1.5', 'many'\]") as caught:
        convert_snapshot(spark, str(csv), str(tmp_path / "out"), {"id": "bigint", "clicks": "int"},
                         "test_feed", SNAPSHOT)

    assert caught.value.error_code == "INPUT_INVALID"
    assert not (tmp_path / "out").exists()


def test_missing_export(spark, tmp_path):
    with pytest.raises(InputDataError, match=r"item_metadata export not found") as caught:
        convert_item_metadata(spark, str(tmp_path / "absent.csv"), str(tmp_path / "out"))

    assert caught.value.error_code == "INPUT_NOT_FOUND"
