"""Reads of the aggregated result tables that the gate decides from.

Every read filters on ``model_id`` (the partition column of the model tables) and collects a
few dozen rows per model and run to the driver, in one Spark job per table: the gate never
reads events or recommendations. A table that does not exist yet reads as no rows, so the
rules fail closed on it. A damaged log (see :mod:`streamrec_spark.gate.delta_log`) or any other
read failure raises ComputationError (exit code 3) with one line that names the table's path,
the root cause and the fix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from streamrec_spark import delta_tables
from streamrec_spark.errors import ComputationError, root_cause
from streamrec_spark.gate.config import GateTables
from streamrec_spark.gate.delta_log import find_log_damage
from streamrec_spark.gate.rules import (
    BehavioralRow,
    BehavioralRun,
    MetricValue,
    ModelMetrics,
    ProbeResult,
    ValidationRun,
    ValidationSummary,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Columns of the serving_probes table that the gate reads.
PROBE_COLUMNS = (
    "model_id", "run_id", "requests", "p50_ms", "p99_ms", "max_ms", "size_mb", "status", "reason",
    "probed_at",
)

# The stage that writes each input table, named in the fix of a read failure.
WRITERS = {
    "model metrics": "the evaluate_model stage",
    "behavioral results": "the run_behavioral stage",
    "serving probes": "the probe_model stage",
    "data-validation runs": "the validate_<feed> stages",
}


def damaged_table_error(path: str, description: str, cause: str) -> ComputationError:
    """Build the one-line ComputationError for a Delta table that exists but is damaged."""
    writer = WRITERS.get(description, "the stage that writes it")
    return ComputationError(
        f"cannot read the {description} table {path}: {cause}. The table's log or data files "
        f"are damaged or missing: restore the folder from a backup, or move it aside and re-run "
        f"{writer} to write it again"
    )


def unreadable_table_error(path: str, description: str, error: BaseException) -> ComputationError:
    """Build the one-line ComputationError for a Delta table that exists but cannot be read."""
    return damaged_table_error(path, description, root_cause(error))


def check_table_log(spark: SparkSession, path: str, description: str) -> None:
    """Raise ComputationError when the Delta log at ``path`` is damaged in a way reads hide."""
    damage = _guarded(path, description, lambda: find_log_damage(spark, path))
    if damage is not None:
        raise damaged_table_error(path, description, damage)


def _guarded(path: str, description: str, read: Callable[[], T]) -> T:
    try:
        return read()
    except ComputationError:
        raise
    except Exception as exc:  # py4j and Delta raise several unrelated types here
        logger.debug("reading %s from %s failed", description, path, exc_info=True)
        raise unreadable_table_error(path, description, exc) from exc


def _load(
    spark: SparkSession, warehouse: str, table: str, description: str
) -> tuple[str, DataFrame | None]:
    """Return the table's path and a DataFrame over it, or None when no Delta table is there."""
    path = delta_tables.table_path(warehouse, table)
    if not _guarded(path, description, lambda: delta_tables.table_exists(spark, path)):
        if _local_folder_with_files(path):
            raise ComputationError(
                f"cannot read the {description} table {path}: the folder has files but no Delta "
                f"log (_delta_log). Restore the log from a backup, or move the folder aside and "
                f"re-run {WRITERS.get(description, 'the stage that writes it')} to write it again"
            )
        logger.warning("table %s does not exist; the gate sees no rows in it", path)
        return path, None
    check_table_log(spark, path, description)
    return path, _guarded(path, description, lambda: spark.read.format("delta").load(path))


def _local_folder_with_files(path: str) -> bool:
    """Return True when ``path`` is a local folder (or ``file:`` URI) that contains any file."""
    # NOTE: only local folders are checked. On another file system (s3a://, abfss://) a
    # folder without a Delta log reads as a missing table, which blocks the gate.
    parts = urlsplit(path)
    if parts.scheme not in ("", "file"):
        return False
    folder = Path(unquote(parts.path) if parts.scheme == "file" else path)
    return folder.is_dir() and any(item.is_file() for item in folder.rglob("*"))


def _latest(rows: list[Any], time_column: str) -> str | None:
    """Return the run_id of the rows with the latest ``time_column``; ties go to the larger id."""
    if not rows:
        return None
    return max(rows, key=lambda row: (row[time_column], row["run_id"]))["run_id"]


def _holdout(rows: list[Any], model_id: str, run_id: str | None) -> tuple[Any, Any] | None:
    """Return the (holdout_start, holdout_end) of a model's run, or None when it has no window."""
    for row in rows:
        if row["model_id"] == model_id and row["run_id"] == run_id and row["holdout_start"] is not None:
            return row["holdout_start"], row["holdout_end"]
    return None


