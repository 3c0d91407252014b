"""The Delta model-metrics table: one row per (model, run, slice, metric, k) or input check.

Column meanings: ``user_count`` is the number of evaluated users of the slice (users with a
relevant holdout item; on input-check rows, of all users). ``hit_users`` is, on metric rows,
the number of those users with at least one relevant item in the top K. ``affected`` and
``affected_unit`` are, on input-check rows, what the check found: a number of recommendation
rows, users or slices. ``status`` is ``ok``, ``missing`` (empty slice or NaN) or ``errored``
on metric rows, and ``passed``, ``info``, ``warning`` or ``failed`` on input-check rows.
"""

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
        T.StructField("hit_users", T.LongType(), nullable=True),
        T.StructField("value", T.DoubleType(), nullable=True),
        T.StructField("affected", T.LongType(), nullable=True),
        T.StructField("affected_unit", T.StringType(), nullable=True),
        T.StructField("status", T.StringType(), nullable=False),
        T.StructField("reason", T.StringType(), nullable=True),
        T.StructField("holdout_start", T.DateType(), nullable=True),
        T.StructField("holdout_end", T.DateType(), nullable=True),
        T.StructField("evaluated_at", T.TimestampType(), nullable=False),
    ]
)
# Each model's runs live in one partition; a re-run replaces only its own (model_id, run_id) rows.
PARTITION_COLUMNS = ("model_id",)
# Before hit_users and affected existed, one ``count`` column (NOT NULL) stored both.
_LEGACY_COUNT = "count"


def _upgrade_legacy_table(spark: SparkSession, path: str) -> None:
    """Add ``hit_users``, ``affected`` and ``affected_unit`` to a table of the older layout.

    The older layout stored hit users and affected counts in one ``count`` column. It stays,
    so rows written before keep their value there, and it becomes nullable because new rows
    leave it NULL. The table keeps its path and history.
    """
    from delta.tables import DeltaTable

    fields = {field.name: field for field in DeltaTable.forPath(spark, path).toDF().schema.fields}
    if "hit_users" in fields:
        return
    quoted = "delta.`" + path.replace("`", "``") + "`"
    spark.sql(
        f"ALTER TABLE {quoted} ADD COLUMNS (hit_users BIGINT AFTER user_count, "
        "affected BIGINT AFTER value, affected_unit STRING AFTER affected)"
    )
    if _LEGACY_COUNT in fields and not fields[_LEGACY_COUNT].nullable:
        spark.sql(f"ALTER TABLE {quoted} ALTER COLUMN `{_LEGACY_COUNT}` DROP NOT NULL")
    logger.warning(
        "model metrics table %s had the older count column; added hit_users, affected and "
        "affected_unit (rows written before keep their count and NULL in the new columns)",
        path,
    )


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

    Creates and registers ``database.table`` at ``<warehouse>/<table>`` when needed, upgrades a
    table of the older layout (see :func:`_upgrade_legacy_table`) and returns the table path.
    Raises ComputationError when the Delta write fails.
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
            None if row.hit_users is None else int(row.hit_users),
            row.value,
            None if row.affected is None else int(row.affected),
            row.affected_unit,
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
        _upgrade_legacy_table(spark, path)
        delta_tables.register_table(spark, database, table, path)
        frame = spark.createDataFrame(records, MODEL_METRICS_SCHEMA)
        delta_tables.replace_partition(
            frame, path, {"model_id": model_id, "run_id": run_id}, PARTITION_COLUMNS
        )
    except Exception as exc:  # py4j and Delta raise several unrelated types here
        raise ComputationError(f"writing model metrics to {path} failed: {exc}") from exc
    logger.info("wrote %d model-metrics rows for model %s run %s to %s", len(records), model_id, run_id, path)
    return path
