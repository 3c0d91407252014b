"""Unit tests for the verdicts: hand-built metrics judged against the real click-stream contract.

The metrics dicts imitate what the fused Spark aggregation returns, so no SparkSession is needed.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pyspark.sql.types import (
    DataType,
    DateType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from streamrec_spark.contracts.loader import load_contract
from streamrec_spark.contracts.model import Contract, Expectation, Reference
from streamrec_spark.validation.profiles import PROFILED_TYPES, Profile, current_profile
from streamrec_spark.validation.results import (
    ERRORED,
    FAILED,
    PASSED,
    RUN_FAILED,
    RUN_PASSED,
    RUN_WARNED,
    ExpectationResult,
    Reason,
    run_status,
)
from streamrec_spark.validation.schema_check import check_schema
from streamrec_spark.validation.verdicts import (
    JudgeContext,
    format_count,
    judge,
    judge_all,
    mostly_satisfied,
)

CONTRACT = load_contract(Path(__file__).resolve().parent.parent / "conf" / "contracts" / "click_stream.yaml")
PARTITION = date(2024, 5, 1)
AS_OF = datetime(2024, 5, 2, 1, 0, tzinfo=timezone.utc)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ROWS = 2_000_000
EPSILON = CONTRACT.psi_epsilon

SPARK_TYPES: dict[str, DataType] = {
    "string": StringType(),
    "bigint": LongType(),
    "double": DoubleType(),
    "timestamp": TimestampType(),
    "timestamp_ntz": TimestampNTZType(),
    "date": DateType(),
}
EVENT_TYPE_SHARES = {"view": 0.6, "click": 0.25, "complete": 0.1, "skip": 0.05}
PLATFORM_SHARES = {"ios": 0.4, "android": 0.4, "web": 0.2}
# Expectations whose evaluated and failed row counts come from the fused aggregation.
COUNTED_IDS = (
    "range_event_type",
    "range_platform",
    "range_duration_seconds",
    "range_event_ts_matches_event_date",
    "range_event_ts_not_after_as_of",
    "fresh_partition_date",
)
DRIFT_IDS = ("drift_event_type", "drift_duration_seconds", "drift_platform", "drift_duration_null_rate")


def _micros(instant: datetime) -> int:
    return (instant - EPOCH) // timedelta(microseconds=1)


def _schema(
    contract: Contract = CONTRACT,
    drop: tuple[str, ...] = (),
    retype: dict[str, str] | None = None,
    extra: tuple[str, ...] = (),
) -> StructType:
    """Build the StructType of an arriving partition: the contract's columns minus ``drop``,
    with the Spark types in ``retype``, plus ``extra`` string columns."""
    retype = retype or {}
    fields = [
        StructField(spec.name, SPARK_TYPES[retype.get(spec.name, spec.type)], spec.nullable)
        for spec in contract.columns
        if spec.name not in drop
    ]
    fields += [StructField(name, StringType(), True) for name in extra]
    return StructType(fields)


def _clean_metrics(rows: int = ROWS) -> dict[str, Any]:
    """Metrics of a partition on which every expectation of the click-stream contract passes."""
    metrics: dict[str, Any] = {"rows": rows}
    for spec in CONTRACT.columns:
        metrics[f"null:{spec.name}"] = 0
        if spec.is_floating:
            metrics[f"nan:{spec.name}"] = 0
        if spec.is_string:
            metrics[f"blank:{spec.name}"] = 0
    for value, share in EVENT_TYPE_SHARES.items():
        metrics[f"value:event_type:{value}"] = int(rows * share)
    for value, share in PLATFORM_SHARES.items():
        metrics[f"value:platform:{value}"] = int(rows * share)
    for expectation_id in COUNTED_IDS:
        metrics[f"eval:{expectation_id}"] = rows
        metrics[f"fail:{expectation_id}"] = 0
    grid = CONTRACT.expectation("drift_duration_seconds").grid
    for index in range(grid.bins):
        metrics[f"grid:drift_duration_seconds:{index}"] = rows // grid.bins
    metrics["grid:drift_duration_seconds:0"] += rows % grid.bins
    metrics["distinct:user_id"] = 600_000
    metrics["pk_null"] = 0
    metrics["pk_duplicate_keys"] = 0
    metrics["pk_duplicate_rows"] = 0
    metrics["max:event_ts"] = _micros(AS_OF - timedelta(minutes=45))
    return metrics


def _empty_metrics() -> dict[str, Any]:
    """Metrics as the aggregation returns them on a partition with no rows."""
    metrics = {key: 0 for key in _clean_metrics()}
    metrics["max:event_ts"] = None
    return metrics


def _references(contract: Contract, metrics: dict[str, Any]) -> dict[str, Profile]:
    """Use the partition's own profiles as a one-day reference, so every PSI is zero."""
    references = {}
    for expectation in contract.expectations:
        if expectation.type in PROFILED_TYPES:
            profile = current_profile(expectation, contract, metrics)
            references[expectation.id] = Profile(profile.bins, (PARTITION - timedelta(days=1),))
    return references


def _context(
    metrics: dict[str, Any],
    schema: StructType | None = None,
    references: dict[str, Profile | None] | None = None,
    contract: Contract = CONTRACT,
    as_of: datetime = AS_OF,
) -> JudgeContext:
    return JudgeContext(
        contract=contract,
        schema=check_schema(contract, schema if schema is not None else _schema(contract)),
        metrics=metrics,
        partition_date=PARTITION,
        as_of=as_of,
        references=references if references is not None else {},
    )


