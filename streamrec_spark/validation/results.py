"""Result records of a validation run and their stable status and reason codes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PASSED = "passed"
FAILED = "failed"
ERRORED = "errored"

# Run-level statuses stored in the runs table.
RUN_PASSED = "passed"
RUN_WARNED = "warned"  # only non-blocking expectations failed or errored
RUN_FAILED = "failed"  # at least one blocking expectation failed or errored
RUN_ERRORED = "errored"  # the run could not produce results (bad input, Spark failure)


class Reason:
    """Stable reason codes, matched by alerting, tests and SQL queries instead of messages."""

    OK = "OK"
    COLUMN_MISSING = "COLUMN_MISSING"
    COLUMN_TYPE_MISMATCH = "COLUMN_TYPE_MISMATCH"
    UNEXPECTED_COLUMN = "UNEXPECTED_COLUMN"
    NOT_AN_INSTANT = "NOT_AN_INSTANT"
    COLUMN_UNAVAILABLE = "COLUMN_UNAVAILABLE"  # the column the check needs is missing or mistyped
    DUPLICATE_KEY = "DUPLICATE_KEY"
    NULL_KEY = "NULL_KEY"
    MISSING_VALUES = "MISSING_VALUES"
    VALUE_NOT_IN_SET = "VALUE_NOT_IN_SET"
    VALUE_OUT_OF_RANGE = "VALUE_OUT_OF_RANGE"
    PATTERN_MISMATCH = "PATTERN_MISMATCH"
    DATE_MISMATCH = "DATE_MISMATCH"
    TIMESTAMP_AFTER_AS_OF = "TIMESTAMP_AFTER_AS_OF"
    ROW_COUNT_OUT_OF_RANGE = "ROW_COUNT_OUT_OF_RANGE"
    DISTINCT_COUNT_OUT_OF_RANGE = "DISTINCT_COUNT_OUT_OF_RANGE"
    PSI_ABOVE_THRESHOLD = "PSI_ABOVE_THRESHOLD"
    CATEGORY_VOLUME_OUT_OF_RANGE = "CATEGORY_VOLUME_OUT_OF_RANGE"
    NO_REFERENCE = "NO_REFERENCE"
    DATA_STALE = "DATA_STALE"
    PARTITION_DATE_MISMATCH = "PARTITION_DATE_MISMATCH"
    EMPTY_PARTITION = "EMPTY_PARTITION"
    NO_VALUES = "NO_VALUES"  # the column has no non-missing value to judge
    METRIC_MISSING = "METRIC_MISSING"  # fail closed: a metric the verdict needs was not computed


@dataclass(frozen=True)
class ExpectationResult:
    """The verdict of one expectation on one partition, with the numbers behind it."""

    expectation_id: str
    category: str
    type: str
    column: str | None
    severity: str
    status: str
    reason_code: str
    message: str
    observed_value: float | None = None
    threshold_low: float | None = None
    threshold_high: float | None = None
    mostly: float | None = None
    evaluated_count: int | None = None
    failed_count: int | None = None
    null_count: int | None = None
    nan_count: int | None = None
    blank_count: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def blocking(self) -> bool:
        """True when the outcome stops the partition: a failed or errored ``error`` check."""
        return self.severity == "error" and self.status != PASSED


@dataclass(frozen=True)
class MetricRow:
    """One row of the long-format metrics table. Counts are integers, measurements floats."""

    metric_name: str
    column: str | None = None
    expectation_id: str | None = None
    bin_index: int | None = None
    bin_label: str | None = None
    bin_lower: float | None = None
    bin_upper: float | None = None
    count: int | None = None
    value: float | None = None


def run_status(results: list[ExpectationResult]) -> str:
    """Summarise expectation results into the run's status."""
    if any(result.blocking for result in results):
        return RUN_FAILED
    if any(result.status != PASSED for result in results):
        return RUN_WARNED
    return RUN_PASSED
