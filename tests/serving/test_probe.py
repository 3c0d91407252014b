"""The serving probe: nearest-rank percentiles, request samples, and rows in Delta."""

from __future__ import annotations

import json
import os
import random
import sys
from datetime import date, datetime, timedelta

import numpy as np
import pytest

from streamrec_spark.cli import main as cli_main
from streamrec_spark.errors import EXIT_INFRASTRUCTURE, EXIT_INVALID, EXIT_PASSED, InputDataError, InvalidRequestError
from streamrec_spark.models import PopularityModel, TrainingWindow, model_size_bytes
from streamrec_spark.models.base import Interaction, UserContext
from streamrec_spark.serving.probe import (
    STATUS_ERRORED,
    STATUS_OK,
    ProbeRequest,
    ProbeSettings,
    ServingRequest,
    measure_model,
    nearest_rank_percentile,
    read_request_file,
    run_probe,
    sample_requests,
    summarize_latencies,
    time_requests,
    write_request_file,
)

FIRST_DAY = date(2024, 5, 1)
DAYS = 10
TRAIN_END = datetime(2024, 5, 11)
USERS = 40
DATABASE = "probe_test"


# --- nearest-rank percentiles, no Spark ---------------------------------------------------


@pytest.mark.parametrize(
    ("percentile", "expected"),
    [
        (50, 8.0),  # n=6: rank ceil(3.0) = 3 -> sorted [2, 4, 8, 16, 32, 64][2]
        (51, 16.0),  # rank ceil(3.06) = 4
        (99, 64.0),  # rank ceil(5.94) = 6
        (100, 64.0),
        (1, 2.0),  # rank ceil(0.06) = 1
        (33.4, 8.0),  # rank ceil(2.004) = 3
        (33.3, 4.0),  # rank ceil(1.998) = 2
    ],
)
def test_nearest_rank_small_sample(percentile, expected):
    assert nearest_rank_percentile([32.0, 2.0, 64.0, 8.0, 16.0, 4.0], percentile) == expected


def test_nearest_rank_exact_decimal_rank():
    values = list(range(100, 0, -1))
    # 7 * 100 / 100 is exactly rank 7; a float product 0.07 * 100 = 7.000000000000001 would give 8.
    assert nearest_rank_percentile(values, 7) == 7
    assert nearest_rank_percentile(values, 99) == 99
    assert nearest_rank_percentile(values, 99.5) == 100


def test_nearest_rank_of_thousand_requests():
    values = [float(value) for value in range(1, 1001)]
    random.Random(3).shuffle(values)
    assert nearest_rank_percentile(values, 50) == 500.0
    assert nearest_rank_percentile(values, 99) == 990.0
    assert nearest_rank_percentile(values, 99.9) == 999.0


@pytest.mark.parametrize("percentile", [0, -1, 100.5])
def test_nearest_rank_rejects_percentile(percentile):
    with pytest.raises(ValueError, match="invalid percentile"):
        nearest_rank_percentile([1.0], percentile)


def test_nearest_rank_rejects_empty():
    with pytest.raises(ValueError, match="at least one value"):
        nearest_rank_percentile([], 50)


def test_summarize_latencies():
    summary = summarize_latencies([3.0, 1.0, 2.0, 10.0])
    assert summary.requests == 4
    assert summary.p50_ms == 2.0
    assert summary.p99_ms == 10.0
    assert summary.max_ms == 10.0
    assert summary.mean_ms == 4.0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (ProbeSettings(requests=0), "invalid requests 0"),
        (ProbeSettings(k=0), "invalid k 0"),
        (ProbeSettings(warmup=-1), "invalid warmup -1"),
        (ProbeSettings(history_days=0), "invalid history_days 0"),
    ],
)
def test_settings_out_of_range(settings, message):
    with pytest.raises(InvalidRequestError, match=message):
        settings.validate()


def test_request_needs_one_source():
    request = ProbeRequest(model_path="m", model_id="m", run_id="r", warehouse="w")
    with pytest.raises(InvalidRequestError, match="exactly one of --events and --request-file"):
        request.validate()


# --- request files, no Spark ------------------------------------------------------------


def sample_request(user_id: int) -> ServingRequest:
    history = (
        Interaction(item_id=3, event_type="view", timestamp=1_714_000_000.0, session_id="s1", platform="ios"),
        Interaction(item_id=5, event_type="click", timestamp=1_714_000_100.0, session_id="s1", platform="ios"),
    )
    return ServingRequest(UserContext(user_id=user_id, now=1_714_100_000.0, platform="ios"), history)