def _judge(expectation_id: str, context: JudgeContext, **changes: Any) -> ExpectationResult:
    expectation = context.contract.expectation(expectation_id)
    if changes:
        expectation = replace(expectation, **changes)
    result, _ = judge(expectation, context)
    return result


def _by_id(results: list[ExpectationResult]) -> dict[str, ExpectationResult]:
    return {result.expectation_id: result for result in results}


# --- a clean partition -----------------------------------------------------------------------


def test_clean_partition_passes_everything():
    metrics = _clean_metrics()
    results, rows = judge_all(_context(metrics, references=_references(CONTRACT, metrics)))

    assert len(results) == 23
    assert {r.expectation_id: (r.status, r.reason_code) for r in results if r.status != PASSED} == {}
    assert run_status(results) == RUN_PASSED
    assert {row.expectation_id for row in rows if row.metric_name == "psi"} == set(DRIFT_IDS)
    assert all(row.value == 0.0 for row in rows if row.metric_name == "psi")


# --- mostly: exact integer comparison --------------------------------------------------------


@pytest.mark.parametrize(
    "expectation_id, mostly, evaluated, failed, status",
    [
        pytest.param("range_event_type", None, 10_000_000, 1, FAILED, id="one-in-ten-million-fails-1.0"),
        pytest.param("range_event_type", None, 10_000_000, 0, PASSED, id="none-failed-passes-1.0"),
        # (10**17 - 1) / 10**17 rounds to 1.0 as a float; the exact comparison still fails it.
        pytest.param("range_event_type", None, 10**17, 1, FAILED, id="beyond-float-precision"),
        # mostly 0.999 comes from the YAML text and must be exactly 999/1000.
        pytest.param("range_event_ts_matches_event_date", None, 1000, 1, PASSED, id="999-of-1000"),
        pytest.param("range_event_ts_matches_event_date", None, 1000, 2, FAILED, id="998-of-1000"),
        pytest.param("range_event_ts_matches_event_date", None, 10_000_000, 10_000, PASSED,
                     id="exactly-0.999-large"),
        pytest.param("range_event_ts_matches_event_date", None, 10_000_000, 10_001, FAILED,
                     id="just-below-0.999-large"),
        pytest.param("range_duration_seconds", Fraction(7, 10), 10, 3, PASSED, id="exactly-0.7"),
        pytest.param("range_duration_seconds", Fraction(7, 10), 10, 4, FAILED, id="below-0.7"),
        pytest.param("fresh_partition_date", Fraction(0), 5, 5, PASSED, id="mostly-zero"),
    ],
)
def test_mostly_compared_exactly(expectation_id, mostly, evaluated, failed, status):
    metrics = _clean_metrics()
    metrics["rows"] = max(evaluated, 1)
    metrics[f"eval:{expectation_id}"] = evaluated
    metrics[f"fail:{expectation_id}"] = failed
    changes = {} if mostly is None else {"mostly": mostly}

    result = _judge(expectation_id, _context(metrics), **changes)

    assert result.status == status, result.message
    assert result.evaluated_count == evaluated
    assert result.failed_count == failed
    assert result.observed_value == (evaluated - failed) / evaluated
    expected_mostly = mostly if mostly is not None else CONTRACT.expectation(expectation_id).mostly
    assert result.mostly == float(expected_mostly)
    if status == PASSED:
        assert result.reason_code == Reason.OK


def test_mostly_failure_message_states_allowance():
    metrics = _clean_metrics()
    metrics["rows"] = 1000
    metrics["eval:range_event_ts_matches_event_date"] = 1000
    metrics["fail:range_event_ts_matches_event_date"] = 2

    result = _judge("range_event_ts_matches_event_date", _context(metrics))

    assert result.reason_code == Reason.DATE_MISMATCH
    assert "2 of 1,000" in result.message
    assert "mostly 0.999 allows at most 1" in result.message


@pytest.mark.parametrize(
    "evaluated, failed, mostly, satisfied",
    [
        (1, 0, Fraction(1), True),
        (1, 1, Fraction(1), False),
        (3, 1, Fraction(2, 3), True),
        (3, 2, Fraction(2, 3), False),
        (10**18, 1, Fraction(1), False),
    ],
)
def test_mostly_satisfied_table(evaluated, failed, mostly, satisfied):
    assert mostly_satisfied(evaluated, failed, mostly) is satisfied


def test_mostly_satisfied_rejects_no_rows():
    with pytest.raises(ValueError, match="no evaluated rows"):
        mostly_satisfied(0, 0, Fraction(1))


def test_no_evaluated_rows_is_errored():
    metrics = _clean_metrics()
    metrics["null:platform"] = ROWS
    metrics["eval:range_platform"] = 0

    result = _judge("range_platform", _context(metrics))

    assert result.status == ERRORED
    assert result.reason_code == Reason.NO_VALUES
    assert result.evaluated_count == 0


# --- completeness ----------------------------------------------------------------------------


COMPLETE_DURATION = Expectation(
    id="complete_duration_seconds",
    category="completeness",
    type="not_null",
    severity="error",
    column="duration_seconds",
)


@pytest.mark.parametrize(
    "expectation, missing, failed, null_count, nan_count, blank_count",
    [
        pytest.param(CONTRACT.expectation("complete_event_type"),
                     {"null:event_type": 2, "blank:event_type": 3}, 5, 2, None, 3, id="string-null-and-blank"),
        pytest.param(COMPLETE_DURATION,
                     {"null:duration_seconds": 1, "nan:duration_seconds": 2}, 3, 1, 2, None,
                     id="double-null-and-nan"),
        pytest.param(CONTRACT.expectation("complete_user_id"),
                     {"null:user_id": 4}, 4, 4, None, None, id="bigint-null"),
    ],
)
def test_not_null_counts_all_missing(expectation, missing, failed, null_count, nan_count, blank_count):
    metrics = _clean_metrics(rows=1000)
    metrics.update(missing)

    result, _ = judge(expectation, _context(metrics))

    assert result.status == FAILED
    assert result.reason_code == Reason.MISSING_VALUES
    assert result.evaluated_count == 1000
    assert result.failed_count == failed
    assert result.null_count == null_count
    assert result.nan_count == nan_count
    assert result.blank_count == blank_count


