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
        f"SELECT slice, metric, k, user_count, value, count, status, reason FROM {DATABASE}.model_metrics "
        "WHERE model_id = 'model-a' AND run_id = 'run-1'"
    ).collect()
    by_key = {(row["slice"], row["metric"], row["k"]): row for row in rows}

    recall = by_key[("all", "recall", 20)]
    assert recall["user_count"] == 3  # users 1, 2 and 4
    assert recall["value"] == pytest.approx((1.0 + 1.0 + 0.0) / 3)
    assert by_key[("new_users", "recall", 20)]["user_count"] == 2  # users 2 and 4

    web = by_key[("platform=web", "recall", 20)]
    assert web["value"] is None
    assert web["status"] == "missing"
    assert web["reason"] == "EMPTY_SLICE"

    expected = {
        "input.invalid_scores": (1, "failed"),
        "input.duplicate_items": (1, "warning"),
        "input.duplicate_ranks": (1, "warning"),
        "input.unknown_items": (1, "warning"),
        "input.users_not_in_holdout": (1, "info"),
        "input.holdout_users_without_recommendations": (1, "warning"),
        "input.empty_slice": (1, "warning"),
    }
    for metric, (count, status) in expected.items():
        row = by_key[("all", metric, None)]
        assert (row["count"], row["status"]) == (count, status), metric

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
