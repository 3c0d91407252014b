"""The partition validation job: read a partition, run its contract's suite, record results."""

from __future__ import annotations

import logging
import re
import subprocess
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path

from py4j.protocol import Py4JJavaError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from streamrec_spark.contracts.model import Contract
from streamrec_spark.errors import (
    EXIT_FAILED,
    EXIT_PASSED,
    ComputationError,
    InputDataError,
    InvalidRequestError,
    StreamrecError,
    root_cause,
)
from streamrec_spark.validation.results import RUN_ERRORED, ExpectationResult, MetricRow
from streamrec_spark.validation.store import ResultStore, RunRecord, utc_now
from streamrec_spark.validation.suite import SuiteOutcome, run_suite
from streamrec_spark.validation.verdicts import format_count, pipeline_blocked

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
INPUT_FORMATS = ("parquet", "delta")


@dataclass(frozen=True)
class ValidationRequest:
    """A partition to validate and the place to record the run. ``as_of`` is timezone-aware."""

    dataset: str
    partition_date: date
    input_path: str
    as_of: datetime
    warehouse: str
    database: str = "streamrec"
    reference_date: date | None = None
    input_format: str = "parquet"

    def __post_init__(self) -> None:
        # A partition compared with itself or a later day always looks unchanged, which would
        # let a re-run turn a failed day into a passed one. Checked here, so the CLI rejects it
        # before Spark starts.
        if self.reference_date is not None and self.reference_date >= self.partition_date:
            raise InvalidRequestError(
                f"--reference-date {self.reference_date} is not before --date "
                f"{self.partition_date}; name a validated day before {self.partition_date}, or "
                "leave out --reference-date to use the trailing window"
            )


@dataclass(frozen=True)
class ValidationRun:
    """The outcome of one job run, as recorded in the ``runs`` table."""

    record: RunRecord
    contract: Contract
    results: list[ExpectationResult] = field(default_factory=list)
    metric_rows: list[MetricRow] = field(default_factory=list)
    outcome: SuiteOutcome | None = None

    @property
    def exit_code(self) -> int:
        return self.record.exit_code


