"""Tests of the KuaiRand converter, the embedded sample and the synthetic generator."""

from __future__ import annotations

import collections
import csv
import datetime as dt
import gzip
import hashlib
import importlib.util
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest
from chispa import assert_df_equality
from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import functions as F
from pyspark.sql import types as T

from streamrec_spark.contracts.loader import load_contract
from streamrec_spark.datasets.cli_support import spark_error_summary
from streamrec_spark.datasets.clickstream import (
    CLICK_STREAM_SCHEMA,
    EVENT_TYPES,
    PLATFORM_USER_SHARES,
    PLATFORMS,
)
from streamrec_spark.datasets.kuairand import (
    KUAIRAND_LOG_SCHEMA,
    convert_kuairand,
    read_kuairand_log,
    to_click_stream,
)
from streamrec_spark.datasets.profile import (
    QUANTILE_POINTS,
    load_profile,
    lorenz_inverse,
    parse_profile,
)
from streamrec_spark.datasets.synthetic import (
    FaultConfig,
    contract_user_count,
    expected_distinct,
    generate_click_stream,
    parse_drop_platform,
    solve_member_count,
    write_synthetic_day,
)
from streamrec_spark.errors import ConfigError, InputDataError, InvalidRequestError

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_LOG = REPO_ROOT / "data" / "kuairand" / "log_27k_standard_likehate_kcore15.tsv.gz"
BEIJING = dt.timezone(dt.timedelta(hours=8))

GENERATED_ROWS = 20_000
GENERATED_DATE = dt.date(2024, 3, 1)
GENERATED_SEED = 7


def schema_pairs(schema: T.StructType) -> list[tuple[str, T.DataType]]:
    return [(field.name, field.dataType) for field in schema]


def epoch_ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


def write_log(path: Path, rows: list[dict[str, object]]) -> str:
    """Write KuaiRand log rows as tab-separated text with a header. Unset columns are 0."""
    names = KUAIRAND_LOG_SCHEMA.fieldNames()
    lines = ["\t".join(names)]
    for row in rows:
        lines.append("\t".join(str(row.get(name, 0)) for name in names))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def expected_event_types(row: dict[str, str]) -> list[str]:
    """Expand one log row with the mapping rules, written independently of the converter."""
    play_ms = int(row["play_time_ms"])
    length_ms = int(row["duration_ms"])
    types = ["view"]
    if row["is_click"] == "1":
        types.append("click")
    if length_ms > 0 and play_ms >= length_ms:
        types.append("complete")
    if play_ms < min(3000, length_ms):
        types.append("skip")
    return types


def day_ms(day: dt.date, hour: int = 0) -> int:
    """Return the epoch milliseconds of ``hour`` o'clock UTC on ``day``."""
    return epoch_ms(f"{day.isoformat()}T{hour:02d}:00:00")


def counts_by(df, column):
    return {row[column]: row["count"] for row in df.groupBy(column).count().collect()}


# --- pure functions (no Spark) ---------------------------------------------------------------


def test_lorenz_inverse_two_members():
    curve = lorenz_inverse([3, 1], points=5)

    # The busier member has 75% of the events, so the first half of the members has 75%.
    assert curve[0] == 0.0
    assert curve[2] == pytest.approx(1 / 3)
    assert curve[3] == pytest.approx(0.5)
    assert curve[4] == 1.0


def test_solve_member_count_hits_target():
    profile = load_profile()
    rows = 1_000_000

    members = solve_member_count(rows, 12.0, profile.user_lorenz_inverse)

    assert expected_distinct(rows, members, profile.user_lorenz_inverse) == pytest.approx(
        rows / 12.0, rel=1e-3
    )
    assert solve_member_count(5, 12.0, profile.user_lorenz_inverse) == 1


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("android:0.6", ("android", 0.6)), ("web:0", ("web", 0.0)), ("ios:1", ("ios", 1.0))],
)
def test_parse_drop_platform_valid(spec, expected):
    assert parse_drop_platform(spec) == expected