@pytest.mark.parametrize("missing, status", [(10, PASSED), (11, FAILED)])
def test_not_null_with_mostly(missing, status):
    metrics = _clean_metrics(rows=1000)
    metrics["null:event_type"] = missing - 1
    metrics["blank:event_type"] = 1

    result = _judge("complete_event_type", _context(metrics), mostly=Fraction(99, 100))

    assert result.status == status
    assert result.failed_count == missing


def test_not_null_without_null_metric_is_errored():
    metrics = _clean_metrics(rows=1000)
    del metrics["null:user_id"]

    result = _judge("complete_user_id", _context(metrics))

    assert result.status == ERRORED
    assert result.reason_code == Reason.METRIC_MISSING


# --- value ranges ----------------------------------------------------------------------------


def test_between_nan_counts_as_failed():
    metrics = _clean_metrics(rows=1000)
    # One NaN: not null, so evaluated, and the aggregation counts it as outside the range.
    metrics["nan:duration_seconds"] = 1
    metrics["eval:range_duration_seconds"] = 1000
    metrics["fail:range_duration_seconds"] = 1

    result = _judge("range_duration_seconds", _context(metrics))

    assert result.status == FAILED
    assert result.reason_code == Reason.VALUE_OUT_OF_RANGE
    assert result.failed_count == 1
    assert result.nan_count == 1
    assert (result.threshold_low, result.threshold_high) == (0, 14400)
    assert "1 of 1,000 (0.1%) rows is NaN or outside [0, 14400]" in result.message


def test_in_set_lists_unexpected_values():
    metrics = _clean_metrics(rows=1000)
    metrics["fail:range_event_type"] = 7
    metrics["unexpected_values:range_event_type"] = [
        {"value": "like", "count": 5}, {"value": "share", "count": 2},
    ]

    result = _judge("range_event_type", _context(metrics))

    assert result.status == FAILED
    assert result.reason_code == Reason.VALUE_NOT_IN_SET
    assert result.failed_count == 7
    assert "'like' (5 rows), 'share' (2 rows)" in result.message
    assert result.details["allowed"] == ["view", "click", "complete", "skip"]


def test_listed_value_line_break_escaped():
    metrics = _clean_metrics(rows=1000)
    metrics["fail:range_event_type"] = 3
    metrics["unexpected_values:range_event_type"] = [{"value": "click\n", "count": 3}]

    result = _judge("range_event_type", _context(metrics))

    assert "\n" not in result.message
    assert "'click\\n' (3 rows)" in result.message


@pytest.mark.parametrize(
    "expectation_id, reason",
    [
        ("range_event_ts_not_after_as_of", Reason.TIMESTAMP_AFTER_AS_OF),
        ("fresh_partition_date", Reason.PARTITION_DATE_MISMATCH),
        ("range_platform", Reason.VALUE_NOT_IN_SET),
    ],
)
def test_counted_check_uses_fail_count(expectation_id, reason):
    metrics = _clean_metrics(rows=100)
    metrics[f"fail:{expectation_id}"] = 1

    result = _judge(expectation_id, _context(metrics))

    assert result.status == FAILED
    assert result.reason_code == reason
    assert result.failed_count == 1


@pytest.mark.parametrize("missing_key", ["eval", "fail"])
def test_counted_check_without_counts_is_errored(missing_key):
    metrics = _clean_metrics()
    del metrics[f"{missing_key}:range_duration_seconds"]

    result = _judge("range_duration_seconds", _context(metrics))

    assert result.status == ERRORED
    assert result.reason_code == Reason.METRIC_MISSING


# --- volume and keys -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rows, status, reason",
    [
        (999_999, FAILED, Reason.ROW_COUNT_OUT_OF_RANGE),
        (1_000_000, PASSED, Reason.OK),
        (40_000_000, PASSED, Reason.OK),
        (40_000_001, FAILED, Reason.ROW_COUNT_OUT_OF_RANGE),
        (0, FAILED, Reason.EMPTY_PARTITION),
    ],
)
def test_row_count_bounds_inclusive(rows, status, reason):
    result = _judge("volume_row_count", _context({"rows": rows}))

    assert result.status == status
    assert result.reason_code == reason
    assert result.evaluated_count == rows


@pytest.mark.parametrize(
    "distinct, status, reason",
    [
        (499_999, FAILED, Reason.DISTINCT_COUNT_OUT_OF_RANGE),
        (500_000, PASSED, Reason.OK),
        (10_000_000, PASSED, Reason.OK),
        (10_000_001, FAILED, Reason.DISTINCT_COUNT_OUT_OF_RANGE),
        (None, ERRORED, Reason.METRIC_MISSING),
    ],
)
def test_distinct_count_bounds(distinct, status, reason):
    metrics = _clean_metrics()
    metrics["distinct:user_id"] = distinct

    result = _judge("volume_distinct_users", _context(metrics))

    assert result.status == status
    assert result.reason_code == reason


