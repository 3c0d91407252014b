"""Replays of three data incidents on the embedded KuaiRand sample, run through the product.

Each replay prepares a work folder (the converted sample and validated click-stream days),
injects the incident, and returns an :class:`IncidentOutcome` saying which check caught it, at
which stage, and with which numbers:

- ``formula-change``: a refactoring computes ``engagement_rate`` as
  ``completions / (views + clicks)``. Every value stays in [0, 1], so the declared output
  schema passes; the drift check of the features contract catches the shifted distribution.
- ``new-event-type``: the client team starts sending ``bookmark`` events. The click-stream
  contract rejects the partition, and the feature job then rejects it.
- ``platform-drop``: the android logging pipeline loses 60% of a day's events. The day's
  total and its platform PSI stay within bounds; the per-platform volume check fails it
  before the feature job, so nothing trains on it.

The replays share the work folder: the conversion and every accepted validation are reused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from streamrec_spark.contracts.loader import load_contract
from streamrec_spark.contracts.model import Contract
from streamrec_spark.contracts.registry import load_registry
from streamrec_spark.datasets.clickstream import write_click_stream
from streamrec_spark.datasets.kuairand import convert_kuairand
from streamrec_spark.demo import demo_as_of
from streamrec_spark.errors import (
    InputDataError,
    InvalidRequestError,
    PartitionNotAcceptedError,
    SchemaViolationError,
)
from streamrec_spark.features.boundary import enforce_schemas
from streamrec_spark.features.engagement import (
    BOUNDARY,
    INPUT_SCHEMA,
    OUTPUT_SCHEMA,
    assemble_features,
    compute_engagement_features,
    engagement_counts,
)
from streamrec_spark.features.job import (
    STAGE_FEATURES_TO_TRAINING,
    FeatureRequest,
    FeatureRun,
    read_training_features,
    run_feature_job,
)
from streamrec_spark.validate_job import ValidationRequest, ValidationRun, validate_partition
from streamrec_spark.validation.results import FAILED
from streamrec_spark.validation.store import ResultStore

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_LOG = REPO_ROOT / "data" / "kuairand" / "log_27k_standard_likehate_kcore15.tsv.gz"
CLICK_STREAM_REGISTRY = REPO_ROOT / "conf" / "demo" / "registry.yaml"
FEATURES_CONTRACT = REPO_ROOT / "conf" / "demo" / "engagement_features.yaml"
CLICK_STREAM = "click_stream"
SAMPLE_FIRST_DAY = date(2022, 4, 8)
SAMPLE_LAST_DAY = date(2022, 4, 21)
DEFAULT_DATABASE = "streamrec_replay"

STAGE_RAW_TO_VALIDATED = "raw feed -> validated partition"

# The new-event-type replay turns about one view in BOOKMARK_EVERY into an extra bookmark
# event, chosen by a hash of the event id so that every run injects the same rows.
BOOKMARK_EVERY = 10
NEW_EVENT_TYPE = "bookmark"
NEW_EVENT_TYPE_DAY = date(2022, 4, 14)
PLATFORM_DROP_DAY = date(2022, 4, 13)
DROPPED_PLATFORM = "android"
DROPPED_SHARE = 0.6


@dataclass(frozen=True)
class IncidentOutcome:
    """The verdict on one replayed incident: the stage and check that caught it, and the numbers."""

    incident: str
    title: str
    caught: bool
    stage: str
    check: str | None
    dataset: str
    partition_date: date
    reason_code: str | None
    exit_code: int
    message: str
    observed_value: float | None = None
    threshold: float | None = None
    offending_value: str | None = None
    offending_count: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # Plain-language facts that back the verdict, one line each.
    notes: tuple[str, ...] = ()
    # What the catch stopped, e.g. the partition from training or a model from the registry.
    blocked: str | None = None

    def describe(self) -> str:
        """Render the outcome as a few lines for people."""
        verdict = "CAUGHT" if self.caught else "NOT CAUGHT"
        lines = [f"{self.incident}: {self.title}",
                 f"  {verdict} at stage '{self.stage}' by {self.dataset}.{self.check} on "
                 f"{self.partition_date} ({self.reason_code}, exit {self.exit_code})"]
        if self.observed_value is not None:
            lines.append(f"  observed {self.observed_value:.4f}, threshold {self.threshold:g}")
        if self.offending_value is not None:
            lines.append(f"  offending value '{self.offending_value}' in {self.offending_count:,} rows")
        if self.blocked:
            lines.append(f"  blocked: {self.blocked}")
        lines.append(f"  {self.message}")
        lines.extend(f"  - {note}" for note in self.notes)
        return "\n".join(lines)


def format_summary(outcomes: Sequence[IncidentOutcome]) -> str:
    """Render one row per incident: whether it was caught, at which stage, by which check.

    Each column is as wide as its longest value, and the last one, what the catch blocked, is
    left unpadded, so no value runs into the next column.
    """
    header = ("incident", "caught", "stage", "check", "blocked")
    rows = [
        (outcome.incident, "yes" if outcome.caught else "NO", outcome.stage,
         f"{outcome.dataset}.{outcome.check}", outcome.blocked or "-")
        for outcome in outcomes
    ]
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header) - 1)]
    lines = []
    for row in (header, *rows):
        padded = [value.ljust(width) for value, width in zip(row, widths)]
        lines.append("  ".join([*padded, row[-1]]))
    return "\n".join(lines)


@dataclass(frozen=True)
class SampleWorkspace:
    """The folders a replay works in, all below ``root``."""

    root: Path
    database: str

    @property
    def click_stream(self) -> Path:
        return self.root / "click_stream"

    @property
    def features(self) -> Path:
        return self.root / "engagement_features"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    def store(self, spark: SparkSession) -> ResultStore:
        return ResultStore(spark, str(self.warehouse), self.database)


def click_stream_contract() -> Contract:
    """Load the click-stream contract as the demo applies it to the KuaiRand sample."""
    return load_registry(CLICK_STREAM_REGISTRY).contract(CLICK_STREAM)


def prepare_sample(spark: SparkSession, workdir: Path, database: str = DEFAULT_DATABASE) -> SampleWorkspace:
    """Convert the embedded KuaiRand log into ``workdir/click_stream`` unless done already."""
    workspace = SampleWorkspace(Path(workdir).resolve(), database)
    converted = list(workspace.click_stream.glob("event_date=*"))
    if converted:
        logger.info("reusing %d converted days in %s", len(converted), workspace.click_stream)
    else:
        convert_kuairand(spark, str(SAMPLE_LOG), str(workspace.click_stream))
    return workspace


def validate_days(
    spark: SparkSession, workspace: SampleWorkspace, contract: Contract, days: list[date]
) -> list[ValidationRun]:
    """Validate the converted click-stream days that have no accepted run yet, in order."""
    store = workspace.store(spark)
    accepted = store.accepted_runs(CLICK_STREAM, min(days), max(days))
    runs = []
    for day in days:
        if day in accepted:
            continue
        request = ValidationRequest(
            dataset=CLICK_STREAM, partition_date=day, input_path=str(workspace.click_stream),
            as_of=demo_as_of(day), warehouse=str(workspace.warehouse), database=workspace.database,
        )
        runs.append(validate_partition(spark, contract, request))
    return runs


def _feature_request(workspace: SampleWorkspace, day: date, window_days: int,
                     click_stream: Path | None = None) -> FeatureRequest:
    return FeatureRequest(
        feature_date=day,
        click_stream_path=str(click_stream or workspace.click_stream),
        features_path=str(workspace.features),
        warehouse=str(workspace.warehouse),
        as_of=demo_as_of(day),
        database=workspace.database,
        window_days=window_days,
    )


@enforce_schemas(BOUNDARY, input_schema=INPUT_SCHEMA, output_schema=OUTPUT_SCHEMA)
def compute_refactored_engagement(events: DataFrame, window_start: date, feature_date: date) -> DataFrame:
    """Compute features with the faulty refactoring: completions / (views + clicks)."""
    counts = engagement_counts(events)
    rate = F.col("completions") / (F.col("views") + F.col("clicks"))
    return assemble_features(counts, rate, window_start, feature_date)


def _psi(run: FeatureRun, expectation_id: str) -> float | None:
    try:
        return run.result(expectation_id).observed_value
    except KeyError:
        return None


def replay_formula_change(
    spark: SparkSession,
    workdir: Path,
    window_days: int = 3,
    reference_days: int = 3,
    database: str = DEFAULT_DATABASE,
) -> IncidentOutcome:
    """Replay the ``completions / (views + clicks)`` refactoring on the KuaiRand sample.

    Features are computed with the correct formula for ``reference_days`` feature dates (the
    drift reference), then for the next date twice: with the correct formula (the control)
    and with the refactored one, which replaces it. Each feature date reads a window of
    ``window_days`` validated click-stream days. Raises InputDataError when a reference day
    is not accepted, because the replay would then measure nothing, and InvalidRequestError
    when the days do not fit the sample.
    """
    workspace = prepare_sample(spark, workdir, database)
    first_feature_day = SAMPLE_FIRST_DAY + timedelta(days=window_days - 1)
    feature_days = [first_feature_day + timedelta(days=i) for i in range(reference_days + 1)]
    incident_day = feature_days[-1]
    if incident_day > SAMPLE_LAST_DAY:
        raise InvalidRequestError(
            f"window_days ({window_days}) + reference_days ({reference_days}) must fit the "
            f"sample's 14 days, but the incident day would be {incident_day}; use smaller values"
        )
    click_days = [SAMPLE_FIRST_DAY + timedelta(days=i)
                  for i in range((incident_day - SAMPLE_FIRST_DAY).days + 1)]
    validate_days(spark, workspace, click_stream_contract(), click_days)
    contract = load_contract(FEATURES_CONTRACT)

    reference_psi = {}
    for day in feature_days[:-1]:
        run = run_feature_job(spark, contract, _feature_request(workspace, day, window_days))
        if run.exit_code != 0:
            raise InputDataError(
                f"reference features of {day} were not accepted ({run.status} at '{run.stage}'), "
                "so the replay has no clean reference; see the runs table of the work folder",
                error_code="REPLAY_REFERENCE_REJECTED",
            )
        reference_psi[day.isoformat()] = _psi(run, "drift_engagement_rate")
    request = _feature_request(workspace, incident_day, window_days)
    control = run_feature_job(spark, contract, request)
    refactored = run_feature_job(spark, contract, request, compute=compute_refactored_engagement)

    drift = refactored.result("drift_engagement_rate")
    try:
        read_training_features(spark, str(workspace.features), incident_day, workspace.store(spark),
                               contract.name)
        training_rejected = False
    except PartitionNotAcceptedError:
        training_rejected = True
    output_checks = [r for r in refactored.results if r.expectation_id.startswith("range_")]
    details = {
        "control_psi": _psi(control, "drift_engagement_rate"),
        "reference_psi": reference_psi,
        "click_rate_psi": _psi(refactored, "drift_click_rate"),
        "reference_partitions": drift.details.get("reference_partitions", []),
        "bins": drift.details.get("bins"),
        "expected": drift.details.get("expected"),
        "actual": drift.details.get("actual"),
        "range_checks_passed": all(r.status != FAILED for r in output_checks),
        "training_input_rejected": training_rejected,
        "users": refactored.user_count,
        "window_days": window_days,
    }
    control_psi = details["control_psi"]
    if control_psi is None:
        control_note = "the correct formula on the same day has no PSI (no reference)"
    else:
        control_note = f"the correct formula on the same day: PSI {control_psi:.4f}"
    if details["range_checks_passed"]:
        range_note = "every rate stays in [0, 1], so the range checks and the output schema pass"
    else:
        range_note = "some rates left [0, 1], so the range checks failed too"
    if training_rejected:
        training_note = "training input rejected: the partition's latest run failed"
    else:
        training_note = "training input NOT rejected"
    notes = (control_note, range_note, training_note)
    return IncidentOutcome(
        incident="formula-change",
        title="engagement_rate refactored to completions / (views + clicks)",
        caught=drift.status == FAILED and refactored.exit_code != 0 and training_rejected,
        blocked=(f"the {incident_day} engagement features from training" if training_rejected
                 else None),
        stage=STAGE_FEATURES_TO_TRAINING,
        check=drift.expectation_id,
        dataset=contract.name,
        partition_date=incident_day,
        reason_code=drift.reason_code,
        exit_code=refactored.exit_code,
        message=drift.message,
        observed_value=drift.observed_value,
        threshold=drift.threshold_high,
        details=details,
        notes=notes,
    )


def add_bookmarks(events: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Return (events with bookmark events added, the added bookmark events).

    About one view in :data:`BOOKMARK_EVERY` gets a bookmark event at the same time, with
    its own event id.
    """
    chosen = (F.col("event_type") == F.lit("view")) & (
        F.pmod(F.xxhash64(F.col("event_id")), F.lit(BOOKMARK_EVERY)) == F.lit(0)
    )
    new_id = F.sha2(F.concat_ws("|", F.col("event_id"), F.lit(NEW_EVENT_TYPE)), 256)
    bookmarks = (
        events.where(chosen)
        .withColumn("event_type", F.lit(NEW_EVENT_TYPE))
        .withColumn("event_id", F.substring(new_id, 1, 32))
    )
    return events.unionByName(bookmarks), bookmarks


