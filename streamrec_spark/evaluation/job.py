"""The evaluation job: recommendations against a holdout window, stored in Delta."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from pyspark.sql import SparkSession

from streamrec_spark.errors import EXIT_INFRASTRUCTURE, ComputationError, InvalidRequestError, StreamrecError
from streamrec_spark.evaluation.config import EvaluationConfig
from streamrec_spark.evaluation.inputs import describe_holdout, midnight, read_events, read_table, split_holdout
from streamrec_spark.evaluation.ranking import aggregate_rankings, relevant_sets
from streamrec_spark.evaluation.results import EvaluationResult, build_result, errored_result
from streamrec_spark.evaluation.store import write_model_metrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationRequest:
    """A request to evaluate a recommendations table or a saved model, and where to store results.

    The holdout window is ``[holdout_start, holdout_end)`` in UTC days. With ``model_path``,
    the model recommends ``max K`` items to each holdout user, as of ``holdout_start``.
    """

    model_id: str
    run_id: str
    events_path: str
    holdout_start: date
    holdout_end: date
    warehouse: str
    recommendations_path: str | None = None
    model_path: str | None = None
    catalog_path: str | None = None

    def validate(self) -> None:
        if (self.recommendations_path is None) == (self.model_path is None):
            raise InvalidRequestError("give exactly one of --recommendations and --model")
        if self.holdout_end <= self.holdout_start:
            raise InvalidRequestError(
                f"the holdout window is empty: end {self.holdout_end} is not after start {self.holdout_start}"
            )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _compute(spark: SparkSession, request: EvaluationRequest, config: EvaluationConfig) -> EvaluationResult:
    start, end = midnight(request.holdout_start), midnight(request.holdout_end)
    events = read_events(spark, request.events_path)
    holdout, history = split_holdout(events, start, end)
    catalog = read_table(spark, request.catalog_path, "item catalog") if request.catalog_path else None

    if request.model_path is not None:
        from streamrec_spark.models import load_model

        model = load_model(request.model_path)
        users = relevant_sets(holdout, config.relevant_event_types, config.slices.platforms).select(
            "user_id", "platform"
        )
        recommendations = model.recommend(events, users, config.max_k, start)
    else:
        recommendations = read_table(spark, request.recommendations_path, "recommendations table")

    logger.info(
        "evaluating model %s run %s on holdout %s to %s", request.model_id, request.run_id, start, end
    )
    source = describe_holdout(request.holdout_start, request.holdout_end, request.events_path)
    aggregates = aggregate_rankings(recommendations, holdout, history, config, catalog, holdout_source=source)
    return build_result(aggregates, config)


def _write(spark: SparkSession, request: EvaluationRequest, config: EvaluationConfig, result: EvaluationResult) -> None:
    write_model_metrics(
        spark,
        result.rows,
        model_id=request.model_id,
        run_id=request.run_id,
        warehouse=request.warehouse,
        database=config.database,
        table=config.metrics_table,
        holdout_start=request.holdout_start,
        holdout_end=request.holdout_end,
    )


def _record_errored(
    spark: SparkSession, request: EvaluationRequest, config: EvaluationConfig, error: StreamrecError
) -> None:
    """Write the errored run's rows, and log a failed write because the caller raises ``error``."""
    try:
        _write(spark, request, config, errored_result(config, error.error_code))
    except StreamrecError as exc:
        logger.error(
            "model %s run %s: could not record the errored run: %s", request.model_id, request.run_id, exc
        )


def run_evaluation(spark: SparkSession, request: EvaluationRequest, config: EvaluationConfig) -> EvaluationResult:
    """Compute the metrics of ``config`` for ``request``, write them and return them.

    Raises InvalidRequestError for a contradictory request, before anything runs or is written.
    Raises InputDataError for unreadable or empty inputs and ComputationError when Spark or the
    Delta write fails. Before raising either, it writes the run's metric rows with status
    ``errored``, the error code as reason and a NULL value, unless the write fails too.
    """
    request.validate()
    try:
        try:
            result = _compute(spark, request, config)
        except StreamrecError:
            raise
        except Exception as exc:  # Spark and Delta raise their own exception classes.
            raise ComputationError(f"Spark failed while evaluating: {_first_line(exc)}") from exc
    except StreamrecError as exc:
        logger.error("model %s run %s: %s: %s", request.model_id, request.run_id, exc.error_code, exc)
        if exc.exit_code == EXIT_INFRASTRUCTURE:
            _record_errored(spark, request, config, exc)
        raise

    _write(spark, request, config, result)
    for row in result.rows:
        if row.is_input_check and row.status in ("failed", "warning"):
            logger.warning(
                "input check %s: %d %s affected (%s)", row.reason, row.affected, row.affected_unit, row.status
            )
    return result


def _render(header: tuple[str, ...], lines: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(line[index]) for line in [header, *lines]) for index in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in [header, *lines]]


def format_metrics(result: EvaluationResult) -> str:
    """Render the metric rows and the input checks that found something as two tables.

    Metric columns: ``users`` is the slice's evaluated users (with a relevant holdout item) and
    ``users_with_hit`` those of them with a relevant item in the top K. Input-check columns:
    ``affected`` is what the check found, in the unit of the ``unit`` column (recommendation
    rows, users or slices).
    """
    metric_lines = [
        (
            row.slice,
            row.metric,
            "" if row.k is None else str(row.k),
            str(row.user_count),
            "" if row.hit_users is None else str(row.hit_users),
            "NULL" if row.value is None else f"{row.value:.4f}",
            row.status,
            row.reason or "",
        )
        for row in result.rows
        if not row.is_input_check
    ]
    check_lines = [
        (row.metric, str(row.affected), row.affected_unit or "", row.status, row.reason or "")
        for row in result.rows
        if row.is_input_check and row.affected
    ]
    lines = _render(("slice", "metric", "k", "users", "users_with_hit", "value", "status", "reason"), metric_lines)
    lines.append("")
    if check_lines:
        lines += _render(("input_check", "affected", "unit", "status", "reason"), check_lines)
    else:
        lines.append("input checks: nothing found")
    return "\n".join(lines)
