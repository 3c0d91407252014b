"""The Delta model-metrics table: one row per (model, run, slice, metric, k) or input check."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timezone
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from streamrec_spark import delta_tables
from streamrec_spark.errors import ComputationError
from streamrec_spark.evaluation.results import MetricRow

logger = logging.getLogger(__name__)

MODEL_METRICS_SCHEMA = T.StructType(
    [
        T.StructField("model_id", T.StringType(), nullable=False),
        T.StructField("run_id", T.StringType(), nullable=False),
        T.StructField("slice", T.StringType(), nullable=False),
        T.StructField("metric", T.StringType(), nullable=False),
        T.StructField("k", T.IntegerType(), nullable=True),
        T.StructField("user_count", T.LongType(), nullable=False),
        T.StructField("value", T.DoubleType(), nullable=True),
        T.StructField("count", T.LongType(), nullable=False),
        T.StructField("status", T.StringType(), nullable=False),
        T.StructField("reason", T.StringType(), nullable=True),
        T.StructField("holdout_start", T.DateType(), nullable=True),
        T.StructField("holdout_end", T.DateType(), nullable=True),
        T.StructField("evaluated_at", T.TimestampType(), nullable=False),
    ]
)
# Each model's runs live in one partition; a re-run replaces only its own (model_id, run_id) rows.
PARTITION_COLUMNS = ("model_id",)


def write_model_metrics(
    spark: SparkSession,
    rows: Sequence[MetricRow],
    *,
    model_id: str,
    run_id: str,
    warehouse: str | Path,
    database: str,
    table: str,
    holdout_start: date | None = None,
    holdout_end: date | None = None,
) -> str:
    """Replace the rows of (``model_id``, ``run_id``) in the model-metrics table in one commit.

    Creates and registers ``database.table`` at ``<warehouse>/<table>`` when needed and returns
    the table path. Raises ComputationError when the Delta write fails.
    """
    path = delta_tables.table_path(warehouse, table)
    evaluated_at = datetime.now(timezone.utc).replace(tzinfo=None)
    records = [
        (
            model_id,
            run_id,
            row.slice,
            row.metric,
            row.k,
            int(row.user_count),
            row.value,
            int(row.count),
            row.status,
            row.reason,
            holdout_start,
            holdout_end,
            evaluated_at,
        )
        for row in rows
    ]
    try:
        delta_tables.ensure_table(spark, path, MODEL_METRICS_SCHEMA, PARTITION_COLUMNS)
        delta_tables.register_table(spark, database, table, path)
        frame = spark.createDataFrame(records, MODEL_METRICS_SCHEMA)
        delta_tables.replace_partition(
            frame, path, {"model_id": model_id, "run_id": run_id}, PARTITION_COLUMNS
        )
    except Exception as exc:  # py4j and Delta raise several unrelated types here
        raise ComputationError(f"writing model metrics to {path} failed: {exc}") from exc
    logger.info("wrote %d model-metrics rows for model %s run %s to %s", len(records), model_id, run_id, path)
    return path