def replay_new_event_type(
    spark: SparkSession,
    workdir: Path,
    day: date = NEW_EVENT_TYPE_DAY,
    database: str = DEFAULT_DATABASE,
) -> IncidentOutcome:
    """Replay the client team's new ``bookmark`` event type on one day of the sample.

    The day's real partition gets bookmark events added and is written to
    ``workdir/click_stream_bookmark``. The validation job judges it with the click-stream
    contract, and then the feature job is run for that day. The outcome also reports what the
    feature function's input schema finds on the same rows, which is the last line of
    defence if validation were skipped.
    """
    workspace = prepare_sample(spark, workdir, database)
    tampered_root = workspace.root / "click_stream_bookmark"
    clean = spark.read.option("basePath", str(workspace.click_stream)).parquet(
        str(workspace.click_stream / f"event_date={day.isoformat()}")
    )
    tampered, bookmarks = add_bookmarks(clean)
    write_click_stream(tampered, str(tampered_root))
    injected = bookmarks.count()
    clean_rows = clean.count()

    contract = click_stream_contract()
    request = ValidationRequest(
        dataset=CLICK_STREAM, partition_date=day, input_path=str(tampered_root),
        as_of=demo_as_of(day), warehouse=str(workspace.warehouse), database=workspace.database,
    )
    run = validate_partition(spark, contract, request)
    result = next(r for r in run.results if r.expectation_id == "range_event_type")
    unexpected = {item["value"]: item["count"] for item in result.details.get("unexpected_values", [])}

    features = run_feature_job(spark, load_contract(FEATURES_CONTRACT),
                               _feature_request(workspace, day, 1, tampered_root))
    stored = spark.read.option("basePath", str(tampered_root)).parquet(
        str(tampered_root / f"event_date={day.isoformat()}")
    )
    try:
        compute_engagement_features(stored, window_start=day, feature_date=day)
        boundary_count = 0
    except SchemaViolationError as error:
        boundary_count = error.report.rule("event_type:in_set").failed_count

    details = {
        "injected_rows": injected,
        "unexpected_values": result.details.get("unexpected_values", []),
        "other_failed_checks": sorted(r.expectation_id for r in run.results
                                      if r.status == FAILED and r is not result),
        "features_stage": features.stage,
        "features_exit_code": features.exit_code,
        "features_rejected": isinstance(features.error, PartitionNotAcceptedError),
        "input_schema_failed_count": boundary_count,
        "validation_run_id": run.record.run_id,
    }
    rejected = "rejected" if details["features_rejected"] else "did NOT reject"
    notes = (
        f"{injected:,} bookmark events were added to the {clean_rows:,} real events of {day}",
        f"the feature job {rejected} the day at stage '{features.stage}' (exit {features.exit_code})",
        f"the feature function's input schema, run on the same partition, rejects "
        f"{boundary_count:,} rows",
    )
    return IncidentOutcome(
        incident="new-event-type",
        title=f"the client team adds the event type '{NEW_EVENT_TYPE}' to the click stream",
        caught=result.status == FAILED and run.exit_code != 0 and details["features_rejected"],
        blocked=(f"the {day} click-stream partition from the feature job and training"
                 if details["features_rejected"] else None),
        stage=STAGE_RAW_TO_VALIDATED,
        check=result.expectation_id,
        dataset=CLICK_STREAM,
        partition_date=day,
        reason_code=result.reason_code,
        exit_code=run.exit_code,
        message=result.message,
        offending_value=NEW_EVENT_TYPE if NEW_EVENT_TYPE in unexpected else None,
        offending_count=unexpected.get(NEW_EVENT_TYPE),
        details=details,
        notes=notes,
    )


