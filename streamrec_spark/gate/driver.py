"""The gate driver: read aggregated results, decide, record in MLflow and Delta, return a code.

:func:`apply_gate` is what both ``streamrec-spark gate`` and ``jobs/apply_gate.py`` call. It
reads a few dozen rows per input table, so it decides in seconds; Spark is used only because
the inputs are Delta tables.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import re
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from streamrec_spark.errors import (
    EXIT_FAILED,
    EXIT_INFRASTRUCTURE,
    EXIT_PASSED,
    ComputationError,
    InvalidRequestError,
    StreamrecError,
)
from streamrec_spark.alerts import AlertResult, build_gate_alert, send_and_record
from streamrec_spark.gate import inputs
from streamrec_spark.gate.config import GateConfig, GateTables
from streamrec_spark.gate.rules import (
    BLOCK,
    ERROR,
    PASS,
    BehavioralRun,
    Comparison,
    Decision,
    ModelMetrics,
    ProbeResult,
    ValidationSummary,
    decide,
)
from streamrec_spark.gate.store import Champion, DecisionRecord, GateStore
from streamrec_spark.validation.results import RUN_PASSED, RUN_WARNED

logger = logging.getLogger(__name__)

_MODEL_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class GateRequest:
    """A request to judge ``model_id`` with a parsed gate configuration.

    With ``register`` (the default), a model that passes is registered in MLflow from
    ``model_dir``, which must then be an existing folder. ``data_date`` is the partition whose
    data-validation runs are judged and recorded (default: each dataset's latest partition).
    ``tracking_uri`` and ``registry_uri`` override the configuration's.
    """

    config: GateConfig
    model_id: str
    warehouse: str
    model_dir: str | None = None
    register: bool = True
    data_date: date | None = None
    tracking_uri: str | None = None
    registry_uri: str | None = None

    def validate(self) -> None:
        """Raise InvalidRequestError for a model id, model folder or URI that cannot be used."""
        if not _MODEL_ID_PATTERN.match(self.model_id):
            raise InvalidRequestError(
                f"invalid model id {self.model_id!r}; use letters, digits, '-', '_' and '.'"
            )
        if not self.warehouse:
            raise InvalidRequestError("the warehouse is empty; pass --warehouse FOLDER")
        if self.register and self.model_dir is None:
            raise InvalidRequestError(
                "a model that passes is registered from its saved folder: pass --model-dir "
                "FOLDER, or --no-register to decide without registering"
            )
        if self.model_dir is not None and not Path(self.model_dir).is_dir():
            raise InvalidRequestError(
                f"model folder '{self.model_dir}' not found; pass the folder the candidate "
                "was saved to"
            )
        for name, uri in (("tracking", self.tracking_uri), ("registry", self.registry_uri)):
            if uri is not None and not uri.strip():
                raise InvalidRequestError(f"the {name} URI is empty; pass a URI or leave it out")


@dataclass(frozen=True)
class GateOutcome:
    """The result of one gate run: the decision, what was recorded, and the exit code."""

    decision_id: str
    gate: str
    model_id: str
    decision: str
    exit_code: int
    comparisons: tuple[Comparison, ...]
    reason_codes: tuple[str, ...]
    no_baseline: bool
    champion_model_id: str | None
    registered: bool
    registered_version: int | None
    mlflow_run_id: str | None
    tracking_error: str | None
    metrics_run_id: str | None
    behavioral: BehavioralRun | None
    probe: ProbeResult | None
    data_validation: tuple[dict[str, Any], ...]
    decided_at: datetime
    record: dict[str, Any] = field(default_factory=dict, repr=False)
    # The webhook outcome of a BLOCK; None on a pass. A failed alert never changes the decision.
    alert: AlertResult | None = None

    @property
    def passed(self) -> bool:
        return self.decision == PASS

    @property
    def infrastructure_error(self) -> str | None:
        """Return one line on why the exit code is 3 although a decision was made, else None."""
        if self.exit_code != EXIT_INFRASTRUCTURE:
            return None
        cause = self.tracking_error or "MLflow did not return a registered version"
        return (
            f"gate run {self.decision_id} decided {self.decision} for model {self.model_id} and "
            f"recorded it in Delta, but MLflow recording or registration failed: {cause}"
        )

    @property
    def failed(self) -> tuple[Comparison, ...]:
        return tuple(comparison for comparison in self.comparisons if not comparison.passed)


# How many model ids an unknown-model error lists.
_SHOWN_MODEL_IDS = 5


def unknown_model_error(
    model_id: str, warehouse: str, tables: GateTables, evaluated: list[str]
) -> InvalidRequestError:
    """Build the one-line error for a model id that no result table contains.

    ``evaluated`` lists the model ids with evaluation runs, latest first. The message names
    the closest of them as likely meant, and the latest few.
    """
    searched = f"{tables.model_metrics_table}, {tables.behavioral_table} or {tables.probes_table}"
    message = f"model id '{model_id}' not found: no row of {searched} under {warehouse} names it."
    close = difflib.get_close_matches(model_id, evaluated, n=3, cutoff=0.6)
    if close:
        message += f" Did you mean {' or '.join(close)}?"
    if evaluated:
        shown = ", ".join(evaluated[:_SHOWN_MODEL_IDS])
        more = f" ({len(evaluated)} in all)" if len(evaluated) > _SHOWN_MODEL_IDS else ""
        message += f" Models with evaluation runs, latest first: {shown}{more}."
    else:
        message += f" No model has evaluation runs in {tables.model_metrics_table} yet."
    message += (
        " Check --model-id, or run the evaluate_model, run_behavioral and probe_model stages "
        "for this model first"
    )
    return InvalidRequestError(message)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _comparison_dict(comparison: Comparison) -> dict[str, Any]:
    """Return the comparison as a dict; ``limit`` is the key the MLflow record reads."""
    values = asdict(comparison)
    values["limit"] = values.pop("upper_limit")
    return values


def _validation_params(summary: ValidationSummary) -> dict[str, Any]:
    """Flatten the data-validation runs into scalar ``<dataset>.<field>`` entries."""
    flat: dict[str, Any] = {
        "runs_table_found": summary.table_found,
        "partition_date": summary.partition_date.isoformat() if summary.partition_date else None,
        "datasets": len(summary.runs),
        "datasets_not_accepted": sum(
            1 for run in summary.runs if run.status not in (RUN_PASSED, RUN_WARNED)
        ),
    }
    for run in summary.runs:
        record = run.to_record()
        for key in ("partition_date", "run_id", "status", "exit_code", "blocking_failures"):
            flat[f"{run.dataset}.{key}"] = record[key]
    return flat


def _window(metrics: ModelMetrics | None) -> list[str | None] | None:
    """Return an evaluation run's holdout window as ISO dates, or None when none was recorded."""
    if metrics is None or metrics.holdout_start is None:
        return None
    end = metrics.holdout_end.isoformat() if metrics.holdout_end else None
    return [metrics.holdout_start.isoformat(), end]


def build_record(
    config: GateConfig,
    decision_id: str,
    model_id: str,
    decision: Decision,
    champion: Champion | None,
    metrics: ModelMetrics,
    behavioral: BehavioralRun | None,
    probe: ProbeResult | None,
    validation: ValidationSummary,
    decided_at: datetime,
    champion_metrics: ModelMetrics | None = None,
) -> dict[str, Any]:
    """Build the JSON-able decision record that MLflow stores as the run's ``decision.json``.

    ``run_id`` is the gate run (the decision id). ``inputs`` names the evaluation, behavioral
    and probe runs the decision read, and the champion's evaluation run and its holdout window.
    """
    return {
        "gate": config.name,
        "run_id": decision_id,
        "model_id": model_id,
        "decision": decision.decision,
        "reasons": list(decision.reason_codes),
        "no_baseline": decision.no_baseline,
        "champion_model_id": champion.model_id if champion else None,
        "champion_decision_id": champion.decision_id if champion else None,
        "tolerance": config.tolerance,
        "decided_at": decided_at.isoformat() + "Z",
        "config_file": config.source,
        "inputs": {
            "metrics_run_id": metrics.run_id,
            "holdout": _window(metrics),
            "champion_metrics_run_id": champion_metrics.run_id if champion_metrics else None,
            "champion_holdout": _window(champion_metrics),
            "behavioral_suite": behavioral.suite if behavioral else None,
            "behavioral_run_id": behavioral.run_id if behavioral else None,
            "probe_run_id": probe.run_id if probe else None,
        },
        "comparisons": [_comparison_dict(comparison) for comparison in decision.comparisons],
        "behavioral": [asdict(row) for row in behavioral.rows] if behavioral else [],
        "probe": asdict(probe) if probe else None,
        "data_validation": _validation_params(validation),
        "data_validation_runs": [run.to_record() for run in validation.runs],
    }


def _track(
    config: GateConfig, request: GateRequest, record: dict[str, Any], register: bool
) -> tuple[str | None, int | None, str | None]:
    """Record the decision in MLflow; return (run id, registered version, error message)."""
    from streamrec_spark.gate import tracking

    tracking_config = tracking.tracking_config(config, request.tracking_uri, request.registry_uri)
    try:
        result = tracking.record_decision(
            tracking_config, request.warehouse, record, request.model_dir, register
        )
    except StreamrecError as exc:
        logger.error("recording gate run %s in MLflow failed: %s", record["run_id"], exc)
        return None, None, str(exc)
    return result.run_id, result.registered_version, result.error


def _record_error(
    store: GateStore,
    config: GateConfig,
    decision_id: str,
    model_id: str,
    champion: Champion | None,
    error: StreamrecError,
    decided_at: datetime,
) -> None:
    """Try to record an errored gate run; a second failure is logged, not raised."""
    record = DecisionRecord(
        decision_id=decision_id,
        gate=config.name,
        model_id=model_id,
        decision=ERROR,
        exit_code=EXIT_INFRASTRUCTURE,
        registered=False,
        no_baseline=champion is None,
        reason_codes=(error.error_code,),
        comparisons_total=0,
        comparisons_failed=0,
        tolerance=config.tolerance,
        decided_at=decided_at,
        registered_model_name=config.registered_model_name,
        champion_model_id=champion.model_id if champion else None,
        champion_decision_id=champion.decision_id if champion else None,
        error_message=str(error)[:2000],
        config_file=config.source,
    )
    try:
        store.write(record, ())
    except StreamrecError as exc:
        logger.error("could not record errored gate run %s: %s", decision_id, exc)


def apply_gate(spark: SparkSession, request: GateRequest) -> GateOutcome:
    """Judge the candidate, record the decision in MLflow and Delta, and return the outcome.

    The exit code is 0 on PASS and 1 on BLOCK. It is 3 when the MLflow record failed (an
    unreachable tracking server, for example) or a requested registration failed. The decision
    is then still written to Delta, with the MLflow message in ``tracking_error``, and a PASS
    that was not registered does not become the champion.

    Raises InvalidRequestError (exit 2) for an invalid request, when the candidate is the
    gate's champion already, and when no row of ``model_metrics``, ``behavioral_results`` or
    ``serving_probes`` names the candidate (a mistyped id). Nothing is recorded and no alert is
    sent for those. A known candidate that lacks some results is judged, and blocks. Raises
    ComputationError (exit 3) when a table cannot be read or written, or its Delta log is
    damaged. A read failure is recorded as an ERROR decision if the gate tables are writable.
    """
    request.validate()
    config = request.config
    store = GateStore(spark, request.warehouse, config.tables)
    champion = store.champion(config.name)
    if champion is not None and champion.model_id == request.model_id:
        raise InvalidRequestError(
            f"model {request.model_id} is already the champion of gate {config.name} "
            f"(decision {champion.decision_id}); gate a new candidate instead"
        )

    decision_id = uuid.uuid4().hex
    decided_at = _utc_now()
    logger.info(
        "gate %s run %s: judging model %s against %s",
        config.name,
        decision_id,
        request.model_id,
        f"champion {champion.model_id}" if champion else "the floors only (no champion)",
    )
    warehouse, tables = request.warehouse, config.tables
    try:
        metric_runs = {request.model_id: None}
        probe_runs = {request.model_id: None}
        if champion is not None:
            metric_runs[champion.model_id] = champion.metrics_run_id
            probe_runs[champion.model_id] = champion.probe_run_id
        read_metrics = inputs.read_model_metrics(
            spark, warehouse, tables, metric_runs, same_holdout_as=request.model_id
        )
        metrics = read_metrics[request.model_id]
        champion_metrics = read_metrics[champion.model_id] if champion is not None else None
        if champion_metrics is not None:
            logger.info(
                "champion %s: metrics of run %s (holdout %s to %s, end excluded)%s", champion.model_id,
                champion_metrics.run_id, champion_metrics.holdout_start, champion_metrics.holdout_end,
                "" if champion_metrics.run_id == champion.metrics_run_id
                else ", the candidate's holdout window, instead of the run it was approved on",
            )
        behavioral = None
        if config.behavioral is not None:
            behavioral = inputs.read_behavioral_run(
                spark, warehouse, tables, request.model_id, config.behavioral.suite
            )
        probe = champion_probe = None
        if config.serving is not None:
            probes = inputs.read_probes(spark, warehouse, tables, probe_runs)
            probe = probes[request.model_id]
            champion_probe = probes[champion.model_id] if champion is not None else None
        found = metrics.run_id is not None or probe is not None or (
            behavioral is not None and behavioral.run_id is not None
        )
        # Only a candidate with no usable result pays for the second look, which also counts
        # rows that the reads above skip (input checks, other suites) as a known model.
        if not found and not inputs.model_has_rows(spark, warehouse, tables, request.model_id):
            evaluated = inputs.evaluated_models(spark, warehouse, tables)
            raise unknown_model_error(request.model_id, warehouse, tables, evaluated)
        validation = inputs.read_validation_summary(spark, warehouse, tables, request.data_date)
    except ComputationError as exc:
        _record_error(store, config, decision_id, request.model_id, champion, exc, decided_at)
        raise

    decision = decide(
        config, metrics, champion_metrics, behavioral, probe, champion_probe, validation
    )
    record = build_record(
        config, decision_id, request.model_id, decision, champion, metrics, behavioral, probe,
        validation, decided_at, champion_metrics,
    )
    register = decision.passed and request.register
    mlflow_run_id, version, tracking_error = _track(config, request, record, register)
    registered = register and version is not None
    if tracking_error is not None or (register and not registered):
        exit_code = EXIT_INFRASTRUCTURE
    elif decision.passed:
        exit_code = EXIT_PASSED
    else:
        exit_code = EXIT_FAILED
    if register and not registered:
        logger.error(
            "model %s passed gate %s but was not registered, so it does not become the champion",
            request.model_id,
            config.name,
        )

    # NOTE: if this write fails after a registration, MLflow keeps a new version and alias
    # that no decision row backs. The gate's champion then stays the previous model.
    store.write(
        DecisionRecord(
            decision_id=decision_id,
            gate=config.name,
            model_id=request.model_id,
            decision=decision.decision,
            exit_code=exit_code,
            registered=registered,
            no_baseline=decision.no_baseline,
            reason_codes=decision.reason_codes,
            comparisons_total=len(decision.comparisons),
            comparisons_failed=len(decision.failed),
            tolerance=config.tolerance,
            decided_at=decided_at,
            registered_model_name=config.registered_model_name,
            registered_version=version if registered else None,
            champion_model_id=champion.model_id if champion else None,
            champion_decision_id=champion.decision_id if champion else None,
            metrics_run_id=metrics.run_id,
            behavioral_suite=behavioral.suite if behavioral else None,
            behavioral_run_id=behavioral.run_id if behavioral else None,
            probe_run_id=probe.run_id if probe else None,
            data_validation=json.dumps(
                [run.to_record() for run in validation.runs], sort_keys=True
            ),
            mlflow_run_id=mlflow_run_id,
            tracking_error=tracking_error,
            config_file=config.source,
        ),
        decision.comparisons,
    )
    logger.info(
        "gate %s run %s: model %s %s (%d of %d comparisons failed)",
        config.name,
        decision_id,
        request.model_id,
        decision.decision,
        len(decision.failed),
        len(decision.comparisons),
    )
    alert = None
    if decision.decision != PASS:
        message = build_gate_alert(config.name, request.model_id, decision.failed,
                                   run_id=decision_id, no_baseline=decision.no_baseline)
        alert = send_and_record(spark, config.alerts, message, warehouse=request.warehouse,
                                database=config.tables.database)
    return GateOutcome(
        decision_id=decision_id,
        gate=config.name,
        model_id=request.model_id,
        decision=decision.decision,
        exit_code=exit_code,
        comparisons=decision.comparisons,
        reason_codes=decision.reason_codes,
        no_baseline=decision.no_baseline,
        champion_model_id=champion.model_id if champion else None,
        registered=registered,
        registered_version=version if registered else None,
        mlflow_run_id=mlflow_run_id,
        tracking_error=tracking_error,
        metrics_run_id=metrics.run_id,
        behavioral=behavioral,
        probe=probe,
        data_validation=tuple(run.to_record() for run in validation.runs),
        decided_at=decided_at,
        record=record,
        alert=alert,
    )


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    if math.isnan(value):
        return "NaN"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def format_comparisons(comparisons: tuple[Comparison, ...]) -> str:
    """Render every comparison as one line of a fixed-width table."""
    header = (
        "rule", "kind", "candidate", "champion", "floor", "max_regr", "limit", "difference",
        "result", "reason",
    )
    lines = [
        (
            comparison.rule,
            comparison.kind,
            _number(comparison.candidate_value),
            _number(comparison.champion_value),
            _number(comparison.floor),
            _number(comparison.max_regression),
            _number(comparison.upper_limit),
            _number(comparison.difference, signed=True),
            "pass" if comparison.passed else "FAIL",
            comparison.reason_code or "",
        )
        for comparison in comparisons
    ]
    widths = [max(len(row[index]) for row in [header, *lines]) for index in range(len(header))]
    rendered = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
        for row in [header, *lines]
    ]
    rendered.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(rendered)