@pytest.mark.parametrize(
    "pk_null, duplicate_keys, duplicate_rows, status, reason, failed",
    [
        (0, 0, 0, PASSED, Reason.OK, 0),
        (3, 0, 0, FAILED, Reason.NULL_KEY, 3),
        (0, 2, 5, FAILED, Reason.DUPLICATE_KEY, 5),
        (1, 2, 5, FAILED, Reason.DUPLICATE_KEY, 6),
        (0, None, None, ERRORED, Reason.METRIC_MISSING, None),
    ],
)
def test_primary_key_table(pk_null, duplicate_keys, duplicate_rows, status, reason, failed):
    metrics = _clean_metrics()
    metrics.update(pk_null=pk_null, pk_duplicate_keys=duplicate_keys, pk_duplicate_rows=duplicate_rows)

    result = _judge("schema_primary_key_unique", _context(metrics))

    assert result.status == status
    assert result.reason_code == reason
    assert result.failed_count == failed


# --- zero-row partition ----------------------------------------------------------------------

EMPTY_PARTITION_OUTCOMES = {
    # The schema is known without rows, so the schema checks can still be judged.
    "schema_columns_present": (PASSED, Reason.OK),
    "schema_column_types": (PASSED, Reason.OK),
    "schema_no_unexpected_columns": (PASSED, Reason.OK),
    "schema_event_ts_is_instant": (PASSED, Reason.OK),
    "schema_primary_key_unique": (ERRORED, Reason.EMPTY_PARTITION),
    "complete_user_id": (ERRORED, Reason.EMPTY_PARTITION),
    "complete_item_id": (ERRORED, Reason.EMPTY_PARTITION),
    "complete_event_type": (ERRORED, Reason.EMPTY_PARTITION),
    "complete_event_ts": (ERRORED, Reason.EMPTY_PARTITION),
    "range_event_type": (ERRORED, Reason.EMPTY_PARTITION),
    "range_platform": (ERRORED, Reason.EMPTY_PARTITION),
    "range_duration_seconds": (ERRORED, Reason.EMPTY_PARTITION),
    "range_event_ts_matches_event_date": (ERRORED, Reason.EMPTY_PARTITION),
    "range_event_ts_not_after_as_of": (ERRORED, Reason.EMPTY_PARTITION),
    "volume_row_count": (FAILED, Reason.EMPTY_PARTITION),
    "volume_distinct_users": (FAILED, Reason.EMPTY_PARTITION),
    "volume_by_platform": (FAILED, Reason.EMPTY_PARTITION),
    "drift_event_type": (ERRORED, Reason.EMPTY_PARTITION),
    "drift_duration_seconds": (ERRORED, Reason.EMPTY_PARTITION),
    "drift_platform": (ERRORED, Reason.EMPTY_PARTITION),
    "drift_duration_null_rate": (ERRORED, Reason.EMPTY_PARTITION),
    "fresh_newest_event": (ERRORED, Reason.EMPTY_PARTITION),
    "fresh_partition_date": (ERRORED, Reason.EMPTY_PARTITION),
}


@pytest.mark.parametrize("with_reference", [False, True], ids=["no-reference", "with-reference"])
def test_empty_partition_outcomes(with_reference):
    references = _references(CONTRACT, _clean_metrics()) if with_reference else {}
    results, rows = judge_all(_context(_empty_metrics(), references=references))

    assert sorted(EMPTY_PARTITION_OUTCOMES) == sorted(e.id for e in CONTRACT.expectations)
    outcomes = {r.expectation_id: (r.status, r.reason_code) for r in results}
    assert outcomes == EMPTY_PARTITION_OUTCOMES
    assert run_status(results) == RUN_FAILED
    assert rows == []


def test_empty_partition_row_count_message():
    result = _judge("volume_row_count", _context(_empty_metrics()))

    assert result.message == "the partition has no rows"
    assert result.observed_value == 0.0


# --- missing and mistyped columns ------------------------------------------------------------

DURATION_CHECKS = ("range_duration_seconds", "drift_duration_seconds", "drift_duration_null_rate")
EVENT_TS_CHECKS = (
    "complete_event_ts", "range_event_ts_matches_event_date", "range_event_ts_not_after_as_of",
    "fresh_newest_event",
)
MISSING = (FAILED, Reason.COLUMN_MISSING)
MISMATCH = (FAILED, Reason.COLUMN_TYPE_MISMATCH)
UNAVAILABLE = (ERRORED, Reason.COLUMN_UNAVAILABLE)


