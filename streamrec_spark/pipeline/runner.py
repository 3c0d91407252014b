"""Run the daily pipeline's stages for one partition date, each as a subprocess.

    python -m streamrec_spark.pipeline.runner run --date 2024-05-01
    python -m streamrec_spark.pipeline.runner run --date 2024-05-01 --dry-run
    python -m streamrec_spark.pipeline.runner lock-path
    python -m streamrec_spark.pipeline.runner alert-feed --dataset click_stream --date 2024-05-01

The runner starts the stages in order and stops at the first one whose exit code stops the
pipeline (see :func:`streamrec_spark.pipeline.stages.continues_after`), exiting with that
stage's code. When a feed's validation stops the run, it first sends that feed's alert. It logs
each stage's name, command, exit code and duration. ``run_daily.sh`` calls it under a lock, and
Airflow runs the same commands as separate tasks.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from streamrec_spark.errors import (
    EXIT_INFRASTRUCTURE,
    EXIT_INVALID,
    EXIT_PASSED,
    InvalidRequestError,
    StreamrecError,
)
from streamrec_spark.pipeline.config import DEFAULT_PIPELINE_CONFIG, REPO_ROOT, PipelineConfig
from streamrec_spark.pipeline.stages import (
    CRITICAL_TIER,
    FEED_ALERT_STAGES,
    GATE_STAGE,
    STAGES,
    PipelineRequest,
    Stage,
    continues_after,
)

logger = logging.getLogger(__name__)

# Actions the runner records for a stage, in StageRun.action.
ACTION_CONTINUE = "continue"
ACTION_CONTINUE_AFTER_FEED_ERROR = "continue (standard feed)"
ACTION_CONTINUE_TO_GATE = "continue (the gate judges)"
ACTION_STOP = "stop"
ACTION_NOT_RUN = "dry run"
ACTION_ALERT = "alert recorded"
ACTION_ALERT_FAILED = "alert failed"


@dataclass(frozen=True)
class StageRun:
    """One stage of a pipeline run: its command, exit code, duration and what followed."""

    stage: str
    command: tuple[str, ...]
    exit_code: int | None
    seconds: float
    action: str


@dataclass(frozen=True)
class PipelineRun:
    """The stages that ran for one partition date, and the exit code of the whole run."""

    partition_date: date
    stages: tuple[StageRun, ...]
    exit_code: int
    stopped_at: str | None = None

    def ran(self, stage_name: str) -> bool:
        return any(run.stage == stage_name and run.exit_code is not None for run in self.stages)


# Stages that read the gate's YAML file.
GATE_CONFIG_STAGES = ("evaluate_champion", GATE_STAGE)


def feed_tiers(registry_path: str, stages: Sequence[Stage] = STAGES) -> dict[str, str]:
    """Return each validated feed's contract tier (``critical`` or ``standard``) from the registry.

    Raises ConfigError when the registry or one of its contracts does not load, and
    InvalidRequestError when a feed is not in the registry.
    """
    from streamrec_spark.contracts.registry import load_registry

    registry = load_registry(registry_path)
    return {
        stage.feed: registry.contract(stage.feed).sla_tier for stage in stages if stage.feed is not None
    }


def select_stages(stages: Sequence[Stage], first: str | None = None,
                  last: str | None = None) -> tuple[Stage, ...]:
    """Return the stages from ``first`` to ``last``, both included; None means the ends.

    Raises InvalidRequestError naming the known stages when a name is unknown or ``last``
    comes before ``first``.
    """
    names = [stage.name for stage in stages]
    for name in (first, last):
        if name is not None and name not in names:
            raise InvalidRequestError(f"unknown stage {name!r}; the stages are {', '.join(names)}")
    start = names.index(first) if first else 0
    end = names.index(last) if last else len(names) - 1
    if end < start:
        raise InvalidRequestError(f"stage {last!r} comes before {first!r}; the order is {', '.join(names)}")
    return tuple(stages[start:end + 1])


Launcher = Callable[[Sequence[str], str], int]


def _run_command(command: Sequence[str], cwd: str) -> int:
    """Run ``command`` with the runner's stdout and stderr and return its exit code.

    A command that cannot start, or that a signal ended (for example the kernel's OOM killer),
    counts as an infrastructure error, exit 3.
    """
    try:
        exit_code = subprocess.run(list(command), cwd=cwd, check=False).returncode
    except OSError as exc:
        logger.error("cannot start %s: %s", command[0], exc)
        return EXIT_INFRASTRUCTURE
    if exit_code < 0:
        logger.error("%s was ended by signal %d", command[0], -exit_code)
        return EXIT_INFRASTRUCTURE
    return exit_code


def run_pipeline(
    config: PipelineConfig,
    request: PipelineRequest,
    tiers: dict[str, str],
    stages: Sequence[Stage] = STAGES,
    dry_run: bool = False,
    launch: Launcher = _run_command,
) -> PipelineRun:
    """Run ``stages`` in order for the request's partition date and return what each one did.

    ``tiers`` maps each validated feed to its contract tier. A feed without an entry is treated
    as critical, so an unknown tier never lets the pipeline continue. With ``dry_run`` the
    commands are logged and not started. ``launch(command, cwd)`` runs one stage's command and
    returns its exit code, and the default starts it as a subprocess. The run's exit code is the
    code of the stage that stopped it. A failure left for the gate to judge is the run's exit
    code when the run ends before the gate, and otherwise the gate's code counts.
    """
    partition_date = request.partition_date
    runs: list[StageRun] = []
    left_for_gate = EXIT_PASSED
    logger.info("daily pipeline for %s: %d stages, configuration %s", partition_date, len(stages),
                config.source_file)
    for stage in stages:
        command = stage.command(config, request)
        logger.info("stage %s: %s", stage.name, shlex.join(command))
        if dry_run:
            runs.append(StageRun(stage.name, command, None, 0.0, ACTION_NOT_RUN))
            continue

        started = time.monotonic()
        exit_code = launch(command, config.root)
        seconds = time.monotonic() - started
        tier = tiers.get(stage.feed, CRITICAL_TIER) if stage.feed else None

        if not continues_after(stage, exit_code, tier):
            logger.error("stage %s: exit %d after %.1f s; the pipeline stops", stage.name, exit_code,
                         seconds)
            runs.append(StageRun(stage.name, command, exit_code, seconds, ACTION_STOP))
            if stage.feed in FEED_ALERT_STAGES and exit_code != EXIT_INVALID:
                runs.append(_send_feed_alert(FEED_ALERT_STAGES[stage.feed], config, request, launch))
            elif stage.feed in FEED_ALERT_STAGES:
                # Exit 2 means the job was invoked with invalid arguments, not that the feed failed.
                logger.error("stage %s: invalid invocation, so no feed alert is sent", stage.name)
            return PipelineRun(partition_date, tuple(runs), exit_code, stopped_at=stage.name)
        if exit_code != EXIT_PASSED and stage.judged_by_gate:
            logger.warning(
                "stage %s: exit %d after %.1f s; its failed results are recorded, and the gate "
                "blocks on them", stage.name, exit_code, seconds,
            )
            runs.append(StageRun(stage.name, command, exit_code, seconds, ACTION_CONTINUE_TO_GATE))
            left_for_gate = exit_code
            continue
        if exit_code != EXIT_PASSED:
            logger.warning(
                "stage %s: exit %d after %.1f s; feed %s is %s tier, so the pipeline continues "
                "without it", stage.name, exit_code, seconds, stage.feed, tier,
            )
            runs.append(StageRun(stage.name, command, exit_code, seconds, ACTION_CONTINUE_AFTER_FEED_ERROR))
            continue
        logger.info("stage %s: exit 0 after %.1f s", stage.name, seconds)
        runs.append(StageRun(stage.name, command, exit_code, seconds, ACTION_CONTINUE))
        if stage.name == GATE_STAGE:
            left_for_gate = EXIT_PASSED
    return PipelineRun(partition_date, tuple(runs), left_for_gate)


def _send_feed_alert(alert: Stage, config: PipelineConfig, request: PipelineRequest,
                     launch: Launcher) -> StageRun:
    """Run the feed alert job; its exit code is logged and never changes the run's."""
    command = alert.command(config, request)
    logger.info("stage %s: %s", alert.name, shlex.join(command))
    started = time.monotonic()
    exit_code = launch(command, config.root)
    seconds = time.monotonic() - started
    if exit_code == EXIT_PASSED:
        logger.info("stage %s: exit 0 after %.1f s", alert.name, seconds)
        return StageRun(alert.name, command, exit_code, seconds, ACTION_ALERT)
    logger.error("stage %s: exit %d after %.1f s; the feed alert was not sent or not recorded",
                 alert.name, exit_code, seconds)
    return StageRun(alert.name, command, exit_code, seconds, ACTION_ALERT_FAILED)


def send_feed_alert(config: PipelineConfig, dataset: str, partition_date: date) -> int:
    """Send and record the webhook message for a feed whose validation stopped the pipeline.

    The message lists the blocking checks that failed in the feed's latest validation run of
    ``partition_date``. The webhook settings are the ``alerts`` section of the gate file. The
    outcome (sent, no URL configured, rejected, retries exhausted) is recorded in the
    ``alerts`` table and printed. Returns 0 once the alert was handled, whether or not a
    webhook received it. Raises ComputationError when the validation tables cannot be read.
    """
    from streamrec_spark.alerts import load_feed_alert, send_and_record
    from streamrec_spark.gate.config import load_gate_config
    from streamrec_spark.session import build_session

    gate = load_gate_config(config.gate_config)
    spark = build_session(f"streamrec-feed-alert-{dataset}-{partition_date}")
    message = load_feed_alert(spark, config.warehouse, dataset, partition_date)
    result = send_and_record(spark, gate.alerts, message, warehouse=config.warehouse,
                             database=config.database)
    print(f"feed alert for {dataset} {partition_date}: {result.reason} "
          f"({result.attempts} attempt{'s' if result.attempts != 1 else ''})")
    return EXIT_PASSED


def format_run(run: PipelineRun) -> str:
    """Render a pipeline run as a table: one stage per line, then the outcome."""
    rows = [("stage", "exit", "seconds", "then")]
    for stage in run.stages:
        code = "-" if stage.exit_code is None else str(stage.exit_code)
        rows.append((stage.stage, code, f"{stage.seconds:.1f}", stage.action))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    if run.stopped_at:
        outcome = f"stopped at {run.stopped_at} with exit {run.exit_code}"
    else:
        outcome = f"finished with exit {run.exit_code}"
    return f"daily pipeline {run.partition_date}: {outcome}\n" + "\n".join(lines)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {text!r}; use YYYY-MM-DD") from None


def yesterday_utc(now: datetime | None = None) -> date:
    """Return yesterday's date in UTC: the partition a run on the morning after a day processes."""
    now = now or datetime.now(timezone.utc)
    return (now.astimezone(timezone.utc) - timedelta(days=1)).date()


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def log_level(text: str) -> str:
    """Return ``text`` as a logging level name, for argparse; raise for an unknown level."""
    level = text.upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"invalid level {text!r}; use one of {', '.join(LOG_LEVELS)}")
    return level


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_INVALID, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="python -m streamrec_spark.pipeline.runner",
                             description="Run the daily pipeline's stages for one partition date.")
    parser.add_argument("--log-level", type=log_level, default="INFO",
                        help=f"logging level: {', '.join(LOG_LEVELS)} (default INFO)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)

    run = commands.add_parser("run", help="run the stages for one date")
    run.add_argument("--date", type=_date, default=None, dest="partition_date",
                     help="partition date, YYYY-MM-DD (default: yesterday in UTC)")
    run.add_argument("--as-of", type=_instant, default=None,
                     help="ISO 8601 instant that the validation stages measure freshness against "
                          "(default: when each stage starts); set it to re-run a past date")
    run.add_argument("--from-stage", default=None, help="first stage to run (default: the first)")
    run.add_argument("--to-stage", default=None, help="last stage to run (default: the gate)")
    run.add_argument("--dry-run", action="store_true", help="log the commands without running them")

    lock = commands.add_parser("lock-path", help="print the lock file of the daily run")

    alert = commands.add_parser("alert-feed",
                                help="send the alert for a feed whose validation stopped the pipeline")
    alert.add_argument("--dataset", required=True, help="the feed, as named in the registry")
    alert.add_argument("--date", type=_date, required=True, dest="partition_date",
                       help="partition date, YYYY-MM-DD")
    for sub in (run, lock, alert):
        sub.add_argument("--config", default=str(DEFAULT_PIPELINE_CONFIG),
                         help="pipeline YAML (default: conf/pipeline/daily.yaml)")
        sub.add_argument("--root", default=str(REPO_ROOT),
                         help="repository root that relative paths are resolved against "
                              "(default: the one holding this package)")
    return parser


def _instant(text: str) -> str:
    """Check that ``text`` is an ISO 8601 instant and return it unchanged for the stages."""
    from streamrec_spark.validate_job import parse_as_of

    try:
        parse_as_of(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid --as-of {text!r}; use an ISO 8601 instant such as 2024-05-01T02:00:00Z"
        ) from None
    return text


def _command_run(args: argparse.Namespace, config: PipelineConfig) -> int:
    stages = select_stages(STAGES, args.from_stage, args.to_stage)
    tiers = feed_tiers(config.registry, stages)
    if any(stage.name in GATE_CONFIG_STAGES for stage in stages):
        from streamrec_spark.gate.config import load_gate_config

        # Checked before the first stage, so a broken gate file does not surface only after
        # validation, features, training and evaluation have run.
        load_gate_config(config.gate_config)
    request = PipelineRequest(args.partition_date or yesterday_utc(), args.as_of)
    run = run_pipeline(config, request, tiers, stages, dry_run=args.dry_run)
    print(format_run(run))
    return run.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    from streamrec_spark.pipeline.config import load_pipeline_config

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = load_pipeline_config(args.config, args.root)
        if args.command == "lock-path":
            print(config.lock_path())
            return EXIT_PASSED
        if args.command == "alert-feed":
            return send_feed_alert(config, args.dataset, args.partition_date)
        return _command_run(args, config)
    except StreamrecError as exc:
        print(f"streamrec pipeline: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
