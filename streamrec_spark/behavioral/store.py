"""The Delta behavioral-results table and a plain-text rendering of one run for people."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from streamrec_spark import delta_tables
from streamrec_spark.behavioral.verdicts import TestResult
from streamrec_spark.errors import ComputationError

logger = logging.getLogger(__name__)

BEHAVIORAL_RESULTS_SCHEMA = T.StructType(
    [
        T.StructField("model_id", T.StringType(), nullable=False),
        T.StructField("run_id", T.StringType(), nullable=False),
        T.StructField("suite", T.StringType(), nullable=False),
        T.StructField("test_name", T.StringType(), nullable=False),
        T.StructField("test_type", T.StringType(), nullable=False),
        T.StructField("cases", T.LongType(), nullable=False),
        T.StructField("failures", T.LongType(), nullable=False),
        T.StructField("failure_rate", T.DoubleType(), nullable=True),
        T.StructField("observed", T.DoubleType(), nullable=True),
        T.StructField("threshold", T.DoubleType(), nullable=False),
        T.StructField("threshold_kind", T.StringType(), nullable=False),
        T.StructField("passed", T.BooleanType(), nullable=False),
        T.StructField("status", T.StringType(), nullable=False),
        T.StructField("reason", T.StringType(), nullable=True),
        T.StructField("evaluated_at", T.TimestampType(), nullable=False),
    ]
)
PARTITION_COLUMNS = ("model_id",)


def _add_suite_column(spark: SparkSession, path: str) -> None:
    """Add the ``suite`` column after ``run_id`` to a table created before the column existed.

    Rows written before the upgrade keep ``suite`` NULL, so a gate that requires a named suite
    does not count them. The table stays at its path, and its history stays readable.
    """
    from delta.tables import DeltaTable

    columns = DeltaTable.forPath(spark, path).toDF().columns
    if "suite" in columns:
        return
    quoted = "`" + path.replace("`", "``") + "`"
    spark.sql(
        f"ALTER TABLE delta.{quoted} ADD COLUMNS "
        "(suite STRING COMMENT 'name of the behavioral suite that produced the row' AFTER run_id)"
    )
    logger.warning(
        "behavioral results table %s had no suite column; added it after run_id "
        "(rows written before keep suite NULL)",
        path,
    )


def write_behavioral_results(
    spark: SparkSession,
    results: Sequence[TestResult],
    *,
    model_id: str,
    run_id: str,
    suite: str,
    warehouse: str | Path,
    database: str,
    table: str,
) -> str:
    """Replace the rows of (``model_id``, ``run_id``, ``suite``) in one Delta commit.

    Creates and registers ``database.table`` at ``<warehouse>/<table>`` when needed, and adds
    the ``suite`` column to a table written by an older version. Returns the table path and
    raises ComputationError when the Delta write fails.
    """
    path = delta_tables.table_path(warehouse, table)
    evaluated_at = datetime.now(timezone.utc).replace(tzinfo=None)
    records = [
        (
            model_id,
            run_id,
            suite,
            result.name,
            result.test_type,
            int(result.cases),
            int(result.failures),
            result.failure_rate,
            result.observed,
            float(result.threshold),
            result.threshold_kind,
            bool(result.passed),
            result.status,
            result.reason,
            evaluated_at,
        )
        for result in results
    ]
    try:
        delta_tables.ensure_table(spark, path, BEHAVIORAL_RESULTS_SCHEMA, PARTITION_COLUMNS)
        _add_suite_column(spark, path)
        delta_tables.register_table(spark, database, table, path)
        frame = spark.createDataFrame(records, BEHAVIORAL_RESULTS_SCHEMA)
        keys = {"model_id": model_id, "run_id": run_id, "suite": suite}
        delta_tables.replace_partition(frame, path, keys, PARTITION_COLUMNS)
    except Exception as exc:  # py4j and Delta raise several unrelated types here
        raise ComputationError(f"writing behavioral results to {path} failed: {exc}") from exc
    logger.info(
        "wrote %d behavioral results of suite %s for model %s run %s to %s",
        len(records),
        suite,
        model_id,
        run_id,
        path,
    )
    return path


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def format_results(results: Sequence[TestResult]) -> str:
    """Render the results as a fixed-width table, one line per test."""
    header = ("test", "type", "cases", "failures", "fail_rate", "observed", "threshold", "result", "reason")
    lines = [
        (
            result.name,
            result.test_type,
            str(result.cases),
            str(result.failures),
            _number(result.failure_rate),
            _number(result.observed),
            f"{result.threshold_kind}={result.threshold:g}",
            result.status.upper(),
            result.reason or "",
        )
        for result in results
    ]
    widths = [max(len(row[index]) for row in [header, *lines]) for index in range(len(header))]
    rendered = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *lines]]
    passed = sum(1 for result in results if result.passed)
    rendered.append(f"{passed} of {len(results)} tests passed")
    return "\n".join(rendered)