@pytest.mark.parametrize("spec", ["android", "tv:0.5", "android:1.5", "android:much", ":0.2"])
def test_parse_drop_platform_invalid(spec):
    with pytest.raises(InvalidRequestError, match="expected PLATFORM:SHARE"):
        parse_drop_platform(spec)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"unknown_event_share": 1.5}, "unknown_event_share must be between 0 and 1"),
        ({"unknown_event_type": "click"}, "unknown_event_type must be a non-empty value"),
        ({"drop_platform": {"tv": 0.5}}, "drop_platform names 'tv'"),
        ({"duration_factor": 0.0}, "duration_factor must be a positive number"),
        ({"late_hours": 24}, "late_hours must be at least 0 and below 24"),
        ({"late_mode": "shift"}, "late_mode must be one of"),
        ({"null_duration_share": 0.6, "nan_duration_share": 0.6}, "must be at most 1"),
    ],
)
def test_fault_config_invalid(settings, message):
    with pytest.raises(InvalidRequestError, match=message):
        FaultConfig(**settings)


def test_committed_profile_is_consistent():
    profile = load_profile()

    assert sum(profile.event_type_shares.values()) == pytest.approx(1.0, abs=1e-4)
    assert set(profile.duration_seconds_quantiles) == set(EVENT_TYPES)
    assert len(profile.user_lorenz_inverse) == QUANTILE_POINTS
    assert profile.source["log_rows"] == 41_828
    assert profile.source["click_stream_events"] == 88_091


def test_load_profile_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="absent.json: generator profile not found"):
        load_profile(tmp_path / "absent.json")


def test_parse_profile_reports_missing_keys():
    with pytest.raises(ConfigError, match="profile.json: missing key 'events_per_session'"):
        parse_profile({"event_type_shares": {}}, "profile.json")


# --- converter on hand-made rows -------------------------------------------------------------

T0 = epoch_ms("2022-04-10T08:00:00")
MINUTE_MS = 60_000
# 23:40 in Beijing on 2022-04-08, but the source's hour rounding dated it 2022-04-09.
LATE_EVENING_MS = epoch_ms("2022-04-08T15:40:00")

HAND_MADE_ROWS: list[dict[str, object]] = [
    # Watched exactly to the end, and clicked.
    {"user_id": 1, "video_id": 10, "date": 20220410, "time_ms": T0, "is_click": 1,
     "play_time_ms": 10_000, "duration_ms": 10_000},
    # Unknown video length: neither complete nor skip.
    {"user_id": 1, "video_id": 11, "date": 20220410, "time_ms": T0 + 29 * MINUTE_MS,
     "play_time_ms": 500, "duration_ms": 0},
    # Just under the 3-second skip threshold, 31 minutes after the previous event.
    {"user_id": 1, "video_id": 12, "date": 20220410, "time_ms": T0 + 60 * MINUTE_MS,
     "play_time_ms": 2_999, "duration_ms": 10_000},
    # Exactly at the threshold: no skip.
    {"user_id": 1, "video_id": 13, "date": 20220410, "time_ms": T0 + 61 * MINUTE_MS,
     "play_time_ms": 3_000, "duration_ms": 10_000},
    # A 2-second video: the skip threshold is the video length.
    {"user_id": 2, "video_id": 20, "date": 20220410, "time_ms": T0,
     "play_time_ms": 1_500, "duration_ms": 2_000},
    {"user_id": 2, "video_id": 21, "date": 20220410, "time_ms": T0 + MINUTE_MS,
     "play_time_ms": 2_000, "duration_ms": 2_000},
    # An exact duplicate row.
    {"user_id": 3, "video_id": 30, "date": 20220410, "time_ms": T0,
     "play_time_ms": 8_000, "duration_ms": 9_000},
    {"user_id": 3, "video_id": 30, "date": 20220410, "time_ms": T0,
     "play_time_ms": 8_000, "duration_ms": 9_000},
    # The source date disagrees with the UTC+8 date of the timestamp.
    {"user_id": 4, "video_id": 40, "date": 20220409, "time_ms": LATE_EVENING_MS,
     "play_time_ms": 4_000, "duration_ms": 9_000},
]  # fmt: skip

