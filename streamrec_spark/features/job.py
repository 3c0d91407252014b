"""The engagement feature job and the stage boundaries around it.

Three boundaries guard the features, each recorded in the validation result tables:

1. validated partition -> features: every click-stream day of the window must have an
   accepted validation run (passed or warned), otherwise nothing is computed;
2. the feature function's boundary: its input and output are checked against their declared
   schemas (``features.engagement`` runs);
3. features -> training input: the written partition is validated against the
   ``engagement_features`` contract (drift of the rates included), and
   :func:`read_training_features` serves only partitions whose latest run was accepted.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, DoubleType, LongType, StructField, StructType

from streamrec_spark import delta_tables
from streamrec_spark.contracts.model import Contract
from streamrec_spark.errors import (
    EXIT_FAILED,
    EXIT_PASSED,
    ComputationError,
    InputDataError,
    PartitionNotAcceptedError,
    SchemaViolationError,
    StreamrecError,
)
from streamrec_spark.features.boundary import check_boundary, recording_boundaries
from streamrec_spark.features.engagement import (
    BOUNDARY,
    OUTPUT_SCHEMA,
    compute_engagement_features,
)
from streamrec_spark.features.recording import DeltaBoundaryRecorder, boundary_dataset
from streamrec_spark.validation.results import (
    FAILED,
    PASSED,
    RUN_ERRORED,
    RUN_FAILED,
    ExpectationResult,
    MetricRow,
)
from streamrec_spark.validation.store import RUNS, ResultStore, RunRecord, utc_now
from streamrec_spark.validation.suite import run_suite
from streamrec_spark.validation.verdicts import pipeline_blocked

logger = logging.getLogger(__name__)

FEATURE_PARTITION = "feature_date"
CLICK_STREAM_PARTITION = "event_date"
PARTITION_NOT_ACCEPTED = "PARTITION_NOT_ACCEPTED"
TRAINING_BOUNDARY = "training_input"

# Stage names used in outcomes and messages.
STAGE_VALIDATED_TO_FEATURES = "validated partition -> features"
STAGE_FEATURE_FUNCTION = "feature function boundary"
STAGE_FEATURES_TO_TRAINING = "features -> training input"

FEATURES_SCHEMA = StructType(
    [
        StructField("user_id", LongType(), False),
        StructField("events", LongType(), False),
        StructField("views", LongType(), False),
        StructField("clicks", LongType(), False),
        StructField("completions", LongType(), False),
        StructField("engagement_rate", DoubleType(), False),
        StructField("click_rate", DoubleType(), False),
        StructField("window_start", DateType(), False),
        StructField("feature_date", DateType(), False),
    ]
)

FeatureFunction = Callable[..., DataFrame]


@dataclass(frozen=True)
class FeatureRequest:
    """One feature date to compute. ``as_of`` is timezone-aware; ``window_days`` counts the
    feature date itself, so 7 means the feature date and the 6 days before it."""

    feature_date: date
    click_stream_path: str
    features_path: str
    warehouse: str
    as_of: datetime
    database: str = "streamrec"
    window_days: int = 7
    click_stream_dataset: str = "click_stream"

    @property
    def window(self) -> tuple[date, ...]:
        first = self.feature_date - timedelta(days=self.window_days - 1)
        return tuple(first + timedelta(days=offset) for offset in range(self.window_days))


@dataclass(frozen=True)
class FeatureRun:
    """The outcome of one feature job run: where it stopped, and the results it recorded."""

    request: FeatureRequest
    exit_code: int
    status: str
    stage: str
    user_count: int | None = None
    results: list[ExpectationResult] = field(default_factory=list)
    error: StreamrecError | None = None
    run_id: str | None = None

    def result(self, expectation_id: str) -> ExpectationResult:
        for result in self.results:
            if result.expectation_id == expectation_id:
                return result
        raise KeyError(expectation_id)


def latest_statuses(store: ResultStore, dataset: str, dates: list[date]) -> dict[date, str | None]:
    """Return the status of the latest run of each date (None when it has no run)."""
    statuses: dict[date, str | None] = {d: None for d in dates}
    if not dates or not delta_tables.table_exists(store.spark, store.path(RUNS)):
        return statuses
    rows = (
        store.spark.read.format("delta").load(store.path(RUNS))
        .where((F.col("dataset") == F.lit(dataset)) & F.col("partition_date").isin(dates))
        .select("partition_date", "status", "finished_at")
        .collect()
    )
    newest: dict[date, datetime] = {}
    for row in rows:
        day = row["partition_date"]
        if day not in newest or row["finished_at"] > newest[day]:
            newest[day] = row["finished_at"]
            statuses[day] = row["status"]
    return statuses


def require_accepted(store: ResultStore, dataset: str, dates: tuple[date, ...]) -> None:
    """Raise PartitionNotAcceptedError unless every date's latest completed run of ``dataset``
    passed or only warned."""
    accepted = store.accepted_runs(dataset, min(dates), max(dates))
    rejected = [d for d in dates if d not in accepted]
    if not rejected:
        return
    statuses = latest_statuses(store, dataset, rejected)
    listing = ", ".join(
        f"{d} ({'never validated' if statuses[d] is None else 'latest run ' + statuses[d]})"
        for d in rejected
    )
    raise PartitionNotAcceptedError(
        f"{dataset} partitions not accepted by their contract: {listing}; validate them (or fix "
        "the upstream delivery and validate again) before computing from them",
        dataset=dataset,
        statuses=statuses,
    )


def read_click_stream(spark: SparkSession, root: str, dates: tuple[date, ...]) -> DataFrame:
    """Read the ``event_date=`` folders of ``dates`` under ``root`` (with the date column)."""
    paths = [f"{root.rstrip('/')}/{CLICK_STREAM_PARTITION}={d.isoformat()}" for d in dates]
    try:
        return spark.read.option("basePath", root).parquet(*paths)
    except AnalysisException as error:
        raise InputDataError(
            f"cannot read the click-stream partitions {paths[0]} .. {paths[-1]}: "
            f"{str(error).splitlines()[0]}; check --input",
            "INPUT_MISSING",
        ) from error


def _rejection_result(error: PartitionNotAcceptedError) -> ExpectationResult:
    return ExpectationResult(
        expectation_id="input:partitions_accepted",
        category="upstream",
        type="partitions_accepted",
        column=None,
        severity="error",
        status=FAILED,
        reason_code=PARTITION_NOT_ACCEPTED,
        message=str(error),
        failed_count=len(error.statuses),
        details={"dataset": error.dataset,
                 "statuses": {d.isoformat(): s for d, s in error.statuses.items()}},
    )


def _record_rejection(recorder: DeltaBoundaryRecorder, error: PartitionNotAcceptedError) -> None:
    store = recorder.store
    now = utc_now()
    record = RunRecord(
        run_id=uuid.uuid4().hex, dataset=boundary_dataset(BOUNDARY),
        partition_date=recorder.partition_date, contract_version=None, status=RUN_FAILED,
        exit_code=EXIT_FAILED, as_of=recorder.as_of, started_at=now, finished_at=now,
        input_path=recorder.input_path, code_version=recorder.code_version,
        spark_app_id=store.spark.sparkContext.applicationId, expectations_total=1,
        expectations_failed=1, expectations_errored=0, blocking_failures=1,
        error_code=error.error_code, error_message=str(error),
    )
    store.write_run(record, [_rejection_result(error)], [])


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:400] if lines else type(exc).__name__


def _record_errored(store: ResultStore, contract: Contract, request: FeatureRequest,
                    version: str | None, error: StreamrecError) -> None:
    """Append an errored run of the features dataset; log instead when the store is down."""
    now = utc_now()
    record = RunRecord(
        run_id=uuid.uuid4().hex, dataset=contract.name, partition_date=request.feature_date,
        contract_version=contract.version, status=RUN_ERRORED, exit_code=error.exit_code,
        as_of=request.as_of, started_at=now, finished_at=now, input_path=request.click_stream_path,
        code_version=version, spark_app_id=store.spark.sparkContext.applicationId,
        error_code=error.error_code, error_message=str(error),
    )
    try:
        store.append_run(record)
    except Exception as exc:  # The exit code still reports the failure.
        logger.error("could not record the errored features run %s in %s: %s", record.run_id,
                     store.warehouse, _first_line(exc))


def write_features(spark: SparkSession, features: DataFrame, path: str, feature_date: date) -> None:
    """Replace the ``feature_date`` partition of the Delta features table at ``path``."""
    delta_tables.ensure_table(spark, path, FEATURES_SCHEMA, (FEATURE_PARTITION,))
    delta_tables.replace_partition(
        features.select(*FEATURES_SCHEMA.fieldNames()), path, {FEATURE_PARTITION: feature_date},
        (FEATURE_PARTITION,),
    )


def read_feature_partition(spark: SparkSession, path: str, feature_date: date) -> DataFrame:
    return (
        spark.read.format("delta").load(path)
        .where(F.col(FEATURE_PARTITION) == F.lit(feature_date))
    )


def validate_features(
    spark: SparkSession,
    contract: Contract,
    request: FeatureRequest,
    store: ResultStore,
    code_version: str | None,
) -> tuple[RunRecord, list[ExpectationResult]]:
    """Validate the written feature partition against ``contract`` and record the run."""
    run_id = uuid.uuid4().hex
    started = utc_now()
    clock = time.monotonic()
    df = read_feature_partition(spark, request.features_path, request.feature_date)

    def references(current):
        return store.reference_profiles(contract.name, request.feature_date,
                                        contract.reference.window_days, current)

    outcome = run_suite(df, contract, request.feature_date, request.as_of, references)
    blocked = pipeline_blocked(contract, outcome.results)
    record = RunRecord(
        run_id=run_id, dataset=contract.name, partition_date=request.feature_date,
        contract_version=contract.version, status=outcome.status,
        exit_code=EXIT_FAILED if blocked else EXIT_PASSED, as_of=request.as_of,
        started_at=started, finished_at=utc_now(), input_path=request.features_path,
        code_version=code_version, spark_app_id=spark.sparkContext.applicationId,
        row_count=outcome.row_count, expectations_total=len(outcome.results),
        expectations_failed=sum(1 for r in outcome.results if r.status == FAILED),
        expectations_errored=sum(1 for r in outcome.results if r.status not in (PASSED, FAILED)),
        blocking_failures=sum(1 for r in outcome.results if r.blocking),
        reference_partitions=outcome.reference_partitions,
    )
    metric_rows = [*outcome.metric_rows, MetricRow("suite_seconds", value=time.monotonic() - clock)]
    store.write_run(record, outcome.results, metric_rows)
    return record, outcome.results


def run_feature_job(
    spark: SparkSession,
    contract: Contract,
    request: FeatureRequest,
    compute: FeatureFunction = compute_engagement_features,
) -> FeatureRun:
    """Compute, write and validate one feature date; every stage's checks are recorded.

    ``compute(events, window_start=..., feature_date=...)`` is the feature function, normally
    :func:`compute_engagement_features`. Returns the run with exit code 0 when the features
    contract accepted the partition. The exit code is 1 when a click-stream day of the window
    is not accepted, when the function's input or output violates its declared schema, or when
    a blocking check of ``contract`` failed. When an accepted partition's files cannot be read,
    or Spark or the result store fails, the run is recorded as errored with exit code 3.
    """
    from streamrec_spark.validate_job import code_version

    version = code_version()
    store = ResultStore(spark, request.warehouse, request.database)
    window = request.window
    recorder = DeltaBoundaryRecorder(store, request.feature_date, request.as_of,
                                     request.click_stream_path, version)
    logger.info("features for %s from %s %s .. %s", request.feature_date,
                request.click_stream_dataset, window[0], window[-1])
    try:
        require_accepted(store, request.click_stream_dataset, window)
    except PartitionNotAcceptedError as error:
        logger.error("features for %s not computed: %s", request.feature_date, error)
        _record_rejection(recorder, error)
        return FeatureRun(request, EXIT_FAILED, RUN_FAILED, STAGE_VALIDATED_TO_FEATURES, error=error)

    stage = STAGE_FEATURE_FUNCTION
    try:
        events = read_click_stream(spark, request.click_stream_path, window)
        with recording_boundaries(recorder):
            features = compute(events, window_start=window[0], feature_date=request.feature_date)
        stage = STAGE_FEATURES_TO_TRAINING
        write_features(spark, features, request.features_path, request.feature_date)
        record, results = validate_features(spark, contract, request, store, version)
    except SchemaViolationError as error:
        logger.error("features for %s not computed: %s", request.feature_date, error)
        return FeatureRun(request, EXIT_FAILED, RUN_FAILED, stage, error=error)
    except Exception as exc:  # Spark and Delta raise their own exception classes.
        if isinstance(exc, StreamrecError):
            error = exc
        else:
            error = ComputationError(
                f"Spark failed while computing features for {request.feature_date}: "
                f"{_first_line(exc)}"
            )
        logger.error("features for %s failed at stage '%s': %s", request.feature_date, stage, error)
        _record_errored(store, contract, request, version, error)
        return FeatureRun(request, error.exit_code, RUN_ERRORED, stage, error=error)
    logger.info("features for %s: %s users, contract run %s %s (exit %d)", request.feature_date,
                record.row_count, record.run_id, record.status, record.exit_code)
    return FeatureRun(request, record.exit_code, record.status, STAGE_FEATURES_TO_TRAINING,
                      user_count=record.row_count, results=results, run_id=record.run_id)


def read_training_features(
    spark: SparkSession,
    features_path: str,
    feature_date: date,
    store: ResultStore,
    dataset: str = "engagement_features",
) -> DataFrame:
    """Return the feature partition for training, after the features -> training boundary.

    Raises PartitionNotAcceptedError when the partition's latest ``dataset`` run did not pass
    or warn, and SchemaViolationError when the stored rows violate the declared output schema
    (both exit code 1). The check is recorded as a ``features.training_input`` run when a
    recorder is set (:func:`~streamrec_spark.features.boundary.recording_boundaries`).
    """
    require_accepted(store, dataset, (feature_date,))
    df = read_feature_partition(spark, features_path, feature_date)
    check_boundary(df, OUTPUT_SCHEMA, TRAINING_BOUNDARY)
    return df
