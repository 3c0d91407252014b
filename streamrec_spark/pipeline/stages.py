"""The daily pipeline's stages, in order, each with the job file that spark-submit runs.

A stage's command line is built in one place, :meth:`Stage.command`, from the
:class:`PipelineConfig` and the :class:`PipelineRequest` (partition date and as-of time), so
the runner, the cron wrapper and the Airflow DAG run the same commands.

Dates of one run for partition date ``D`` and ``holdout_days`` = ``H``:

- the feeds and the features are validated and computed for ``D``;
- the holdout window is the ``H`` days that end with ``D``, from ``D - H + 1`` to ``D``;
- the candidate model trains on the ``training_days`` that end the day before the holdout
  starts, so no holdout event is in its training window;
- the gate's champion is evaluated on the same holdout window, under its own model id and the
  run id ``daily-D-champion``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from streamrec_spark.errors import EXIT_FAILED, EXIT_INFRASTRUCTURE, EXIT_PASSED
from streamrec_spark.pipeline.config import PIPELINE_FEEDS, PipelineConfig

CRITICAL_TIER = "critical"
STANDARD_TIER = "standard"
GATE_STAGE = "apply_gate"


@dataclass(frozen=True)
class PipelineRequest:
    """One run of the pipeline: the partition date, and the instant freshness is measured against.

    ``as_of`` is an ISO 8601 instant passed to the validation and feature stages; None means
    the time each stage starts. Re-runs of an old date set it, because freshness measured
    against today fails every past partition.
    """

    partition_date: date
    as_of: str | None = None


@dataclass(frozen=True)
class Stage:
    """One step of the daily pipeline: a job file and the arguments it gets for a date.

    ``feed`` is the dataset a validation stage checks, and None for the other stages. With
    ``judged_by_gate``, exit 1 means the stage recorded failing results that the gate reads and
    blocks on, so the run goes on to the gate, which records the decision and sends the alert.
    """

    name: str
    job: str
    build_arguments: Callable[[PipelineConfig, PipelineRequest], tuple[str, ...]]
    feed: str | None = None
    judged_by_gate: bool = False

    def arguments(self, config: PipelineConfig, request: PipelineRequest) -> tuple[str, ...]:
        return tuple(self.build_arguments(config, request))

    def job_path(self, config: PipelineConfig) -> str:
        return str(Path(config.root) / self.job)

    def command(self, config: PipelineConfig, request: PipelineRequest) -> tuple[str, ...]:
        """Return the full command line: the spark-submit script, its options, the job, its arguments."""
        return (
            config.spark_submit,
            *config.spark_submit_options,
            self.job_path(config),
            *self.arguments(config, request),
        )


def holdout_start(config: PipelineConfig, partition_date: date) -> date:
    """Return the first day of the holdout window that ends with ``partition_date``."""
    return partition_date - timedelta(days=config.holdout_days - 1)


def model_id(config: PipelineConfig, partition_date: date) -> str:
    """Return the candidate's id, one per model type and partition date."""
    return f"{config.model_type}-{partition_date.isoformat()}"


def run_id(partition_date: date) -> str:
    """Return the run id recorded with one run's evaluation, behavioral and probe results."""
    return f"daily-{partition_date.isoformat()}"


def champion_run_id(partition_date: date) -> str:
    """Return the run id of the champion's evaluation on this date's holdout window."""
    return f"{run_id(partition_date)}-champion"


def continues_after(stage: Stage, exit_code: int, tier: str | None) -> bool:
    """Return whether the pipeline goes on after ``stage`` exited with ``exit_code``.

    Any non-zero exit stops the pipeline, with two exceptions. An input or infrastructure
    error (exit 3) of a feed whose contract tier is ``standard`` is logged and the pipeline
    continues without that feed. A feed of unknown tier (None) counts as critical. Exit 1 of a
    stage that is ``judged_by_gate`` continues to the gate, which blocks on the recorded
    failures. A standard feed's failed checks already exit 0 unless the contract marks the
    failed check ``blocks_pipeline: true``, and that exit 1 stops.
    """
    if exit_code == EXIT_PASSED:
        return True
    if stage.judged_by_gate and exit_code == EXIT_FAILED:
        return True
    return stage.feed is not None and tier == STANDARD_TIER and exit_code == EXIT_INFRASTRUCTURE


def _as_of(request: PipelineRequest) -> tuple[str, ...]:
    return ("--as-of", request.as_of) if request.as_of else ()


def _validate_arguments(dataset: str) -> Callable[[PipelineConfig, PipelineRequest], tuple[str, ...]]:
    def build(config: PipelineConfig, request: PipelineRequest) -> tuple[str, ...]:
        feed = config.feed(dataset)
        return (
            "--dataset", dataset,
            "--date", request.partition_date.isoformat(),
            "--input", feed.input,
            "--input-format", feed.input_format,
            "--registry", config.registry,
            "--warehouse", config.warehouse,
            "--database", config.database,
            *_as_of(request),
        )

    return build


def _features_arguments(config: PipelineConfig, request: PipelineRequest) -> tuple[str, ...]:
    return (
        "--date", request.partition_date.isoformat(),
        "--input", config.feed("click_stream").input,
        "--output", config.features_output,
        "--window-days", str(config.feature_window_days),
        "--registry", config.registry,
        "--warehouse", config.warehouse,
        "--database", config.database,
        *_as_of(request),
    )


def _items(option: str, config: PipelineConfig) -> tuple[str, ...]:
    return (option, config.model_items) if config.model_items else ()