EXPECTED_EVENTS = [
    (1, 10, "view", 10.0, T0, "2022-04-10"),
    (1, 10, "click", 10.0, T0, "2022-04-10"),
    (1, 10, "complete", 10.0, T0, "2022-04-10"),
    (1, 11, "view", 0.5, T0 + 29 * MINUTE_MS, "2022-04-10"),
    (1, 12, "view", 2.999, T0 + 60 * MINUTE_MS, "2022-04-10"),
    (1, 12, "skip", 2.999, T0 + 60 * MINUTE_MS, "2022-04-10"),
    (1, 13, "view", 3.0, T0 + 61 * MINUTE_MS, "2022-04-10"),
    (2, 20, "view", 1.5, T0, "2022-04-10"),
    (2, 20, "skip", 1.5, T0, "2022-04-10"),
    (2, 21, "view", 2.0, T0 + MINUTE_MS, "2022-04-10"),
    (2, 21, "complete", 2.0, T0 + MINUTE_MS, "2022-04-10"),
    (3, 30, "view", 8.0, T0, "2022-04-10"),
    (3, 30, "view", 8.0, T0, "2022-04-10"),
    (4, 40, "view", 4.0, LATE_EVENING_MS, "2022-04-09"),
]


@pytest.fixture(scope="module")
def hand_made_events(spark, tmp_path_factory):
    log_path = write_log(tmp_path_factory.mktemp("log") / "log.tsv", HAND_MADE_ROWS)
    events = to_click_stream(read_kuairand_log(spark, log_path)).cache()
    yield events
    events.unpersist()


def test_to_click_stream_schema(hand_made_events):
    assert schema_pairs(hand_made_events.schema) == schema_pairs(CLICK_STREAM_SCHEMA)


def test_to_click_stream_expansion_rules(spark, hand_made_events):
    expected_schema = T.StructType(
        [
            T.StructField("user_id", T.LongType()),
            T.StructField("item_id", T.LongType()),
            T.StructField("event_type", T.StringType()),
            T.StructField("duration_seconds", T.DoubleType()),
            T.StructField("event_ts", T.TimestampType()),
            T.StructField("event_date", T.DateType()),
        ]
    )
    expected = spark.createDataFrame(
        [
            (user, item, event_type, seconds, dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc),
             dt.date.fromisoformat(day))
            for user, item, event_type, seconds, ms, day in EXPECTED_EVENTS
        ],
        expected_schema,
    )  # fmt: skip
    actual = hand_made_events.select(*expected_schema.fieldNames())

    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_to_click_stream_event_ids(hand_made_events):
    rows = hand_made_events.collect()
    ids = collections.Counter(row["event_id"] for row in rows)
    first = next(row for row in rows if row["item_id"] == 10 and row["event_type"] == "view")

    assert first["event_id"] == hashlib.sha256(f"1|10|{T0}|view".encode()).hexdigest()[:32]
    # Only the duplicate log row repeats an id.
    assert [count for count in ids.values() if count > 1] == [2]
    duplicated = [row for row in rows if ids[row["event_id"]] == 2]
    assert {(row["user_id"], row["item_id"]) for row in duplicated} == {(3, 30)}


def test_to_click_stream_sessions(hand_made_events):
    sessions = {
        row["item_id"]: row["session_id"]
        for row in hand_made_events.filter("event_type = 'view'").collect()
    }

    assert sessions[10] == sessions[11]  # 29 minutes apart
    assert sessions[12] != sessions[11]  # 31 minutes apart
    assert sessions[13] == sessions[12]
    assert sessions[20] != sessions[10]  # another user at the same time
    assert all(sessions.values())


def test_to_click_stream_platform_per_user(hand_made_events):
    pairs = {(row["user_id"], row["platform"]) for row in hand_made_events.collect()}

    assert {platform for _, platform in pairs} <= set(PLATFORMS)
    assert len(pairs) == len({user for user, _ in pairs})


def test_convert_kuairand_writes_partitions(spark, tmp_path):
    log_path = write_log(tmp_path / "log.tsv", HAND_MADE_ROWS)
    output = tmp_path / "click_stream"

    dates = convert_kuairand(spark, log_path, str(output))
    leaf = spark.read.option("basePath", str(output)).parquet(str(output / "event_date=2022-04-09"))

    assert dates == [dt.date(2022, 4, 9), dt.date(2022, 4, 10)]
    assert sorted(path.name for path in output.iterdir() if path.is_dir()) == [
        "event_date=2022-04-09",
        "event_date=2022-04-10",
    ]
    assert list(output.glob("event_date=2022-04-10/part-*.parquet"))
    assert spark.read.parquet(str(output)).count() == len(EXPECTED_EVENTS)
    assert [tuple(row) for row in leaf.select("user_id", "event_date").collect()] == [
        (4, dt.date(2022, 4, 9))
    ]


