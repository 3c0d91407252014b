"""Prepare a work folder in which the daily pipeline runs all its stages on generated data.

    python -m streamrec_spark.pipeline.sample --workdir sample-pipeline --date 2023-12-16

``scripts/run_sample_pipeline.sh`` runs this and then the daily pipeline for the date. The
preparation, in one Spark application:

1. generates the behavioral scenario without its holiday (300 users, 100 days from
   2023-10-01; every scenario day has events between 08:00 and 09:00 UTC);
2. converts the embedded KuaiRand feature tables into snapshot ``D`` of the two snapshot feeds;
3. writes a contract registry whose click-stream and features contracts extend the production
   contracts and lower only their volume floors to the scenario's size, and the pipeline YAML;
4. validates the click stream for every day the run for ``D`` reads before ``D`` (the training
   window and the feature window), in date order and each at 10:00 UTC of its day, as a daily
   schedule would have done.

Training then reads accepted days only, and the run for ``D`` validates ``D`` itself.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from streamrec_spark.errors import EXIT_FAILED, EXIT_INVALID, EXIT_PASSED, StreamrecError
from streamrec_spark.pipeline.config import REPO_ROOT

logger = logging.getLogger(__name__)

DEFAULT_DATE = date(2023, 12, 16)
# Scenario days end their events by about 09:00 UTC, so 10:00 keeps the click stream's
# 2-hour freshness limit.
AS_OF_TIME = time(10, 0)
CONTRACTS = REPO_ROOT / "conf" / "contracts"
ITEM_FEATURES_CSV = REPO_ROOT / "data" / "kuairand" / "video_features_basic_pure.csv.gz"
USER_FEATURES_CSV = REPO_ROOT / "data" / "kuairand" / "user_features_pure.csv.gz"

# The scenario has about 800 events of 180 users a day, and about 280 users per 7-day window.
CLICK_STREAM_OVERRIDES = """\
expectation_overrides:
  volume_row_count: {min: 100, max: 100000}
  volume_distinct_users: {min: 50, max: 10000}
  volume_by_platform: {min_reference_rows: 100}
"""
FEATURES_OVERRIDES = """\
expectation_overrides:
  volume_row_count: {min: 50, max: 100000}
"""


@dataclass(frozen=True)
class SampleSettings:
    """Settings of the sample run. Its 28-day training window is shorter than production's 60
    days, so fewer history days must be validated first."""

    workdir: Path
    partition_date: date = DEFAULT_DATE
    users: int = 300
    training_days: int = 28
    holdout_days: int = 7
    window_days: int = 7

    @property
    def config_path(self) -> Path:
        return self.workdir / "daily.yaml"

    def history(self) -> tuple[date, ...]:
        """Return the days before the partition date that the run reads, oldest first."""
        training_start = self.partition_date - timedelta(days=self.holdout_days - 1 + self.training_days)
        feature_start = self.partition_date - timedelta(days=self.window_days - 1)
        first = min(training_start, feature_start)
        return tuple(first + timedelta(days=offset) for offset in range((self.partition_date - first).days))


def as_of(day: date) -> datetime:
    """Return the instant a scenario day is validated at: 10:00 UTC of that day."""
    return datetime.combine(day, AS_OF_TIME, timezone.utc)


def write_registry(folder: Path, click_stream_overrides: str = CLICK_STREAM_OVERRIDES,
                   features_overrides: str = FEATURES_OVERRIDES) -> Path:
    """Write the sample's contract registry under ``folder`` and return its path.

    The overrides are ``expectation_overrides`` sections (YAML text) of the two contracts that
    extend the production click-stream and features contracts.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "click_stream.yaml").write_text(
        "# The production click-stream contract with volume floors for the generated scenario.\n"
        f"extends: {CONTRACTS / 'click_stream.yaml'}\n{click_stream_overrides}"
    )
    (folder / "engagement_features.yaml").write_text(
        "# The production features contract with a volume floor for the generated scenario.\n"
        f"extends: {CONTRACTS / 'engagement_features.yaml'}\n{features_overrides}"
    )
    registry = folder / "registry.yaml"
    registry.write_text(
        "contracts:\n"
        "  click_stream: click_stream.yaml\n"
        "  engagement_features: engagement_features.yaml\n"
        f"  item_metadata: {CONTRACTS / 'item_metadata.yaml'}\n"
        f"  user_profiles: {CONTRACTS / 'user_profiles.yaml'}\n"
    )
    return registry


