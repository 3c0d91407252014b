"""Evaluation of the gate's champion on the candidate's holdout window.

Metrics are comparable only on one test set. The gate therefore reads the champion's run on
the candidate's holdout window when one exists (``read_model_metrics`` in
:mod:`streamrec_spark.gate.inputs`, with ``same_holdout_as``). :func:`evaluate_champion` writes
that run. It finds the champion with the gate's own lookup (:meth:`GateStore.champion`),
downloads the champion's saved model folder from the MLflow registry, and evaluates it with the
candidate's evaluation code and window. Its rows go to the gate's model-metrics table under the
champion's model id, with a run id of their own, so the champion's approval run stays as it was.

The folder comes from the registered MLflow version, not from the path the champion was trained
to. The registered artifacts are the copy that the gate approved and that serving loads. They
live in the MLflow artifact store, which every machine that runs a stage can read, and nothing
in the pipeline deletes or overwrites them. A training folder may sit on one worker's local disk
or be pruned, and the ``model.output`` pattern can change between runs.
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass, replace
from datetime import date

from pyspark.sql import SparkSession

from streamrec_spark.errors import EXIT_PASSED, InputDataError, InvalidRequestError
from streamrec_spark.evaluation.config import EvaluationConfig
from streamrec_spark.evaluation.results import EvaluationResult
from streamrec_spark.gate.config import GateConfig
from streamrec_spark.gate.store import Champion, GateStore
from streamrec_spark.gate.tracking import MODEL_UNAVAILABLE

logger = logging.getLogger(__name__)

_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class ChampionEvaluationRequest:
    """A request to evaluate the champion of ``gate`` on the holdout ``[holdout_start, holdout_end)``.

    ``candidate_model_id`` is the model the gate judges next. ``run_id`` is the champion's new
    evaluation run, and must differ from the run it was approved on. ``tracking_uri`` and
    ``registry_uri`` override the gate file's MLflow stores, as in ``streamrec-spark gate``.
    """

    gate: GateConfig
    candidate_model_id: str
    run_id: str
    events_path: str
    holdout_start: date
    holdout_end: date
    warehouse: str
    catalog_path: str | None = None
    tracking_uri: str | None = None
    registry_uri: str | None = None

    def validate(self) -> None:
        """Raise InvalidRequestError for an invalid id, an empty window or an empty warehouse."""
        for option, value in (("--candidate-model-id", self.candidate_model_id), ("--run-id", self.run_id)):
            if not _ID_PATTERN.match(value):
                raise InvalidRequestError(
                    f"invalid {option} {value!r}; use letters, digits, '-', '_' and '.'"
                )
        if self.holdout_end <= self.holdout_start:
            raise InvalidRequestError(
                f"the holdout window is empty: end {self.holdout_end} is not after start "
                f"{self.holdout_start}"
            )
        if not self.warehouse:
            raise InvalidRequestError("the warehouse is empty; pass --warehouse FOLDER")


@dataclass(frozen=True)
class ChampionEvaluation:
    """Outcome of :func:`evaluate_champion`.

    ``result`` is None when nothing was evaluated, and ``skipped`` then gives the reason: the
    gate has no champion, or the candidate is the champion itself.
    """

    champion: Champion | None
    registered_model_name: str | None
    result: EvaluationResult | None
    skipped: str | None = None

    @property
    def exit_code(self) -> int:
        return self.result.exit_code if self.result is not None else EXIT_PASSED


def evaluate_champion(
    spark: SparkSession, request: ChampionEvaluationRequest, evaluation: EvaluationConfig
) -> ChampionEvaluation:
    """Evaluate the gate's champion on the request's holdout window and write its metric rows.

    The metrics, slices and input checks are those of ``evaluation``. The rows go to the gate's
    ``tables.database`` and ``tables.model_metrics_table``, where the gate reads them, and
    replace the rows of an earlier run with the same model id and run id. Without a champion,
    or when the candidate is the champion, nothing is evaluated or written.

    Raises InvalidRequestError for an invalid request. Raises InputDataError
    (``CHAMPION_MODEL_UNAVAILABLE``) when the champion has no registered version, or when the
    version's model folder cannot be downloaded or loaded, before any row is written. Raises
    ComputationError when the gate decisions cannot be read, and what
    :func:`streamrec_spark.evaluation.job.run_evaluation` raises when the evaluation fails.
    """
    from streamrec_spark.evaluation.job import EvaluationRequest, run_evaluation

    request.validate()
    gate = request.gate
    champion = GateStore(spark, request.warehouse, gate.tables).champion(gate.name)
    if champion is None:
        message = (
            f"gate {gate.name} has no champion, so there is nothing to compare with; the gate "
            "applies its floors only"
        )
        logger.info("%s", message)
        return ChampionEvaluation(None, None, None, skipped=message)
    name = champion.registered_model_name or gate.registered_model_name
    if champion.model_id == request.candidate_model_id:
        message = (
            f"model {champion.model_id} is the champion of gate {gate.name} already, so it is "
            "not evaluated again; the gate rejects it as a candidate"
        )
        logger.warning("%s", message)
        return ChampionEvaluation(champion, name, None, skipped=message)
    if champion.metrics_run_id == request.run_id:
        # Writing under that id would replace the rows the champion was approved on, which
        # the gate falls back to when no run on the candidate's window exists.
        raise InvalidRequestError(
            f"--run-id {request.run_id} is the run champion {champion.model_id} was approved on; "
            "pass a run id of its own (the daily pipeline uses daily-<date>-champion)"
        )
    if champion.registered_version is None:
        raise InputDataError(
            f"champion {champion.model_id} of gate {gate.name} (decision {champion.decision_id}) "
            "has no registered version, so its model folder cannot be found; restore the "
            "decision's registered_version in the gate decisions table",
            error_code=MODEL_UNAVAILABLE,
        )

    config = replace(
        evaluation, database=gate.tables.database, metrics_table=gate.tables.model_metrics_table
    )
    logger.info(
        "champion %s of gate %s (version %d of '%s'): evaluating on holdout %s to %s as run %s",
        champion.model_id, gate.name, champion.registered_version, name, request.holdout_start,
        request.holdout_end, request.run_id,
    )
    with tempfile.TemporaryDirectory(prefix="streamrec-champion-") as folder:
        model_dir = _download(request, name, champion.registered_version, folder)
        result = run_evaluation(
            spark,
            EvaluationRequest(
                model_id=champion.model_id,
                run_id=request.run_id,
                events_path=request.events_path,
                holdout_start=request.holdout_start,
                holdout_end=request.holdout_end,
                warehouse=request.warehouse,
                model_path=model_dir,
                catalog_path=request.catalog_path,
            ),
            config,
        )
    return ChampionEvaluation(champion, name, result)


def _download(request: ChampionEvaluationRequest, name: str, version: int, folder: str) -> str:
    """Download the registered version's model folder into ``folder`` and check that it loads."""
    from streamrec_spark.gate import tracking
    from streamrec_spark.models import load_model

    settings = tracking.tracking_config(request.gate, request.tracking_uri, request.registry_uri)
    model_dir = tracking.download_model_folder(settings, request.warehouse, name, version, folder)
    try:
        load_model(model_dir)
    except InputDataError as exc:
        raise InputDataError(
            f"version {version} of registered model '{name}' is not a loadable streamrec model "
            f"({exc}); restore its artifacts in MLflow from a backup",
            error_code=MODEL_UNAVAILABLE,
        ) from exc
    return str(model_dir)


def format_champion_evaluation(outcome: ChampionEvaluation, request: ChampionEvaluationRequest) -> str:
    """Render the outcome for people: what was evaluated, on which window, or why nothing was."""
    if outcome.result is None:
        return outcome.skipped or "nothing was evaluated"
    from streamrec_spark.evaluation.job import format_metrics

    champion = outcome.champion
    header = (
        f"champion {champion.model_id} of gate {request.gate.name} (version "
        f"{champion.registered_version} of '{outcome.registered_model_name}'): run {request.run_id} "
        f"on the candidate's holdout {request.holdout_start} to {request.holdout_end}"
    )
    return header + "\n" + format_metrics(outcome.result)