def test_request_file_round_trip(tmp_path):
    requests = [sample_request(1), sample_request(2)]
    path = write_request_file(tmp_path / "requests.jsonl", requests)
    assert read_request_file(path) == requests


def test_request_file_error_names_line(tmp_path):
    path = tmp_path / "requests.jsonl"
    path.write_text(json.dumps({"user_id": 1, "now": 1.0, "history": []}) + "\n\n" + '{"user_id": 2}\n')
    with pytest.raises(InputDataError, match=r"requests.jsonl:3: invalid serving request: KeyError") as raised:
        read_request_file(path)
    assert raised.value.error_code == "INVALID_REQUEST_FILE"


# --- a tiny popularity model on synthetic events -------------------------------------------


def synthetic_events(seed: int = 11) -> list[tuple]:
    """About 400 events of USERS users over DAYS days, items 1..30 with a popularity skew."""
    rng = random.Random(seed)
    rows = []
    for index in range(400):
        user = rng.randint(1, USERS)
        item = min(int(rng.expovariate(0.15)) + 1, 30)
        day = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
        ts = datetime(day.year, day.month, day.day, rng.randrange(24), rng.randrange(60))
        rows.append(
            (
                user,
                item,
                f"s{user}-{day.day}",
                rng.choice(["view", "click", "complete", "skip"]),
                rng.choice(["ios", "android", "web"]),
                ts,
                day,
            )
        )
    return rows


@pytest.fixture(scope="module")
def events_root(spark, tmp_path_factory):
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    root = tmp_path_factory.mktemp("probe-events") / "click_stream"
    schema = (
        "user_id BIGINT, item_id BIGINT, session_id STRING, event_type STRING, platform STRING, "
        "event_ts TIMESTAMP, event_date DATE"
    )
    spark.createDataFrame(synthetic_events(), schema).write.partitionBy("event_date").parquet(str(root))
    return str(root)


@pytest.fixture(scope="module")
def model_folder(spark, events_root, tmp_path_factory):
    events = spark.read.parquet(events_root)
    model = PopularityModel().fit(events, TrainingWindow(end=TRAIN_END, days=DAYS))
    return model.save(tmp_path_factory.mktemp("models") / "popularity")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """One warehouse for the module, because the catalog keeps the first location of a table name."""
    return tmp_path_factory.mktemp("probe-warehouse")


@pytest.fixture(scope="module")
def request_file(spark, events_root, tmp_path_factory):
    """A saved sample of 30 requests, so that most probes below skip the Spark sampling job."""
    requests = sample_requests(
        spark, events_root, now=TRAIN_END, users=30, seed=17, history_days=DAYS, history_events=50
    )
    return str(write_request_file(tmp_path_factory.mktemp("requests") / "requests.jsonl", requests))


def probe_request(
    model_path, warehouse, run_id="run-1", events_path=None, request_file=None, **settings
) -> ProbeRequest:
    return ProbeRequest(
        model_path=str(model_path),
        model_id="popularity-test",
        run_id=run_id,
        warehouse=str(warehouse),
        database=DATABASE,
        events_path=events_path,
        request_file=request_file,
        settings=ProbeSettings(**{"requests": 200, "warmup": 10, "k": 5, **settings}),
    )


def probe_rows(spark, run_id=None):
    query = f"SELECT * FROM {DATABASE}.serving_probes WHERE model_id = 'popularity-test'"
    rows = spark.sql(query).collect()
    return [row for row in rows if run_id is None or row["run_id"] == run_id]


def test_sample_is_seeded(spark, events_root):
    def users(seed: int) -> list[int]:
        requests = sample_requests(
            spark, events_root, now=TRAIN_END, users=8, seed=seed, history_days=DAYS, history_events=5
        )
        return [request.context.user_id for request in requests]

    first = users(5)
    assert len(first) == 8
    assert users(5) == first
    assert users(6) != first


def test_sample_keeps_latest_events(spark, events_root):
    requests = sample_requests(
        spark, events_root, now=TRAIN_END, users=USERS, seed=1, history_days=DAYS, history_events=3
    )
    events = spark.read.parquet(events_root)
    for request in requests[:5]:
        user_id = request.context.user_id
        expected = (
            events.where(f"user_id = {user_id}").orderBy("event_ts", "item_id").collect()[-3:]
        )
        assert [event.item_id for event in request.history] == [row["item_id"] for row in expected]
        assert request.context.platform == request.history[-1].platform
        assert request.context.now == TrainingWindow(end=TRAIN_END, days=DAYS).end_epoch


