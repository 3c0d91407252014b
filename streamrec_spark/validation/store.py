"""The Delta tables of validation results: runs, expectation_results and metrics.

A run writes its partition's metrics, then its expectation results, each replacing that
partition's previous rows in one Delta commit, and finally appends its row to ``runs``.
Because the ``runs`` row is written last, a run whose row exists has all of its results
stored. The replaced rows of earlier runs stay readable through Delta time travel, and every
run, errored ones included, keeps its row in ``runs``. A request rejected as invalid (exit
code 2) never starts a run, so it writes nothing here.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from streamrec_spark import delta_tables
from streamrec_spark.validation.profiles import Bin, Profile, sum_profiles
from streamrec_spark.validation.results import RUN_PASSED, RUN_WARNED, ExpectationResult, MetricRow

logger = logging.getLogger(__name__)

RUNS = "runs"
EXPECTATION_RESULTS = "expectation_results"
METRICS = "metrics"
PARTITION_COLUMNS = ("dataset", "partition_date")

RUNS_SCHEMA = StructType(
    [
        StructField("run_id", StringType(), False),
        StructField("dataset", StringType(), False),
        StructField("partition_date", DateType(), False),
        StructField("contract_version", StringType(), True),
        StructField("status", StringType(), False),
        StructField("exit_code", IntegerType(), False),
        StructField("error_code", StringType(), True),
        StructField("error_message", StringType(), True),
        StructField("code_version", StringType(), True),
        StructField("as_of", TimestampType(), False),
        StructField("started_at", TimestampType(), False),
        StructField("finished_at", TimestampType(), False),
        StructField("input_path", StringType(), True),
        StructField("row_count", LongType(), True),
        StructField("spark_app_id", StringType(), True),
        StructField("spark_job_count", IntegerType(), True),
        StructField("expectations_total", IntegerType(), True),
        StructField("expectations_failed", IntegerType(), True),
        StructField("expectations_errored", IntegerType(), True),
        StructField("blocking_failures", IntegerType(), True),
        StructField("reference_partitions", StringType(), True),
    ]
)

EXPECTATION_RESULTS_SCHEMA = StructType(
    [
        StructField("run_id", StringType(), False),
        StructField("dataset", StringType(), False),
        StructField("partition_date", DateType(), False),
        StructField("expectation_id", StringType(), False),
        StructField("category", StringType(), False),
        StructField("type", StringType(), False),
        StructField("column_name", StringType(), True),
        StructField("severity", StringType(), False),
        StructField("status", StringType(), False),
        StructField("reason_code", StringType(), False),
        StructField("blocking", BooleanType(), False),
        StructField("observed_value", DoubleType(), True),
        StructField("threshold_low", DoubleType(), True),
        StructField("threshold_high", DoubleType(), True),
        StructField("mostly", DoubleType(), True),
        StructField("evaluated_count", LongType(), True),
        StructField("failed_count", LongType(), True),
        StructField("null_count", LongType(), True),
        StructField("nan_count", LongType(), True),
        StructField("blank_count", LongType(), True),
        StructField("message", StringType(), False),
        StructField("details", StringType(), True),
    ]
)

METRICS_SCHEMA = StructType(
    [
        StructField("run_id", StringType(), False),
        StructField("dataset", StringType(), False),
        StructField("partition_date", DateType(), False),
        StructField("metric_name", StringType(), False),
        StructField("column_name", StringType(), True),
        StructField("expectation_id", StringType(), True),
        StructField("bin_index", IntegerType(), True),
        StructField("bin_label", StringType(), True),
        StructField("bin_lower", DoubleType(), True),
        StructField("bin_upper", DoubleType(), True),
        StructField("count", LongType(), True),
        StructField("value", DoubleType(), True),
    ]
)

SCHEMAS = {RUNS: RUNS_SCHEMA, EXPECTATION_RESULTS: EXPECTATION_RESULTS_SCHEMA, METRICS: METRICS_SCHEMA}


@dataclass(frozen=True)
class RunRecord:
    """The row a run leaves in the ``runs`` table."""

    run_id: str
    dataset: str
    partition_date: date
    contract_version: str | None
    status: str
    exit_code: int
    as_of: datetime
    started_at: datetime
    finished_at: datetime
    input_path: str | None
    code_version: str | None
    spark_app_id: str | None
    row_count: int | None = None
    spark_job_count: int | None = None
    expectations_total: int | None = None
    expectations_failed: int | None = None
    expectations_errored: int | None = None
    blocking_failures: int | None = None
    reference_partitions: tuple[date, ...] = ()
    error_code: str | None = None
    error_message: str | None = None


def _finite(value: float | None) -> float | None:
    """Store NaN as NaN but keep None as null: both are DOUBLE in Delta."""
    return None if value is None else float(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value)


class ResultStore:
    """Reads and writes the validation tables under one warehouse folder."""

    def __init__(self, spark: SparkSession, warehouse: str, database: str):
        self.spark = spark
        self.warehouse = warehouse
        self.database = database
        self._ensured = False

    def path(self, table: str) -> str:
        return delta_tables.table_path(self.warehouse, table)

    def ensure_tables(self) -> None:
        """Create the three tables if needed and register them as ``<database>.<table>``."""
        if self._ensured:
            return
        for table, schema in SCHEMAS.items():
            delta_tables.ensure_table(self.spark, self.path(table), schema, PARTITION_COLUMNS)
            delta_tables.register_table(self.spark, self.database, table, self.path(table))
        self._ensured = True

    def write_run(
        self,
        record: RunRecord,
        results: list[ExpectationResult],
        metric_rows: list[MetricRow],
    ) -> None:
        """Replace the partition's results with this run's and append the run's record.

        The three tables are separate Delta commits, and ``runs`` is written last: a run is
        current only once its row is there. When a later write fails, the partition's previous
        rows are written back to the tables already written, one new commit each, so the
        history keeps everything. Then the error is raised. Readers never see one run's
        metrics next to another run's verdicts. A process killed between the commits cannot undo
        anything. Its rows carry a run_id that has no row in ``runs``, and queries that join
        on ``runs`` (as the README's do) ignore them until the partition is re-run.
        """
        self.ensure_tables()
        keys = (record.run_id, record.dataset, record.partition_date)
        metrics = [
            (*keys, m.metric_name, m.column, m.expectation_id, m.bin_index, m.bin_label,
             _finite(m.bin_lower), _finite(m.bin_upper), m.count, _finite(m.value))
            for m in metric_rows
        ]
        expectation_rows = [
            (*keys, r.expectation_id, r.category, r.type, r.column, r.severity, r.status,
             r.reason_code, r.blocking, _finite(r.observed_value), _finite(r.threshold_low),
             _finite(r.threshold_high), r.mostly, r.evaluated_count, r.failed_count, r.null_count,
             r.nan_count, r.blank_count, r.message,
             json.dumps(r.details, default=_json_default, sort_keys=True))
            for r in results
        ]
        partition = {"dataset": record.dataset, "partition_date": record.partition_date}
        writes = (
            (METRICS, self.spark.createDataFrame(metrics, METRICS_SCHEMA)),
            (EXPECTATION_RESULTS, self.spark.createDataFrame(expectation_rows, EXPECTATION_RESULTS_SCHEMA)),
        )
        versions = {table: delta_tables.current_version(self.spark, self.path(table))
                    for table, _ in writes}
        written: list[str] = []
        try:
            for table, rows in writes:
                delta_tables.replace_partition(rows, self.path(table), partition, PARTITION_COLUMNS)
                written.append(table)
            self.append_run(record)
        except Exception:
            for table in reversed(written):
                self._undo(table, partition, versions[table], record.run_id)
            raise

    def _undo(self, table: str, partition: dict[str, Any], version: int, run_id: str) -> None:
        try:
            delta_tables.restore_partition(self.spark, self.path(table), partition,
                                           PARTITION_COLUMNS, version)
            logger.warning("run %s: put back %s of %s as of version %d after a failed write",
                           run_id, table, partition, version)
        except Exception:
            logger.error("run %s: could not put back %s of %s (version %d); re-run the "
                         "partition to make its results consistent", run_id, table, partition,
                         version, exc_info=True)

    def append_run(self, record: RunRecord) -> None:
        """Append one row to ``runs``; errored runs call only this and leave results untouched."""
        self.ensure_tables()
        row = (
            record.run_id, record.dataset, record.partition_date, record.contract_version,
            record.status, record.exit_code, record.error_code, record.error_message,
            record.code_version, record.as_of, record.started_at, record.finished_at,
            record.input_path, record.row_count, record.spark_app_id, record.spark_job_count,
            record.expectations_total, record.expectations_failed, record.expectations_errored,
            record.blocking_failures,
            ",".join(d.isoformat() for d in record.reference_partitions) or None,
        )
        delta_tables.append(self.spark.createDataFrame([row], RUNS_SCHEMA), self.path(RUNS),
                            PARTITION_COLUMNS)

    def accepted_runs(self, dataset: str, first: date, last: date) -> dict[date, str]:
        """Return partition date -> run id of the partitions in [first, last] whose latest
        completed run passed or only warned. A partition whose latest run failed is excluded."""
        if not delta_tables.table_exists(self.spark, self.path(RUNS)):
            return {}
        runs = (
            self.spark.read.format("delta").load(self.path(RUNS))
            .where((F.col("dataset") == F.lit(dataset))
                   & F.col("partition_date").between(F.lit(first), F.lit(last))
                   & (F.col("status") != F.lit("errored")))
            .select("partition_date", "run_id", "status", "finished_at")
            .collect()
        )
        latest: dict[date, tuple[datetime, str, str]] = {}
        for row in runs:
            current = latest.get(row["partition_date"])
            if current is None or row["finished_at"] > current[0]:
                latest[row["partition_date"]] = (row["finished_at"], row["run_id"], row["status"])
        return {d: run_id for d, (_, run_id, status) in latest.items() if status in (RUN_PASSED, RUN_WARNED)}

    def stored_profiles(
        self, dataset: str, runs: dict[date, str], expectation_ids: list[str]
    ) -> dict[str, list[tuple[date, Profile]]]:
        """Load the stored ``profile`` bins of the given runs, per expectation and partition."""
        if not runs or not delta_tables.table_exists(self.spark, self.path(METRICS)):
            return {}
        rows = (
            self.spark.read.format("delta").load(self.path(METRICS))
            .where((F.col("dataset") == F.lit(dataset))
                   & F.col("partition_date").isin(list(runs))
                   & F.col("run_id").isin(list(runs.values()))
                   & (F.col("metric_name") == F.lit("profile"))
                   & F.col("expectation_id").isin(expectation_ids))
            .select("partition_date", "expectation_id", "bin_index", "bin_label", "bin_lower",
                    "bin_upper", "count")
            .collect()
        )
        grouped: dict[tuple[str, date], list[Any]] = defaultdict(list)
        for row in rows:
            grouped[(row["expectation_id"], row["partition_date"])].append(row)
        profiles: dict[str, list[tuple[date, Profile]]] = defaultdict(list)
        for (expectation_id, partition), bins in grouped.items():
            bins.sort(key=lambda r: r["bin_index"])
            profile = Profile(tuple(Bin(r["bin_label"], r["bin_lower"], r["bin_upper"], int(r["count"]))
                                    for r in bins))
            profiles[expectation_id].append((partition, profile))
        return profiles

    def reference_profiles(
        self,
        dataset: str,
        partition_date: date,
        window_days: int,
        current: dict[str, Profile],
        reference_date: date | None = None,
    ) -> dict[str, Profile | None]:
        """Sum the stored profiles of the reference partitions for each drift expectation.

        The reference is ``reference_date`` alone when given (its latest completed run,
        whatever its status, because the user named it), otherwise the accepted partitions of
        the ``window_days`` days before ``partition_date``. Partitions whose stored bins differ
        from the current ones (the contract's bins changed) are left out with a warning.
        """
        if reference_date is not None:
            runs = self.latest_runs(dataset, reference_date)
        else:
            runs = self.accepted_runs(
                dataset, partition_date - timedelta(days=window_days), partition_date - timedelta(days=1)
            )
        stored = self.stored_profiles(dataset, runs, list(current))
        references: dict[str, Profile | None] = {}
        for expectation_id, profile in current.items():
            matching = []
            for partition, candidate in stored.get(expectation_id, []):
                if candidate.signature() == profile.signature():
                    matching.append((partition, candidate))
                else:
                    logger.warning(
                        "reference partition %s of %s has other bins for %s (the contract changed); "
                        "left out of the reference", partition, dataset, expectation_id,
                    )
            references[expectation_id] = sum_profiles(matching, named=reference_date is not None)
        return references

    def latest_runs(self, dataset: str, partition_date: date) -> dict[date, str]:
        if not delta_tables.table_exists(self.spark, self.path(RUNS)):
            return {}
        rows = (
            self.spark.read.format("delta").load(self.path(RUNS))
            .where((F.col("dataset") == F.lit(dataset))
                   & (F.col("partition_date") == F.lit(partition_date))
                   & (F.col("status") != F.lit("errored")))
            .orderBy(F.col("finished_at").desc())
            .limit(1)
            .collect()
        )
        return {partition_date: rows[0]["run_id"]} if rows else {}


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
