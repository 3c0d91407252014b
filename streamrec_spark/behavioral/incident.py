"""Replay of the holiday incident: a better aggregate recall that the recency test must block.

Two models of the same type and settings are trained on the generated scenario: the usual one
on a window before the holiday, and the holiday one on a window whose last weeks fall in it.
Nothing but the training window differs, so a recency failure of the holiday model comes from
what it learned on that window. Both are tested on the same holdout window, the week after the
holiday model's training window. The replay is reproduced when the holiday model has the better
aggregate metric on that window, passes every MFT and INV test, and fails the recency test that
the usual model passes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from pyspark.sql import SparkSession

from streamrec_spark.behavioral.config import SuiteConfig
from streamrec_spark.behavioral.scenario import ScenarioConfig, generate_scenario
from streamrec_spark.behavioral.store import format_results, write_behavioral_results
from streamrec_spark.behavioral.suite import SuiteInputs, SuiteRun, default_holdout, run_suite
from streamrec_spark.behavioral.verdicts import TestResult
from streamrec_spark.errors import InvalidRequestError
from streamrec_spark.evaluation.config import METRIC_NAMES, EvaluationConfig, MetricSpec
from streamrec_spark.evaluation.config_reader import ConfigReader
from streamrec_spark.evaluation.store import write_model_metrics
from streamrec_spark.models import TrainingWindow, build_model
from streamrec_spark.models.config import MODEL_TYPES, ModelsConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplayConfig:
    scenario: ScenarioConfig
    model_type: str
    training_days: int
    usual_train_end_day: int
    holiday_train_end_day: int
    compare_metric: MetricSpec
    recency_test: str


@dataclass(frozen=True)
class ReplayedModel:
    """One trained model of the replay: its id, folder, compared metric value and suite run."""

    label: str
    model_id: str
    path: str
    value: float | None
    suite: SuiteRun


@dataclass(frozen=True)
class ReplayOutcome:
    """Both replayed models, how the replay differs from the incident, and the shared holdout.

    Both models were tested on the holdout window ``[holdout_start, holdout_end)``.
    """

    usual: ReplayedModel
    holiday: ReplayedModel
    problems: tuple[str, ...]
    holdout_start: datetime
    holdout_end: datetime

    @property
    def reproduced(self) -> bool:
        return not self.problems


def load_replay_config(path: str | Path) -> ReplayConfig:
    """Parse the replay YAML file; raise ConfigError listing every problem with file:line."""
    reader = ConfigReader(path)
    root = reader.root

    reader.check_keys(
        root,
        (
            "scenario",
            "model_type",
            "training_days",
            "usual_train_end_day",
            "holiday_train_end_day",
            "compare_metric",
            "recency_test",
        ),
        "",
    )

    node = reader.mapping(root, "scenario", "scenario", required=False)
    defaults = ScenarioConfig()
    fields = ScenarioConfig.__dataclass_fields__
    reader.check_keys(node, tuple(fields), "scenario")
    values = {}
    for key in node:
        if key not in fields:
            continue
        value = node[key]
        expected = type(getattr(defaults, key)) if getattr(defaults, key) is not None else int
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or isinstance(value, bool):
            reader.problem(node.where(key), f"'scenario.{key}' must be of type {expected.__name__}, found {value!r}")
            continue
        values[key] = value

    metric = reader.mapping(root, "compare_metric", "compare_metric", required=False)
    reader.check_keys(metric, ("metric", "k"), "compare_metric")
    config = ReplayConfig(
        scenario=replace(defaults, **values),
        model_type=reader.string(root, "model_type", "", default="recency_affinity", choices=MODEL_TYPES),
        training_days=reader.integer(root, "training_days", "", default=60, minimum=2),
        usual_train_end_day=reader.integer(root, "usual_train_end_day", "", minimum=1),
        holiday_train_end_day=reader.integer(root, "holiday_train_end_day", "", minimum=1),
        compare_metric=MetricSpec(
            reader.string(metric, "metric", "compare_metric", default="recall", choices=METRIC_NAMES),
            reader.integer(metric, "k", "compare_metric", default=20, minimum=1),
        ),
        recency_test=reader.string(root, "recency_test", "", default="dir_recency"),
    )
    reader.finish()
    return config


def incident_problems(
    usual_value: float | None,
    holiday_value: float | None,
    usual_results: tuple[TestResult, ...],
    holiday_results: tuple[TestResult, ...],
    recency_test: str,
) -> list[str]:
    """List how the replay differs from the incident; an empty list means it was reproduced."""
    problems = []
    if usual_value is None or holiday_value is None:
        problems.append("the compared metric is missing for one of the models")
    elif not holiday_value > usual_value:
        problems.append(f"the holiday model's metric {holiday_value:.4f} is not above the usual {usual_value:.4f}")
    for result in holiday_results:
        if result.test_type in ("MFT", "INV") and not result.passed:
            problems.append(f"the holiday model fails {result.name} ({result.reason})")
    holiday_recency = [result for result in holiday_results if result.name == recency_test]
    usual_recency = [result for result in usual_results if result.name == recency_test]
    if not holiday_recency or not usual_recency:
        problems.append(f"the suite has no test named {recency_test!r}")
    else:
        if holiday_recency[0].passed:
            problems.append(f"the holiday model passes {recency_test}")
        if not usual_recency[0].passed:
            problems.append(f"the usual model fails {recency_test} too")
    return problems


def replay_holiday(
    spark: SparkSession,
    config: ReplayConfig,
    suite: SuiteConfig,
    evaluation: EvaluationConfig,
    models: ModelsConfig,
    work_dir: str | Path,
    warehouse: str | Path | None = None,
    run_id: str = "holiday-replay",
    approve_usual: Callable[[ReplayedModel], None] | None = None,
) -> ReplayOutcome:
    """Generate the scenario, train both models, run the suite on each, and compare them.

    Both models are tested on the same holdout window: the ``suite.holdout_days`` days after
    the holiday model's training window, the week it would serve. The usual model recommends
    as of the same day, from the same user histories, so the compared metric comes from one
    test set. Models are saved under ``work_dir/<label>``. With ``warehouse``, metrics and
    behavioral results are written to the Delta tables under the model ids
    ``holiday-replay-usual`` and ``holiday-replay-holiday``.

    With ``approve_usual`` (which needs ``warehouse``), the usual model is first tested on its
    own holdout, the week after its training window, and its results are written under the run
    id ``<run_id>-usual-week``. ``approve_usual`` is then called with that model before any
    result of the shared holdout is written, so that it can be gated and become the champion
    it was before the holiday.
    """
    if approve_usual is not None and warehouse is None:
        raise InvalidRequestError("approve_usual needs a warehouse to write the usual week's results to")
    if config.compare_metric not in evaluation.metrics:
        evaluation = replace(evaluation, metrics=(*evaluation.metrics, config.compare_metric))
    for label, end_day in (("usual", config.usual_train_end_day), ("holiday", config.holiday_train_end_day)):
        if end_day >= config.scenario.days:
            raise InvalidRequestError(
                f"{label}_train_end_day {end_day} must be before the scenario's last day {config.scenario.days}"
            )
    scenario = generate_scenario(spark, config.scenario)
    events = scenario.events.cache()
    try:
        fitted = {}
        for label, end_day in (("usual", config.usual_train_end_day), ("holiday", config.holiday_train_end_day)):
            model = build_model(config.model_type, models)
            window = TrainingWindow(end=config.scenario.day(end_day), days=config.training_days)
            model.fit(events, window, scenario.items)
            fitted[label] = (model, str(model.save(Path(work_dir) / label)))

        def test_model(label: str, start: datetime, end: datetime, test_run_id: str) -> ReplayedModel:
            model, path = fitted[label]
            run = run_suite(model, SuiteInputs(events, start, end, scenario.items), suite, evaluation)
            value = run.metrics.value(config.compare_metric.name, config.compare_metric.k) if run.metrics else None
            model_id = f"holiday-replay-{label}"
            if warehouse is not None:
                if run.metrics is not None:
                    write_model_metrics(
                        spark, run.metrics.rows, model_id=model_id, run_id=test_run_id, warehouse=warehouse,
                        database=evaluation.database, table=evaluation.metrics_table,
                        holdout_start=start.date(), holdout_end=end.date(),
                    )
                write_behavioral_results(
                    spark, run.results, model_id=model_id, run_id=test_run_id, suite=suite.name,
                    warehouse=warehouse, database=suite.database, table=suite.results_table,
                )
            return ReplayedModel(label, model_id, path, value, run)

        if approve_usual is not None:
            usual_start, usual_end = default_holdout(fitted["usual"][0], suite)
            logger.info("holiday replay: the usual model is tested on its own holdout %s to %s",
                        usual_start, usual_end)
            approve_usual(test_model("usual", usual_start, usual_end, f"{run_id}-usual-week"))

        start, end = default_holdout(fitted["holiday"][0], suite)
        logger.info("holiday replay: both models are tested on the holdout window %s to %s", start, end)
        replayed = {label: test_model(label, start, end, run_id) for label in fitted}
    finally:
        events.unpersist()

    problems = incident_problems(
        replayed["usual"].value,
        replayed["holiday"].value,
        replayed["usual"].suite.results,
        replayed["holiday"].suite.results,
        config.recency_test,
    )
    for problem in problems:
        logger.warning("holiday replay differs from the incident: %s", problem)
    return ReplayOutcome(
        usual=replayed["usual"],
        holiday=replayed["holiday"],
        problems=tuple(problems),
        holdout_start=start,
        holdout_end=end,
    )


def format_replay(outcome: ReplayOutcome, config: ReplayConfig) -> str:
    """Render both models' compared metric and suite results, the shared window and the verdict."""
    metric = f"{config.compare_metric.name}@{config.compare_metric.k}"
    window = f"holdout {outcome.holdout_start:%Y-%m-%d} to {outcome.holdout_end:%Y-%m-%d} (end exclusive)"
    lines = [f"both models are tested on the same {window}, the week the holiday model would serve"]
    for replayed in (outcome.usual, outcome.holiday):
        value = "NULL" if replayed.value is None else f"{replayed.value:.4f}"
        lines.append(f"== {replayed.label} model ({replayed.model_id}, {replayed.path}): {metric} = {value}")
        lines.append(format_results(replayed.suite.results))
    if outcome.reproduced:
        lines.append(
            f"incident reproduced: on the {window}, the holiday model has the better {metric} "
            f"and is blocked by {config.recency_test}"
        )
    else:
        lines.append("incident NOT reproduced:\n  " + "\n  ".join(outcome.problems))
    return "\n".join(lines)