def code_version() -> str:
    """The package version, plus the git commit when the code runs from a checkout."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        text = version("streamrec-spark")
    except PackageNotFoundError:
        text = "unknown"
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{text}+{commit}" if commit else text


def _hadoop_fs(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    # A relative path such as "events" has no parent until it is qualified, and Path.suffix
    # fails on a path without one.
    return fs.makeQualified(hadoop_path), fs


def _data_files(spark: SparkSession, path: str) -> list[str]:
    """Names of the non-hidden files below ``path`` (Spark skips names starting with _ or .)."""
    hadoop_path, fs = _hadoop_fs(spark, path)
    found = []
    iterator = fs.listFiles(hadoop_path, True)
    while iterator.hasNext():
        name = iterator.next().getPath().getName()
        if not name.startswith(("_", ".")):
            found.append(name)
    return found


def _unreadable_parquet_files(spark: SparkSession, path: str, limit: int = 2000) -> list[str]:
    """Return the Parquet files under ``path`` whose footer cannot be read, checked one by one.

    Runs on the driver and reads only footers, and only after a scan failed: Spark's error for
    a corrupt footer does not name the file. At most ``limit`` files are opened.
    """
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    root, fs = _hadoop_fs(spark, path)
    bad: list[str] = []
    iterator = fs.listFiles(root, True)
    opened = 0
    while iterator.hasNext() and opened < limit:
        file_path = iterator.next().getPath()
        if file_path.getName().startswith(("_", ".")):
            continue
        opened += 1
        try:
            input_file = jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(file_path, conf)
            jvm.org.apache.parquet.hadoop.ParquetFileReader.open(input_file).close()
        except Exception:  # Py4J wraps the reader's exception; the file is what matters here.
            bad.append(file_path.toString())
    return bad


def _name_bad_files(spark: SparkSession, contract: Contract, request: ValidationRequest) -> str:
    """Return "N unreadable files: a, b, c " for a Parquet input, or "" when none is found."""
    if request.input_format != "parquet":
        return ""
    path, _ = resolve_partition_path(spark, contract, request.input_path, request.partition_date)
    bad = _unreadable_parquet_files(spark, path)
    if not bad:
        return ""
    more = " ..." if len(bad) > 3 else ""
    return f"{format_count(len(bad), 'unreadable file')}: {', '.join(bad[:3])}{more} "


def _root_cause(exc: BaseException) -> str:
    """Return the last ``Caused by:`` line of a Java error, else its first line."""
    causes = re.findall(r"^Caused by: (.+)$", str(exc), re.MULTILINE)
    return causes[-1].strip()[:300] if causes else _first_line(exc)


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, Py4JJavaError):
        # Its own first line only names the JVM call, e.g. "An error occurred while calling
        # o64.load.".
        return root_cause(exc)
    text = str(getattr(exc, "desc", None) or exc).strip()
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line[:400]
    return type(exc).__name__


def resolve_partition_path(spark: SparkSession, contract: Contract, input_path: str,
                           partition_date: date) -> tuple[str, str | None]:
    """Return (path to read, basePath option) for the partition.

    ``input_path`` may be the partition's own folder or a root that contains Hive-style
    ``<partition column>=<date>`` folders. For a Hive-style leaf the parent becomes basePath,
    so Spark adds the partition column to the rows.
    """
    stripped = input_path.rstrip("/")
    hadoop_path, fs = _hadoop_fs(spark, stripped)
    if not fs.exists(hadoop_path):
        raise InputDataError(
            f"input path {input_path} does not exist; check --input, or whether the upstream "
            "delivery for this date has landed",
            "INPUT_MISSING",
        )
    leaf = f"{stripped}/{contract.partition_column}={partition_date.isoformat()}"
    leaf_path, leaf_fs = _hadoop_fs(spark, leaf)
    if leaf_fs.exists(leaf_path):
        return leaf, stripped
    name = stripped.rsplit("/", 1)[-1]
    if re.fullmatch(rf"{re.escape(contract.partition_column)}=[^/]+", name):
        return stripped, stripped.rsplit("/", 1)[0]
    prefix = f"{contract.partition_column}="
    if any(status.getPath().getName().startswith(prefix) for status in fs.listStatus(hadoop_path)):
        # A root of date folders without the requested one: the day has not landed. Reading the
        # root instead would validate every other day's rows as this date.
        raise InputDataError(
            f"input root {input_path} has no folder {prefix}{partition_date.isoformat()}; check "
            "--date, or whether the upstream delivery for this date has landed",
            "INPUT_MISSING",
        )
    return stripped, None


def read_partition(spark: SparkSession, contract: Contract, request: ValidationRequest) -> DataFrame:
    """Open the partition lazily; raise InputDataError for a missing, empty or unreadable one.

    A Delta input is the table's root: the partition is selected by filtering the partition
    column, because a ``<column>=<date>`` folder of a Delta table is not a table itself.
    """
    if request.input_format == "delta":
        return _read_delta_partition(spark, contract, request)
    if request.input_format == "parquet" and _is_delta_root(spark, request.input_path):
        # Read as plain Parquet, a Delta table's folder also yields the files that later
        # commits removed, so rows would be counted twice.
        raise InvalidRequestError(
            f"input path {request.input_path} is a Delta table or one of its partition folders; "
            "pass the table's root with --input-format delta"
        )
    path, base = resolve_partition_path(spark, contract, request.input_path, request.partition_date)
    if request.input_format == "parquet" and not _data_files(spark, path):
        raise InputDataError(
            f"input path {path} contains no Parquet files; check --input, or re-run the upstream "
            "export for this date",
            "INPUT_EMPTY",
        )
    reader = spark.read.format(request.input_format)
    if base is not None and request.input_format == "parquet":
        reader = reader.option("basePath", base)
    try:
        return reader.load(path)
    except Exception as exc:  # Spark raises its own exception classes for unreadable files.
        # Spark's error for a corrupt footer does not name the file, so the footers are read one
        # by one to find it.
        named = _name_bad_files(spark, contract, request)
        cause = f"{named}({_first_line(exc)})" if named else _first_line(exc)
        raise InputDataError(
            f"cannot read {request.input_format} at {path}: {cause}; check that the files are "
            "complete and in that format",
            "INPUT_UNREADABLE",
        ) from exc


def _is_delta_root(spark: SparkSession, input_path: str) -> bool:
    """Return whether ``input_path`` or its parent folder (a partition folder) contains a Delta log."""
    hadoop_path, fs = _hadoop_fs(spark, input_path)
    for folder in (hadoop_path, hadoop_path.getParent()):
        if folder is not None and fs.exists(folder.suffix("/_delta_log")):
            return True
    return False


def _read_delta_partition(spark: SparkSession, contract: Contract, request: ValidationRequest) -> DataFrame:
    from delta.tables import DeltaTable

    hadoop_path, fs = _hadoop_fs(spark, request.input_path)
    if not fs.exists(hadoop_path):
        raise InputDataError(
            f"input path {request.input_path} does not exist; check --input, or whether the "
            "upstream delivery for this date has landed", "INPUT_MISSING",
        )
    if not DeltaTable.isDeltaTable(spark, request.input_path):
        raise InputDataError(
            f"input path {request.input_path} is not a Delta table; pass the table's root folder "
            "or use --input-format parquet", "INPUT_UNREADABLE",
        )
    df = spark.read.format("delta").load(request.input_path)
    column = contract.partition_column
    if column in df.columns:
        df = df.where(F.col(f"`{column}`") == F.lit(request.partition_date))
    return df


def _count_jobs(spark: SparkSession, group: str) -> int:
    return len(spark.sparkContext.statusTracker().getJobIdsForGroup(group))


def validate_partition(spark: SparkSession, contract: Contract, request: ValidationRequest) -> ValidationRun:
    """Validate one partition and record the run, as errored when its input or Spark fails.

    Returns the run with its exit code:

    - 0: passed, only warnings, or failures on a feed whose contract does not block the
      pipeline;
    - 1: a blocking expectation failed or errored;
    - 3: the input could not be read or Spark failed. The run is recorded as errored when the
      result store is reachable.

    Raises InvalidRequestError (exit code 2) for a request that cannot run, such as a
    ``--reference-date`` with no completed run or a Delta table read as Parquet. Such a request
    is rejected before any scan and leaves no row in ``runs``. Raises ComputationError (exit
    code 3) when the results cannot be written, after recording the run as errored.

    Existing results of the partition are replaced only by a complete run.
    """
    run_id = uuid.uuid4().hex
    started = utc_now()
    store = ResultStore(spark, request.warehouse, request.database)
    group = f"streamrec-validate-{run_id}"
    spark.sparkContext.setJobGroup(group, f"validate {request.dataset} {request.partition_date}")
    base = dict(
        run_id=run_id, dataset=request.dataset, partition_date=request.partition_date,
        contract_version=contract.version, as_of=request.as_of, started_at=started,
        input_path=request.input_path, code_version=code_version(),
        spark_app_id=spark.sparkContext.applicationId,
    )
    logger.info("run %s: validating %s %s from %s (as of %s)", run_id, request.dataset,
                request.partition_date, request.input_path, request.as_of.isoformat())
    clock = time.monotonic()
    try:
        _check_reference_run(store, request)
        df = read_partition(spark, contract, request)
        outcome = _run_suite(spark, store, contract, request, df)
    except InvalidRequestError as exc:
        # Exit code 2 means that nothing ran, so an invalid request leaves no row in ``runs``.
        logger.error("run %s: rejected, nothing recorded: %s", run_id, exc)
        raise
    except StreamrecError as exc:
        return _errored_run(spark, store, contract, base, group, exc)
    except Exception as exc:  # Hadoop or Spark failed outside the suite, e.g. listing the input.
        logger.debug("run %s: unexpected failure", run_id, exc_info=True)
        error = ComputationError(f"Spark failed while validating: {_first_line(exc)}")
        return _errored_run(spark, store, contract, base, group, error)

    jobs = _count_jobs(spark, group)
    elapsed = time.monotonic() - clock
    logger.info("run %s: %s validated with %s in %.1f s", run_id,
                format_count(outcome.row_count, "row"), format_count(jobs, "Spark job"), elapsed)
    failed = sum(1 for r in outcome.results if r.status == "failed")
    errored = sum(1 for r in outcome.results if r.status == "errored")
    blocking = sum(1 for r in outcome.results if r.blocking)
    exit_code = EXIT_FAILED if pipeline_blocked(contract, outcome.results) else EXIT_PASSED
    record = RunRecord(
        **base, status=outcome.status, exit_code=exit_code, finished_at=utc_now(),
        row_count=outcome.row_count, spark_job_count=jobs,
        expectations_total=len(outcome.results), expectations_failed=failed,
        expectations_errored=errored, blocking_failures=blocking,
        reference_partitions=outcome.reference_partitions,
    )
    metric_rows = [*outcome.metric_rows,
                   MetricRow("spark_job_count", count=jobs), MetricRow("suite_seconds", value=elapsed)]
    try:
        store.write_run(record, outcome.results, metric_rows)
    except Exception as exc:
        # write_run has already put back the tables it wrote before the failure.
        error = ComputationError(
            f"cannot write results to {request.warehouse}: {_first_line(exc)}; re-run the "
            "partition once the store is writable"
        )
        _record_errored(store, replace(record, status=RUN_ERRORED, exit_code=error.exit_code,
                                       error_code="WRITE_FAILED", error_message=str(error)))
        raise error from exc
    return ValidationRun(record=record, contract=contract, results=outcome.results,
                         metric_rows=metric_rows, outcome=outcome)


def _check_reference_run(store: ResultStore, request: ValidationRequest) -> None:
    """Raise InvalidRequestError when ``--reference-date`` names a day with no completed run.

    Checked before any scan: drift against a named day that was never validated would
    otherwise fall back to "no reference" without saying why.
    """
    if request.reference_date is None or store.latest_runs(request.dataset, request.reference_date):
        return
    raise InvalidRequestError(
        f"--reference-date {request.reference_date} has no completed {request.dataset} run in "
        f"{request.warehouse}; validate that date first, or leave out --reference-date to use "
        "the trailing window"
    )


def _run_suite(spark: SparkSession, store: ResultStore, contract: Contract,
               request: ValidationRequest, df: DataFrame) -> SuiteOutcome:
    """Run the contract's suite on ``df``, turning a Spark failure into a StreamrecError."""

    def references(current):
        return store.reference_profiles(
            request.dataset, request.partition_date, contract.reference.window_days, current,
            request.reference_date,
        )

    try:
        return run_suite(df, contract, request.partition_date, request.as_of, references)
    except StreamrecError:
        raise
    except Exception as exc:
        if re.search(r"parquet|footer|corrupt|magic number", str(exc), re.IGNORECASE):
            raise InputDataError(
                f"cannot read the Parquet files under {request.input_path}: "
                f"{_name_bad_files(spark, contract, request)}({_root_cause(exc)}); replace "
                "the corrupt files and re-run", "INPUT_UNREADABLE",
            ) from exc
        raise ComputationError(f"Spark failed while validating: {_first_line(exc)}") from exc