def _holdout_lines(outcome: GateOutcome) -> list[str]:
    """Name the holdout windows the candidate's and the champion's metrics come from."""
    inputs = (outcome.record or {}).get("inputs") or {}

    def window(value: list[str | None] | None) -> str:
        # The stored end is exclusive: a 7-day window starting on the 11th ends on the 18th.
        return f"holdout {value[0]} to {value[1]} (end excluded)" if value else "no recorded holdout"

    lines = [f"  candidate metrics: run {inputs.get('metrics_run_id')}, {window(inputs.get('holdout'))}"]
    if outcome.champion_model_id:
        champion, candidate = inputs.get("champion_holdout"), inputs.get("holdout")
        differ = champion is not None and candidate is not None and champion != candidate
        lines.append(
            f"  champion metrics: run {inputs.get('champion_metrics_run_id')}, {window(champion)}"
            + (" (not the candidate's holdout, so the two come from different test sets)" if differ else "")
        )
    return lines


def format_outcome(outcome: GateOutcome) -> str:
    """Render the outcome for people: the table of comparisons, then the decision and why."""
    baseline = (
        f"champion {outcome.champion_model_id}"
        if outcome.champion_model_id
        else "no champion: floors only, no baseline"
    )
    lines = [
        f"gate {outcome.gate}, run {outcome.decision_id}: model {outcome.model_id} against {baseline}",
        *_holdout_lines(outcome),
        "",
        format_comparisons(outcome.comparisons),
        "",
    ]

    for comparison in outcome.failed:
        lines.append(f"  {comparison.rule}: {comparison.reason_code} ({comparison.detail or ''})")
    failed = len(outcome.failed)
    verdict = f"{outcome.decision}: {failed} of {len(outcome.comparisons)} comparisons failed"
    if outcome.reason_codes:
        verdict += f" ({', '.join(outcome.reason_codes)})"
    lines.append(verdict)

    if outcome.registered:
        lines.append(f"registered as version {outcome.registered_version}; it is the new champion")
    elif outcome.decision == PASS:
        lines.append("not registered, so it does not become the champion")
    # A tracking error is printed once, in the exit 3 line at the end.
    if outcome.mlflow_run_id and not outcome.tracking_error:
        lines.append(f"MLflow run {outcome.mlflow_run_id}")
    if outcome.alert is not None:
        alert = outcome.alert
        state = "sent" if alert.sent else f"not sent ({alert.reason}{': ' + alert.error if alert.error else ''})"
        lines.append(f"alert {state} after {alert.attempts} attempt(s)")
    if outcome.infrastructure_error is not None:
        lines.append(f"exit 3: {outcome.infrastructure_error}")
    elif outcome.decision == BLOCK:
        lines.append("exit 1: the model is blocked")
    return "\n".join(lines)
