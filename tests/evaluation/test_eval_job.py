"""The evaluation job on files: bad input is recorded in the Delta model-metrics table."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest

from streamrec_spark.errors import InputDataError, InvalidRequestError
from streamrec_spark.evaluation.config import EvaluationConfig
from streamrec_spark.evaluation.job import EvaluationRequest, format_metrics, run_evaluation

DATABASE = "eval_job_test"
EVENTS_SCHEMA = (
    "event_id string, user_id bigint, item_id bigint, session_id string, event_type string, "
    "platform string, duration_seconds double, event_ts timestamp, event_date date"
)


def _event(number, user, item, when, event_type="click", platform="ios"):
    return (f"e{number}", user, item, "s1", event_type, platform, 1.0, when, when.date())


@pytest.fixture()
def files(spark, tmp_path):
    history = datetime(2024, 2, 20, 12)
    holdout = datetime(2024, 3, 2, 12)
    events = [
        *[_event(n, 1, 100 + n, history) for n in range(6)],  # user 1 has history
        _event(10, 1, 10, holdout),
        _event(11, 2, 20, holdout, platform="android"),  # user 2 is new
        _event(12, 3, 30, holdout, event_type="skip"),  # user 3 has no relevant item
        _event(13, 4, 40, holdout),  # user 4 gets no recommendation
    ]
    spark.createDataFrame(events, EVENTS_SCHEMA).write.partitionBy("event_date").parquet(str(tmp_path / "events"))
    recommendations = [
        (1, 10, 1, 0.9),
        (1, 10, 2, 0.8),  # duplicate item
        (1, 999, 2, 0.7),  # unknown item with a duplicate rank
        (2, 21, 1, float("nan")),  # NaN score
        (2, 20, 2, 0.5),
        (3, 30, 1, 0.5),  # user without a relevant holdout item
    ]
    spark.createDataFrame(recommendations, "user_id bigint, item_id bigint, rank int, score double").write.parquet(
        str(tmp_path / "recs")
    )
    spark.createDataFrame([(item,) for item in (10, 20, 21, 30, 40)], "item_id bigint").write.parquet(
        str(tmp_path / "catalog")
    )
    return tmp_path


def _request(root, **changes):
    request = EvaluationRequest(
        model_id="model-a",
        run_id="run-1",
        events_path=str(root / "events"),
        holdout_start=date(2024, 3, 1),
        holdout_end=date(2024, 3, 8),
        warehouse=str(root / "warehouse"),
        recommendations_path=str(root / "recs"),
        catalog_path=str(root / "catalog"),
    )
    return replace(request, **changes)


def test_bad_input_is_recorded(spark, files):
    config = EvaluationConfig(database=DATABASE)
    result = run_evaluation(spark, _request(files), config)

    assert result.exit_code == 1  # INVALID_SCORES has policy "fail"
    assert "input.invalid_scores" in format_metrics(result)
    rows = spark.sql(
        f"SELECT slice, metric, k, user_count, hit_users, value, affected, affected_unit, status, reason "
        f"FROM {DATABASE}.model_metrics WHERE model_id = 'model-a' AND run_id = 'run-1'"
    ).collect()
    by_key = {(row["slice"], row["metric"], row["k"]): row for row in rows}

    recall = by_key[("all", "recall", 20)]
    assert recall["user_count"] == 3  # users 1, 2 and 4
    assert recall["hit_users"] == 2  # users 1 and 2
    assert recall["affected"] is None
    assert recall["value"] == pytest.approx((1.0 + 1.0 + 0.0) / 3)
    assert by_key[("new_users", "recall", 20)]["user_count"] == 2  # users 2 and 4

    web = by_key[("platform=web", "recall", 20)]
    assert web["value"] is None
    assert web["status"] == "missing"
    assert web["reason"] == "EMPTY_SLICE"

    expected = {
        "input.invalid_scores": (1, "rows", "failed"),
        "input.duplicate_items": (1, "rows", "warning"),
        "input.duplicate_ranks": (1, "rows", "warning"),
        "input.unknown_items": (1, "rows", "warning"),
        "input.users_not_in_holdout": (1, "users", "info"),
        "input.holdout_users_without_recommendations": (1, "users", "warning"),
        "input.empty_slice": (1, "slices", "warning"),
    }
    for metric, (affected, unit, status) in expected.items():
        row = by_key[("all", metric, None)]
        assert (row["affected"], row["affected_unit"], row["status"]) == (affected, unit, status), metric
        assert row["hit_users"] is None, metric

    # A re-run of the same model and run replaces its rows instead of adding to them.
    run_evaluation(spark, _request(files), config)
    table = spark.read.format("delta").load(str(files / "warehouse" / "model_metrics"))
    assert table.where("model_id = 'model-a' AND run_id = 'run-1'").count() == len(config.metrics) * 6 + 7


def test_missing_events_raise(spark, files):
    with pytest.raises(InputDataError, match="cannot read the click-stream events") as raised:
        run_evaluation(spark, _request(files, events_path=str(files / "absent")), EvaluationConfig())
    assert raised.value.exit_code == 3


def test_request_needs_one_source(files):
    with pytest.raises(InvalidRequestError, match="exactly one of"):
        _request(files, model_path="somewhere").validate()
    with pytest.raises(InvalidRequestError, match="holdout window is empty"):
        _request(files, holdout_end=date(2024, 3, 1)).validate()


def test_report_columns_say_what_they_count(spark, files):
    result = run_evaluation(spark, _request(files, run_id="run-report"), EvaluationConfig(database=DATABASE))
    metrics_table, checks_table = format_metrics(result).split("\n\n")
    metrics_header = metrics_table.splitlines()[0].split()
    checks_header = checks_table.splitlines()[0].split()

    assert metrics_header == ["slice", "metric", "k", "users", "users_with_hit", "value", "status", "reason"]
    assert checks_header == ["input_check", "affected", "unit", "status", "reason"]
    assert not any(line.startswith("input.") for line in metrics_table.splitlines())
    invalid = next(line for line in checks_table.splitlines() if line.startswith("input.invalid_scores"))
    assert invalid.split()[1:4] == ["1", "rows", "failed"]


def _popularity_model(spark, root):
    from streamrec_spark.models import PopularityModel, TrainingWindow

    events = spark.read.parquet(str(root / "events"))
    model = PopularityModel().fit(events, TrainingWindow(end=datetime(2024, 3, 1), days=30))
    return str(model.save(root / "model"))


def _stored(spark, root, run_id):
    table = spark.read.format("delta").load(str(root / "warehouse" / "model_metrics"))
    return table.where(f"model_id = 'model-a' AND run_id = '{run_id}'").collect()


@pytest.mark.parametrize("source", ["model", "recommendations"])
def test_empty_holdout_window_is_recorded(spark, files, source):
    changes = {"holdout_start": date(2024, 4, 1), "holdout_end": date(2024, 4, 8), "run_id": f"empty-{source}"}
    if source == "model":
        changes.update(model_path=_popularity_model(spark, files), recommendations_path=None)
    request = _request(files, **changes)

    with pytest.raises(InputDataError) as raised:
        run_evaluation(spark, request, EvaluationConfig())
    message = str(raised.value)
    assert raised.value.error_code == "EMPTY_HOLDOUT"
    assert raised.value.exit_code == 3
    assert "holdout window 2024-04-01 to 2024-04-08" in message
    assert str(files / "events") in message

    rows = _stored(spark, files, f"empty-{source}")
    assert len(rows) == len(EvaluationConfig().metrics) * 6
    assert {row["status"] for row in rows} == {"errored"}
    assert {row["reason"] for row in rows} == {"EMPTY_HOLDOUT"}
    assert all(row["value"] is None for row in rows)
    assert all(row["k"] is not None for row in rows)


def test_unreadable_events_recorded_as_errored(spark, files):
    request = _request(files, events_path=str(files / "absent"), run_id="unreadable")
    with pytest.raises(InputDataError):
        run_evaluation(spark, request, EvaluationConfig())

    rows = _stored(spark, files, "unreadable")
    assert rows
    assert {(row["status"], row["reason"]) for row in rows} == {("errored", "INPUT_UNREADABLE")}


def test_invalid_request_writes_nothing(spark, files):
    with pytest.raises(InvalidRequestError):
        run_evaluation(spark, _request(files, holdout_end=date(2024, 3, 1), run_id="invalid"), EvaluationConfig())
    assert not (files / "warehouse" / "model_metrics").exists()


def test_legacy_count_column_upgraded(spark, files):
    from pyspark.sql import types as T

    path = str(files / "warehouse" / "model_metrics")
    legacy = T.StructType(
        [
            T.StructField("model_id", T.StringType(), nullable=False),
            T.StructField("run_id", T.StringType(), nullable=False),
            T.StructField("slice", T.StringType(), nullable=False),
            T.StructField("metric", T.StringType(), nullable=False),
            T.StructField("k", T.IntegerType(), nullable=True),
            T.StructField("user_count", T.LongType(), nullable=False),
            T.StructField("value", T.DoubleType(), nullable=True),
            T.StructField("count", T.LongType(), nullable=False),
            T.StructField("status", T.StringType(), nullable=False),
            T.StructField("reason", T.StringType(), nullable=True),
            T.StructField("holdout_start", T.DateType(), nullable=True),
            T.StructField("holdout_end", T.DateType(), nullable=True),
            T.StructField("evaluated_at", T.TimestampType(), nullable=False),
        ]
    )
    old_row = ("old-model", "r0", "all", "recall", 20, 10, 0.3, 4, "ok", None, None, None, datetime(2024, 1, 1))
    spark.createDataFrame([old_row], legacy).write.format("delta").partitionBy("model_id").save(path)

    run_evaluation(spark, _request(files, run_id="after-upgrade"), EvaluationConfig(database="eval_job_legacy"))
    table = spark.read.format("delta").load(path)
    old = table.where("model_id = 'old-model'").collect()
    new = table.where("model_id = 'model-a' AND metric = 'recall' AND slice = 'all'").collect()

    assert table.columns.index("hit_users") == table.columns.index("user_count") + 1
    assert [(row["count"], row["hit_users"]) for row in old] == [(4, None)]
    assert [(row["count"], row["hit_users"]) for row in new] == [(None, 2)]