def _errored_run(spark: SparkSession, store: ResultStore, contract: Contract, base: dict,
                 group: str, error: StreamrecError) -> ValidationRun:
    """Record a run that started and then failed on its input or on Spark, and return it.

    The record carries the Spark jobs run so far, so the printed report and the ``runs`` row
    agree. Its row count stays unknown (null) because no count finished.
    """
    logger.error("run %s: %s", base["run_id"], error)
    record = RunRecord(**base, status=RUN_ERRORED, exit_code=error.exit_code,
                       finished_at=utc_now(), spark_job_count=_count_jobs(spark, group),
                       error_code=error.error_code, error_message=str(error))
    _record_errored(store, record)
    return ValidationRun(record=record, contract=contract)


def _record_errored(store: ResultStore, record: RunRecord) -> None:
    try:
        store.append_run(record)
    except Exception as exc:  # The store is unreachable, so only the exit code reports the error.
        logger.error("run %s: could not record the errored run in %s: %s", record.run_id,
                     store.warehouse, _first_line(exc))


def format_report(run: ValidationRun) -> str:
    """Render a run's verdicts as a plain-text table for people."""
    record = run.record
    # An errored run has no row count, which ``runs`` stores as null, so it is printed as
    # unknown rather than 0. A record without a job count is printed the same way.
    rows = "row count unknown" if record.row_count is None else format_count(record.row_count, "row")
    jobs = ("Spark job count unknown" if record.spark_job_count is None
            else format_count(record.spark_job_count, "Spark job"))
    lines = [
        f"{record.dataset} {record.partition_date}: {record.status.upper()} "
        f"(exit {record.exit_code}, run {record.run_id}, {rows}, {jobs})"
    ]
    if record.error_message:
        lines.append(f"  error {record.error_code}: {record.error_message}")
    width = max((len(r.expectation_id) for r in run.results), default=10)
    for result in run.results:
        marker = {"passed": "ok  ", "failed": "FAIL", "errored": "ERR "}[result.status]
        severity = "" if result.status == "passed" else f" [{result.severity}]"
        lines.append(f"  {marker} {result.expectation_id:<{width}} {result.reason_code:<28}"
                     f"{severity} {result.message}")
    return "\n".join(lines)


def parse_as_of(text: str | None) -> datetime:
    """Parse an ISO 8601 instant; a value without a zone is taken as UTC. None means now."""
    if text is None:
        return datetime.now(timezone.utc)
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)
