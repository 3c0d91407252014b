"""Exception hierarchy, split by who has to act on the failure."""

from __future__ import annotations

# Exit codes shared by every entry point (spark-submit jobs, the CLI, the cron wrapper).
EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_INFRASTRUCTURE = 3

_MAX_CAUSE_LENGTH = 300


class StreamrecError(Exception):
    """Root of every error that streamrec-spark raises on purpose."""

    exit_code = EXIT_INFRASTRUCTURE
    error_code = "STREAMREC_ERROR"


class InvalidRequestError(StreamrecError):
    """The command line requests something that cannot be run (exit code 2)."""

    exit_code = EXIT_INVALID
    error_code = "INVALID_REQUEST"


class ConfigError(InvalidRequestError):
    """One or more problems in a YAML configuration file, each with file and line."""

    error_code = "INVALID_CONFIG"

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            message = f"{len(self.problems)} configuration problems:\n  " + "\n  ".join(
                self.problems
            )
        super().__init__(message)


class InputDataError(StreamrecError):
    """Input data is missing, empty or unreadable (exit code 3)."""

    exit_code = EXIT_INFRASTRUCTURE
    error_code = "INPUT_ERROR"

    def __init__(self, message: str, error_code: str = "INPUT_ERROR"):
        super().__init__(message)
        self.error_code = error_code


class ComputationError(StreamrecError):
    """Spark or the result store failed while a job ran (exit code 3)."""

    exit_code = EXIT_INFRASTRUCTURE
    error_code = "COMPUTATION_ERROR"


class SchemaViolationError(StreamrecError):
    """A DataFrame crossing a stage boundary violates its declared schema (exit code 1).

    ``boundary`` names the boundary (for example ``engagement:input``) and ``report`` carries
    the full check report (``features.boundary.BoundaryReport``) with every rule, its count of
    offending rows and sample values.
    """

    exit_code = EXIT_FAILED
    error_code = "SCHEMA_VIOLATION"

    def __init__(self, message: str, boundary: str | None = None, report: object | None = None):
        super().__init__(message)
        self.boundary = boundary
        self.report = report


class PartitionNotAcceptedError(StreamrecError):
    """A stage was asked to read a partition that its contract has not accepted (exit code 1):
    never validated, or its latest validation failed."""

    exit_code = EXIT_FAILED
    error_code = "PARTITION_NOT_ACCEPTED"

    def __init__(self, message: str, dataset: str, statuses: dict | None = None):
        super().__init__(message)
        self.dataset = dataset
        # partition date -> latest run status, or None when the partition was never validated
        self.statuses = dict(statuses or {})


def root_cause(error: BaseException) -> str:
    """Return one line naming the root cause of a Spark or Delta failure.

    A failed Spark job reaches Python as a Py4JJavaError whose first line only names the JVM
    call ("An error occurred while calling o141.collectToPython"). The deepest Java cause names
    the problem, for example a missing Parquet file or an invalid Delta log entry.
    """
    from py4j.protocol import Py4JJavaError  # imported here so this module loads without Spark

    text = ""
    # PySpark turns some JVM errors into its own exception types (IllegalArgumentException,
    # AnalysisException); those keep the Java exception as _origin.
    if isinstance(error, Py4JJavaError):
        java_error = error.java_exception
    else:
        java_error = getattr(error, "_origin", None)
    if java_error is not None:
        try:
            cause = java_error
            while cause.getCause() is not None:
                cause = cause.getCause()
            text = str(cause.toString())
        except Exception:  # the JVM may be gone, so the Python text is used instead
            text = ""
    if not text:
        text = str(getattr(error, "desc", None) or error)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    first = first or type(error).__name__
    if len(first) > _MAX_CAUSE_LENGTH:
        first = first[: _MAX_CAUSE_LENGTH - 3] + "..."
    return first
