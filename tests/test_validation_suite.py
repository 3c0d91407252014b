"""Spark tests of the click-stream suite: every expectation passing and failing, and the
semantics users rely on (mostly, null/NaN/blank, empty partitions, missing columns, zones)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType, TimestampNTZType

from streamrec_spark.contracts.loader import load_contract
from streamrec_spark.validation.profiles import Profile
from streamrec_spark.validation.results import ERRORED, FAILED, PASSED, Reason
from streamrec_spark.validation.suite import run_suite

from rows import AS_OF, DAY, SCHEMA, START, UTC, clean_rows, event, frame

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def contract():
    return load_contract(HERE / "data" / "click_stream_small.yaml")


def run(df, contract, as_of=AS_OF, references=None, partition_date=DAY):
    outcome = run_suite(df, contract, partition_date, as_of, lambda current: dict(references or {}))
    return {r.expectation_id: r for r in outcome.results}, outcome


def current_profiles(df, contract, partition_date=DAY):
    captured = {}

    def capture(current):
        captured.update(current)
        return {}

    run_suite(df, contract, partition_date, AS_OF, capture)
    return {k: Profile(v.bins, (partition_date - timedelta(days=1),)) for k, v in captured.items()}


def test_clean_partition_passes(spark, contract):
    results, outcome = run(frame(spark, clean_rows()), contract)
    not_passed = {k: r.reason_code for k, r in results.items() if r.status != PASSED}
    assert len(results) == 23
    assert not_passed == {
        "drift_event_type": Reason.NO_REFERENCE,
        "drift_duration_seconds": Reason.NO_REFERENCE,
        "drift_platform": Reason.NO_REFERENCE,
        "drift_duration_null_rate": Reason.NO_REFERENCE,
        "volume_by_platform": Reason.NO_REFERENCE,
    }
    assert all(results[k].severity == "warn" for k in not_passed)
    assert outcome.status == "warned"
    assert outcome.row_count == 12


@pytest.mark.parametrize(
    ("expectation_id", "change", "reason", "failed_count"),
    [
        ("complete_user_id", {"user_id": None}, Reason.MISSING_VALUES, 1),
        ("complete_item_id", {"item_id": None}, Reason.MISSING_VALUES, 1),
        ("complete_event_type", {"event_type": None}, Reason.MISSING_VALUES, 1),
        ("complete_event_type", {"event_type": "  "}, Reason.MISSING_VALUES, 1),
        ("complete_event_ts", {"event_ts": None}, Reason.MISSING_VALUES, 1),
        ("range_event_type", {"event_type": "bookmark"}, Reason.VALUE_NOT_IN_SET, 1),
        ("range_platform", {"platform": "windows"}, Reason.VALUE_NOT_IN_SET, 1),
        ("range_platform", {"platform": ""}, Reason.VALUE_NOT_IN_SET, 1),
        ("range_duration_seconds", {"duration_seconds": 14400.5}, Reason.VALUE_OUT_OF_RANGE, 1),
        ("range_duration_seconds", {"duration_seconds": -0.1}, Reason.VALUE_OUT_OF_RANGE, 1),
        ("range_duration_seconds", {"duration_seconds": float("nan")}, Reason.VALUE_OUT_OF_RANGE, 1),
        ("range_duration_seconds", {"duration_seconds": float("inf")}, Reason.VALUE_OUT_OF_RANGE, 1),
        (
            "range_event_ts_not_after_as_of",
            {"event_ts": AS_OF + timedelta(minutes=6)},
            Reason.TIMESTAMP_AFTER_AS_OF,
            1,
        ),
        ("fresh_partition_date", {"event_date": date(2024, 4, 30)}, Reason.PARTITION_DATE_MISMATCH, 1),
        ("fresh_partition_date", {"event_date": None}, Reason.PARTITION_DATE_MISMATCH, 1),
    ],
)
def test_row_level_check_fails(spark, contract, expectation_id, change, reason, failed_count):
    rows = clean_rows()
    rows[5] = event(5, **change)
    results, _ = run(frame(spark, rows), contract)
    result = results[expectation_id]
    assert result.status == FAILED
    assert result.reason_code == reason
    assert result.failed_count == failed_count
    assert result.blocking


def test_range_bounds_are_inclusive(spark, contract):
    rows = clean_rows()
    rows[0] = event(0, duration_seconds=0.0)
    rows[1] = event(1, duration_seconds=14400.0)
    results, _ = run(frame(spark, rows), contract)
    assert results["range_duration_seconds"].status == PASSED
    assert results["range_duration_seconds"].failed_count == 0


def test_null_nan_blank_counted_separately(spark, contract):
    rows = clean_rows()
    rows[0] = event(0, duration_seconds=None)
    rows[1] = event(1, duration_seconds=float("nan"))
    rows[2] = event(2, duration_seconds=float("nan"))
    rows[3] = event(3, event_type="")
    rows[4] = event(4, event_type=None)
    results, outcome = run(frame(spark, rows), contract)
    duration = results["range_duration_seconds"]
    assert duration.null_count == 1
    assert duration.nan_count == 2
    # NaN is invalid for a range check, null is not evaluated.
    assert duration.evaluated_count == 11
    assert duration.failed_count == 2
    event_type = results["complete_event_type"]
    assert event_type.null_count == 1
    assert event_type.blank_count == 1
    assert event_type.failed_count == 2
    # The closed-set check leaves a required column's blanks to completeness.
    assert results["range_event_type"].status == PASSED
    assert results["range_event_type"].evaluated_count == 10
    stored = {(m.metric_name, m.column): m.count for m in outcome.metric_rows if m.count is not None}
    assert stored[("null_count", "duration_seconds")] == 1
    assert stored[("nan_count", "duration_seconds")] == 2
    assert stored[("blank_count", "event_type")] == 1


def test_mostly_one_bad_row_in_many_fails(spark, contract):
    rows = 200_000
    df = frame(spark, clean_rows(1)).crossJoin(spark.range(rows).withColumnRenamed("id", "n"))
    df = df.withColumn("event_id", F.concat(F.lit("e"), F.col("n").cast("string"))).withColumn(
        "duration_seconds", F.when(F.col("n") == 777, F.lit(20000.0)).otherwise(F.lit(5.0))
    ).drop("n")
    limits = replace(contract, expectations=tuple(
        replace(e, max_value=10_000_000.0) if e.id == "volume_row_count" else e
        for e in contract.expectations
    ))
    results, _ = run(df, limits)
    result = results["range_duration_seconds"]
    assert result.status == FAILED
    assert result.evaluated_count == rows
    assert result.failed_count == 1
    assert result.observed_value == pytest.approx((rows - 1) / rows)


def test_unexpected_values_named_with_counts(spark, contract):
    rows = clean_rows(20)
    for i in (2, 5, 7):
        rows[i] = event(i, event_type="bookmark")
    rows[9] = event(9, event_type="share")
    results, _ = run(frame(spark, rows), contract)
    result = results["range_event_type"]
    assert result.status == FAILED
    assert result.details["unexpected_values"] == [
        {"value": "bookmark", "count": 3},
        {"value": "share", "count": 1},
    ]
    assert "'bookmark' (3 rows)" in result.message


@pytest.mark.parametrize("ansi", ["false", "true"])
def test_integer_allowed_values_on_string_column(spark, contract, ansi):
    # YAML reads [1, 2] as integers; a string column still compares them as strings.
    spec = replace(contract.column("platform"), allowed_values=(1, 2))
    numbered = replace(contract, columns=tuple(spec if c.name == "platform" else c for c in contract.columns))
    values = ["1", "1", " 1", "01", "1.0", "2", "abc", "", None, "2", "1", "3"]
    rows = [event(i, platform=value) for i, value in enumerate(values)]
    spark.conf.set("spark.sql.ansi.enabled", ansi)
    try:
        results, outcome = run(frame(spark, rows), numbered)
    finally:
        spark.conf.unset("spark.sql.ansi.enabled")

    counts = {m.bin_label: m.count for m in outcome.metric_rows
              if m.metric_name == "value_count" and m.column == "platform"}
    assert counts == {"1": 3, "2": 2}
    assert results["range_platform"].evaluated_count == 11
    assert results["range_platform"].failed_count == 6


def test_allowed_values_with_quotes_and_backslashes(spark, contract):
    allowed = ("it's", "a\\b", 'say "hi"', "ü")
    spec = replace(contract.column("platform"), allowed_values=allowed)
    quoted = replace(contract, columns=tuple(spec if c.name == "platform" else c for c in contract.columns))
    values = ["it's", "a\\b", 'say "hi"', "ü", "its", "a\\\\b", "it''s"]
    rows = [event(i, platform=value) for i, value in enumerate(values)]

    results, outcome = run(frame(spark, rows), quoted)

    counts = {m.bin_label: m.count for m in outcome.metric_rows
              if m.metric_name == "value_count" and m.column == "platform"}
    assert counts == {value: 1 for value in allowed}
    assert results["range_platform"].failed_count == 3


def test_duplicate_and_null_keys(spark, contract):
    rows = clean_rows()
    rows[3] = event(3, event_id=f"e{DAY}-1")
    rows[4] = event(4, event_id=f"e{DAY}-1")
    results, outcome = run(frame(spark, rows), contract)
    result = results["schema_primary_key_unique"]
    assert result.status == FAILED
    assert result.reason_code == Reason.DUPLICATE_KEY
    assert result.details["duplicate_keys"] == 1
    assert result.details["duplicate_rows"] == 2
    assert result.details["samples"][0] == {"event_id": f"e{DAY}-1", "count": 3}

    rows = clean_rows()
    rows[3] = event(3, event_id=None)
    results, _ = run(frame(spark, rows), contract)
    assert results["schema_primary_key_unique"].reason_code == Reason.NULL_KEY
    assert results["schema_primary_key_unique"].null_count == 1

    # Blank keys in the required event_id are missing keys, not one key value repeated.
    rows = clean_rows()
    rows[3] = event(3, event_id="")
    rows[4] = event(4, event_id="  ")
    rows[5] = event(5, event_id="")
    results, _ = run(frame(spark, rows), contract)
    blank = results["schema_primary_key_unique"]
    assert blank.reason_code == Reason.NULL_KEY
    assert blank.null_count == 3
    assert blank.details["duplicate_keys"] == 0


def test_volume_bounds(spark, contract):
    results, _ = run(frame(spark, clean_rows(2)), contract)
    assert results["volume_row_count"].status == FAILED
    assert results["volume_row_count"].reason_code == Reason.ROW_COUNT_OUT_OF_RANGE
    assert results["volume_row_count"].observed_value == 2.0
    # Two rows with user ids 1 and 2: exactly the minimum of two distinct users passes.
    assert results["volume_distinct_users"].status == PASSED
    results, _ = run(frame(spark, [event(i, user_id=7) for i in range(5)]), contract)
    assert results["volume_distinct_users"].status == FAILED
    assert results["volume_distinct_users"].observed_value == 1.0


def test_stale_partition_fails_freshness(spark, contract):
    rows = clean_rows()
    newest = max(r["event_ts"] for r in rows)
    results, _ = run(frame(spark, rows), contract, as_of=newest + timedelta(hours=2))
    assert results["fresh_newest_event"].status == PASSED
    assert results["fresh_newest_event"].observed_value == pytest.approx(2.0)
    results, _ = run(frame(spark, rows), contract, as_of=newest + timedelta(hours=2, seconds=1))
    assert results["fresh_newest_event"].status == FAILED
    assert results["fresh_newest_event"].reason_code == Reason.DATA_STALE


def test_as_of_zone_does_not_change_freshness(spark, contract):
    rows = clean_rows()
    shanghai = AS_OF.astimezone(timezone(timedelta(hours=8)))
    utc_results, _ = run(frame(spark, rows), contract, as_of=AS_OF)
    other_results, _ = run(frame(spark, rows), contract, as_of=shanghai)
    assert utc_results["fresh_newest_event"].observed_value == other_results["fresh_newest_event"].observed_value


def test_timestamp_date_mismatch_uses_partition_zone(spark, contract):
    # 17:30 UTC on May 1 is already May 2 in Shanghai (UTC+8).
    late = datetime(2024, 5, 1, 17, 30, tzinfo=UTC)
    rows = clean_rows()
    rows[0] = event(0, event_ts=late)
    results, _ = run(frame(spark, rows), contract, as_of=late + timedelta(hours=1))
    assert results["range_event_ts_matches_event_date"].status == PASSED
    shanghai = replace(contract, expectations=tuple(
        replace(e, time_zone="Asia/Shanghai") if e.id == "range_event_ts_matches_event_date" else e
        for e in contract.expectations
    ))
    results, _ = run(frame(spark, rows), shanghai, as_of=late + timedelta(hours=1))
    result = results["range_event_ts_matches_event_date"]
    assert result.status == FAILED
    assert result.failed_count == 1
    assert result.severity == "warn"
    assert not result.blocking


def test_non_utc_session_zone_gives_same_results(spark, contract):
    rows = clean_rows()
    rows[0] = event(0, event_ts=datetime(2024, 5, 1, 23, 30, tzinfo=UTC))
    expected, _ = run(frame(spark, rows), contract, as_of=datetime(2024, 5, 2, 0, 0, tzinfo=UTC))
    spark.conf.set("spark.sql.session.timeZone", "America/Los_Angeles")
    try:
        actual, _ = run(frame(spark, rows), contract, as_of=datetime(2024, 5, 2, 0, 0, tzinfo=UTC))
        assert spark.conf.get("spark.sql.session.timeZone") == "America/Los_Angeles"
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    assert {k: r.status for k, r in actual.items()} == {k: r.status for k, r in expected.items()}
    assert actual["range_event_ts_matches_event_date"].failed_count == 0


def test_zero_row_partition(spark, contract):
    results, outcome = run(frame(spark, []), contract)
    assert results["volume_row_count"].status == FAILED
    assert results["volume_row_count"].reason_code == Reason.EMPTY_PARTITION
    computed = [r for r in results.values() if r.category not in ("schema", "volume")]
    assert all(r.status == ERRORED for r in computed)
    assert {r.reason_code for r in computed} == {Reason.EMPTY_PARTITION}
    assert results["schema_primary_key_unique"].status == ERRORED
    assert outcome.status == "failed"
    assert not any(r.status == PASSED for r in results.values() if r.category != "schema")


def test_missing_column_errors_only_its_checks(spark, contract):
    df = frame(spark, clean_rows()).drop("user_id")
    results, _ = run(df, contract)
    assert results["schema_columns_present"].status == FAILED
    assert results["schema_columns_present"].details["missing"] == ["user_id"]
    for expectation_id in ("complete_user_id", "volume_distinct_users"):
        assert results[expectation_id].status == ERRORED
        assert results[expectation_id].reason_code == Reason.COLUMN_UNAVAILABLE
    assert results["range_event_type"].status == PASSED
    assert results["volume_row_count"].status == PASSED
    assert results["fresh_newest_event"].status == PASSED


def test_mistyped_column_fails_schema(spark, contract):
    df = frame(spark, clean_rows()).withColumn("user_id", F.col("user_id").cast("string"))
    results, _ = run(df, contract)
    assert results["schema_column_types"].status == FAILED
    assert results["schema_column_types"].details["mismatched"] == {
        "user_id": {"expected": "bigint", "found": "string"}
    }
    assert results["complete_user_id"].reason_code == Reason.COLUMN_UNAVAILABLE
    assert results["complete_item_id"].status == PASSED


def test_unexpected_column_reported(spark, contract):
    df = frame(spark, clean_rows()).withColumn("device_model", F.lit("x"))
    results, _ = run(df, contract)
    assert results["schema_no_unexpected_columns"].status == FAILED
    assert results["schema_no_unexpected_columns"].details["unexpected"] == ["device_model"]
    assert not results["schema_no_unexpected_columns"].blocking


def test_zone_less_timestamp_read_in_declared_zone(spark, contract):
    # Wall clock 18:00 in Shanghai is 10:00 UTC.
    shanghai = replace(contract, timestamp_time_zone="Asia/Shanghai")
    schema = StructType([
        StructField(f.name, TimestampNTZType()) if f.name == "event_ts" else f for f in SCHEMA.fields
    ])
    rows = [event(i, event_ts=datetime(2024, 5, 1, 18, 0) + timedelta(minutes=i)) for i in range(12)]
    df = frame(spark, rows, schema)
    results, _ = run(df, shanghai, as_of=datetime(2024, 5, 1, 11, 0, tzinfo=UTC))
    assert results["schema_event_ts_is_instant"].status == FAILED
    assert results["schema_event_ts_is_instant"].reason_code == Reason.NOT_AN_INSTANT
    assert results["schema_column_types"].status == PASSED
    newest = results["fresh_newest_event"]
    assert newest.status == PASSED
    assert newest.observed_value == pytest.approx(1.0 - 11 / 60)
    # Without a declared zone the same column is a type mismatch and its checks cannot run.
    results, _ = run(df, replace(contract, timestamp_time_zone=None))
    assert results["schema_column_types"].status == FAILED
    assert results["fresh_newest_event"].reason_code == Reason.COLUMN_UNAVAILABLE


def test_string_timestamp_is_not_an_instant(spark, contract):
    df = frame(spark, clean_rows()).withColumn("event_ts", F.col("event_ts").cast("string"))
    results, _ = run(df, contract)
    assert results["schema_event_ts_is_instant"].status == FAILED
    assert results["schema_column_types"].status == FAILED
    assert results["fresh_newest_event"].status == ERRORED


def test_drift_passes_on_same_distribution(spark, contract):
    rows = clean_rows(40)
    references = current_profiles(frame(spark, rows), contract)
    results, outcome = run(frame(spark, rows), contract, references=references)
    for expectation_id in ("drift_event_type", "drift_duration_seconds", "drift_platform",
                           "drift_duration_null_rate"):
        assert results[expectation_id].status == PASSED
        assert results[expectation_id].observed_value == pytest.approx(0.0)
    assert outcome.reference_partitions == (DAY - timedelta(days=1),)


def test_drift_fails_on_shifted_distribution(spark, contract):
    reference_rows = clean_rows(40)
    references = current_profiles(frame(spark, reference_rows), contract)
    shifted = [
        event(i, event_type="view", platform="web",
              duration_seconds=None if i % 2 else r["duration_seconds"] * 8)
        for i, r in enumerate(reference_rows)
    ]
    results, outcome = run(frame(spark, shifted), contract, references=references)
    for expectation_id in ("drift_event_type", "drift_duration_seconds", "drift_platform",
                           "drift_duration_null_rate"):
        assert results[expectation_id].status == FAILED, expectation_id
        assert results[expectation_id].reason_code == Reason.PSI_ABOVE_THRESHOLD
        assert results[expectation_id].observed_value > 0.2
    details = results["drift_event_type"].details
    assert details["bins"] == ["view", "click", "complete", "skip", "__other__"]
    assert details["expected"] == [10, 10, 10, 10, 0]
    assert details["actual"] == [40, 0, 0, 0, 0]
    bin_rows = [m for m in outcome.metric_rows if m.expectation_id == "drift_event_type"
                and m.metric_name.startswith("psi_bin")]
    assert len(bin_rows) == 10


def test_no_reference_can_be_blocking(spark, contract):
    strict = replace(contract, reference=replace(contract.reference, when_missing="fail"))
    results, outcome = run(frame(spark, clean_rows()), strict)
    assert results["drift_platform"].status == ERRORED
    assert results["drift_platform"].reason_code == Reason.NO_REFERENCE
    assert results["drift_platform"].severity == "error"
    assert outcome.status == "failed"


def test_local_day_bounds_follow_daylight_saving():
    from streamrec_spark.validation.metrics import local_day_bounds

    start, end = local_day_bounds(date(2024, 3, 10), "America/New_York")
    assert end - start == 23 * 3600 * 1_000_000
    start, end = local_day_bounds(date(2024, 11, 3), "America/New_York")
    assert end - start == 25 * 3600 * 1_000_000
    start, _ = local_day_bounds(date(2024, 5, 1), "Asia/Shanghai")
    assert start == int(datetime(2024, 4, 30, 16, 0, tzinfo=UTC).timestamp() * 1_000_000)


def test_date_check_on_daylight_saving_day(spark, contract):
    day = date(2024, 3, 10)
    new_york = replace(contract, expectations=tuple(
        replace(e, time_zone="America/New_York") if e.id == "range_event_ts_matches_event_date" else e
        for e in contract.expectations
    ))
    rows = clean_rows(12, day)
    # 03:30 UTC on March 11 is 23:30 EDT on March 10; 04:30 UTC is already March 11.
    rows[0] = event(0, day, event_ts=datetime(2024, 3, 11, 3, 30, tzinfo=UTC))
    rows[1] = event(1, day, event_ts=datetime(2024, 3, 11, 4, 30, tzinfo=UTC))
    # A row dated on another day takes the per-row conversion: 04:59 UTC on March 10 is
    # 23:59 EST on March 9, so its date matches.
    rows[2] = event(2, day, event_date=date(2024, 3, 9), event_ts=datetime(2024, 3, 10, 4, 59, tzinfo=UTC))
    results, _ = run(frame(spark, rows), new_york, as_of=datetime(2024, 3, 11, 5, 0, tzinfo=UTC),
                     partition_date=day)
    result = results["range_event_ts_matches_event_date"]
    assert result.failed_count == 1
    assert results["fresh_partition_date"].failed_count == 1