def test_probe_row_in_delta(spark, events_root, model_folder, warehouse):
    result = run_probe(spark, probe_request(model_folder, warehouse, events_path=events_root))

    assert result.status == STATUS_OK
    assert result.exit_code == EXIT_PASSED
    rows = probe_rows(spark, "run-1")
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == STATUS_OK
    assert row["reason"] is None
    assert row["requests"] == 200
    assert row["warmup_requests"] == 10
    assert row["k"] == 5
    assert row["sample_seed"] == 17
    assert 0 < row["distinct_users"] <= USERS
    assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert row["size_bytes"] == model_size_bytes(model_folder)
    assert row["size_mb"] == pytest.approx(model_size_bytes(model_folder) / 1_000_000)
    assert row["empty_responses"] == 0
    assert row["probed_at"] is not None
    types = {field.name: field.dataType.simpleString() for field in spark.table(f"{DATABASE}.serving_probes").schema}
    assert list(types)[:10] == [
        "model_id", "run_id", "requests", "p50_ms", "p99_ms", "max_ms", "size_mb", "status", "reason", "probed_at",
    ]
    assert types["requests"] == "bigint"
    assert types["p99_ms"] == "double"
    assert types["size_mb"] == "double"
    assert types["probed_at"] == "timestamp"


def test_rerun_replaces_its_row(spark, request_file, model_folder, warehouse):
    history_sql = f"DESCRIBE HISTORY delta.`{warehouse / 'serving_probes'}`"
    run_probe(spark, probe_request(model_folder, warehouse, run_id="rerun", request_file=request_file, requests=20))
    commits = len(spark.sql(history_sql).collect())
    run_probe(spark, probe_request(model_folder, warehouse, run_id="rerun", request_file=request_file, requests=30))
    run_probe(spark, probe_request(model_folder, warehouse, run_id="other", request_file=request_file, requests=20))

    rows = probe_rows(spark, "rerun")
    assert [row["requests"] for row in rows] == [30]
    assert len(probe_rows(spark, "other")) == 1
    assert len(spark.sql(history_sql).collect()) == commits + 2  # one commit per probe


def test_saved_requests_match_sample(spark, events_root, request_file, model_folder, warehouse, tmp_path):
    saved = tmp_path / "requests.jsonl"
    sampled = ProbeRequest(
        model_path=str(model_folder), model_id="popularity-test", run_id="saved", warehouse=str(warehouse),
        database=DATABASE, events_path=events_root, settings=ProbeSettings(requests=30, warmup=0),
        save_requests=str(saved),
    )
    result = measure_model(spark, sampled)

    assert result.status == STATUS_OK
    assert result.sample_seed == 17
    assert result.distinct_users == 30
    assert read_request_file(saved) == read_request_file(request_file)


