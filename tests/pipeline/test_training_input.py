"""train-model reads only the click-stream days of its window that validation accepted."""

from __future__ import annotations

import logging
import uuid
from datetime import date, datetime, timedelta

import pytest

from rows import SCHEMA, event
from streamrec_spark.cli_evaluation import main
from streamrec_spark.models import load_model
from streamrec_spark.validation.results import RUN_ERRORED, RUN_FAILED, RUN_PASSED, RUN_WARNED
from streamrec_spark.validation.store import ResultStore, RunRecord

FIRST = date(2024, 4, 1)
DAYS = 5
TRAIN_END = FIRST + timedelta(days=DAYS)


def day(offset: int) -> date:
    return FIRST + timedelta(days=offset)


def item_of(offset: int, index: int) -> int:
    """Item ids that name their day: 1000 * (day offset + 1) + index."""
    return 1000 * (offset + 1) + index


@pytest.fixture(scope="module")
def click_stream(spark, tmp_path_factory):
    """Four events on each of the window's five days, partitioned by event_date."""
    root = tmp_path_factory.mktemp("training-input") / "click_stream"
    rows = [event(index, day(offset), item_id=item_of(offset, index))
            for offset in range(DAYS) for index in range(4)]
    spark.createDataFrame(rows, SCHEMA).write.partitionBy("event_date").parquet(str(root))
    return str(root)


def record_run(spark, warehouse: str, partition_date: date, status: str, minutes: int = 0) -> None:
    finished = datetime(2024, 4, 20, 1, 0) + timedelta(minutes=minutes)
    ResultStore(spark, warehouse, "streamrec").append_run(RunRecord(
        run_id=uuid.uuid4().hex, dataset="click_stream", partition_date=partition_date,
        contract_version="1.0.0", status=status, exit_code=0 if status == RUN_PASSED else 1,
        as_of=finished, started_at=finished, finished_at=finished, input_path="/data",
        code_version=None, spark_app_id=None,
    ))


def train(click_stream: str, output, warehouse: str) -> int:
    return main([
        "train-model", "--model-type", "popularity", "--events", click_stream,
        "--train-end", TRAIN_END.isoformat(), "--training-days", str(DAYS),
        "--output", str(output), "--warehouse", warehouse,
    ])


def test_training_skips_rejected_days(spark, click_stream, tmp_path, caplog):
    warehouse = str(tmp_path / "warehouse")
    record_run(spark, warehouse, day(0), RUN_PASSED)
    record_run(spark, warehouse, day(1), RUN_FAILED)
    record_run(spark, warehouse, day(2), RUN_WARNED)
    # Day 3 passed once and then failed. Day 4 was never validated.
    record_run(spark, warehouse, day(3), RUN_PASSED)
    record_run(spark, warehouse, day(3), RUN_FAILED, minutes=30)

    with caplog.at_level(logging.WARNING, logger="streamrec_spark.features.training_input"):
        exit_code = train(click_stream, tmp_path / "model", warehouse)

    assert exit_code == 0
    items = set(load_model(tmp_path / "model").item_ids.tolist())
    assert items == {item_of(offset, index) for offset in (0, 2) for index in range(4)}
    warning = "\n".join(record.getMessage() for record in caplog.records)
    assert "skips 3 of 5 click_stream days" in warning
    assert f"{day(1)} (latest run failed)" in warning
    assert f"{day(3)} (latest run failed)" in warning
    assert f"{day(4)} (never validated)" in warning


def test_training_stops_without_accepted_day(spark, click_stream, tmp_path, capsys):
    warehouse = str(tmp_path / "warehouse")
    record_run(spark, warehouse, day(0), RUN_FAILED)
    # An errored run is no verdict, so the failed run before it still rejects the day.
    record_run(spark, warehouse, day(0), RUN_ERRORED, minutes=30)

    exit_code = train(click_stream, tmp_path / "model", warehouse)

    assert exit_code == 1
    error = capsys.readouterr().err
    assert "error [PARTITION_NOT_ACCEPTED]: no click_stream partition of the training window" in error
    assert f"{day(0)} (latest run errored)" in error
    assert f"{day(4)} (never validated)" in error
    assert not (tmp_path / "model").exists()


def test_training_requires_warehouse_or_skip(click_stream, tmp_path, capsys):
    exit_code = main([
        "train-model", "--model-type", "popularity", "--events", click_stream,
        "--train-end", TRAIN_END.isoformat(), "--output", str(tmp_path / "model"),
    ])

    assert exit_code == 2
    assert "one of the arguments --warehouse --skip-acceptance-check is required" in capsys.readouterr().err