def read_model_metrics(
    spark: SparkSession,
    warehouse: str,
    tables: GateTables,
    runs: Mapping[str, str | None],
    same_holdout_as: str | None = None,
) -> dict[str, ModelMetrics]:
    """Read the metric rows of one evaluation run per model, in one Spark job.

    ``runs`` maps each model id to the run to read, or to None for its latest run (by
    ``evaluated_at``). With ``same_holdout_as`` (a model id of ``runs``), every other model is
    read from its latest run on that model's holdout window when it has one, because metrics
    are only comparable on one test set, and from its run in ``runs`` otherwise. Input-check
    rows (no ``k``) are left out. A model without rows gets a ModelMetrics with ``run_id`` None
    and no values.
    """
    empty = {model_id: ModelMetrics(model_id=model_id, run_id=None) for model_id in runs}
    path, table = _load(spark, warehouse, tables.model_metrics_table, "model metrics")
    if table is None:
        return empty

    def read() -> list[Any]:
        # Every run of these models is collected: a few dozen rows per run, and the latest
        # run is picked on the driver, which saves a Spark job per model.
        return (
            table.where(F.col("model_id").isin(list(runs)) & F.col("k").isNotNull())
            .select(
                "model_id", "run_id", "evaluated_at", "slice", "metric", "k", "value", "status",
                "reason", "user_count", "holdout_start", "holdout_end",
            )
            .collect()
        )

    rows = _guarded(path, "model metrics", read)
    chosen_runs = {
        model_id: run_id if run_id is not None
        else _latest([row for row in rows if row["model_id"] == model_id], "evaluated_at")
        for model_id, run_id in runs.items()
    }
    if same_holdout_as is not None:
        window = _holdout(rows, same_holdout_as, chosen_runs[same_holdout_as])
        for model_id in runs:
            on_window = [row for row in rows if row["model_id"] == model_id
                         and (row["holdout_start"], row["holdout_end"]) == window]
            if model_id != same_holdout_as and window is not None and on_window:
                chosen_runs[model_id] = _latest(on_window, "evaluated_at")
    result = dict(empty)
    for model_id in runs:
        of_model = [row for row in rows if row["model_id"] == model_id]
        chosen = chosen_runs[model_id]
        values = {
            (row["metric"], int(row["k"]), row["slice"]): MetricValue(
                metric=row["metric"],
                k=int(row["k"]),
                slice=row["slice"],
                value=row["value"],
                status=row["status"],
                reason=row["reason"],
                user_count=int(row["user_count"] or 0),
            )
            for row in of_model
            if row["run_id"] == chosen
        }
        holdout = _holdout(rows, model_id, chosen) if values else None
        result[model_id] = ModelMetrics(
            model_id=model_id, run_id=chosen if values else None, values=values,
            holdout_start=holdout[0] if holdout else None, holdout_end=holdout[1] if holdout else None,
        )
        logger.info("model %s: %d metric rows of run %s", model_id, len(values), result[model_id].run_id)
    return result


def read_behavioral_run(
    spark: SparkSession, warehouse: str, tables: GateTables, model_id: str, suite: str
) -> BehavioralRun:
    """Read the latest run (by ``evaluated_at``) of ``suite`` for ``model_id``.

    Rows without a ``suite`` value, written before the column existed, do not count. A table
    without the ``suite`` column at all reads as no run.
    """
    path, table = _load(spark, warehouse, tables.behavioral_table, "behavioral results")
    if table is None:
        return BehavioralRun(suite=suite, run_id=None)
    if "suite" not in table.columns:
        logger.warning("table %s has no suite column; no behavioral result can be attributed", path)
        return BehavioralRun(suite=suite, run_id=None)

    def read() -> list[Any]:
        return (
            table.where((F.col("model_id") == F.lit(model_id)) & (F.col("suite") == F.lit(suite)))
            .select(
                "run_id", "evaluated_at", "test_name", "test_type", "passed", "status", "reason",
                "observed", "threshold", "threshold_kind", "cases", "failures",
            )
            .collect()
        )

    rows = _guarded(path, "behavioral results", read)
    chosen = _latest(rows, "evaluated_at")
    selected = sorted((row for row in rows if row["run_id"] == chosen), key=lambda row: row["test_name"])
    run = BehavioralRun(
        suite=suite,
        run_id=chosen,
        rows=tuple(
            BehavioralRow(
                test_name=row["test_name"],
                test_type=row["test_type"],
                passed=bool(row["passed"]),
                status=row["status"],
                reason=row["reason"],
                observed=row["observed"],
                threshold=float(row["threshold"]),
                threshold_kind=row["threshold_kind"],
                cases=int(row["cases"] or 0),
                failures=int(row["failures"] or 0),
            )
            for row in selected
        ),
    )
    logger.info("model %s: %d behavioral rows of run %s", model_id, len(run.rows), run.run_id)
    return run


