"""Gate decisions as pure functions of aggregated results and the gate configuration.

Nothing here touches Spark: :mod:`streamrec_spark.gate.inputs` turns Delta rows into the value
types below, and :func:`decide` turns them into one :class:`Comparison` per rule and a
decision. Every rule fails closed: a missing or NaN input produces a failed comparison with a
stable reason code, never a pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from streamrec_spark.errors import ConfigError
from streamrec_spark.gate.config import (
    DataValidationRequirement,
    GateConfig,
    MetricRule,
    ServingLimits,
    SliceFloor,
)

# Decisions.
PASS = "PASS"
BLOCK = "BLOCK"
ERROR = "ERROR"

# Comparison kinds.
KIND_METRIC = "metric"
KIND_SLICE_FLOOR = "slice_floor"
KIND_BEHAVIORAL = "behavioral"
KIND_SERVING = "serving"
KIND_DATA_VALIDATION = "data_validation"

# Stable reason codes, matched by alerting, tests and SQL queries. NO_CHAMPION is recorded on a
# metric comparison that passed on its floor alone because no champion exists; it never blocks.
NO_CHAMPION = "NO_CHAMPION"
MISSING_METRIC = "MISSING_METRIC"
NAN_METRIC = "NAN_METRIC"
MISSING_SLICE = "MISSING_SLICE"
MISSING_CHAMPION_METRIC = "MISSING_CHAMPION_METRIC"
BELOW_FLOOR = "BELOW_FLOOR"
REGRESSION = "REGRESSION"
MISSING_BEHAVIORAL_RESULT = "MISSING_BEHAVIORAL_RESULT"
INCOMPLETE_BEHAVIORAL_RESULT = "INCOMPLETE_BEHAVIORAL_RESULT"
BEHAVIORAL_TEST_FAILED = "BEHAVIORAL_TEST_FAILED"
MISSING_PROBE_RESULT = "MISSING_PROBE_RESULT"
PROBE_ERRORED = "PROBE_ERRORED"
LATENCY_ABOVE_LIMIT = "LATENCY_ABOVE_LIMIT"
SIZE_ABOVE_LIMIT = "SIZE_ABOVE_LIMIT"
DATA_VALIDATION_FAILED = "DATA_VALIDATION_FAILED"
MISSING_DATA_VALIDATION = "MISSING_DATA_VALIDATION"
MISSING_VALIDATION_TABLE = "MISSING_VALIDATION_TABLE"

# Status of a usable row in model_metrics, serving_probes and behavioral_results.
METRIC_STATUS_OK = "ok"
PROBE_STATUS_OK = "OK"
BEHAVIORAL_PASSED = "passed"
BEHAVIORAL_FAILED = "failed"
# Data-validation run statuses that accept a partition: "warned" means only non-blocking
# checks failed (streamrec_spark.validation.results).
ACCEPTED_VALIDATION_STATUSES = ("passed", "warned")

# Behavioral threshold kinds: a minimum on the observed value, or a maximum failure rate.
_MINIMUM_KINDS = {"min_value": "observed value", "min_unchanged_share": "mean unchanged share"}
_MAXIMUM_KINDS = {"max_failure_rate": "failure rate"}

LATENCY_RULE = "p99_latency_ms"
SIZE_RULE = "size_mb"


@dataclass(frozen=True)
class MetricValue:
    """One row of ``model_metrics``: a metric at cut-off ``k`` on one slice of one run."""

    metric: str
    k: int
    slice: str
    value: float | None
    status: str
    reason: str | None = None
    user_count: int = 0


@dataclass(frozen=True)
class ModelMetrics:
    """The metric rows of one evaluation run of one model, keyed by (metric, k, slice)."""

    model_id: str
    run_id: str | None
    values: Mapping[tuple[str, int, str], MetricValue] = field(default_factory=dict)
    # The run's holdout window [start, end), when the evaluation recorded one.
    holdout_start: date | None = None
    holdout_end: date | None = None

    def get(self, metric: str, k: int, slice_name: str) -> MetricValue | None:
        return self.values.get((metric, k, slice_name))


@dataclass(frozen=True)
class BehavioralRow:
    """One behavioral test result of the candidate's latest run of the required suite."""

    test_name: str
    test_type: str
    passed: bool
    status: str
    reason: str | None
    observed: float | None
    threshold: float
    threshold_kind: str
    cases: int = 0
    failures: int = 0


@dataclass(frozen=True)
class BehavioralRun:
    """The rows of the candidate's latest run of one behavioral suite (``run_id`` None: no run)."""

    suite: str
    run_id: str | None
    rows: tuple[BehavioralRow, ...] = ()


