"""The evaluation job: recommendations against a holdout window, stored in Delta."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from pyspark.sql import SparkSession

from streamrec_spark.errors import InvalidRequestError
from streamrec_spark.evaluation.config import EvaluationConfig
from streamrec_spark.evaluation.inputs import midnight, read_events, read_table, split_holdout
from streamrec_spark.evaluation.ranking import aggregate_rankings, relevant_sets
from streamrec_spark.evaluation.results import EvaluationResult, build_result
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


def run_evaluation(spark: SparkSession, request: EvaluationRequest, config: EvaluationConfig) -> EvaluationResult:
    """Compute the metrics of ``config`` for ``request``, write them and return them.

    Raises InvalidRequestError for a contradictory request, InputDataError for unreadable or
    empty inputs and ComputationError when the Delta write fails.
    """
    request.validate()
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
    result = build_result(aggregate_rankings(recommendations, holdout, history, config, catalog), config)
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
    for row in result.rows:
        if row.reason and row.status in ("failed", "warning"):
            logger.warning("input check %s: %d affected (%s)", row.reason, row.count, row.status)
    return result


def format_metrics(result: EvaluationResult) -> str:
    """Render metric rows and the input checks that found something as a fixed-width table."""
    header = ("slice", "metric", "k", "users", "value", "count", "status", "reason")
    lines = []
    for row in result.rows:
        if row.metric.startswith("input.") and row.count == 0:
            continue
        lines.append(
            (
                row.slice,
                row.metric,
                "" if row.k is None else str(row.k),
                str(row.user_count),
                "NULL" if row.value is None else f"{row.value:.4f}",
                str(row.count),
                row.status,
                row.reason or "",
            )
        )
    widths = [max(len(line[index]) for line in [header, *lines]) for index in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in [header, *lines]
    )