def read_probes(
    spark: SparkSession,
    warehouse: str,
    tables: GateTables,
    runs: Mapping[str, str | None],
) -> dict[str, ProbeResult | None]:
    """Read one serving probe row per model, in one Spark job.

    ``runs`` maps each model id to the probe run to read, or to None for its latest probe (by
    ``probed_at``). A model without a probe row maps to None. Raises ComputationError when the
    table lacks a column the gate reads.
    """
    result: dict[str, ProbeResult | None] = {model_id: None for model_id in runs}
    path, table = _load(spark, warehouse, tables.probes_table, "serving probes")
    if table is None:
        return result
    missing = [column for column in PROBE_COLUMNS if column not in table.columns]
    if missing:
        raise ComputationError(
            f"table {path} lacks the serving probe columns {', '.join(missing)}; it was not "
            "written by the serving probe"
        )

    def read() -> list[Any]:
        return table.where(F.col("model_id").isin(list(runs))).select(*PROBE_COLUMNS).collect()

    rows = _guarded(path, "serving probes", read)
    for model_id, run_id in runs.items():
        of_model = [row for row in rows if row["model_id"] == model_id]
        if run_id is not None:
            of_model = [row for row in of_model if row["run_id"] == run_id]
        if not of_model:
            logger.info("model %s: no serving probe", model_id)
            continue
        row = max(of_model, key=lambda item: (item["probed_at"], item["run_id"]))
        result[model_id] = ProbeResult(
            model_id=row["model_id"],
            run_id=row["run_id"],
            requests=int(row["requests"] or 0),
            p50_ms=row["p50_ms"],
            p99_ms=row["p99_ms"],
            max_ms=row["max_ms"],
            size_mb=row["size_mb"],
            status=row["status"],
            reason=row["reason"],
        )
        logger.info("model %s: serving probe %s", model_id, row["run_id"])
    return result


def model_has_rows(spark: SparkSession, warehouse: str, tables: GateTables, model_id: str) -> bool:
    """Return True when any row of the metrics, behavioral or probe table names ``model_id``.

    Every row counts, input-check rows and other suites' results included, so a model that
    only has those is known. Tables that do not exist have no rows.
    """
    for table, description in (
        (tables.model_metrics_table, "model metrics"),
        (tables.behavioral_table, "behavioral results"),
        (tables.probes_table, "serving probes"),
    ):
        path, frame = _load(spark, warehouse, table, description)
        if frame is None:
            continue
        rows = _guarded(
            path,
            description,
            lambda: frame.where(F.col("model_id") == F.lit(model_id)).limit(1).collect(),
        )
        if rows:
            return True
    return False


def evaluated_models(
    spark: SparkSession, warehouse: str, tables: GateTables, limit: int = 1000
) -> list[str]:
    """Return up to ``limit`` model ids with rows in the metrics table, latest evaluated first."""
    path, frame = _load(spark, warehouse, tables.model_metrics_table, "model metrics")
    if frame is None:
        return []
    rows = _guarded(
        path,
        "model metrics",
        lambda: frame.groupBy("model_id")
        .agg(F.max("evaluated_at").alias("latest"))
        .orderBy(F.col("latest").desc(), F.col("model_id"))
        .limit(limit)
        .collect(),
    )
    return [row["model_id"] for row in rows]


def read_validation_summary(
    spark: SparkSession, warehouse: str, tables: GateTables, partition_date: date | None = None
) -> ValidationSummary:
    """Read the latest data-validation run of each dataset from the ``runs`` table.

    With ``partition_date``, the latest run of that partition of each dataset; without it, the
    latest run of each dataset's most recent partition. The runs are sorted by dataset. When the
    table does not exist, the summary has ``table_found`` False and no runs.
    """
    path, table = _load(spark, warehouse, tables.runs_table, "data-validation runs")
    if table is None:
        return ValidationSummary(table=path, table_found=False, partition_date=partition_date)

    def read() -> list[Any]:
        frame = table
        if partition_date is not None:
            frame = frame.where(F.col("partition_date") == F.lit(partition_date))
        order = Window.partitionBy("dataset").orderBy(
            F.col("partition_date").desc(), F.col("finished_at").desc(), F.col("run_id").desc()
        )
        return (
            frame.withColumn("position", F.row_number().over(order))
            .where(F.col("position") == 1)
            .select(
                "dataset", "partition_date", "run_id", "status", "exit_code", "error_code",
                "expectations_total", "expectations_failed", "blocking_failures", "finished_at",
            )
            .orderBy("dataset")
            .collect()
        )

    rows = _guarded(path, "data-validation runs", read)
    runs = tuple(
        ValidationRun(
            dataset=row["dataset"],
            partition_date=row["partition_date"],
            run_id=row["run_id"],
            status=row["status"],
            exit_code=row["exit_code"],
            error_code=row["error_code"],
            expectations_total=row["expectations_total"],
            expectations_failed=row["expectations_failed"],
            blocking_failures=row["blocking_failures"],
            finished_at=row["finished_at"],
        )
        for row in rows
    )
    logger.info(
        "data validation for %s: %s",
        partition_date.isoformat() if partition_date else "the latest partitions",
        ", ".join(f"{run.dataset} {run.status}" for run in runs) or "no runs",
    )
    return ValidationSummary(
        table=path, table_found=True, partition_date=partition_date, runs=runs
    )