@pytest.mark.parametrize(
    "drop, retype, extra, outcomes, status",
    [
        pytest.param(
            ("duration_seconds",), {}, (),
            {"schema_columns_present": MISSING, **dict.fromkeys(DURATION_CHECKS, UNAVAILABLE)},
            RUN_FAILED, id="missing-double",
        ),
        pytest.param(
            (), {"duration_seconds": "string"}, (),
            {"schema_column_types": MISMATCH, **dict.fromkeys(DURATION_CHECKS, UNAVAILABLE)},
            RUN_FAILED, id="mistyped-double",
        ),
        pytest.param(
            (), {"user_id": "string"}, (),
            {"schema_column_types": MISMATCH, "complete_user_id": UNAVAILABLE,
             "volume_distinct_users": UNAVAILABLE},
            RUN_FAILED, id="mistyped-bigint",
        ),
        pytest.param(
            (), {"event_ts": "string"}, (),
            {"schema_column_types": MISMATCH,
             "schema_event_ts_is_instant": (FAILED, Reason.NOT_AN_INSTANT),
             **dict.fromkeys(EVENT_TS_CHECKS, UNAVAILABLE)},
            RUN_FAILED, id="mistyped-timestamp",
        ),
        pytest.param(
            ("event_ts",), {}, (),
            {"schema_columns_present": MISSING, "schema_event_ts_is_instant": UNAVAILABLE,
             **dict.fromkeys(EVENT_TS_CHECKS, UNAVAILABLE)},
            RUN_FAILED, id="missing-timestamp",
        ),
        pytest.param(
            ("event_date",), {}, (),
            {"schema_columns_present": MISSING,
             # The date check needs both columns, so a missing date column also stops it.
             "range_event_ts_matches_event_date": UNAVAILABLE, "fresh_partition_date": UNAVAILABLE},
            RUN_FAILED, id="missing-date",
        ),
        pytest.param(
            ("event_id",), {}, (),
            {"schema_columns_present": MISSING, "schema_primary_key_unique": UNAVAILABLE},
            RUN_FAILED, id="missing-primary-key",
        ),
        pytest.param(
            ("platform", "session_id"), {}, (),
            {"schema_columns_present": MISSING, "range_platform": UNAVAILABLE,
             "drift_platform": UNAVAILABLE, "volume_by_platform": UNAVAILABLE},
            RUN_FAILED, id="two-missing",
        ),
        pytest.param(
            (), {}, ("country",),
            {"schema_no_unexpected_columns": (FAILED, Reason.UNEXPECTED_COLUMN)},
            RUN_WARNED, id="unexpected-column-warns",
        ),
    ],
)
def test_schema_problem_stays_isolated(drop, retype, extra, outcomes, status):
    metrics = _clean_metrics()
    context = _context(metrics, _schema(drop=drop, retype=retype, extra=extra),
                       _references(CONTRACT, metrics))

    results = judge_all(context)[0]

    observed = {r.expectation_id: (r.status, r.reason_code) for r in results if r.status != PASSED}
    assert observed == outcomes
    assert len(results) == 23
    assert run_status(results) == status


def test_missing_column_details():
    metrics = _clean_metrics()
    context = _context(metrics, _schema(drop=("platform", "session_id")))

    present = _judge("schema_columns_present", context)
    range_platform = _judge("range_platform", context)

    assert present.details == {"missing": ["session_id", "platform"]}
    assert present.failed_count == 2
    assert "column 'platform' is missing" in range_platform.message


def test_mistyped_column_details():
    context = _context(_clean_metrics(), _schema(retype={"user_id": "string"}))

    types = _judge("schema_column_types", context)
    complete = _judge("complete_user_id", context)

    assert types.details == {"mismatched": {"user_id": {"expected": "bigint", "found": "string"}}}
    assert "column 'user_id' arrived as string instead of bigint" in complete.message


def test_zoneless_timestamp_read_in_declared_zone():
    context = _context(_clean_metrics(), _schema(retype={"event_ts": "timestamp_ntz"}))

    results = _by_id(judge_all(context)[0])

    # The column is usable (read as wall-clock time in UTC), but it is not an instant.
    assert results["schema_column_types"].status == PASSED
    assert results["schema_event_ts_is_instant"].status == FAILED
    assert results["schema_event_ts_is_instant"].reason_code == Reason.NOT_AN_INSTANT
    assert results["schema_event_ts_is_instant"].details["interpreted_zone"] == "UTC"
    assert results["fresh_newest_event"].status == PASSED


def test_zoneless_timestamp_without_declared_zone():
    contract = replace(CONTRACT, timestamp_time_zone=None)
    context = _context(_clean_metrics(), _schema(contract, retype={"event_ts": "timestamp_ntz"}),
                       contract=contract)

    results = _by_id(judge_all(context)[0])

    assert results["schema_column_types"].reason_code == Reason.COLUMN_TYPE_MISMATCH
    assert results["fresh_newest_event"].reason_code == Reason.COLUMN_UNAVAILABLE
    assert results["schema_event_ts_is_instant"].details["interpreted_zone"] is None


# --- drift (PSI) -----------------------------------------------------------------------------


def _term(expected_share: float, actual_share: float) -> float:
    return (actual_share - expected_share) * math.log(actual_share / expected_share)


def _event_type_profile(counts: dict[str, int], days: int = 1) -> Profile:
    metrics = {"rows": sum(counts.values()), "null:event_type": 0, "blank:event_type": 0}
    metrics.update({f"value:event_type:{value}": count for value, count in counts.items()})
    profile = current_profile(CONTRACT.expectation("drift_event_type"), CONTRACT, metrics)
    partitions = tuple(PARTITION - timedelta(days=day) for day in range(1, days + 1))
    return Profile(profile.bins, partitions)


REFERENCE_EVENT_TYPES = {"view": 500, "click": 300, "complete": 150, "skip": 50}
CURRENT_EVENT_TYPES = {"view": 450, "click": 330, "complete": 160, "skip": 60}
EVENT_TYPE_PSI = _term(0.5, 0.45) + _term(0.3, 0.33) + _term(0.15, 0.16) + _term(0.05, 0.06)


def _event_type_context(reference: Profile | None, contract: Contract = CONTRACT) -> JudgeContext:
    metrics = _clean_metrics(rows=1000)
    metrics.update({f"value:event_type:{value}": count for value, count in CURRENT_EVENT_TYPES.items()})
    references = {} if reference is None else {"drift_event_type": reference}
    return _context(metrics, references=references, contract=contract)


