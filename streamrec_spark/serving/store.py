"""The Delta ``serving_probes`` table: one row per (model_id, run_id) probe."""

from __future__ import annotations

import logging
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from streamrec_spark import delta_tables
from streamrec_spark.errors import ComputationError
from streamrec_spark.serving.probe import SERVING_PROBES_TABLE, ProbeResult

logger = logging.getLogger(__name__)


def _column(name: str, data_type: T.DataType, nullable: bool, comment: str) -> T.StructField:
    return T.StructField(name, data_type, nullable=nullable, metadata={"comment": comment})


# The gate reads the first ten columns. The rest describe how the numbers were measured.
SERVING_PROBES_SCHEMA = T.StructType(
    [
        _column("model_id", T.StringType(), False, "id of the probed model"),
        _column("run_id", T.StringType(), False, "id of the pipeline run that probed it"),
        _column("requests", T.LongType(), False, "timed single-user requests (0 when ERRORED)"),
        _column("p50_ms", T.DoubleType(), True, "nearest-rank median latency per request, ms"),
        _column("p99_ms", T.DoubleType(), True, "nearest-rank 99th percentile latency, ms"),
        _column("max_ms", T.DoubleType(), True, "maximum latency of one request, ms"),
        _column("size_mb", T.DoubleType(), True, "size of the model folder in MB (1 MB = 1,000,000 bytes)"),
        _column("status", T.StringType(), False, "OK (measured) or ERRORED (not measured)"),
        _column("reason", T.StringType(), True, "reason code of an ERRORED probe, NULL when OK"),
        _column("probed_at", T.TimestampType(), False, "end of the probe, UTC"),
        _column("k", T.IntegerType(), False, "items recommended per request"),
        _column("sample_seed", T.LongType(), True, "seed of the user sample; NULL for a request file"),
        _column("warmup_requests", T.LongType(), False, "untimed requests scored before timing"),
        _column("distinct_users", T.LongType(), False, "distinct users the timed requests cycle through"),
        _column("empty_responses", T.LongType(), False, "timed requests that returned no item"),
        _column("mean_ms", T.DoubleType(), True, "mean latency per request, ms"),
        _column("size_bytes", T.LongType(), True, "size of the model folder in bytes"),
        _column("model_path", T.StringType(), False, "model folder as given to the probe"),
        _column("message", T.StringType(), True, "error message of an ERRORED probe"),
    ]
)
# Each model's probes live in one partition, and a re-run replaces only its own (model_id, run_id) row.
PARTITION_COLUMNS = ("model_id",)


def probe_record(result: ProbeResult) -> tuple:
    """Return ``result`` as a tuple in the column order of SERVING_PROBES_SCHEMA."""
    latency = result.latency
    if latency is None:
        requests, p50_ms, p99_ms, max_ms, mean_ms = 0, None, None, None, None
    else:
        requests, p50_ms, p99_ms, max_ms = int(latency.requests), latency.p50_ms, latency.p99_ms, latency.max_ms
        mean_ms = latency.mean_ms
    return (
        result.model_id,
        result.run_id,
        requests,
        p50_ms,
        p99_ms,
        max_ms,
        result.size_mb,
        result.status,
        result.reason,
        result.probed_at,
        int(result.k),
        result.sample_seed,
        int(result.warmup_requests),
        int(result.distinct_users),
        int(result.empty_responses),
        mean_ms,
        result.size_bytes,
        result.model_path,
        result.message,
    )


def write_probe_result(
    spark: SparkSession,
    result: ProbeResult,
    *,
    warehouse: str | Path,
    database: str,
    table: str = SERVING_PROBES_TABLE,
) -> str:
    """Replace the (model_id, run_id) row of ``result`` in ``database.table`` in one Delta commit.

    Creates the table at ``<warehouse>/<table>`` and registers it when needed, and returns its
    path. Raises ComputationError when the Delta write fails.
    """
    path = delta_tables.table_path(warehouse, table)
    try:
        delta_tables.ensure_table(spark, path, SERVING_PROBES_SCHEMA, PARTITION_COLUMNS)
        delta_tables.register_table(spark, database, table, path)
        frame = spark.createDataFrame([probe_record(result)], SERVING_PROBES_SCHEMA)
        delta_tables.replace_partition(
            frame, path, {"model_id": result.model_id, "run_id": result.run_id}, PARTITION_COLUMNS
        )
    except Exception as exc:  # py4j and Delta raise several unrelated types here
        raise ComputationError(f"writing the serving probe to {path} failed: {exc}") from exc
    logger.info(
        "wrote %s serving probe of model %s run %s to %s", result.status, result.model_id, result.run_id, path
    )
    return path
