"""Result rows of an evaluation, built on the driver from the aggregated numbers only."""

from __future__ import annotations

import math
from dataclasses import dataclass

from streamrec_spark.errors import EXIT_FAILED, EXIT_PASSED
from streamrec_spark.evaluation.config import EvaluationConfig
from streamrec_spark.evaluation.ranking import RankingAggregates
from streamrec_spark.evaluation.slices import ALL, slice_names

STATUS_OK = "ok"
STATUS_MISSING = "missing"
# A run that stopped on an error stores this status, its error code and a NULL value for each
# metric, so that a query of the table finds the errored run instead of no run at all.
STATUS_ERRORED = "errored"
# Status of an input-check row, by the policy level of a check that found something.
CHECK_STATUS = {"fail": "failed", "warn": "warning", "info": "info"}
CHECK_PASSED = "passed"
EMPTY_SLICE = "EMPTY_SLICE"

# Unit of each input check's ``affected`` count, stored in ``affected_unit``.
CHECK_UNITS: dict[str, str] = {
    "INVALID_SCORES": "rows",
    "DUPLICATE_ITEMS": "rows",
    "DUPLICATE_RANKS": "rows",
    "UNKNOWN_ITEMS": "rows",
    "USERS_NOT_IN_HOLDOUT": "users",
    "HOLDOUT_USERS_WITHOUT_RECOMMENDATIONS": "users",
    EMPTY_SLICE: "slices",
}


@dataclass(frozen=True)
class MetricRow:
    """One row of the model-metrics table before the run's keys are added.

    ``user_count`` is the number of evaluated users of the slice (on an input-check row, of
    all users). ``hit_users`` is, on a metric row, the number of those users with at least
    one relevant item in the top K, and None on an input-check row. ``affected`` is, on an
    input-check row, the number of affected ``affected_unit`` (recommendation rows, users or
    slices; see CHECK_UNITS), and None on a metric row.
    """

    slice: str
    metric: str
    k: int | None
    user_count: int
    value: float | None
    status: str
    reason: str | None
    hit_users: int | None = None
    affected: int | None = None
    affected_unit: str | None = None

    @property
    def is_input_check(self) -> bool:
        return self.metric.startswith("input.")


@dataclass(frozen=True)
class EvaluationResult:
    rows: tuple[MetricRow, ...]

    @property
    def failed_checks(self) -> tuple[MetricRow, ...]:
        return tuple(row for row in self.rows if row.status == CHECK_STATUS["fail"])

    @property
    def exit_code(self) -> int:
        """Return 1 when an input check with policy ``fail`` found something, else 0."""
        return EXIT_FAILED if self.failed_checks else EXIT_PASSED

    def value(self, metric: str, k: int, slice_name: str = ALL) -> float | None:
        for row in self.rows:
            if row.metric == metric and row.k == k and row.slice == slice_name:
                return row.value
        raise KeyError(f"no result for {metric}@{k} on slice {slice_name!r}")

    def row(self, metric: str, k: int | None = None, slice_name: str = ALL) -> MetricRow:
        for row in self.rows:
            if row.metric == metric and row.k == k and row.slice == slice_name:
                return row
        raise KeyError(f"no result for {metric}@{k} on slice {slice_name!r}")


def check_metric_name(code: str) -> str:
    """Return the ``metric`` value under which the input check ``code`` is stored."""
    return "input." + code.lower()


def build_result(aggregates: RankingAggregates, config: EvaluationConfig) -> EvaluationResult:
    """Turn aggregated numbers into metric rows and input-check rows.

    An empty slice gets ``status = 'missing'``, ``reason = 'EMPTY_SLICE'`` and a null value for
    each of its metrics, never 0 or 1. A NaN mean (which a correct computation cannot produce)
    is stored the same way with reason ``NAN_METRIC``, so it cannot pass a later gate.
    """
    rows: list[MetricRow] = []
    empty_slices = 0
    for name in aggregates.slices or slice_names(config.slices):
        users = aggregates.user_counts[name]
        if users == 0:
            empty_slices += 1
        for spec in config.metrics:
            value = aggregates.values[(name, spec.column)]
            hit_users = aggregates.hit_users[(name, spec.column)]
            if users == 0:
                rows.append(MetricRow(name, spec.name, spec.k, 0, None, STATUS_MISSING, EMPTY_SLICE, hit_users=0))
            elif value is None or math.isnan(value):
                rows.append(
                    MetricRow(name, spec.name, spec.k, users, None, STATUS_MISSING, "NAN_METRIC", hit_users=hit_users)
                )
            else:
                rows.append(MetricRow(name, spec.name, spec.k, users, float(value), STATUS_OK, None, hit_users=hit_users))

    counts = dict(aggregates.checks)
    counts[EMPTY_SLICE] = empty_slices
    total_users = aggregates.user_counts[ALL]
    for code, count in counts.items():
        level = config.input_policy[code]
        status = CHECK_STATUS[level] if count > 0 else CHECK_PASSED
        rows.append(
            MetricRow(
                ALL,
                check_metric_name(code),
                None,
                total_users,
                None,
                status,
                code if count else None,
                affected=count,
                affected_unit=CHECK_UNITS[code],
            )
        )
    return EvaluationResult(tuple(rows))


def errored_result(config: EvaluationConfig, error_code: str) -> EvaluationResult:
    """Build the rows of a run that stopped on an error: one per slice and metric of ``config``.

    Each row has ``status = 'errored'``, ``reason = error_code``, a NULL value and 0 users, so
    a gate that reads the run finds an errored metric rather than a missing run.
    """
    rows = tuple(
        MetricRow(name, spec.name, spec.k, 0, None, STATUS_ERRORED, error_code)
        for name in slice_names(config.slices)
        for spec in config.metrics
    )
    return EvaluationResult(rows)