def test_categorical_psi_hand_computed():
    context = _event_type_context(_event_type_profile(REFERENCE_EVENT_TYPES, days=3))

    result, rows = judge(CONTRACT.expectation("drift_event_type"), context)

    assert result.status == PASSED
    assert result.observed_value == pytest.approx(EVENT_TYPE_PSI, rel=1e-12)
    assert result.details["bins"] == ["view", "click", "complete", "skip", "__other__"]
    assert result.details["expected"] == [500, 300, 150, 50, 0]
    assert result.details["actual"] == [450, 330, 160, 60, 0]
    assert len(result.details["reference_partitions"]) == 3
    assert result.evaluated_count == 1000
    assert [row.metric_name for row in rows].count("psi") == 1
    assert [row.count for row in rows if row.metric_name == "psi_bin_actual"] == [450, 330, 160, 60, 0]


@pytest.mark.parametrize(
    "direction, status, reason",
    [
        pytest.param(None, FAILED, Reason.PSI_ABOVE_THRESHOLD, id="equal-fails"),
        pytest.param(math.inf, PASSED, Reason.OK, id="just-above-passes"),
        pytest.param(0.0, FAILED, Reason.PSI_ABOVE_THRESHOLD, id="just-below-fails"),
    ],
)
def test_psi_threshold_is_strict(direction, status, reason):
    context = _event_type_context(_event_type_profile(REFERENCE_EVENT_TYPES))
    value = judge(CONTRACT.expectation("drift_event_type"), context)[0].observed_value
    # The threshold is the PSI itself or the next float above or below it.
    threshold = value if direction is None else math.nextafter(value, direction)

    result = _judge("drift_event_type", context, max_psi=threshold)

    assert result.status == status
    assert result.reason_code == reason
    assert result.observed_value == value
    assert result.threshold_high == threshold


def test_numeric_psi_on_quantile_bins():
    expectation = CONTRACT.expectation("drift_duration_seconds")
    grid = expectation.grid
    reference_metrics = _clean_metrics(rows=1000)
    current_metrics = _clean_metrics(rows=1000)
    for index in range(grid.bins):
        # The reference fills grid bins 10..19, the partition bins 11..20: one decile moves up.
        reference_metrics[f"grid:drift_duration_seconds:{index}"] = 100 if 10 <= index <= 19 else 0
        current_metrics[f"grid:drift_duration_seconds:{index}"] = 100 if 11 <= index <= 20 else 0
    reference = current_profile(expectation, CONTRACT, reference_metrics)
    context = _context(current_metrics, references={expectation.id: Profile(reference.bins, (PARTITION,))})

    result, rows = judge(expectation, context)

    # Deciles cut at grid edges 11..19, so the first coarse bin is [-inf, edge 11).
    assert result.details["expected"] == [100] * 10
    assert result.details["actual"] == [0] + [100] * 8 + [200]
    expected_psi = _term(0.1, EPSILON) + _term(0.1, 0.2)
    assert result.observed_value == pytest.approx(expected_psi, rel=1e-12)
    assert result.status == FAILED
    edges = grid.edges()
    actual_rows = [row for row in rows if row.metric_name == "psi_bin_actual"]
    assert actual_rows[0].bin_lower is None
    assert actual_rows[0].bin_upper == edges[11]
    assert actual_rows[1].bin_lower == edges[11]
    assert actual_rows[-1].bin_lower == edges[19]
    assert actual_rows[-1].bin_upper is None


def test_null_rate_psi_counts_null_and_nan():
    expectation = CONTRACT.expectation("drift_duration_null_rate")
    reference_metrics = _clean_metrics(rows=1000)
    reference_metrics["null:duration_seconds"] = 20
    current_metrics = _clean_metrics(rows=1000)
    current_metrics["null:duration_seconds"] = 30
    current_metrics["nan:duration_seconds"] = 20
    reference = current_profile(expectation, CONTRACT, reference_metrics)
    context = _context(current_metrics, references={expectation.id: Profile(reference.bins, (PARTITION,))})

    result = judge(expectation, context)[0]

    assert result.details["expected"] == [20, 980]
    assert result.details["actual"] == [50, 950]
    assert result.observed_value == pytest.approx(_term(0.02, 0.05) + _term(0.98, 0.95), rel=1e-12)
    assert result.null_count == 30
    assert result.nan_count == 20


@pytest.mark.parametrize(
    "when_missing, severity, status",
    [("warn", "warn", RUN_WARNED), ("fail", "error", RUN_FAILED)],
)
@pytest.mark.parametrize(
    "reference",
    [None, _event_type_profile({"view": 0, "click": 0, "complete": 0, "skip": 0})],
    ids=["absent", "empty"],
)
def test_psi_without_reference(when_missing, severity, status, reference):
    contract = replace(CONTRACT, reference=replace(CONTRACT.reference, when_missing=when_missing))
    context = _event_type_context(reference, contract)

    result, rows = judge(contract.expectation("drift_event_type"), context)

    assert result.status == ERRORED
    assert result.reason_code == Reason.NO_REFERENCE
    assert result.severity == severity
    assert rows == []
    assert run_status([result]) == status


def test_psi_without_values_is_errored():
    metrics = _clean_metrics(rows=1000)
    metrics["null:event_type"] = 1000
    for value in EVENT_TYPE_SHARES:
        metrics[f"value:event_type:{value}"] = 0
    context = _context(metrics, references={"drift_event_type": _event_type_profile(REFERENCE_EVENT_TYPES)})

    result = _judge("drift_event_type", context)

    assert result.status == ERRORED
    assert result.reason_code == Reason.NO_VALUES


@pytest.mark.parametrize(
    ("count", "singular", "plural", "expected"),
    [
        (0, "row", None, "0 rows"),
        (1, "row", None, "1 row"),
        (2, "reference partition", None, "2 reference partitions"),
        (1_000_000, "row", None, "1,000,000 rows"),
        (1, "category", "categories", "1 category"),
        (3, "category", "categories", "3 categories"),
    ],
)
def test_format_count_table(count, singular, plural, expected):
    assert format_count(count, singular, plural) == expected