def drop_platform_events(events: DataFrame, platform: str, share: float) -> DataFrame:
    """Drop about ``share`` of ``platform``'s events, chosen by a hash of the event id."""
    buckets = 1000
    dropped = (F.col("platform") == F.lit(platform)) & (
        F.pmod(F.xxhash64(F.col("event_id")), F.lit(buckets)) < F.lit(int(round(share * buckets)))
    )
    return events.where(~F.coalesce(dropped, F.lit(False)))


def replay_platform_drop(
    spark: SparkSession,
    workdir: Path,
    day: date = PLATFORM_DROP_DAY,
    database: str = DEFAULT_DATABASE,
    reference_days: int = 7,
) -> IncidentOutcome:
    """Replay a day on which the android logging pipeline lost 60% of its events.

    The ``reference_days`` days before ``day`` are validated as they are, so they form the
    reference. The
    day itself is written to ``workdir/click_stream_platform_drop`` without 60% of its android
    events and validated, then the feature job that feeds training is run for it. Platform is
    synthetic in the sample (see data/kuairand/README.md), so the replay shows the mechanism
    on real volumes, not a real outage.
    """
    workspace = prepare_sample(spark, workdir, database)
    contract = click_stream_contract()
    earlier = [day - timedelta(days=n) for n in range(reference_days, 0, -1)]
    validate_days(spark, workspace, contract, [d for d in earlier if d >= SAMPLE_FIRST_DAY])
    tampered_root = workspace.root / "click_stream_platform_drop"
    clean = spark.read.option("basePath", str(workspace.click_stream)).parquet(
        str(workspace.click_stream / f"event_date={day.isoformat()}")
    )
    write_click_stream(drop_platform_events(clean, DROPPED_PLATFORM, DROPPED_SHARE), str(tampered_root))
    before = {row["platform"]: row["count"] for row in clean.groupBy("platform").count().collect()}
    request = ValidationRequest(
        dataset=CLICK_STREAM, partition_date=day, input_path=str(tampered_root),
        as_of=demo_as_of(day), warehouse=str(workspace.warehouse), database=workspace.database,
    )
    run = validate_partition(spark, contract, request)
    by_id = {r.expectation_id: r for r in run.results}
    result = by_id["volume_by_platform"]
    stored = spark.read.option("basePath", str(tampered_root)).parquet(
        str(tampered_root / f"event_date={day.isoformat()}")
    )
    after = {row["platform"]: row["count"] for row in stored.groupBy("platform").count().collect()}
    features = run_feature_job(spark, load_contract(FEATURES_CONTRACT),
                               _feature_request(workspace, day, 1, tampered_root))
    others = {name: by_id[name] for name in ("volume_row_count", "drift_platform") if name in by_id}
    details = {
        "rows_before": before,
        "rows_after": after,
        "categories": result.details.get("categories", []),
        "other_checks": {name: {"status": r.status, "observed": r.observed_value}
                         for name, r in others.items()},
        "features_stage": features.stage,
        "features_exit_code": features.exit_code,
        "features_rejected": isinstance(features.error, PartitionNotAcceptedError),
        "validation_run_id": run.record.run_id,
    }
    rejected = "rejected" if details["features_rejected"] else "did NOT reject"
    notes = [
        f"{DROPPED_PLATFORM} rows went from {before.get(DROPPED_PLATFORM, 0):,} to "
        f"{after.get(DROPPED_PLATFORM, 0):,}; the day has {sum(after.values()):,} rows in all",
    ]
    for name, other in others.items():
        observed = "" if other.observed_value is None else f" ({other.observed_value:.4f})"
        notes.append(f"{name} {other.status}{observed}: on its own it would not have stopped the day"
                     if other.status != FAILED else f"{name} also failed{observed}")
    notes.append(f"the feature job feeding training {rejected} the day at stage "
                 f"'{features.stage}' (exit {features.exit_code}), so training never sees it")
    return IncidentOutcome(
        incident="platform-drop",
        title=f"the {DROPPED_PLATFORM} logging pipeline drops {DROPPED_SHARE:.0%} of its events",
        caught=result.status == FAILED and run.exit_code != 0 and details["features_rejected"],
        blocked=(f"the {day} click-stream partition from the feature job and training"
                 if details["features_rejected"] else None),
        stage=STAGE_RAW_TO_VALIDATED,
        check=result.expectation_id,
        dataset=CLICK_STREAM,
        partition_date=day,
        reason_code=result.reason_code,
        exit_code=run.exit_code,
        message=result.message,
        observed_value=result.observed_value,
        threshold=result.threshold_low,
        details=details,
        notes=tuple(notes),
    )


def replay_holiday_model(spark: SparkSession, workdir: Path, database: str = DEFAULT_DATABASE) -> IncidentOutcome:
    """Replay the holiday-trained model through probe and gate (see :mod:`streamrec_spark.model_incident`)."""
    from streamrec_spark.model_incident import replay_holiday_model as replay

    return replay(spark, workdir, database=database)


# Replay name -> function(spark, workdir, database=...) returning the outcome, in the order
# they are shown.
INCIDENTS: dict[str, Callable[..., IncidentOutcome]] = {
    "formula-change": replay_formula_change,
    "new-event-type": replay_new_event_type,
    "holiday-model": replay_holiday_model,
    "platform-drop": replay_platform_drop,
}
