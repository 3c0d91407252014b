"""Spark tests of the declared-schema checks at the feature function's boundary: every rule
passing and failing on small DataFrames, the decorator, the recorded violation, and the
feature formulas themselves."""

from __future__ import annotations

import textwrap
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from streamrec_spark.errors import ConfigError, SchemaViolationError
from streamrec_spark.features.boundary import (
    check_frame,
    enforce_schemas,
    recording_boundaries,
)
from streamrec_spark.features.engagement import FEATURE_COLUMNS, compute_engagement_features
from streamrec_spark.features.job import FEATURES_SCHEMA
from streamrec_spark.features.recording import DeltaBoundaryRecorder
from streamrec_spark.features.schema import load_declared_schema, named_schema
from streamrec_spark.validation.results import Reason
from streamrec_spark.validation.store import ResultStore

DAY = date(2022, 4, 10)
START = datetime(2022, 4, 10, 8, 0, tzinfo=timezone.utc)
EVENTS_SCHEMA = StructType(
    [
        StructField("event_id", StringType()),
        StructField("user_id", LongType()),
        StructField("event_type", StringType()),
        StructField("duration_seconds", DoubleType()),
        StructField("event_ts", TimestampType()),
        StructField("event_date", DateType()),
    ]
)
# (user, event type) per event. User 1 views twice, completes once and clicks once. User 2
# views once and skips. User 3 only clicks, so it has no view and gets no row.
EVENTS = [(1, "view"), (1, "view"), (1, "complete"), (1, "click"), (2, "view"), (2, "skip"),
          (3, "click")]


def events_frame(spark, rows=EVENTS, changes=None):
    """Build one event per (user, event type) of ``rows``; ``changes`` maps a row index to the
    values that replace its defaults."""
    changes = changes or {}
    data = []
    for index, (user, event_type) in enumerate(rows):
        row = {"event_id": f"e{index}", "user_id": user, "event_type": event_type,
               "duration_seconds": 4.0, "event_ts": START + timedelta(minutes=index),
               "event_date": DAY}
        row.update(changes.get(index, {}))
        data.append(tuple(row[f.name] for f in EVENTS_SCHEMA.fields))
    return spark.createDataFrame(data, EVENTS_SCHEMA)


def test_features_of_small_window(spark):
    result = compute_engagement_features(events_frame(spark), window_start=DAY, feature_date=DAY)

    expected = spark.createDataFrame(
        [(1, 4, 2, 1, 1, 0.5, 0.25, DAY, DAY), (2, 2, 1, 0, 0, 0.0, 0.0, DAY, DAY)], FEATURES_SCHEMA)
    assert result.columns == list(FEATURE_COLUMNS)
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_clean_input_passes_every_rule(spark):
    report = check_frame(events_frame(spark), named_schema("user_events"), "engagement")

    assert report.passed
    assert report.row_count == 7
    assert report.rule("event_type:in_set").evaluated_count == 7
    assert report.rule("duration_seconds:range").failed_count == 0


def test_new_event_type_named_with_count(spark):
    rows = EVENTS + [(1, "bookmark"), (2, "bookmark"), (2, "share")]

    report = check_frame(events_frame(spark, rows), named_schema("user_events"), "engagement")

    rule = report.rule("event_type:in_set")
    assert not rule.passed
    assert rule.reason_code == Reason.VALUE_NOT_IN_SET
    assert rule.failed_count == 3
    assert [(s.value, s.count) for s in rule.samples] == [("bookmark", 2), ("share", 1)]
    assert [r.rule_id for r in report.failures] == ["event_type:in_set"]


@pytest.mark.parametrize(
    ("changes", "rule_id", "reason", "failed"),
    [
        ({0: {"user_id": None}}, "user_id:not_null", Reason.MISSING_VALUES, 1),
        ({0: {"event_type": " "}, 1: {"event_type": None}}, "event_type:not_null", Reason.MISSING_VALUES, 2),
        ({2: {"duration_seconds": -1.0}, 3: {"duration_seconds": float("nan")}},
         "duration_seconds:range", Reason.VALUE_OUT_OF_RANGE, 2),
        ({4: {"duration_seconds": 14400.5}}, "duration_seconds:range", Reason.VALUE_OUT_OF_RANGE, 1),
    ],
)
def test_row_rule_fails(spark, changes, rule_id, reason, failed):
    report = check_frame(events_frame(spark, changes=changes), named_schema("user_events"), "engagement")

    rule = report.rule(rule_id)
    assert not rule.passed
    assert rule.reason_code == reason
    assert rule.failed_count == failed


