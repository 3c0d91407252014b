"""Pass or fail of each behavioral test, as pure functions of aggregated numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Stable reason codes, matched by alerting, tests and SQL queries.
BELOW_FLOOR = "BELOW_FLOOR"
UNCHANGED_SHARE_BELOW_MIN = "UNCHANGED_SHARE_BELOW_MIN"
FAILURE_RATE_ABOVE_MAX = "FAILURE_RATE_ABOVE_MAX"
EMPTY_SLICE = "EMPTY_SLICE"
MISSING_METRIC = "MISSING_METRIC"
NO_CASES = "NO_CASES"

PASSED = "passed"
FAILED = "failed"
ERRORED = "errored"


@dataclass(frozen=True)
class TestResult:
    """One row of the behavioral-results table before the run's keys are added.

    ``observed`` is the number compared with ``threshold``: the slice mean for MFT, the mean
    unchanged share for INV and the failure rate for DIR. ``failure_rate`` is None when there
    is no case.
    """

    name: str
    test_type: str
    cases: int
    failures: int
    failure_rate: float | None
    observed: float | None
    threshold: float
    threshold_kind: str
    passed: bool
    status: str
    reason: str | None

    __test__ = False  # not a pytest test class, despite the name


def _rate(failures: int, cases: int) -> float | None:
    return failures / cases if cases else None


def judge_minimum(
    name: str, value: float | None, user_count: int, users_below: int, min_value: float
) -> TestResult:
    """Pass when ``value`` (the slice mean) is at least ``min_value`` (inclusive).

    An empty slice or a missing or NaN value errors with EMPTY_SLICE or MISSING_METRIC and
    does not pass.
    """
    if user_count == 0:
        return TestResult(name, "MFT", 0, 0, None, None, min_value, "min_value", False, ERRORED, EMPTY_SLICE)
    if value is None or math.isnan(value):
        return TestResult(
            name, "MFT", user_count, users_below, _rate(users_below, user_count), None, min_value,
            "min_value", False, ERRORED, MISSING_METRIC,
        )
    passed = value >= min_value
    return TestResult(
        name, "MFT", user_count, users_below, _rate(users_below, user_count), value, min_value,
        "min_value", passed, PASSED if passed else FAILED, None if passed else BELOW_FLOOR,
    )


def judge_invariance(name: str, unchanged_shares: Sequence[float], min_share: float) -> TestResult:
    """Pass when the mean unchanged share is at least ``min_share`` (inclusive).

    A case fails when its own share is below ``min_share``; a NaN share counts as 0. No case at
    all errors with NO_CASES.
    """
    shares = [0.0 if math.isnan(share) else share for share in unchanged_shares]
    cases = len(shares)
    if cases == 0:
        return TestResult(name, "INV", 0, 0, None, None, min_share, "min_unchanged_share", False, ERRORED, NO_CASES)
    failures = sum(1 for share in shares if share < min_share)
    observed = sum(shares) / cases
    passed = observed >= min_share
    return TestResult(
        name, "INV", cases, failures, failures / cases, observed, min_share, "min_unchanged_share",
        passed, PASSED if passed else FAILED, None if passed else UNCHANGED_SHARE_BELOW_MIN,
    )


def judge_directional(name: str, outcomes: Sequence[bool], max_failure_rate: float) -> TestResult:
    """Pass when the share of cases that moved the wrong way is at most ``max_failure_rate``.

    ``outcomes`` contains True for a case that moved as expected. No case at all errors with
    NO_CASES.
    """
    cases = len(outcomes)
    if cases == 0:
        return TestResult(name, "DIR", 0, 0, None, None, max_failure_rate, "max_failure_rate", False, ERRORED, NO_CASES)
    failures = sum(1 for ok in outcomes if not ok)
    rate = failures / cases
    passed = rate <= max_failure_rate
    return TestResult(
        name, "DIR", cases, failures, rate, rate, max_failure_rate, "max_failure_rate",
        passed, PASSED if passed else FAILED, None if passed else FAILURE_RATE_ABOVE_MAX,
    )


def unchanged_share(before: Sequence[int], after: Sequence[int]) -> float:
    """Return the share of the ``before`` top-K items that are still in ``after`` (1.0 if empty)."""
    if not before:
        return 1.0
    return len(set(before) & set(after)) / len(before)


def moved_up(before: float, after: float) -> bool:
    """Return True when ``after`` is strictly above ``before``; NaN on either side is False."""
    return bool(after > before) and not (math.isnan(before) or math.isnan(after))
