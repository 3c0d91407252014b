"""The README demo: convert the embedded KuaiRand sample and validate its 14 days in order.

Each day is validated as a scheduler would on the morning after: the as-of time is 01:00
Beijing time on the next day, and the drift reference is built from the days before it that
were accepted. Everything is recorded in Delta tables under the demo's work folder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pyspark.sql import SparkSession

from streamrec_spark.contracts.registry import load_registry
from streamrec_spark.datasets.kuairand import convert_kuairand
from streamrec_spark.validate_job import ValidationRequest, ValidationRun, validate_partition

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_LOG = REPO_ROOT / "data" / "kuairand" / "log_27k_standard_likehate_kcore15.tsv.gz"
DEMO_REGISTRY = REPO_ROOT / "conf" / "demo" / "registry.yaml"
DATASET = "click_stream"
SAMPLE_ZONE = ZoneInfo("Asia/Shanghai")


def demo_as_of(partition_date: date) -> datetime:
    """01:00 Beijing time on the day after the partition, as an aware datetime."""
    return datetime.combine(partition_date + timedelta(days=1), time(1, 0), SAMPLE_ZONE)


def run_kuairand_demo(
    spark: SparkSession,
    workdir: Path,
    database: str = "streamrec_demo",
    on_day: Callable[[ValidationRun], None] | None = None,
) -> list[ValidationRun]:
    """Convert the sample into ``workdir/click_stream`` and validate every day into
    ``workdir/warehouse``; return the runs in date order.

    ``on_day`` receives each day's run as soon as it is validated, so a caller can report
    progress before the last day is done.
    """
    contract = load_registry(DEMO_REGISTRY).contract(DATASET)
    input_root = workdir / "click_stream"
    warehouse = workdir / "warehouse"
    dates = convert_kuairand(spark, str(SAMPLE_LOG), str(input_root))
    runs = []
    for partition_date in dates:
        request = ValidationRequest(
            dataset=DATASET,
            partition_date=partition_date,
            input_path=str(input_root),
            as_of=demo_as_of(partition_date),
            warehouse=str(warehouse),
            database=database,
        )
        run = validate_partition(spark, contract, request)
        runs.append(run)
        if on_day is not None:
            on_day(run)
    return runs


def format_day(run: ValidationRun) -> str:
    """Format one day as its verdict line, then each check that did not pass, with its reason."""
    record = run.record
    passed = sum(1 for r in run.results if r.status == "passed")
    days = len(record.reference_partitions)
    # An errored run may have stopped before counting its rows, and stores NULL then.
    events = "unknown" if record.row_count is None else f"{record.row_count:,}"
    head = (f"{record.partition_date}  {record.status.upper():7}  {events:>7} events  "
            f"{passed}/{len(run.results)} passed  reference: {days} {'day' if days == 1 else 'days'}")
    lines = [head]
    if record.error_message:
        lines.append(f"    error {record.error_code}: {record.error_message}")
    for result in run.results:
        if result.status != "passed":
            lines.append(f"    {result.status:7} [{result.severity}] {result.expectation_id}: "
                         f"{result.reason_code}: {result.message}")
    return "\n".join(lines)