def write_pipeline_config(settings: SampleSettings, registry: Path) -> Path:
    """Write the pipeline YAML of the sample run and return its path."""
    workdir = settings.workdir
    settings.config_path.write_text(
        "# The daily pipeline on generated data; written by streamrec_spark.pipeline.sample.\n"
        f"warehouse: {workdir / 'warehouse'}\n"
        "database: streamrec_sample\n"
        f"registry: {registry}\n"
        "feeds:\n"
        f"  click_stream: {{input: {workdir / 'scenario' / 'events'}}}\n"
        f"  item_metadata: {{input: {workdir / 'feeds' / 'item_metadata'}}}\n"
        f"  user_profiles: {{input: {workdir / 'feeds' / 'user_profiles'}}}\n"
        f"features: {{output: {workdir / 'features'}, window_days: {settings.window_days}}}\n"
        "model:\n"
        "  type: recency_affinity\n"
        f"  output: '{workdir / 'models'}/{{model_type}}/{{date}}'\n"
        f"  training_days: {settings.training_days}\n"
        f"  items: {workdir / 'scenario' / 'items'}\n"
        f"holdout_days: {settings.holdout_days}\n"
        "gate: {config: conf/gates/streamrec_v2_gate.yaml}\n"
        "spark_submit:\n"
        "  options: [--master, 'local[2]', --driver-memory, 1g, --conf, spark.ui.enabled=false,\n"
        "            --conf, spark.sql.shuffle.partitions=4]\n"
    )
    return settings.config_path


def prepare_sample(spark, settings: SampleSettings) -> list:
    """Write the scenario, the feeds, the registry and the YAML, then validate the history days.

    Returns the validation runs of the history days. Raises InvalidRequestError when the work
    folder is not empty, because a second run of the same date in one warehouse is rejected by
    the gate (the candidate would already be the champion).
    """
    from streamrec_spark.behavioral.scenario import ScenarioConfig, generate_scenario, write_scenario
    from streamrec_spark.contracts.registry import load_registry
    from streamrec_spark.errors import InvalidRequestError
    from streamrec_spark.feeds.item_metadata import convert_item_metadata
    from streamrec_spark.feeds.user_profiles import convert_user_profiles
    from streamrec_spark.validate_job import ValidationRequest, validate_partition

    workdir = settings.workdir
    if workdir.exists() and any(workdir.iterdir()):
        raise InvalidRequestError(f"the work folder {workdir} is not empty; remove it or pass another --workdir")

    scenario = replace(ScenarioConfig(), users=settings.users, holiday_start_day=None, holiday_end_day=None)
    last_day = scenario.start_date + timedelta(days=scenario.days - 1)
    history = settings.history()
    if history[0] < scenario.start_date or settings.partition_date > last_day:
        raise InvalidRequestError(
            f"--date {settings.partition_date} needs scenario days from {history[0]}; the scenario "
            f"covers {scenario.start_date} to {last_day}"
        )
    events, items = write_scenario(generate_scenario(spark, scenario), workdir / "scenario")
    convert_item_metadata(spark, str(ITEM_FEATURES_CSV), str(workdir / "feeds" / "item_metadata"),
                          settings.partition_date)
    convert_user_profiles(spark, str(USER_FEATURES_CSV), str(workdir / "feeds" / "user_profiles"),
                          settings.partition_date)
    registry = write_registry(workdir / "conf")
    write_pipeline_config(settings, registry)

    contract = load_registry(registry).contract("click_stream")
    runs = []
    for day in history:
        request = ValidationRequest(dataset="click_stream", partition_date=day, input_path=events,
                                    as_of=as_of(day), warehouse=str(workdir / "warehouse"),
                                    database="streamrec_sample")
        run = validate_partition(spark, contract, request)
        logger.info("validated click_stream %s: %s", day, run.record.status)
        runs.append(run)
    return runs


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {text!r}; use YYYY-MM-DD") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m streamrec_spark.pipeline.sample",
        description="Prepare generated data and a pipeline YAML for a full daily run.",
    )
    parser.add_argument("--workdir", required=True, type=Path, help="empty or missing folder to write to")
    parser.add_argument("--date", type=_date, default=DEFAULT_DATE, dest="partition_date",
                        help=f"partition date of the run, YYYY-MM-DD (default: {DEFAULT_DATE})")
    parser.add_argument("--master", default="local[2]", help="Spark master (default: local[2])")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return EXIT_INVALID if exc.code else EXIT_PASSED
    settings = SampleSettings(workdir=args.workdir.resolve(), partition_date=args.partition_date)
    # Spark's Python workers must run this interpreter, which has numpy and this package.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        from streamrec_spark.session import build_session

        spark = build_session("streamrec-sample-pipeline", master=args.master,
                              conf={"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4"})
        runs = prepare_sample(spark, settings)
    except StreamrecError as exc:
        print(f"streamrec sample: {exc}", file=sys.stderr)
        return exc.exit_code
    rejected = [run.record.partition_date for run in runs
                if run.record.status not in ("passed", "warned")]
    print(f"pipeline YAML: {settings.config_path}")
    print(f"validated {len(runs)} click-stream days before {settings.partition_date}; "
          f"not accepted: {', '.join(map(str, rejected)) or 'none'}")
    print(f"as-of for {settings.partition_date}: {as_of(settings.partition_date).isoformat()}")
    return EXIT_FAILED if rejected else EXIT_PASSED


if __name__ == "__main__":
    sys.exit(main())