def test_convert_kuairand_missing_log(spark, tmp_path):
    with pytest.raises(InputDataError, match="KuaiRand log not found: .*absent.tsv"):
        convert_kuairand(spark, str(tmp_path / "absent.tsv"), str(tmp_path / "out"))


def test_convert_kuairand_row_without_date(spark, tmp_path):
    rows = [dict(HAND_MADE_ROWS[0], date="")]
    log_path = write_log(tmp_path / "log.tsv", rows)

    with pytest.raises(InputDataError, match="1 rows of .* have no 'date'") as caught:
        convert_kuairand(spark, log_path, str(tmp_path / "out"))
    assert caught.value.error_code == "INPUT_INVALID"
    assert not (tmp_path / "out").exists()


def test_convert_kuairand_malformed_row(spark, tmp_path):
    log_path = write_log(tmp_path / "log.tsv", [dict(HAND_MADE_ROWS[0], user_id="abc")])

    with pytest.raises((PySparkException, Py4JJavaError)) as caught:
        convert_kuairand(spark, log_path, str(tmp_path / "out"))
    assert "NumberFormatException" in spark_error_summary(caught.value)


def test_convert_kuairand_empty_log(spark, tmp_path):
    log_path = write_log(tmp_path / "log.tsv", [])

    with pytest.raises(InputDataError, match="has a header but no rows") as caught:
        convert_kuairand(spark, log_path, str(tmp_path / "out"))
    assert caught.value.error_code == "INPUT_EMPTY"


# --- converter on the embedded sample ---------------------------------------------------------


@pytest.fixture(scope="module")
def sample_rows():
    with gzip.open(SAMPLE_LOG, "rt", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.fixture(scope="module")
def sample_output(spark, tmp_path_factory):
    output = tmp_path_factory.mktemp("kuairand") / "click_stream"
    dates = convert_kuairand(spark, str(SAMPLE_LOG), str(output))
    events = spark.read.parquet(str(output)).cache()
    yield dates, output, events
    events.unpersist()


def test_sample_event_counts(sample_rows, sample_output):
    _, _, events = sample_output
    expected = collections.Counter(
        event_type for row in sample_rows for event_type in expected_event_types(row)
    )
    actual = counts_by(events, "event_type")

    assert len(sample_rows) == 41_828
    assert events.count() == sum(expected.values())
    assert actual == dict(expected)


def test_sample_dates(sample_rows, sample_output):
    dates, output, events = sample_output
    expected_dates = sorted(
        {dt.datetime.strptime(row["date"], "%Y%m%d").date() for row in sample_rows}
    )
    written_dates = sorted(row[0] for row in events.select("event_date").distinct().collect())

    assert len(expected_dates) == 14
    assert dates == expected_dates
    assert len(list(output.glob("event_date=*"))) == 14
    assert written_dates == expected_dates


def test_sample_date_disagrees_with_timestamp(sample_rows, sample_output):
    _, _, events = sample_output
    expected = sum(
        1
        for row in sample_rows
        if dt.datetime.fromtimestamp(int(row["time_ms"]) / 1000, BEIJING).strftime("%Y%m%d")
        != row["date"]
    )
    beijing_date = F.to_date(F.from_utc_timestamp("event_ts", "+08:00"))
    views = events.filter(F.col("event_type") == "view")

    assert expected == 312
    assert views.filter(beijing_date != F.col("event_date")).count() == expected


def test_sample_duplicate_event_ids(sample_rows, sample_output):
    _, _, events = sample_output
    keys = collections.Counter(
        (row["user_id"], row["video_id"], row["time_ms"], event_type)
        for row in sample_rows
        for event_type in expected_event_types(row)
    )
    expected_extra = sum(count - 1 for count in keys.values())

    assert expected_extra > 0
    assert events.count() - events.select("event_id").distinct().count() == expected_extra


# --- synthetic generator ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(spark):
    df = generate_click_stream(spark, GENERATED_ROWS, GENERATED_DATE, seed=GENERATED_SEED).cache()
    yield df
    df.unpersist()


def generate(spark, **faults):
    return generate_click_stream(
        spark, GENERATED_ROWS, GENERATED_DATE, seed=GENERATED_SEED, faults=FaultConfig(**faults)
    )


def test_generated_rows_and_schema(generated):
    day_start_ms = day_ms(GENERATED_DATE)
    stats = generated.agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct("event_id").alias("event_ids"),
        F.min(F.unix_millis("event_ts")).alias("first"),
        F.max(F.unix_millis("event_ts")).alias("last"),
        F.min("event_date").alias("first_date"),
        F.max("event_date").alias("last_date"),
        F.count("session_id").alias("sessions"),
        F.count("duration_seconds").alias("durations"),
    ).first()

    assert schema_pairs(generated.schema) == schema_pairs(CLICK_STREAM_SCHEMA)
    assert stats["rows"] == GENERATED_ROWS
    assert stats["event_ids"] == GENERATED_ROWS
    assert stats["first"] >= day_start_ms
    assert stats["last"] < day_start_ms + 24 * 3600 * 1000
    assert stats["first_date"] == stats["last_date"] == GENERATED_DATE
    assert stats["sessions"] == stats["durations"] == GENERATED_ROWS


