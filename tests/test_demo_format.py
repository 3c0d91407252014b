"""Unit tests of the demo's per-day lines, without Spark."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

from streamrec_spark.contracts.loader import load_contract
from streamrec_spark.demo import format_day
from streamrec_spark.validate_job import ValidationRun
from streamrec_spark.validation.store import RunRecord

CONTRACT = Path(__file__).resolve().parent / "data" / "click_stream_small.yaml"
NOW = datetime(2024, 5, 2, tzinfo=timezone.utc)


def run_with(row_count, status="errored"):
    record = RunRecord(
        run_id="r1", dataset="click_stream", partition_date=date(2024, 5, 1), contract_version="1",
        status=status, exit_code=3, as_of=NOW, started_at=NOW, finished_at=NOW, input_path="/in",
        code_version=None, spark_app_id=None, row_count=row_count, error_code="INPUT_UNREADABLE",
        error_message="file x is not a Parquet file",
    )
    return ValidationRun(record=record, contract=load_contract(CONTRACT))


def test_errored_day_without_row_count():
    head = format_day(run_with(None)).splitlines()[0]

    assert "unknown events" in head
    assert " 0 events" not in head


def test_day_with_row_count():
    head = format_day(run_with(12_345, status="passed")).splitlines()[0]

    assert "12,345 events" in head