def test_range_bounds_inclusive(spark):
    frame = events_frame(spark, changes={0: {"duration_seconds": 0.0},
                                         1: {"duration_seconds": 14400.0},
                                         2: {"duration_seconds": None}})

    rule = check_frame(frame, named_schema("user_events"), "engagement").rule("duration_seconds:range")

    assert rule.passed
    assert rule.evaluated_count == 6


def test_renamed_and_mistyped_columns_fail_without_spark_error(spark):
    frame = (events_frame(spark).withColumnRenamed("event_type", "action")
             .withColumn("user_id", F.col("user_id").cast("string")))

    report = check_frame(frame, named_schema("user_events"), "engagement")

    failed = {rule.rule_id: rule for rule in report.failures}
    assert set(failed) == {"event_type:present", "user_id:type"}
    assert "columns found: event_id, user_id, action" in failed["event_type:present"].message
    assert failed["user_id:type"].message == "column 'user_id' is string, expected bigint"
    # The checks of the columns that did arrive still ran.
    assert report.rule("duration_seconds:range").passed


def test_duplicate_key_and_extra_column(spark):
    features = compute_engagement_features(events_frame(spark), window_start=DAY, feature_date=DAY)
    doubled = features.unionByName(features.where(F.col("user_id") == 1)).withColumn("debug", F.lit(1))

    report = check_frame(doubled, named_schema("engagement_features"), "engagement")

    key = report.rule("unique_key")
    assert key.reason_code == Reason.DUPLICATE_KEY
    assert key.failed_count == 1
    assert [(s.value, s.count) for s in key.samples] == [("user_id=1", 2)]
    assert report.rule("extra_columns").message == "columns not in the schema: debug"


def test_decorator_rejects_bad_input(spark):
    frame = events_frame(spark, EVENTS + [(2, "bookmark")] * 3)

    with pytest.raises(SchemaViolationError, match=r"event_type:in_set \[VALUE_NOT_IN_SET\]: 3 of 10 "
                                                   r"rows .*samples: 'bookmark' \(3 rows\)") as caught:
        compute_engagement_features(frame, window_start=DAY, feature_date=DAY)

    assert caught.value.exit_code == 1
    assert caught.value.boundary == "engagement:input"
    assert caught.value.report.failures[0].failed_count == 3


def test_decorator_rejects_bad_output(spark):
    @enforce_schemas("broken", input_schema="user_events", output_schema="engagement_features")
    def rates_above_one(events, window_start, feature_date):
        good = compute_engagement_features.__wrapped__(events, window_start, feature_date)
        return good.withColumn("engagement_rate", F.col("engagement_rate") * 3)

    with pytest.raises(SchemaViolationError, match=r"engagement_rate:range") as caught:
        rates_above_one(events_frame(spark), DAY, DAY)

    assert caught.value.boundary == "broken:output"
    rule = caught.value.report.rule("engagement_rate:range")
    assert rule.failed_count == 1
    assert [s.value for s in rule.samples] == ["1.5"]


def test_violation_recorded_in_delta(spark, tmp_path):
    store = ResultStore(spark, str(tmp_path / "warehouse"), "streamrec_test_boundary")
    recorder = DeltaBoundaryRecorder(store, DAY, START)
    frame = events_frame(spark, EVENTS + [(1, "bookmark")])

    with recording_boundaries(recorder), pytest.raises(SchemaViolationError):
        compute_engagement_features(frame, window_start=DAY, feature_date=DAY)

    assert [r.status for r in recorder.records] == ["failed"]
    assert recorder.records[0].dataset == "features.engagement"
    stored = (
        spark.read.format("delta").load(str(tmp_path / "warehouse" / "expectation_results"))
        .where(F.col("status") == "failed").collect()
    )
    assert [(r["expectation_id"], r["failed_count"], r["reason_code"]) for r in stored] == [
        ("input:event_type:in_set", 1, "VALUE_NOT_IN_SET")
    ]
    assert '"value": "bookmark"' in stored[0]["details"]


def test_declared_schema_errors_have_lines(tmp_path):
    path = tmp_path / "schema.yaml"
    path.write_text(textwrap.dedent(
        """\
        schema: broken
        unique_key: [user]
        columns:
          - {name: user_id, type: bigint, colour: red}
          - {name: label, type: string, min: 0}
        """), encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_declared_schema(path)

    problems = caught.value.problems
    assert len(problems) == 3
    assert problems[0].startswith(f"{path}:4: unknown key 'colour' in column")
    assert problems[1].startswith(f"{path}:5: column 'label' of type string cannot have 'min'")
    assert problems[2].startswith(f"{path}:2: unique key column 'user' is not declared")