def _train_arguments(config: PipelineConfig, request: PipelineRequest) -> tuple[str, ...]:
    partition_date = request.partition_date
    return (
        "--model-type", config.model_type,
        "--events", config.feed("click_stream").input,
        # --train-end is the first day after the training window.
        "--train-end", holdout_start(config, partition_date).isoformat(),
        "--training-days", str(config.training_days),
        "--output", config.model_folder(partition_date),
        # Only the window's click-stream days whose latest validation run accepted them.
        "--warehouse", config.warehouse,
        "--database", config.database,
        *_items("--items", config),
    )


def _evaluate_arguments(config: PipelineConfig, request: PipelineRequest) -> tuple[str, ...]:
    partition_date = request.partition_date
    return (
        "--model-id", model_id(config, partition_date),
        "--run-id", run_id(partition_date),
        "--model", config.model_folder(partition_date),
        "--events", config.feed("click_stream").input,
        "--holdout-start", holdout_start(config, partition_date).isoformat(),
        "--holdout-days", str(config.holdout_days),
        "--warehouse", config.warehouse,
        "--database", config.database,
        *_items("--catalog", config),
    )


def _champion_arguments(config: PipelineConfig, request: PipelineRequest) -> tuple[str, ...]:
    partition_date = request.partition_date
    return (
        "--config", config.gate_config,
        "--candidate-model-id", model_id(config, partition_date),
        "--run-id", champion_run_id(partition_date),
        "--events", config.feed("click_stream").input,
        "--holdout-start", holdout_start(config, partition_date).isoformat(),
        "--holdout-days", str(config.holdout_days),
        "--warehouse", config.warehouse,
        "--database", config.database,
        *_items("--catalog", config),
    )


def _behavioral_arguments(config: PipelineConfig, request: PipelineRequest) -> tuple[str, ...]:
    partition_date = request.partition_date
    return (
        "--model", config.model_folder(partition_date),
        "--model-id", model_id(config, partition_date),
        "--run-id", run_id(partition_date),
        "--events", config.feed("click_stream").input,
        "--holdout-start", holdout_start(config, partition_date).isoformat(),
        "--warehouse", config.warehouse,
        "--database", config.database,
        *_items("--items", config),
    )


def _probe_arguments(config: PipelineConfig, request: PipelineRequest) -> tuple[str, ...]:
    partition_date = request.partition_date
    return (
        "--model", config.model_folder(partition_date),
        "--model-id", model_id(config, partition_date),
        "--run-id", run_id(partition_date),
        "--events", config.feed("click_stream").input,
        "--warehouse", config.warehouse,
        "--database", config.database,
    )


def _gate_arguments(config: PipelineConfig, request: PipelineRequest) -> tuple[str, ...]:
    partition_date = request.partition_date
    return (
        "--config", config.gate_config,
        "--model-id", model_id(config, partition_date),
        "--model-dir", config.model_folder(partition_date),
        "--data-date", partition_date.isoformat(),
        "--warehouse", config.warehouse,
        "--database", config.database,
    )


VALIDATE_STAGES: tuple[Stage, ...] = tuple(
    Stage(f"validate_{dataset}", "jobs/validate_partition.py", _validate_arguments(dataset), feed=dataset)
    for dataset in PIPELINE_FEEDS
)

# Registration is not a stage of its own: the gate registers the model when it passes.
STAGES: tuple[Stage, ...] = (
    *VALIDATE_STAGES,
    Stage("compute_features", "jobs/compute_features.py", _features_arguments),
    Stage("train_model", "jobs/train_model.py", _train_arguments),
    Stage("evaluate_model", "jobs/evaluate_model.py", _evaluate_arguments),
    # The gate's champion on this date's holdout window, so that the gate compares the two on
    # one test set. Any non-zero exit stops the run: a gate that went on would compare the
    # candidate with the champion's metrics of another week.
    Stage("evaluate_champion", "jobs/evaluate_champion.py", _champion_arguments),
    # The gate requires every behavioral test to pass, so a failed test is its decision to make.
    # The gate does not read the evaluation's failed input checks, so those stop the run.
    Stage("run_behavioral", "jobs/run_behavioral.py", _behavioral_arguments, judged_by_gate=True),
    Stage("probe_model", "jobs/probe_model.py", _probe_arguments),
    Stage(GATE_STAGE, "jobs/apply_gate.py", _gate_arguments),
)



def _alert_arguments(dataset: str) -> Callable[[PipelineConfig, PipelineRequest], tuple[str, ...]]:
    def build(config: PipelineConfig, request: PipelineRequest) -> tuple[str, ...]:
        return (
            "--config", config.source_file,
            "--root", config.root,
            "--dataset", dataset,
            "--date", request.partition_date.isoformat(),
        )

    return build


# Run only after the feed's validation stopped the pipeline: send the webhook message that
# lists the failed checks, and record it in the alerts table.
FEED_ALERT_STAGES: dict[str, Stage] = {
    stage.feed: Stage(f"alert_{stage.feed}", "jobs/send_feed_alert.py", _alert_arguments(stage.feed),
                      feed=stage.feed)
    for stage in VALIDATE_STAGES
    if stage.feed is not None
}


def stage_named(name: str, stages: tuple[Stage, ...] = STAGES) -> Stage:
    """Return the stage, or the feed alert, called ``name``; raise KeyError for an unknown name."""
    for stage in (*stages, *FEED_ALERT_STAGES.values()):
        if stage.name == name:
            return stage
    raise KeyError(name)
