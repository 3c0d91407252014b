"""Unit tests of the verdicts that the feed contracts added (pattern, date not after the
partition, newest-date lag) and of which failures stop the pipeline. Hand-built metrics, no
Spark."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from pyspark.sql.types import StructType

from streamrec_spark.contracts.loader import load_contract
from streamrec_spark.validation.results import ERRORED, FAILED, PASSED, ExpectationResult, Reason
from streamrec_spark.validation.schema_check import check_schema
from streamrec_spark.validation.verdicts import (
    JudgeContext,
    judge,
    pipeline_blocked,
)

CONTRACTS = Path(__file__).resolve().parent.parent / "conf" / "contracts"
ITEMS = load_contract(CONTRACTS / "item_metadata.yaml")
CLICKS = load_contract(CONTRACTS / "click_stream.yaml")
SNAPSHOT = date(2022, 4, 21)
AS_OF = datetime(2022, 4, 22, 1, tzinfo=timezone.utc)
ROWS = 7583


def _schema(renamed: dict[str, str] | None = None) -> StructType:
    """Build the item-metadata schema as delivered, renaming the columns that ``renamed`` maps."""
    renamed = renamed or {}
    fields = [
        {"name": renamed.get(c.name, c.name), "type": {"bigint": "long"}.get(c.type, c.type),
         "nullable": True, "metadata": {}}
        for c in ITEMS.columns
    ]
    return StructType.fromJson({"type": "struct", "fields": fields})


def _context(metrics: dict, schema: StructType | None = None) -> JudgeContext:
    report = check_schema(ITEMS, schema or _schema())
    return JudgeContext(ITEMS, report, {"rows": ROWS, **metrics}, SNAPSHOT, AS_OF)


def _judge(expectation_id: str, metrics: dict, schema: StructType | None = None) -> ExpectationResult:
    result, _ = judge(ITEMS.expectation(expectation_id), _context(metrics, schema))
    return result


def test_pattern_passes():
    result = _judge("range_tag_format", {"eval:range_tag_format": 7487, "fail:range_tag_format": 0})

    assert result.status == PASSED
    assert result.evaluated_count == 7487


def test_pattern_failure_names_samples():
    metrics = {"eval:range_tag_format": 7487, "fail:range_tag_format": 2,
               "unexpected_values:range_tag_format": [{"value": "12;60", "count": 1},
                                                      {"value": "music", "count": 1}]}

    result = _judge("range_tag_format", metrics)

    assert result.status == FAILED
    assert result.reason_code == Reason.PATTERN_MISMATCH
    assert result.failed_count == 2
    assert [item["value"] for item in result.details["unexpected_values"]] == ["12;60", "music"]
    assert "e.g. '12;60', 'music'" in result.message


def test_pattern_missing_counts_fail_closed():
    result = _judge("range_tag_format", {})

    assert result.status == ERRORED
    assert result.reason_code == Reason.METRIC_MISSING


def test_upload_after_snapshot_fails():
    metrics = {"eval:range_upload_dt_not_after_snapshot": ROWS,
               "fail:range_upload_dt_not_after_snapshot": 3, "max:upload_dt": date(2022, 4, 23)}

    result = _judge("range_upload_dt_not_after_snapshot", metrics)

    assert result.status == FAILED
    assert result.reason_code == Reason.VALUE_OUT_OF_RANGE
    assert result.details["max_observed"] == "2022-04-23"
    assert "later than the partition date 2022-04-21" in result.message


@pytest.mark.parametrize(
    ("newest", "status", "lag"),
    [
        (date(2022, 4, 11), PASSED, 10.0),
        (date(2022, 4, 7), PASSED, 14.0),  # the limit is inclusive
        (date(2022, 4, 6), FAILED, 15.0),
    ],
)
def test_newest_date_lag(newest, status, lag):
    result = _judge("fresh_newest_upload", {"max:upload_dt": newest})

    assert result.status == status
    assert result.observed_value == lag
    assert result.threshold_high == 14
    if status == FAILED:
        assert result.reason_code == Reason.DATA_STALE


def test_newest_date_lag_without_values():
    assert _judge("fresh_newest_upload", {"max:upload_dt": None}).reason_code == Reason.NO_VALUES
    result, _ = judge(ITEMS.expectation("fresh_newest_upload"),
                      replace(_context({}), metrics={"rows": 0}))
    assert result.reason_code == Reason.EMPTY_PARTITION


def test_renamed_column_errors_its_checks():
    result = _judge("fresh_newest_upload", {}, _schema({"upload_dt": "upload_date"}))

    assert result.status == ERRORED
    assert result.reason_code == Reason.COLUMN_UNAVAILABLE
    assert "column 'upload_dt' is missing" in result.message


def _failed(contract, expectation_id: str) -> ExpectationResult:
    expectation = contract.expectation(expectation_id)
    return ExpectationResult(expectation_id, expectation.category, expectation.type,
                             expectation.column, expectation.severity, FAILED, "X", "failed")


@pytest.mark.parametrize(
    ("contract", "failed_ids", "blocked"),
    [
        pytest.param(CLICKS, ["range_event_type"], True, id="critical-feed-stops"),
        pytest.param(CLICKS, ["schema_no_unexpected_columns"], False, id="critical-warn-continues"),
        pytest.param(ITEMS, ["range_video_type", "volume_row_count"], False, id="standard-feed-continues"),
        pytest.param(ITEMS, ["schema_primary_key_unique"], True, id="standard-check-that-blocks"),
    ],
)
def test_pipeline_blocked_by_tier_and_check(contract, failed_ids, blocked):
    results = [_failed(contract, expectation_id) for expectation_id in failed_ids]

    assert pipeline_blocked(contract, results) is blocked


def test_check_can_opt_out_of_critical_stop():
    expectations = tuple(replace(e, blocks_pipeline=False) if e.id == "range_event_type" else e
                         for e in CLICKS.expectations)
    contract = replace(CLICKS, expectations=expectations)

    assert pipeline_blocked(contract, [_failed(contract, "range_event_type")]) is False
    assert pipeline_blocked(contract, [_failed(contract, "range_platform")]) is True