@dataclass(frozen=True)
class ProbeResult:
    """The latest serving probe row of a model: latency in milliseconds, size on disk in MB."""

    model_id: str
    run_id: str
    requests: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    size_mb: float | None
    status: str
    reason: str | None = None


@dataclass(frozen=True)
class ValidationRun:
    """The latest data-validation run of one dataset for one partition, from the ``runs`` table."""

    dataset: str
    partition_date: date
    run_id: str
    status: str
    exit_code: int | None = None
    error_code: str | None = None
    expectations_total: int | None = None
    expectations_failed: int | None = None
    blocking_failures: int | None = None
    finished_at: datetime | None = None

    def to_record(self) -> dict[str, Any]:
        """Return the run as a JSON-ready dict, with dates and times as ISO strings."""
        return {
            "dataset": self.dataset,
            "partition_date": self.partition_date.isoformat(),
            "run_id": self.run_id,
            "status": self.status,
            "exit_code": self.exit_code,
            "error_code": self.error_code,
            "expectations_total": self.expectations_total,
            "expectations_failed": self.expectations_failed,
            "blocking_failures": self.blocking_failures,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


@dataclass(frozen=True)
class ValidationSummary:
    """The data-validation runs that the gate read for its data date.

    ``table`` is the path of the ``runs`` table and ``table_found`` is False when no Delta
    table is there. ``partition_date`` is the data date of the request, or None for the latest
    validated partition of each dataset. ``runs`` contains one run per dataset.
    """

    table: str
    table_found: bool
    partition_date: date | None
    runs: tuple[ValidationRun, ...] = ()

    def run_of(self, dataset: str) -> ValidationRun | None:
        return next((run for run in self.runs if run.dataset == dataset), None)


@dataclass(frozen=True)
class Comparison:
    """One rule applied to the candidate, with the numbers behind the verdict.

    ``difference`` is the candidate minus its reference: the champion for a metric rule with a
    champion, the floor for a floor-only comparison, and the limit for a serving limit (so a
    negative difference is under the limit). A behavioral comparison stores its test's threshold
    as ``floor`` or ``upper_limit`` and its difference from it. ``difference`` is None when
    either side is missing.
    ``reason_code`` is None on a plain pass, ``NO_CHAMPION`` on a metric rule that passed on its
    floor alone, and one of the module's failure codes otherwise. ``detail`` is a short
    human-readable note.
    """

    rule: str
    kind: str
    candidate_value: float | None
    champion_value: float | None
    floor: float | None
    max_regression: float | None
    difference: float | None
    passed: bool
    reason_code: str | None
    upper_limit: float | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Decision:
    """The gate's verdict on a candidate and every comparison it was made from."""

    decision: str
    comparisons: tuple[Comparison, ...]
    no_baseline: bool

    @property
    def passed(self) -> bool:
        return self.decision == PASS

    @property
    def failed(self) -> tuple[Comparison, ...]:
        return tuple(comparison for comparison in self.comparisons if not comparison.passed)

    @property
    def reason_codes(self) -> tuple[str, ...]:
        """Return the distinct failure codes, in the order the rules were applied."""
        codes: list[str] = []
        for comparison in self.failed:
            if comparison.reason_code and comparison.reason_code not in codes:
                codes.append(comparison.reason_code)
        return tuple(codes)


def _not_finite(value: float | None) -> bool:
    return value is not None and not math.isfinite(value)


def _usable(row: MetricValue | None) -> float | None:
    """Return the value of a row that passes as a measurement, else None."""
    if row is None or row.status != METRIC_STATUS_OK or row.value is None or not math.isfinite(row.value):
        return None
    return row.value


def _missing_code(row: MetricValue | None, missing: str) -> tuple[str, str]:
    """Return the reason code and detail for a metric row that cannot be judged."""
    if row is None:
        return missing, "no row in model_metrics"
    if _not_finite(row.value) or row.reason == NAN_METRIC:
        return NAN_METRIC, f"value is {row.value} (status {row.status}), not a finite number"
    reason = f", reason {row.reason}" if row.reason else ""
    return missing, f"no usable value (status {row.status}{reason})"


def at_or_above(value: float, floor: float, tolerance: float) -> bool:
    """Return True when ``value`` is at or above ``floor``, allowing ``tolerance`` below it."""
    return value >= floor - tolerance


def within_regression(
    candidate: float, champion: float, max_regression: float, tolerance: float
) -> bool:
    """Return True when ``candidate`` is at most ``max_regression`` below ``champion``.

    The bound is inclusive and widened by ``tolerance``, so that a champion of 0.50, a candidate
    of 0.49 and a maximum regression of 0.01 pass although 0.50 - 0.49 is 0.01000000000000001
    in binary floating point.
    """
    return champion - candidate <= max_regression + tolerance


def at_or_below(value: float, limit: float, tolerance: float) -> bool:
    """Return True when ``value`` is at or below ``limit``, allowing ``tolerance`` above it."""
    return value <= limit + tolerance


def compare_metric(
    rule: MetricRule,
    candidate: ModelMetrics,
    champion: ModelMetrics | None,
    tolerance: float,
) -> Comparison:
    """Judge one metric rule on the ``all`` slice against its floor and the champion.

    Without a champion only the floor applies, and a pass records ``NO_CHAMPION``. A champion
    whose own value is missing blocks with ``MISSING_CHAMPION_METRIC``: the regression cannot be
    measured, and passing on the floor alone would hide that.
    """
    row = candidate.get(rule.metric, rule.k, "all")
    value = _usable(row)
    champion_row = champion.get(rule.metric, rule.k, "all") if champion is not None else None
    champion_value = _usable(champion_row)

    def result(passed: bool, code: str | None, difference: float | None, detail: str | None = None):
        return Comparison(
            rule=rule.rule,
            kind=KIND_METRIC,
            candidate_value=None if row is None else row.value,
            champion_value=champion_value,
            floor=rule.floor,
            max_regression=rule.max_regression,
            difference=difference,
            passed=passed,
            reason_code=code,
            detail=detail,
        )

    if value is None:
        code, detail = _missing_code(row, MISSING_METRIC)
        return result(False, code, None, detail)
    if not at_or_above(value, rule.floor, tolerance):
        difference = value - champion_value if champion_value is not None else value - rule.floor
        return result(False, BELOW_FLOOR, difference, f"{value:.6g} is below the floor {rule.floor:g}")
    if champion is None:
        return result(True, NO_CHAMPION, value - rule.floor, "no champion; floor only")
    if champion_value is None:
        _, detail = _missing_code(champion_row, MISSING_CHAMPION_METRIC)
        return result(
            False, MISSING_CHAMPION_METRIC, None, f"champion {champion.model_id}: {detail}"
        )
    difference = value - champion_value
    if not within_regression(value, champion_value, rule.max_regression, tolerance):
        return result(
            False,
            REGRESSION,
            difference,
            f"{-difference:.6g} below the champion; at most {rule.max_regression:g} allowed",
        )
    return result(True, None, difference)


def compare_slice_floor(
    floor: SliceFloor,
    candidate: ModelMetrics,
    champion: ModelMetrics | None,
    tolerance: float,
) -> Comparison:
    """Judge one sliced floor; the champion's value is recorded for reference only."""
    row = candidate.get(floor.metric, floor.k, floor.slice)
    value = _usable(row)
    champion_row = champion.get(floor.metric, floor.k, floor.slice) if champion is not None else None

    def result(passed: bool, code: str | None, detail: str | None = None) -> Comparison:
        return Comparison(
            rule=floor.name,
            kind=KIND_SLICE_FLOOR,
            candidate_value=None if row is None else row.value,
            champion_value=_usable(champion_row),
            floor=floor.floor,
            max_regression=None,
            difference=None if value is None else value - floor.floor,
            passed=passed,
            reason_code=code,
            detail=detail,
        )

    if value is None:
        code, detail = _missing_code(row, MISSING_SLICE)
        return result(False, code, detail)
    if not at_or_above(value, floor.floor, tolerance):
        return result(False, BELOW_FLOOR, f"{value:.6g} is below the floor {floor.floor:g}")
    return result(True, None)


def _behavioral_detail(row: BehavioralRow, passed: bool) -> str:
    """Describe one behavioral result in words: the test, what was measured, and the threshold."""
    test = f"{row.test_type} test {row.test_name}"
    if row.cases:
        rate = row.failures / row.cases
        cases = f"{row.failures} of {row.cases} cases failed (rate {rate:.3g})"
    else:
        cases = "no cases"
    if row.status not in (BEHAVIORAL_PASSED, BEHAVIORAL_FAILED):
        reason = f" ({row.reason})" if row.reason else ""
        return f"{test} {row.status}{reason}: {cases}; a required test must pass"
    observed = row.observed
    if row.threshold_kind in _MAXIMUM_KINDS:
        measured = _MAXIMUM_KINDS[row.threshold_kind]
        bound = f"the allowed maximum {row.threshold:g}"
        within = observed is not None and observed <= row.threshold
        relation = "is at most" if within else "is above"
    else:
        measured = _MINIMUM_KINDS.get(row.threshold_kind, row.threshold_kind)
        bound = f"the required minimum {row.threshold:g}"
        within = observed is not None and observed >= row.threshold
        relation = "is at least" if within else "is below"
    if observed is None or not math.isfinite(observed):
        value = f"{measured} is missing"
    else:
        value = f"{measured} {observed:.3g} {relation} {bound}"
    verdict = "passed" if passed else "failed"
    return f"{test} {verdict}: {value}; {cases}"


def _behavioral_comparison(name: str, row: BehavioralRow) -> Comparison:
    """Judge one result row. Its threshold becomes the floor (a minimum) or the limit (a maximum)."""
    passed = bool(row.passed) and row.status == BEHAVIORAL_PASSED
    is_maximum = row.threshold_kind in _MAXIMUM_KINDS
    observed = row.observed
    usable = observed is not None and math.isfinite(observed)
    return Comparison(
        rule=f"behavioral:{name}",
        kind=KIND_BEHAVIORAL,
        candidate_value=observed,
        champion_value=None,
        floor=None if is_maximum else row.threshold,
        max_regression=None,
        difference=observed - row.threshold if usable else None,
        passed=passed,
        reason_code=None if passed else BEHAVIORAL_TEST_FAILED,
        upper_limit=row.threshold if is_maximum else None,
        detail=_behavioral_detail(row, passed),
    )


def compare_behavioral(required_tests: Sequence[str], run: BehavioralRun | None) -> list[Comparison]:
    """Require a passing row for every test of the suite in the candidate's latest run.

    No run at all gives one ``MISSING_BEHAVIORAL_RESULT`` comparison. A test of the suite with no
    row gives ``INCOMPLETE_BEHAVIORAL_RESULT``, and a row that failed or errored gives
    ``BEHAVIORAL_TEST_FAILED``. Rows of tests that the suite does not list are ignored. Each
    comparison stores the test's threshold as its floor (a minimum) or its limit (a maximum
    failure rate), and its ``detail`` describes the measured value against that threshold.
    """
    suite = run.suite if run is not None else ""
    if run is None or run.run_id is None or not run.rows:
        return [
            Comparison(
                rule=f"behavioral:{suite}" if suite else "behavioral",
                kind=KIND_BEHAVIORAL,
                candidate_value=None,
                champion_value=None,
                floor=None,
                max_regression=None,
                difference=None,
                passed=False,
                reason_code=MISSING_BEHAVIORAL_RESULT,
                detail=(
                    f"required suite {suite} has no result for the candidate"
                    if suite
                    else "required behavioral suite has no result for the candidate"
                ),
            )
        ]
    rows = {row.test_name: row for row in run.rows}
    comparisons = []
    for name in required_tests:
        row = rows.get(name)
        if row is None:
            comparisons.append(
                Comparison(
                    rule=f"behavioral:{name}",
                    kind=KIND_BEHAVIORAL,
                    candidate_value=None,
                    champion_value=None,
                    floor=None,
                    max_regression=None,
                    difference=None,
                    passed=False,
                    reason_code=INCOMPLETE_BEHAVIORAL_RESULT,
                    detail=f"required test {name} has no result in run {run.run_id}",
                )
            )
            continue
        comparisons.append(_behavioral_comparison(name, row))
    return comparisons


def compare_data_validation(
    requirement: DataValidationRequirement, summary: ValidationSummary | None
) -> list[Comparison]:
    """Require an accepted validation run (``passed`` or ``warned``) of each required dataset.

    Each dataset gets one comparison named ``data_validation:<dataset>``. It fails with
    ``MISSING_VALIDATION_TABLE`` when the ``runs`` table does not exist (or was not read),
    ``MISSING_DATA_VALIDATION`` when the dataset has no run for the data date, and
    ``DATA_VALIDATION_FAILED`` when its latest run failed or errored.
    """
    day = "its latest partition"
    if summary is not None and summary.partition_date is not None:
        day = summary.partition_date.isoformat()

    def result(dataset: str, passed: bool, code: str | None, detail: str) -> Comparison:
        return Comparison(
            rule=f"data_validation:{dataset}",
            kind=KIND_DATA_VALIDATION,
            candidate_value=None,
            champion_value=None,
            floor=None,
            max_regression=None,
            difference=None,
            passed=passed,
            reason_code=code,
            detail=detail,
        )

    comparisons = []
    for dataset in requirement.datasets:
        if summary is None or not summary.table_found:
            table = f" at {summary.table}" if summary is not None else ""
            detail = (
                f"no data-validation runs table{table}; validate {dataset} for {day} before "
                "gating a model trained on it"
            )
            comparisons.append(result(dataset, False, MISSING_VALIDATION_TABLE, detail))
            continue
        run = summary.run_of(dataset)
        if run is None:
            detail = f"no validation run of {dataset} for {day} in {summary.table}"
            comparisons.append(result(dataset, False, MISSING_DATA_VALIDATION, detail))
            continue
        outcome = f"validation run {run.run_id} of {dataset} for {run.partition_date.isoformat()}"
        if run.status in ACCEPTED_VALIDATION_STATUSES:
            comparisons.append(result(dataset, True, None, f"{outcome} {run.status}"))
            continue
        detail = f"{outcome} {run.status}"
        if run.blocking_failures:
            detail += f" with {run.blocking_failures} blocking check failures"
        if run.error_code:
            detail += f" (error {run.error_code})"
        comparisons.append(result(dataset, False, DATA_VALIDATION_FAILED, detail))
    return comparisons


def compare_serving(
    limits: ServingLimits,
    probe: ProbeResult | None,
    champion_probe: ProbeResult | None,
    tolerance: float,
) -> list[Comparison]:
    """Judge the probe's p99 latency and the model size against their inclusive limits."""
    checks = (
        (LATENCY_RULE, "p99_ms", limits.max_p99_latency_ms, LATENCY_ABOVE_LIMIT),
        (SIZE_RULE, "size_mb", limits.max_size_mb, SIZE_ABOVE_LIMIT),
    )
    comparisons = []
    for rule, column, limit, above_code in checks:
        value = None if probe is None else getattr(probe, column)
        champion_value = None if champion_probe is None else getattr(champion_probe, column)
        if _not_finite(champion_value):
            champion_value = None
        code: str | None = None
        detail: str | None = None
        if probe is None:
            code, detail = MISSING_PROBE_RESULT, "no serving probe row for the candidate"
        elif probe.status != PROBE_STATUS_OK:
            reason = f", reason {probe.reason}" if probe.reason else ""
            code, detail = PROBE_ERRORED, f"probe {probe.run_id} has status {probe.status}{reason}"
        elif value is None:
            code, detail = MISSING_PROBE_RESULT, f"probe {probe.run_id} has no {column}"
        elif not math.isfinite(value):
            code, detail = NAN_METRIC, f"probe {probe.run_id} has a non-finite {column} ({value})"
        elif not at_or_below(value, limit, tolerance):
            code, detail = above_code, f"{value:.6g} is above the limit {limit:g}"
        usable = value is not None and math.isfinite(value)
        comparisons.append(
            Comparison(
                rule=rule,
                kind=KIND_SERVING,
                candidate_value=value,
                champion_value=champion_value,
                floor=None,
                max_regression=None,
                difference=value - limit if usable else None,
                passed=code is None,
                reason_code=code,
                upper_limit=limit,
                detail=detail,
            )
        )
    return comparisons


def decide(
    config: GateConfig,
    candidate: ModelMetrics,
    champion: ModelMetrics | None,
    behavioral: BehavioralRun | None = None,
    probe: ProbeResult | None = None,
    champion_probe: ProbeResult | None = None,
    validation: ValidationSummary | None = None,
) -> Decision:
    """Apply every rule of ``config`` and return PASS only when every comparison passed.

    Raises ConfigError when ``config`` has no metric rule, because such a gate would pass
    anything. ``champion`` is None when no model has passed this gate and been registered yet; the
    decision then records ``no_baseline``. Behavioral, serving and data-validation rules apply
    only when the gate configures them, and a missing input for a configured rule blocks.
    """
    if not config.metrics:
        raise ConfigError([f"{config.source or config.name}: the gate has no metric rules"])
    tolerance = config.tolerance
    comparisons: list[Comparison] = [
        compare_metric(rule, candidate, champion, tolerance) for rule in config.metrics
    ]
    comparisons.extend(
        compare_slice_floor(floor, candidate, champion, tolerance) for floor in config.slice_floors
    )
    if config.behavioral is not None:
        if behavioral is None:
            behavioral = BehavioralRun(suite=config.behavioral.suite, run_id=None)
        comparisons.extend(compare_behavioral(config.behavioral.tests, behavioral))
    if config.serving is not None:
        comparisons.extend(compare_serving(config.serving, probe, champion_probe, tolerance))
    if config.data_validation is not None:
        comparisons.extend(compare_data_validation(config.data_validation, validation))

    passed = all(comparison.passed for comparison in comparisons)
    return Decision(
        decision=PASS if passed else BLOCK,
        comparisons=tuple(comparisons),
        no_baseline=champion is None,
    )