def test_generated_distributions(generated):
    profile = load_profile()
    event_types = counts_by(generated, "event_type")
    platforms = counts_by(generated, "platform")
    users = generated.select("user_id").distinct().count()

    assert set(event_types) == set(EVENT_TYPES)
    for event_type, share in profile.event_type_shares.items():
        assert event_types[event_type] / GENERATED_ROWS == pytest.approx(share, abs=0.015)
    assert set(platforms) == set(PLATFORMS)
    for platform, share in PLATFORM_USER_SHARES.items():
        assert platforms[platform] / GENERATED_ROWS == pytest.approx(share, abs=0.05)
    assert users == pytest.approx(GENERATED_ROWS / profile.events_per_active_user, rel=0.05)


def test_generated_events_per_user_override(spark):
    df = generate_click_stream(spark, GENERATED_ROWS, GENERATED_DATE, events_per_user=4.0)

    assert df.select("user_id").distinct().count() == pytest.approx(GENERATED_ROWS / 4, rel=0.05)


def test_generated_users_override(spark):
    df = generate_click_stream(spark, GENERATED_ROWS, GENERATED_DATE, users=5_000)

    assert df.select("user_id").distinct().count() == pytest.approx(5_000, rel=0.05)
    with pytest.raises(InvalidRequestError, match="give users or events_per_user, not both"):
        generate_click_stream(spark, 100, GENERATED_DATE, users=10, events_per_user=4.0)
    with pytest.raises(InvalidRequestError, match=r"users must be an integer from 1 to rows - 1 \(99\)"):
        generate_click_stream(spark, 100, GENERATED_DATE, users=100)


PRODUCTION_CONTRACT = REPO_ROOT / "conf" / "contracts" / "click_stream.yaml"


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # 1M rows at the sample's 12.1 events per user would be about 82,600 users: raised to
        # the production floor of 500,000 plus the 5% margin.
        (1_000_000, 525_000),
        (6_000_000, 525_000),
        # From about 6.4M rows on, the sample's rate fits the bounds and is kept.
        (10_000_000, math.ceil(10_000_000 / 12.1004)),
        (40_000_000, math.ceil(40_000_000 / 12.1004)),
        # Outside the contract's row-count bounds the day fails anyway: the rate is kept.
        (999_999, None),
        (40_000_001, None),
    ],
)
def test_contract_user_count_production(rows, expected):
    assert contract_user_count(rows, 12.1004, load_contract(PRODUCTION_CONTRACT)) == expected


def test_contract_users_meet_floor_1m():
    profile = load_profile()
    users = contract_user_count(1_000_000, profile.events_per_active_user,
                                load_contract(PRODUCTION_CONTRACT))

    members = solve_member_count(1_000_000, 1_000_000 / users, profile.user_lorenz_inverse)

    assert expected_distinct(1_000_000, members, profile.user_lorenz_inverse) >= 500_000


def test_contract_user_count_without_volume_checks():
    contract = load_contract(PRODUCTION_CONTRACT)
    no_users = replace(contract, expectations=tuple(
        e for e in contract.expectations if e.type != "distinct_count_between"))

    assert contract_user_count(1_000_000, 12.1004, no_users) is None