def test_request_file_probe(spark, request_file, model_folder, warehouse):
    result = measure_model(spark, probe_request(model_folder, warehouse, request_file=request_file, requests=45))

    assert result.status == STATUS_OK
    assert result.sample_seed is None
    assert result.distinct_users == 30
    assert result.latency.requests == 45


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("truncate_arrays", "INVALID_MODEL"),
        ("drop_metadata", "INVALID_MODEL"),
        ("mismatched_arrays", "SCORING_FAILED"),
    ],
)
def test_damaged_folder_is_errored(spark, request_file, model_folder, warehouse, tmp_path, damage, reason):
    folder = tmp_path / "damaged"
    folder.mkdir()
    (folder / "model.json").write_bytes((model_folder / "model.json").read_bytes())
    arrays = (model_folder / "arrays.npz").read_bytes()
    if damage == "truncate_arrays":
        (folder / "arrays.npz").write_bytes(arrays[: len(arrays) // 2])
    elif damage == "drop_metadata":
        (folder / "arrays.npz").write_bytes(arrays)
        (folder / "model.json").unlink()
    else:
        # The arrays load, but the scores no longer line up with the item ids.
        with np.load(model_folder / "arrays.npz") as stored:
            np.savez(folder / "arrays.npz", item_ids=stored["item_ids"], popularity=stored["popularity"][:3])

    result = measure_model(spark, probe_request(folder, warehouse, request_file=request_file))

    assert result.status == STATUS_ERRORED
    assert result.exit_code == EXIT_INFRASTRUCTURE
    assert result.reason == reason
    assert result.latency is None
    assert result.size_bytes == model_size_bytes(folder)
    assert result.message


def test_damaged_folder_row_in_delta(spark, request_file, model_folder, warehouse, tmp_path):
    folder = tmp_path / "damaged"
    folder.mkdir()
    (folder / "model.json").write_bytes((model_folder / "model.json").read_bytes())
    (folder / "arrays.npz").write_bytes((model_folder / "arrays.npz").read_bytes()[:100])

    result = run_probe(spark, probe_request(folder, warehouse, run_id="damaged", request_file=request_file))

    assert result.exit_code == EXIT_INFRASTRUCTURE
    row = probe_rows(spark, "damaged")[0]
    assert row["status"] == STATUS_ERRORED
    assert row["reason"] == "INVALID_MODEL"
    assert row["requests"] == 0
    assert row["p99_ms"] is None
    assert row["size_mb"] == pytest.approx(model_size_bytes(folder) / 1_000_000)
    assert row["message"]


def test_missing_folder_is_errored(spark, request_file, warehouse, tmp_path):
    result = measure_model(spark, probe_request(tmp_path / "nowhere", warehouse, request_file=request_file))

    assert result.status == STATUS_ERRORED
    assert result.reason == "MODEL_NOT_FOUND"
    assert result.size_mb is None
    assert "check the --model path" in result.message


def test_no_events_in_window_is_errored(spark, events_root, model_folder, warehouse, tmp_path):
    # A one-day history window before the training window end finds no user in a root that
    # stops on day 4.
    early_root = tmp_path / "early"
    spark.read.parquet(events_root).where("event_date < '2024-05-05'").write.parquet(str(early_root))
    request = probe_request(model_folder, warehouse, events_path=str(early_root), history_days=1)

    result = measure_model(spark, request)

    assert result.status == STATUS_ERRORED
    assert result.reason == "EMPTY_SAMPLE"


def test_unreadable_events_is_errored(spark, model_folder, warehouse, tmp_path):
    result = measure_model(spark, probe_request(model_folder, warehouse, events_path=str(tmp_path / "none")))

    assert result.status == STATUS_ERRORED
    assert result.reason == "INPUT_UNREADABLE"


def test_time_requests_cycles_and_counts(spark, model_folder):
    from streamrec_spark.models import load_model

    model = load_model(model_folder)
    timing = time_requests(model, [sample_request(1), sample_request(2)], ProbeSettings(requests=7, warmup=3, k=4))
    assert len(timing.latencies_ms) == 7
    assert all(latency > 0 for latency in timing.latencies_ms)
    assert timing.empty_responses == 0


def test_cli_probe_exit_codes(spark, request_file, model_folder, warehouse, tmp_path, capsys):
    warehouse = str(warehouse)
    common = ["--model-id", "popularity-test", "--warehouse", warehouse, "--database", DATABASE,
              "--request-file", request_file, "--requests", "50", "--warmup", "5"]

    passed = cli_main(["probe", "--model", str(model_folder), "--run-id", "cli-ok", *common])
    output = capsys.readouterr().out
    errored = cli_main(["probe", "--model", str(tmp_path / "nowhere"), "--run-id", "cli-missing", *common])

    assert passed == EXIT_PASSED
    assert "p99" in output
    assert "MB (1 MB = 1,000,000 bytes)" in output
    assert errored == EXIT_INFRASTRUCTURE
    assert probe_rows(spark, "cli-ok")[0]["requests"] == 50
    row = probe_rows(spark, "cli-missing")[0]
    assert row["reason"] == "MODEL_NOT_FOUND"
    assert row["size_mb"] is None


@pytest.mark.parametrize("option", [("--requests", "0"), ("--k", "-1"), ("--warmup", "x")])
def test_cli_invalid_option_exits_2(option, tmp_path, capsys):
    with pytest.raises(SystemExit) as raised:
        cli_main(["probe", "--model", "m", "--model-id", "m", "--run-id", "r", "--events", "e",
                  "--warehouse", str(tmp_path), *option])
    assert raised.value.code == EXIT_INVALID
    assert option[0] in capsys.readouterr().err