def test_psi_one_reference_partition_singular():
    context = _event_type_context(_event_type_profile(REFERENCE_EVENT_TYPES, days=1))

    result = judge(CONTRACT.expectation("drift_event_type"), context)[0]

    assert result.message.endswith("against 1 reference partition"), result.message
    failed = _judge("drift_event_type", context, max_psi=0.0001)
    assert failed.message.endswith("against 1 reference partition"), failed.message


def test_primary_key_message_names_duplicates_and_missing_keys():
    metrics = _clean_metrics()
    metrics.update(pk_null=4, pk_duplicate_keys=2, pk_duplicate_rows=5)

    result = _judge("schema_primary_key_unique", _context(metrics))

    assert result.reason_code == Reason.DUPLICATE_KEY
    assert "2 key values of (event_id) occur more than once, 5 surplus rows" in result.message
    assert "4 rows have a missing key" in result.message


def test_single_row_messages_singular():
    metrics = _clean_metrics(rows=1)
    metrics.update(pk_null=1)
    key = _judge("schema_primary_key_unique", _context(metrics))
    passing = _judge("range_duration_seconds", _context(_clean_metrics(rows=1)))
    metrics = _clean_metrics(rows=1)
    metrics.update(pk_duplicate_keys=1, pk_duplicate_rows=1)
    duplicate = _judge("schema_primary_key_unique", _context(metrics))

    assert key.message.startswith("1 row has a missing key"), key.message
    assert passing.message.startswith("1 of 1 (100%) row passes;"), passing.message
    assert "1 key value of (event_id) occurs more than once, 1 surplus row;" in duplicate.message


def test_psi_reference_below_min_partitions():
    contract = replace(CONTRACT, reference=Reference(window_days=7, min_partitions=3, when_missing="fail"))
    context = _event_type_context(_event_type_profile(REFERENCE_EVENT_TYPES, days=2), contract)

    result = judge(contract.expectation("drift_event_type"), context)[0]

    assert result.status == ERRORED
    assert result.reason_code == Reason.NO_REFERENCE
    one_day = judge(contract.expectation("drift_event_type"),
                    _event_type_context(_event_type_profile(REFERENCE_EVENT_TYPES), contract))[0]
    assert "has 1 accepted partition, the contract requires at least 3" in one_day.message


# --- volume per category ---------------------------------------------------------------------


def _platform_context(current: dict[str, int], reference: dict[str, int] | None, days: int = 2,
                      **reference_settings: Any) -> JudgeContext:
    """A partition with ``current`` rows per platform, judged against ``days`` reference
    partitions whose summed counts are ``reference``."""
    contract = CONTRACT
    if reference_settings:
        contract = replace(CONTRACT, reference=replace(CONTRACT.reference, **reference_settings))
    metrics = _clean_metrics(rows=sum(current.values()))
    metrics.update({f"value:platform:{name}": count for name, count in current.items()})
    references = {}
    if reference is not None:
        reference_metrics = _clean_metrics(rows=sum(reference.values()))
        reference_metrics.update({f"value:platform:{name}": count for name, count in reference.items()})
        partitions = tuple(PARTITION - timedelta(days=d) for d in range(1, days + 1))
        for expectation_id in ("volume_by_platform", "drift_platform"):
            profile = current_profile(contract.expectation(expectation_id), contract, reference_metrics)
            references[expectation_id] = Profile(profile.bins, partitions)
    return _context(metrics, references=references, contract=contract)


def test_category_volume_hand_computed_android_drop():
    # Two reference days of 8,000 ios, 8,000 android and 4,000 web rows in total: means 4,000,
    # 4,000 and 2,000. Changes: ios 4,100 / 4,000 = 1.025, android 1,600 / 4,000 = 0.4 (it lost
    # 60% of its events), web 1,900 / 2,000 = 0.95. Their median, 0.95, is the usual change,
    # so android's ratio is 0.4 / 0.95 = 0.421 < 0.5.
    context = _platform_context({"ios": 4_100, "android": 1_600, "web": 1_900},
                                {"ios": 8_000, "android": 8_000, "web": 4_000})

    result, rows = judge(CONTRACT.expectation("volume_by_platform"), context)

    assert result.status == FAILED
    assert result.reason_code == Reason.CATEGORY_VOLUME_OUT_OF_RANGE
    assert result.observed_value == pytest.approx(0.4 / 0.95, rel=1e-12)
    assert result.failed_count == 1
    assert ("'android' has 1,600 rows, 0.40x its mean of 4,000, against a usual change of "
            "0.95x: ratio 0.42") in result.message
    ratios = {row.bin_label: row.value for row in rows}
    assert ratios == pytest.approx({"ios": 1.025 / 0.95, "android": 0.4 / 0.95, "web": 1.0}, rel=1e-12)
    # The same day's platform PSI stays under 0.2, which is why the volume check exists.
    assert _judge("drift_platform", context).status == PASSED


@pytest.mark.parametrize(
    "android, status",
    [
        pytest.param(2_000, PASSED, id="ratio-equal-to-min-passes"),
        pytest.param(1_999, FAILED, id="just-below-min-fails"),
        pytest.param(8_000, PASSED, id="ratio-equal-to-max-passes"),
        pytest.param(8_001, FAILED, id="just-above-max-fails"),
    ],
)
def test_category_volume_bounds_are_inclusive(android, status):
    context = _platform_context({"ios": 4_000, "android": android, "web": 2_000},
                                {"ios": 8_000, "android": 8_000, "web": 4_000})

    assert _judge("volume_by_platform", context).status == status


