"""The behavioral job: run the suite on a saved model and store its results in Delta."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from pyspark.sql import SparkSession

from streamrec_spark.behavioral.config import SuiteConfig
from streamrec_spark.behavioral.store import write_behavioral_results
from streamrec_spark.behavioral.suite import SuiteInputs, SuiteRun, default_holdout, errored_results, run_suite
from streamrec_spark.errors import EXIT_INFRASTRUCTURE, ComputationError, StreamrecError
from streamrec_spark.evaluation.config import EvaluationConfig
from streamrec_spark.evaluation.inputs import midnight, read_events, read_table

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BehavioralRequest:
    """A request to run the suite on the model saved at ``model_path``.

    The MFT holdout starts at ``holdout_start`` (midnight UTC) when given, else where the
    model's training window ends, and lasts the suite's ``holdout_days``.
    """

    model_path: str
    model_id: str
    run_id: str
    events_path: str
    warehouse: str
    items_path: str | None = None
    holdout_start: date | None = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _write(spark: SparkSession, request: BehavioralRequest, suite: SuiteConfig, results) -> None:
    write_behavioral_results(
        spark,
        results,
        model_id=request.model_id,
        run_id=request.run_id,
        suite=suite.name,
        warehouse=request.warehouse,
        database=suite.database,
        table=suite.results_table,
    )


def _run(
    spark: SparkSession, request: BehavioralRequest, suite: SuiteConfig, evaluation: EvaluationConfig
) -> SuiteRun:
    from streamrec_spark.models import load_model

    model = load_model(request.model_path)
    start, end = default_holdout(model, suite)
    if request.holdout_start is not None:
        start = midnight(request.holdout_start)
        end = start + timedelta(days=suite.holdout_days)
    events = read_events(spark, request.events_path)
    items = read_table(spark, request.items_path, "item catalog") if request.items_path else None
    inputs = SuiteInputs(events, start, end, items, events_path=request.events_path)
    return run_suite(model, inputs, suite, evaluation)


def run_behavioral(
    spark: SparkSession, request: BehavioralRequest, suite: SuiteConfig, evaluation: EvaluationConfig
) -> SuiteRun:
    """Run the suite, write one row per test and return the run.

    Raises InputDataError for an invalid model folder or unreadable or empty inputs, and
    ComputationError when Spark or the Delta write fails. Before raising either, it writes one
    row per test with status ``errored`` and the error code as reason, unless that write
    fails too.
    """
    try:
        try:
            run = _run(spark, request, suite, evaluation)
        except StreamrecError:
            raise
        except Exception as exc:  # Spark and Delta raise their own exception classes.
            raise ComputationError(f"Spark failed while running the behavioral suite: {_first_line(exc)}") from exc
    except StreamrecError as exc:
        logger.error("model %s run %s: %s: %s", request.model_id, request.run_id, exc.error_code, exc)
        if exc.exit_code == EXIT_INFRASTRUCTURE:
            try:
                _write(spark, request, suite, errored_results(suite, exc.error_code))
            except StreamrecError as write_error:
                logger.error(
                    "model %s run %s: could not record the errored run: %s",
                    request.model_id,
                    request.run_id,
                    write_error,
                )
        raise

    _write(spark, request, suite, run.results)
    return run