def test_generate_default_users_pass_contract(spark, tmp_path, capsys):
    from streamrec_spark.validation.suite import run_suite

    # The production contract with bounds scaled down, so a day of 3,000 rows is within its
    # row bounds and the sample's rate (about 250 users) is below its floor of 400 users.
    contract_path = tmp_path / "click_stream_scaled.yaml"
    contract_path.write_text(
        f"extends: {PRODUCTION_CONTRACT}\n"
        "expectation_overrides:\n"
        "  volume_row_count: {min: 2000, max: 50000}\n"
        "  volume_distinct_users: {min: 400, max: 5000}\n",
        encoding="utf-8",
    )
    day = dt.date(2024, 3, 6)
    script = load_script("generate_clickstream.py")
    limit = spark.conf.get("spark.sql.codegen.hugeMethodLimit")
    try:
        exit_code = script.main(["--rows", "3000", "--date", day.isoformat(), "--output",
                                 str(tmp_path / "events"), "--contract", str(contract_path)])
    finally:
        spark.conf.set("spark.sql.codegen.hugeMethodLimit", limit)
    assert exit_code == 0
    assert "wrote 3000 rows" in capsys.readouterr().out

    written = (spark.read.option("basePath", str(tmp_path / "events"))
               .parquet(str(tmp_path / "events" / f"event_date={day}")))
    as_of = dt.datetime(2024, 3, 7, 1, 0, tzinfo=dt.timezone.utc)
    outcome = run_suite(written, load_contract(contract_path), day, as_of, lambda current: {})
    volume = {r.expectation_id: r for r in outcome.results if r.category == "volume"}

    assert volume["volume_row_count"].status == "passed", volume["volume_row_count"].message
    users = volume["volume_distinct_users"]
    assert users.status == "passed", users.message
    assert users.observed_value == pytest.approx(420, rel=0.05)
    # At the sample's own rate the same day falls below the floor.
    calibrated = generate_click_stream(spark, 3_000, day, events_per_user=12.1004)
    assert calibrated.select("user_id").distinct().count() < 400


def test_generated_is_deterministic(spark):
    first = generate_click_stream(spark, 2_000, GENERATED_DATE, seed=11)
    again = generate_click_stream(spark, 2_000, GENERATED_DATE, seed=11, rows_per_partition=300)
    other_seed = generate_click_stream(spark, 2_000, GENERATED_DATE, seed=12)

    assert_df_equality(first, again, ignore_row_order=True)
    assert first.join(other_seed, "event_id").count() == 0


def test_generated_invalid_arguments(spark):
    with pytest.raises(InvalidRequestError, match="rows must be a positive integer, found 0"):
        generate_click_stream(spark, 0, GENERATED_DATE)
    with pytest.raises(InvalidRequestError, match="event_date must be a datetime.date"):
        generate_click_stream(spark, 10, "2024-03-01")


def test_fault_unknown_event_type(generated, spark):
    df = generate(spark, unknown_event_share=0.1, unknown_event_type="bookmark")
    event_types = counts_by(df, "event_type")
    unchanged = df.filter(F.col("event_type") != "bookmark")

    assert df.count() == GENERATED_ROWS
    assert event_types["bookmark"] / GENERATED_ROWS == pytest.approx(0.1, abs=0.01)
    assert unchanged.exceptAll(generated).count() == 0


def test_fault_drop_platform(generated, spark):
    before = counts_by(generated, "platform")
    after = counts_by(generate(spark, drop_platform={"android": 0.6}), "platform")

    assert after["android"] / before["android"] == pytest.approx(0.4, abs=0.03)
    assert after["ios"] == before["ios"]
    assert after["web"] == before["web"]


def test_fault_duration_factor(generated, spark):
    doubled = generate(spark, duration_factor=2.0).select(
        "event_id", F.col("duration_seconds").alias("doubled")
    )
    pairs = generated.join(doubled, "event_id").select("duration_seconds", "doubled").collect()

    assert len(pairs) == GENERATED_ROWS
    assert all(row["doubled"] == pytest.approx(2 * row["duration_seconds"]) for row in pairs)


@pytest.mark.parametrize("mode", ["compress", "cut"])
def test_fault_late_data(generated, spark, mode):
    cutoff_ms = day_ms(GENERATED_DATE, hour=18)
    df = generate(spark, late_hours=6, late_mode=mode)
    stats = df.agg(
        F.count(F.lit(1)).alias("rows"), F.max(F.unix_millis("event_ts")).alias("last")
    ).first()

    assert stats["last"] < cutoff_ms
    if mode == "compress":
        assert stats["rows"] == GENERATED_ROWS
    else:
        before_cutoff = generated.filter(F.unix_millis("event_ts") < F.lit(cutoff_ms))
        assert stats["rows"] == before_cutoff.count()
        assert stats["rows"] < GENERATED_ROWS