def test_category_volume_ignores_whole_day_swings():
    # Every platform at 45% of its mean (a holiday): no platform moved against the others.
    context = _platform_context({"ios": 1_800, "android": 1_800, "web": 900},
                                {"ios": 8_000, "android": 8_000, "web": 4_000})

    result = _judge("volume_by_platform", context)

    assert result.status == PASSED
    assert [c["ratio"] for c in result.details["categories"]] == [1.0, 1.0, 1.0]
    assert [c["change"] for c in result.details["categories"]] == [0.45, 0.45, 0.45]


def test_category_volume_skips_small_categories():
    # web's reference mean is 500 rows, under min_reference_rows 1,000: listed, not judged.
    context = _platform_context({"ios": 4_000, "android": 4_000, "web": 10},
                                {"ios": 8_000, "android": 8_000, "web": 1_000})

    result = _judge("volume_by_platform", context)

    assert result.status == PASSED
    assert result.details["not_judged"] == ["web"]
    assert result.evaluated_count == 2
    # With two judged categories each is compared with the other: ios changed 4,000 / 4,000 =
    # 1.0, the rest (4,000 + 10) / (4,000 + 500) = 0.891.
    assert result.details["baseline"] == "rest"
    assert result.details["categories"][0]["ratio"] == pytest.approx(4_500 / 4_010, abs=1e-6)


def test_category_volume_all_small_errored():
    context = _platform_context({"ios": 40, "android": 40, "web": 20},
                                {"ios": 80, "android": 80, "web": 40})

    result = _judge("volume_by_platform", context)

    assert result.status == ERRORED
    assert result.reason_code == Reason.NO_VALUES


def test_category_volume_without_reference_follows_when_missing():
    warned = _judge("volume_by_platform", _platform_context({"ios": 10, "android": 10, "web": 5}, None))
    failed = _judge("volume_by_platform",
                    _platform_context({"ios": 10, "android": 10, "web": 5}, None, when_missing="fail"))

    assert (warned.status, warned.reason_code, warned.severity) == (ERRORED, Reason.NO_REFERENCE, "warn")
    assert (failed.status, failed.reason_code, failed.severity) == (ERRORED, Reason.NO_REFERENCE, "error")


def test_category_volume_on_empty_partition_fails():
    context = _context(_empty_metrics(), references={})

    result = _judge("volume_by_platform", context)

    assert result.status == FAILED
    assert result.reason_code == Reason.EMPTY_PARTITION


# --- freshness -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lag, status, reason",
    [
        pytest.param(timedelta(hours=1), PASSED, Reason.OK, id="within"),
        pytest.param(timedelta(hours=2), PASSED, Reason.OK, id="exactly-at-limit"),
        pytest.param(timedelta(hours=2, microseconds=1), FAILED, Reason.DATA_STALE, id="one-microsecond-over"),
        pytest.param(timedelta(hours=30), FAILED, Reason.DATA_STALE, id="a-day-late"),
        pytest.param(timedelta(minutes=-10), PASSED, Reason.OK, id="newest-after-as-of"),
    ],
)
@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai", "America/Los_Angeles"])
def test_freshness_lag_against_limit(lag, status, reason, zone):
    metrics = _clean_metrics()
    metrics["max:event_ts"] = _micros(AS_OF - lag)
    as_of = AS_OF.astimezone(ZoneInfo(zone))

    result = _judge("fresh_newest_event", _context(metrics, as_of=as_of))

    assert result.status == status
    assert result.reason_code == reason
    assert result.observed_value == pytest.approx(lag / timedelta(hours=1), abs=1e-9)
    assert result.threshold_high == 2


def test_freshness_details_in_utc():
    metrics = _clean_metrics()
    metrics["max:event_ts"] = _micros(datetime(2024, 5, 1, 23, 0, tzinfo=timezone.utc))

    result = _judge("fresh_newest_event", _context(metrics, as_of=AS_OF.astimezone(ZoneInfo("Asia/Shanghai"))))

    assert result.details["newest"] == "2024-05-01T23:00:00+00:00"
    assert result.observed_value == 2.0


def test_freshness_without_newest_event():
    metrics = _clean_metrics()
    metrics["max:event_ts"] = None

    result = _judge("fresh_newest_event", _context(metrics))

    assert result.status == ERRORED
    assert result.reason_code == Reason.NO_VALUES


# --- run status ------------------------------------------------------------------------------


def _outcome(severity: str, status: str) -> ExpectationResult:
    return ExpectationResult(
        expectation_id=f"{severity}_{status}", category="volume", type="row_count_between", column=None,
        severity=severity, status=status, message="",
        reason_code=Reason.OK if status == PASSED else Reason.ROW_COUNT_OUT_OF_RANGE,
    )


@pytest.mark.parametrize(
    "outcomes, status",
    [
        ([("error", PASSED), ("warn", PASSED)], RUN_PASSED),
        ([("error", PASSED), ("warn", FAILED)], RUN_WARNED),
        ([("error", PASSED), ("warn", ERRORED)], RUN_WARNED),
        ([("error", FAILED), ("warn", PASSED)], RUN_FAILED),
        ([("error", ERRORED), ("warn", PASSED)], RUN_FAILED),
        ([("warn", FAILED), ("error", ERRORED)], RUN_FAILED),
    ],
)
def test_run_status_table(outcomes, status):
    results = [_outcome(severity, result_status) for severity, result_status in outcomes]

    assert run_status(results) == status
