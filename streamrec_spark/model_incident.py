"""Replay of the holiday model incident through the serving probe and the validation gate.

The behavioral replay (:mod:`streamrec_spark.behavioral.incident`) trains a usual model and a
holiday model on the generated scenario, which is synthetic, and tests both on the same
holdout week. This module carries both models on to production's last steps. The usual model
is first tested on its own week, before the holiday, then probed for latency and size and
gated, and it becomes the champion when it passes. The holiday model is probed and gated next. The incident is caught when the gate
blocks the holiday model on the behavioral recency test, even though its aggregate recall is
the better one.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from pyspark.sql import SparkSession

from streamrec_spark.behavioral.config import load_suite_config
from streamrec_spark.behavioral.incident import ReplayedModel, load_replay_config, replay_holiday
from streamrec_spark.behavioral.scenario import generate_scenario, write_scenario
from streamrec_spark.evaluation.config import load_evaluation_config
from streamrec_spark.gate.config import load_gate_config
from streamrec_spark.gate.driver import GateOutcome, GateRequest, apply_gate
from streamrec_spark.gate.rules import BEHAVIORAL_TEST_FAILED
from streamrec_spark.incidents import IncidentOutcome
from streamrec_spark.models.config import load_models_config
from streamrec_spark.serving.probe import ProbeRequest, ProbeResult, ProbeSettings, run_probe

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
REPLAY_CONFIG = REPO_ROOT / "conf" / "behavioral" / "holiday_replay.yaml"
SUITE_CONFIG = REPO_ROOT / "conf" / "behavioral" / "suite.yaml"
EVALUATION_CONFIG = REPO_ROOT / "conf" / "evaluation" / "metrics.yaml"
MODELS_CONFIG = REPO_ROOT / "conf" / "evaluation" / "models.yaml"
GATE_CONFIG = REPO_ROOT / "conf" / "gates" / "streamrec_v2_gate.yaml"
STAGE_GATE = "evaluated model -> registry (gate)"
PROBE_REQUESTS = 300


def _probe(spark: SparkSession, model_id: str, path: str, events: str, warehouse: str,
           database: str) -> ProbeResult:
    request = ProbeRequest(
        model_path=path, model_id=model_id, run_id="holiday-replay", warehouse=warehouse,
        database=database, events_path=events, settings=ProbeSettings(requests=PROBE_REQUESTS),
    )
    return run_probe(spark, request)


def _gate_line(outcome: GateOutcome) -> str:
    failed = ", ".join(f"{c.rule} ({c.reason_code})" for c in outcome.failed) or "no rule failed"
    registered = f", registered as version {outcome.registered_version}" if outcome.registered else ""
    return f"gate {outcome.gate} on {outcome.model_id}: {outcome.decision}{registered}; {failed}"


def replay_holiday_model(
    spark: SparkSession,
    workdir: Path,
    database: str = "streamrec_replay",
    gate_config: str | Path = GATE_CONFIG,
) -> IncidentOutcome:
    """Replay the holiday model end to end and report whether the gate blocked it.

    Work files (the scenario's events and items, both saved models, the Delta tables and the
    local MLflow store) go under ``workdir/holiday``. The usual model is gated first, on its
    own week before the holiday, and becomes the champion when it passes. The holiday model is
    then gated against it, both models' metrics coming from the shared holiday week.
    """
    root = Path(workdir).resolve() / "holiday"
    warehouse = str(root / "warehouse")
    config = load_replay_config(REPLAY_CONFIG)
    suite = load_suite_config(SUITE_CONFIG)
    evaluation = replace(load_evaluation_config(EVALUATION_CONFIG), database=database)
    suite = replace(suite, database=database)
    models = load_models_config(MODELS_CONFIG)
    gate = load_gate_config(gate_config)
    # The replay never validates the scenario's events against the click-stream contract, so
    # its gate judges the model alone. The android-drop replay covers the data-validation stop.
    gate = replace(gate, tables=replace(gate.tables, database=database), data_validation=None)

    events_path, _ = write_scenario(generate_scenario(spark, config.scenario), str(root / "scenario"))
    notes: list[str] = []
    usual_gates: list[GateOutcome] = []

    def probe(model: ReplayedModel) -> None:
        result = _probe(spark, model.model_id, model.path, str(events_path), warehouse, database)
        latency = result.latency
        p99 = f"p99 {latency.p99_ms:.2f} ms" if latency else f"probe {result.status} ({result.reason})"
        notes.append(f"{model.label} model probe: {p99}, {result.size_mb or 0:.3f} MB")

    def approve_usual(model: ReplayedModel) -> None:
        # Before the holiday the usual model was the champion: it is probed and gated on its
        # own week, and registered when it passes.
        value = "NULL" if model.value is None else f"{model.value:.4f}"
        notes.append(f"usual model on its own week: {config.compare_metric.name}@"
                     f"{config.compare_metric.k} {value}")
        probe(model)
        outcome = apply_gate(spark, GateRequest(config=gate, model_id=model.model_id,
                                                warehouse=warehouse, model_dir=model.path))
        usual_gates.append(outcome)
        notes.append(_gate_line(outcome))

    replayed = replay_holiday(spark, config, suite, evaluation, models, root / "models", warehouse,
                              approve_usual=approve_usual)
    usual, holiday = replayed.usual, replayed.holiday
    notes.append(
        f"both models were tested on the holdout {replayed.holdout_start:%Y-%m-%d} to "
        f"{replayed.holdout_end:%Y-%m-%d}: {config.compare_metric.name}@{config.compare_metric.k} "
        f"usual {usual.value:.4f}, holiday {holiday.value:.4f}"
    )
    probe(holiday)
    usual_gate = usual_gates[0] if usual_gates else None
    holiday_gate = apply_gate(spark, GateRequest(config=gate, model_id=holiday.model_id,
                                                 warehouse=warehouse, model_dir=holiday.path))
    notes.append(_gate_line(holiday_gate))

    recency_rule = f"behavioral:{config.recency_test}"
    failed = {c.rule: c for c in holiday_gate.failed}
    recency = failed.get(recency_rule)
    caught = holiday_gate.decision != "PASS" and recency is not None and \
        recency.reason_code == BEHAVIORAL_TEST_FAILED
    details = {
        "holdout_start": replayed.holdout_start.date().isoformat(),
        "holdout_end": replayed.holdout_end.date().isoformat(),
        "usual_value": usual.value,
        "holiday_value": holiday.value,
        "usual_decision": usual_gate.decision if usual_gate else None,
        "usual_failed_rules": {c.rule: c.reason_code for c in usual_gate.failed} if usual_gate else None,
        "holiday_decision": holiday_gate.decision,
        "holiday_failed_rules": {rule: c.reason_code for rule, c in failed.items()},
        "holiday_registered": holiday_gate.registered,
        "champion": holiday_gate.champion_model_id,
        "alert_sent": bool(holiday_gate.alert and holiday_gate.alert.sent),
        "replay_problems": list(replayed.problems),
    }
    passed = len(holiday_gate.comparisons) - len(holiday_gate.failed)
    message = (f"the gate blocked {holiday.model_id} on {recency_rule} ({recency.detail}); "
               f"{passed} of {len(holiday_gate.comparisons)} comparisons passed"
               if caught else f"the gate decided {holiday_gate.decision} for {holiday.model_id}")
    return IncidentOutcome(
        incident="holiday-model",
        title="a model trained over a holiday window recommends stale content",
        caught=caught,
        stage=STAGE_GATE,
        check=recency_rule,
        dataset="model",
        partition_date=replayed.holdout_start.date(),
        reason_code=recency.reason_code if recency else None,
        exit_code=holiday_gate.exit_code,
        message=message,
        details=details,
        notes=tuple(notes),
        blocked=(f"registration of {holiday.model_id}; the champion stays "
                 f"{holiday_gate.champion_model_id or 'unset'}" if caught else None),
    )