def test_fault_missing_durations(spark):
    df = generate(spark, null_duration_share=0.05, nan_duration_share=0.1)
    stats = df.agg(
        F.sum(F.col("duration_seconds").isNull().cast("int")).alias("nulls"),
        F.sum(F.isnan("duration_seconds").cast("int")).alias("nans"),
    ).first()

    assert stats["nulls"] / GENERATED_ROWS == pytest.approx(0.05, abs=0.01)
    assert stats["nans"] / GENERATED_ROWS == pytest.approx(0.1, abs=0.01)


def test_fault_duplicate_rows(spark):
    share = 0.05
    df = generate(spark, duplicate_share=share)
    repeated = df.groupBy("event_id").count().filter("count > 1")
    copies = df.join(repeated.select("event_id"), "event_id")

    assert df.count() == GENERATED_ROWS
    assert repeated.count() / GENERATED_ROWS == pytest.approx(share * (1 - share), abs=0.01)
    assert repeated.agg(F.max("count")).first()[0] == 2
    # A copy repeats every column, not only the id.
    assert copies.distinct().count() == repeated.count()


def test_write_synthetic_day_replaces_partition(spark, tmp_path):
    root = tmp_path / "click_stream"

    path = write_synthetic_day(spark, str(root), 500, GENERATED_DATE)
    write_synthetic_day(spark, str(root), 300, GENERATED_DATE)
    write_synthetic_day(spark, str(root), 200, GENERATED_DATE + dt.timedelta(days=1))
    leaf = spark.read.option("basePath", str(root)).parquet(path)

    assert path == f"{root}/event_date=2024-03-01"
    assert list(Path(path).glob("part-*.parquet"))
    assert leaf.count() == 300
    assert leaf.select("event_date").distinct().collect()[0][0] == GENERATED_DATE
    assert schema_pairs(spark.read.parquet(str(root)).schema) == schema_pairs(CLICK_STREAM_SCHEMA)
    assert counts_by(spark.read.parquet(str(root)), "event_date") == {
        GENERATED_DATE: 300,
        GENERATED_DATE + dt.timedelta(days=1): 200,
    }


# --- command-line entry points ----------------------------------------------------------------


def run_script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / name), *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )


def test_convert_cli_missing_log(tmp_path):
    missing = tmp_path / "absent.tsv"

    result = run_script("convert_kuairand.py", "--log", str(missing), "--output", str(tmp_path))

    assert result.returncode == 3
    assert result.stderr.strip().count("\n") == 0
    assert f"KuaiRand log not found: {missing}" in result.stderr
    assert "Pass --log" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--rows", "0"],
        ["--date", "2024-02-30"],
        ["--drop-platform", "tv:0.5"],
        ["--late-hours", "30"],
    ],
)
def test_generate_cli_invalid_arguments(tmp_path, args):
    base = {"--rows": "10", "--date": "2024-03-01", "--output": str(tmp_path)}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    argv = [item for pair in base.items() for item in pair]

    result = run_script("generate_clickstream.py", *argv)

    assert result.returncode == 2
    assert "error" in result.stderr
    assert not list(tmp_path.iterdir())


def load_script(name: str) -> ModuleType:
    """Import a file of scripts/ as a module, so its main() runs in the test's process."""
    path = REPO_ROOT / "scripts" / name
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generate_cli_writes_day(spark, tmp_path, capsys):
    script = load_script("generate_clickstream.py")
    # main() builds its session with getOrCreate, which reuses the shared test session and sets
    # the codegen limit on it, so the test restores that setting.
    limit = spark.conf.get("spark.sql.codegen.hugeMethodLimit")
    try:
        exit_code = script.main(
            ["--rows", "1000", "--date", "2024-03-05", "--output", str(tmp_path),
             "--unknown-event-share", "0.1"]
        )  # fmt: skip
    finally:
        spark.conf.set("spark.sql.codegen.hugeMethodLimit", limit)
    written = spark.read.parquet(str(tmp_path))

    assert exit_code == 0
    assert "wrote 1000 rows" in capsys.readouterr().out
    assert list((tmp_path / "event_date=2024-03-05").glob("part-*.parquet"))
    assert written.filter(F.col("event_type") == "bookmark").count() > 0
