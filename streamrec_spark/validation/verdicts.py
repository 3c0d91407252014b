"""Verdicts: pure functions of a partition's metrics and the contract's thresholds.

Nothing here touches Spark, so every rule is unit-tested on hand-computed numbers. Each
function returns an ExpectationResult and, for the drift checks, the metric rows that let
anyone recompute the PSI from both sides' raw bin counts.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

from streamrec_spark.contracts.model import Contract, Expectation
from streamrec_spark.validation.profiles import OTHER_LABEL, Profile, current_profile, missing_count
from streamrec_spark.validation.psi import coarsen, psi, quantile_cuts
from streamrec_spark.validation.results import (
    ERRORED,
    FAILED,
    PASSED,
    ExpectationResult,
    MetricRow,
    Reason,
)
from streamrec_spark.validation.schema_check import SchemaReport

# Present-tense verbs that open the ``what_fails`` phrases of the mostly checks, with the form
# they take after a count of one ("1 of 12 rows is ...").
_SINGULAR_VERBS = {"are": "is", "have": "has", "do": "does"}


def format_count(count: int, singular: str, plural: str | None = None) -> str:
    """Format ``count`` with its noun in the matching number: "1 row", "2,000 rows".

    ``plural`` defaults to ``singular`` plus "s"; pass it for nouns such as "category".
    """
    noun = singular if count == 1 else (plural or f"{singular}s")
    return f"{count:,} {noun}"


def _agree(count: int, phrase: str) -> str:
    """Put the verb that opens ``phrase`` in the singular when ``count`` is 1."""
    verb, space, rest = phrase.partition(" ")
    if count == 1 and verb in _SINGULAR_VERBS:
        return f"{_SINGULAR_VERBS[verb]}{space}{rest}"
    return phrase


@dataclass(frozen=True)
class JudgeContext:
    """Everything a verdict may read besides the expectation itself."""

    contract: Contract
    schema: SchemaReport
    metrics: dict[str, Any]
    partition_date: date
    as_of: datetime  # aware, UTC
    references: dict[str, Profile | None] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return int(self.metrics.get("rows") or 0)


def mostly_satisfied(evaluated: int, failed: int, mostly: Fraction) -> bool:
    """True when (evaluated - failed) / evaluated >= mostly, compared exactly on integers."""
    if evaluated <= 0:
        raise ValueError("no evaluated rows")
    return (evaluated - failed) * mostly.denominator >= mostly.numerator * evaluated


def _result(expectation: Expectation, status: str, reason: str, message: str, **values: Any) -> ExpectationResult:
    return ExpectationResult(
        expectation_id=expectation.id,
        category=expectation.category,
        type=expectation.type,
        column=expectation.column,
        severity=expectation.severity,
        status=status,
        reason_code=reason,
        message=message,
        **values,
    )


def _unavailable(expectation: Expectation, context: JudgeContext, names: list[str]) -> ExpectationResult | None:
    for name in names:
        state = context.schema.state(name)
        if state is None or not state.present:
            return _result(
                expectation, ERRORED, Reason.COLUMN_UNAVAILABLE,
                f"column '{name}' is missing from the partition, so this check could not run",
            )
        if not state.usable:
            return _result(
                expectation, ERRORED, Reason.COLUMN_UNAVAILABLE,
                f"column '{name}' arrived as {state.actual_type} instead of {state.spec.type}, "
                "so this check could not run",
            )
    return None


def _column_counts(context: JudgeContext, name: str | None) -> dict[str, int | None]:
    if name is None:
        return {}
    spec = context.contract.column(name)
    metrics = context.metrics
    return {
        "null_count": int(metrics.get(f"null:{name}") or 0),
        "nan_count": int(metrics.get(f"nan:{name}") or 0) if spec.is_floating else None,
        "blank_count": int(metrics.get(f"blank:{name}") or 0) if spec.is_string else None,
    }


def _share_text(count: int, total: int) -> str:
    """Return "3 of 1,000 (0.3%) rows", the noun in the number of ``total``."""
    return f"{count:,} of {total:,} ({100.0 * count / total:.4g}%) {'row' if total == 1 else 'rows'}"


def _mostly_verdict(
    expectation: Expectation,
    context: JudgeContext,
    evaluated: int | None,
    failed: int | None,
    reason: str,
    what_fails: str,
    extra: dict[str, Any] | None = None,
) -> ExpectationResult:
    """Judge exact counts against ``mostly``.

    ``what_fails`` is a plural verb phrase such as "are outside [0, 10]"; its verb is put in
    the singular when one row fails.
    """
    counts = _column_counts(context, expectation.column)
    if context.rows == 0:
        return _result(expectation, ERRORED, Reason.EMPTY_PARTITION,
                       "the partition has no rows, so this check could not be computed", **counts)
    if evaluated is None or failed is None:
        return _result(expectation, ERRORED, Reason.METRIC_MISSING,
                       f"the counts for '{expectation.id}' were not computed", **counts)
    evaluated, failed = int(evaluated), int(failed)
    values = dict(
        mostly=float(expectation.mostly),
        evaluated_count=evaluated,
        failed_count=failed,
        threshold_low=expectation.min_value,
        threshold_high=expectation.max_value,
        details=dict(extra or {}),
        **counts,
    )
    if evaluated == 0:
        return _result(expectation, ERRORED, Reason.NO_VALUES,
                       f"column '{expectation.column}' has no values to check", **values)
    observed = (evaluated - failed) / evaluated
    if mostly_satisfied(evaluated, failed, expectation.mostly):
        passing = evaluated - failed
        return _result(expectation, PASSED, Reason.OK,
                       f"{_share_text(passing, evaluated)} {'passes' if passing == 1 else 'pass'}; "
                       f"mostly {float(expectation.mostly):g} required", observed_value=observed,
                       **values)
    return _result(expectation, FAILED, reason,
                   f"{_share_text(failed, evaluated)} {_agree(failed, what_fails)}; mostly "
                   f"{float(expectation.mostly):g} allows at most "
                   f"{evaluated - math.ceil(expectation.mostly * evaluated):,}",
                   observed_value=observed, **values)


def _counts_of(context: JudgeContext, expectation: Expectation) -> tuple[int | None, int | None]:
    """Return the evaluated and failed row counts that the fused aggregation computed for a check."""
    return (context.metrics.get(f"eval:{expectation.id}"), context.metrics.get(f"fail:{expectation.id}"))


def judge_columns_present(expectation: Expectation, context: JudgeContext) -> ExpectationResult:
    missing = [name for name, state in context.schema.columns.items() if not state.present]
    if missing:
        return _result(expectation, FAILED, Reason.COLUMN_MISSING,
                       f"missing columns: {', '.join(missing)}; the checks on them are errored",
                       failed_count=len(missing), details={"missing": missing})
    return _result(expectation, PASSED, Reason.OK, "all declared columns are present", failed_count=0)


def judge_column_types(expectation: Expectation, context: JudgeContext) -> ExpectationResult:
    wrong = {
        name: {"expected": state.spec.type, "found": state.actual_type}
        for name, state in context.schema.columns.items()
        if state.present and not state.type_matches
    }
    if wrong:
        text = ", ".join(f"{n} is {v['found']} (expected {v['expected']})" for n, v in wrong.items())
        return _result(expectation, FAILED, Reason.COLUMN_TYPE_MISMATCH, f"wrong types: {text}",
                       failed_count=len(wrong), details={"mismatched": wrong})
    return _result(expectation, PASSED, Reason.OK, "all present columns have the declared types",
                   failed_count=0)


def judge_no_unexpected(expectation: Expectation, context: JudgeContext) -> ExpectationResult:
    extra = list(context.schema.unexpected)
    if extra:
        return _result(expectation, FAILED, Reason.UNEXPECTED_COLUMN,
                       f"columns not in the contract: {', '.join(extra)}",
                       failed_count=len(extra), details={"unexpected": extra})
    return _result(expectation, PASSED, Reason.OK, "no columns beyond the contract", failed_count=0)


def judge_instant(expectation: Expectation, context: JudgeContext) -> ExpectationResult:
    state = context.schema.state(expectation.column)
    if state is None or not state.present:
        return _result(expectation, ERRORED, Reason.COLUMN_UNAVAILABLE,
                       f"column '{expectation.column}' is missing from the partition")
    if state.actual_type == "timestamp":
        return _result(expectation, PASSED, Reason.OK, f"'{expectation.column}' is a timestamp with a zone")
    if state.interpreted_zone is not None:
        message = (f"'{expectation.column}' arrived as timestamp_ntz (no zone); it was read as "
                   f"wall-clock time in {state.interpreted_zone}")
    else:
        message = f"'{expectation.column}' arrived as {state.actual_type}, not an instant (timestamp)"
    return _result(expectation, FAILED, Reason.NOT_AN_INSTANT, message,
                   details={"found": state.actual_type, "interpreted_zone": state.interpreted_zone})


def judge_primary_key(expectation: Expectation, context: JudgeContext) -> ExpectationResult:
    key = list(context.contract.primary_key)
    blocked = _unavailable(expectation, context, key)
    if blocked is not None:
        return blocked
    if context.rows == 0:
        return _result(expectation, ERRORED, Reason.EMPTY_PARTITION,
                       "the partition has no rows, so key uniqueness could not be computed")
    metrics = context.metrics
    nulls = metrics.get("pk_null")
    duplicate_keys = metrics.get("pk_duplicate_keys")
    duplicate_rows = metrics.get("pk_duplicate_rows")
    if nulls is None or duplicate_keys is None or duplicate_rows is None:
        return _result(expectation, ERRORED, Reason.METRIC_MISSING, "key uniqueness was not computed")
    values = dict(evaluated_count=context.rows, failed_count=int(duplicate_rows) + int(nulls),
                  null_count=int(nulls),
                  details={"duplicate_keys": int(duplicate_keys), "duplicate_rows": int(duplicate_rows),
                           "samples": metrics.get("pk_duplicate_samples", [])})
    key_text = ", ".join(key)
    problems = []
    if duplicate_keys:
        samples = ", ".join(str(s) for s in metrics.get("pk_duplicate_samples", [])[:3])
        problems.append(f"{format_count(int(duplicate_keys), 'key value')} of ({key_text}) "
                        f"{'occurs' if int(duplicate_keys) == 1 else 'occur'} more than once, "
                        f"{format_count(int(duplicate_rows), 'surplus row')}; e.g. {samples}")
    if nulls:
        problems.append(f"{format_count(int(nulls), 'row')} {_agree(int(nulls), 'have')} a missing "
                        f"key (null, or blank in a required column) in ({key_text})")
    if problems:
        # Duplicates name the reason when both occur: they are what the check is about, and
        # the message and the counts still give the missing keys.
        reason = Reason.DUPLICATE_KEY if duplicate_keys else Reason.NULL_KEY
        return _result(expectation, FAILED, reason, "; and ".join(problems), **values)
    return _result(expectation, PASSED, Reason.OK,
                   f"({key_text}) is unique over {format_count(context.rows, 'row')}", **values)


def judge_not_null(expectation: Expectation, context: JudgeContext) -> ExpectationResult:
    blocked = _unavailable(expectation, context, [expectation.column])
    if blocked is not None:
        return blocked
    counts = _column_counts(context, expectation.column)
    if context.rows == 0:
        return _result(expectation, ERRORED, Reason.EMPTY_PARTITION,
                       "the partition has no rows, so completeness could not be computed", **counts)
    spec = context.contract.column(expectation.column)
    needed = [f"null:{expectation.column}"]
    if spec.is_floating:
        needed.append(f"nan:{expectation.column}")
    if spec.is_string:
        needed.append(f"blank:{expectation.column}")
    absent = [key for key in needed if context.metrics.get(key) is None]
    if absent:
        return _result(expectation, ERRORED, Reason.METRIC_MISSING,
                       f"the counts {', '.join(absent)} were not computed", **counts)
    # A completeness expectation declares the column required, so blank strings are missing.
    missing = sum(value or 0 for value in counts.values())
    return _mostly_verdict(expectation, context, context.rows, missing, Reason.MISSING_VALUES,
                           "are missing (null, NaN or blank)")


def judge_in_set(expectation: Expectation, context: JudgeContext) -> ExpectationResult:
    blocked = _unavailable(expectation, context, [expectation.column])
    if blocked is not None:
        return blocked
    spec = context.contract.column(expectation.column)
    unexpected = context.metrics.get(f"unexpected_values:{expectation.id}") or []
    extra = {"allowed": [str(v) for v in spec.allowed_values]}
    if unexpected:
        extra["unexpected_values"] = unexpected
    result = _mostly_verdict(expectation, context, *_counts_of(context, expectation),
                             Reason.VALUE_NOT_IN_SET,
                             f"are outside {{{', '.join(extra['allowed'])}}}", extra)
    if result.status == FAILED:
        # repr() quotes each value and escapes line breaks, so the message stays one line.
        listing = ", ".join(f"{item['value']!r} ({format_count(item['count'], 'row')})"
                            for item in unexpected)
        result = _with_message(result, f"{result.message}; unexpected values: {listing}")
    return result


def _with_message(result: ExpectationResult, message: str) -> ExpectationResult:
    return replace(result, message=message)


def judge_between(expectation: Expectation, context: JudgeContext) -> ExpectationResult:
    blocked = _unavailable(expectation, context, [expectation.column])
    if blocked is not None:
        return blocked
    low = "-inf" if expectation.min_value is None else f"{expectation.min_value:g}"
    high = "+inf" if expectation.max_value is None else f"{expectation.max_value:g}"
    extra = {
        "min_observed": context.metrics.get(f"min:{expectation.column}"),
        "max_observed": context.metrics.get(f"max:{expectation.column}"),
    }
    return _mostly_verdict(expectation, context, *_counts_of(context, expectation),
                           Reason.VALUE_OUT_OF_RANGE, f"are NaN or outside [{low}, {high}]", extra)


def judge_timestamp_date(expectation: Expectation, context: JudgeContext) -> ExpectationResult:
    blocked = _unavailable(expectation, context, [expectation.column, expectation.date_column])
    if blocked is not None:
        return blocked
    return _mostly_verdict(
        expectation, context, *_counts_of(context, expectation), Reason.DATE_MISMATCH,
        f"have '{expectation.date_column}' different from the date of '{expectation.column}' "
        f"in {expectation.time_zone}",
        {"time_zone": expectation.time_zone},
    )


def judge_not_after(expectation: Expectation, context: JudgeContext) -> ExpectationResult:
    blocked = _unavailable(expectation, context, [expectation.column])
    if blocked is not None:
        return blocked
    limit = context.as_of + timedelta(minutes=expectation.tolerance_minutes or 0)
    return _mostly_verdict(
        expectation, context, *_counts_of(context, expectation),
        Reason.TIMESTAMP_AFTER_AS_OF, f"are later than the as-of time plus tolerance ({limit.isoformat()})",
        {"as_of": context.as_of.isoformat()},
    )


def _bounded_count(expectation: Expectation, observed: int, reason: str, what: str) -> ExpectationResult:
    low, high = expectation.min_value, expectation.max_value
    inside = (low is None or observed >= low) and (high is None or observed <= high)
    bounds = f"[{'-inf' if low is None else f'{low:,.0f}'}, {'+inf' if high is None else f'{high:,.0f}'}]"
    values = dict(observed_value=float(observed), threshold_low=low, threshold_high=high,
                  evaluated_count=observed)
    if inside:
        return _result(expectation, PASSED, Reason.OK, f"{what} {observed:,} is within {bounds}", **values)
    return _result(expectation, FAILED, reason, f"{what} {observed:,} is outside {bounds}", **values)


def judge_row_count(expectation: Expectation, context: JudgeContext) -> ExpectationResult:
    result = _bounded_count(expectation, context.rows, Reason.ROW_COUNT_OUT_OF_RANGE, "row count")
    if context.rows == 0:
        return _with_reason(result, Reason.EMPTY_PARTITION, "the partition has no rows")
    return result


def _with_reason(result: ExpectationResult, reason: str, message: str) -> ExpectationResult:
    return replace(result, status=FAILED, reason_code=reason, message=message)


def judge_distinct(expectation: Expectation, context: JudgeContext) -> ExpectationResult:
    blocked = _unavailable(expectation, context, [expectation.column])
    if blocked is not None:
        return blocked
    observed = context.metrics.get(f"distinct:{expectation.column}")
    if observed is None:
        return _result(expectation, ERRORED, Reason.METRIC_MISSING, "distinct count was not computed")
    result = _bounded_count(expectation, int(observed), Reason.DISTINCT_COUNT_OUT_OF_RANGE,
                            f"distinct non-null '{expectation.column}'")
    if context.rows == 0:
        return _with_reason(result, Reason.EMPTY_PARTITION, "the partition has no rows")
    return result


def judge_max_lag(expectation: Expectation, context: JudgeContext) -> ExpectationResult:
    blocked = _unavailable(expectation, context, [expectation.column])
    if blocked is not None:
        return blocked
    newest = context.metrics.get(f"max:{expectation.column}")
    limit_hours = expectation.max_lag_hours
    if context.rows == 0:
        return _result(expectation, ERRORED, Reason.EMPTY_PARTITION,
                       "the partition has no rows, so its newest event is unknown",
                       threshold_high=limit_hours)
    if newest is None:
        return _result(expectation, ERRORED, Reason.NO_VALUES,
                       f"'{expectation.column}' has no values, so freshness is unknown",
                       threshold_high=limit_hours)
    newest_at = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=int(newest))
    lag_hours = (context.as_of - newest_at).total_seconds() / 3600.0
    values = dict(observed_value=lag_hours, threshold_high=limit_hours,
                  details={"newest": newest_at.isoformat(), "as_of": context.as_of.isoformat()})
    if lag_hours <= limit_hours:
        return _result(expectation, PASSED, Reason.OK,
                       f"newest event {newest_at.isoformat()} is {lag_hours:.2f} h before the as-of "
                       f"time (limit {limit_hours:g} h)", **values)
    return _result(expectation, FAILED, Reason.DATA_STALE,
                   f"newest event {newest_at.isoformat()} is {lag_hours:.2f} h before the as-of time "
                   f"{context.as_of.isoformat()}; the limit is {limit_hours:g} h", **values)


def judge_partition_date(expectation: Expectation, context: JudgeContext) -> ExpectationResult:
    blocked = _unavailable(expectation, context, [expectation.column])
    if blocked is not None:
        return blocked
    extra = {
        "expected": context.partition_date.isoformat(),
        "min_observed": str(context.metrics.get(f"min:{expectation.column}")),
        "max_observed": str(context.metrics.get(f"max:{expectation.column}")),
    }
    return _mostly_verdict(expectation, context, *_counts_of(context, expectation),
                           Reason.PARTITION_DATE_MISMATCH,
                           f"are null or not on the partition date {context.partition_date.isoformat()}",
                           extra)


def judge_matches_regex(expectation: Expectation, context: JudgeContext) -> ExpectationResult:
    blocked = _unavailable(expectation, context, [expectation.column])
    if blocked is not None:
        return blocked
    offending = context.metrics.get(f"unexpected_values:{expectation.id}") or []
    samples = [item["value"] for item in offending]
    extra = {"pattern": expectation.pattern, "unexpected_values": offending}
    result = _mostly_verdict(expectation, context, *_counts_of(context, expectation),
                             Reason.PATTERN_MISMATCH, f"do not match the pattern '{expectation.pattern}'",
                             extra)
    if result.status == FAILED and samples:
        listing = ", ".join(f"'{s}'" for s in samples)
        result = _with_message(result, f"{result.message}; e.g. {listing}")
    return result


def judge_date_not_after(expectation: Expectation, context: JudgeContext) -> ExpectationResult:
    blocked = _unavailable(expectation, context, [expectation.column])
    if blocked is not None:
        return blocked
    extra = {
        "partition_date": context.partition_date.isoformat(),
        "max_observed": str(context.metrics.get(f"max:{expectation.column}")),
    }
    return _mostly_verdict(expectation, context, *_counts_of(context, expectation),
                           Reason.VALUE_OUT_OF_RANGE,
                           f"are later than the partition date {context.partition_date.isoformat()}",
                           extra)


def judge_max_date_lag(expectation: Expectation, context: JudgeContext) -> ExpectationResult:
    """Fail when the newest date of the column is more than ``max_lag_days`` before the
    partition date (a feed that stopped receiving new entries)."""
    blocked = _unavailable(expectation, context, [expectation.column])
    if blocked is not None:
        return blocked
    limit_days = expectation.max_lag_days
    if context.rows == 0:
        return _result(expectation, ERRORED, Reason.EMPTY_PARTITION,
                       "the partition has no rows, so its newest date is unknown",
                       threshold_high=limit_days)
    newest = context.metrics.get(f"max:{expectation.column}")
    if newest is None:
        return _result(expectation, ERRORED, Reason.NO_VALUES,
                       f"'{expectation.column}' has no values, so its newest date is unknown",
                       threshold_high=limit_days)
    lag_days = (context.partition_date - newest).days
    values = dict(observed_value=float(lag_days), threshold_high=limit_days,
                  details={"newest": newest.isoformat(),
                           "partition_date": context.partition_date.isoformat()})
    text = (f"newest '{expectation.column}' {newest.isoformat()} is {format_count(lag_days, 'day')} "
            f"before the partition date {context.partition_date.isoformat()} (limit "
            f"{format_count(limit_days, 'day')})")
    if lag_days <= limit_days:
        return _result(expectation, PASSED, Reason.OK, text, **values)
    return _result(expectation, FAILED, Reason.DATA_STALE, text, **values)


def _reference_problem(
    expectation: Expectation,
    context: JudgeContext,
    reference: Profile | None,
    current: Profile,
    measure: str,
    values: dict[str, Any],
) -> ExpectationResult | None:
    """Return the errored result when ``reference`` cannot be compared with ``current``, else None."""
    minimum = context.contract.reference.min_partitions
    too_few = (reference is not None and not reference.named
               and 0 < len(reference.partitions) < minimum)
    if reference is None or reference.total <= 0 or too_few:
        severity = "error" if context.contract.reference.when_missing == "fail" else "warn"
        if too_few:
            message = (f"the reference window has "
                       f"{format_count(len(reference.partitions), 'accepted partition')}, the "
                       f"contract requires at least {minimum}")
        else:
            message = (f"no accepted partition in the "
                       f"{context.contract.reference.window_days}-day window before this one has "
                       "a stored profile")
        result = _result(expectation, ERRORED, Reason.NO_REFERENCE, message, **values)
        return replace(result, severity=severity)
    if reference.signature() != current.signature():
        return _result(expectation, ERRORED, Reason.METRIC_MISSING,
                       f"the reference's bins differ from this partition's, so the {measure} is "
                       "undefined", **values)
    return None


def judge_category_volume(
    expectation: Expectation, context: JudgeContext
) -> tuple[ExpectationResult, list[MetricRow]]:
    """Compare each category's volume change with the usual change of the partition.

    A category's change is count / mean, the mean taken per reference partition. Its ratio is
    that change divided by a baseline: the median change of the judged categories when there
    are three or more, so one broken category cannot drag the baseline, else the change of all
    other categories together. Whole-day swings (a weekend, a holiday) move the baseline too,
    so they cancel. A platform that loses most of its events is still caught when the day's
    total and the share-based PSI stay within bounds. Categories whose reference mean is below
    ``min_reference_rows`` are listed, not judged.
    """
    blocked = _unavailable(expectation, context, [expectation.column])
    if blocked is not None:
        return blocked, []
    low, high = expectation.min_value, expectation.max_value
    values: dict[str, Any] = dict(threshold_low=low, threshold_high=high)
    if context.rows == 0:
        # Like the other volume checks, no rows at all is a failed volume, not a missing one.
        return _result(expectation, FAILED, Reason.EMPTY_PARTITION,
                       "the partition has no rows in any category", **values), []
    current = current_profile(expectation, context.contract, context.metrics)
    reference = context.references.get(expectation.id)
    problem = _reference_problem(expectation, context, reference, current, "volume ratio", values)
    if problem is not None:
        return problem, []
    days = len(reference.partitions) or 1
    floor = expectation.min_reference_rows or 0
    changes: dict[str, tuple[int, int, float, float]] = {}
    skipped = []
    for index, (usual_bin, bin_now) in enumerate(zip(reference.bins, current.bins)):
        usual = usual_bin.count / days
        if usual_bin.label == OTHER_LABEL:
            continue
        if usual < floor or usual <= 0:
            skipped.append(usual_bin.label)
            continue
        changes[usual_bin.label] = (index, bin_now.count, usual, bin_now.count / usual)
    bounds = f"[{'-' if low is None else f'{low:g}'}, {'-' if high is None else f'{high:g}'}]"
    if not changes:
        details = {"categories": [], "not_judged": skipped}
        return _result(expectation, ERRORED, Reason.NO_VALUES,
                       f"no category of '{expectation.column}' has a reference mean of at least "
                       f"{format_count(floor, 'row')} per partition", details=details, **values), []
    median = statistics.median(change for *_, change in changes.values())
    judged, outside, rows = [], [], []
    worst: float | None = None
    for label, (index, count, usual, change) in changes.items():
        if len(changes) >= 3:
            baseline = median
        else:
            rest_usual = reference.total / days - usual
            baseline = (current.total - count) / rest_usual if rest_usual > 0 else 1.0
        ratio = change / baseline if baseline > 0 else math.inf
        judged.append({"category": label, "count": count, "reference_mean": round(usual, 3),
                       "change": round(change, 6), "baseline_change": round(baseline, 6),
                       "ratio": round(ratio, 6)})
        rows.append(MetricRow("category_volume_ratio", expectation.column, expectation.id, index,
                              label, value=ratio))
        if worst is None or abs(math.log(max(ratio, 1e-12))) > abs(math.log(max(worst, 1e-12))):
            worst = ratio
        if (low is not None and ratio < low) or (high is not None and ratio > high):
            outside.append(f"'{label}' has {format_count(count, 'row')}, {change:.2f}x its mean of "
                           f"{usual:,.0f}, "
                           f"against a usual change of {baseline:.2f}x: ratio {ratio:.2f}")
    details = {"categories": judged, "not_judged": skipped,
               "baseline": "median" if len(changes) >= 3 else "rest",
               "reference_partitions": [d.isoformat() for d in reference.partitions]}
    values.update(observed_value=worst, details=details, evaluated_count=len(judged))
    if outside:
        return _result(expectation, FAILED, Reason.CATEGORY_VOLUME_OUT_OF_RANGE,
                       f"{'; '.join(outside)} over {format_count(days, 'reference partition')}; "
                       f"allowed ratio {bounds}", failed_count=len(outside), **values), rows
    return _result(expectation, PASSED, Reason.OK,
                   f"{format_count(len(judged), 'category', 'categories')} of '{expectation.column}' "
                   f"within {bounds} of the usual change over "
                   f"{format_count(days, 'reference partition')}", failed_count=0, **values), rows


def judge_psi(expectation: Expectation, context: JudgeContext) -> tuple[ExpectationResult, list[MetricRow]]:
    blocked = _unavailable(expectation, context, [expectation.column])
    if blocked is not None:
        return blocked, []
    counts = _column_counts(context, expectation.column)
    if context.rows == 0:
        return _result(expectation, ERRORED, Reason.EMPTY_PARTITION,
                       "the partition has no rows, so drift could not be computed", **counts), []
    current = current_profile(expectation, context.contract, context.metrics)
    threshold = dict(threshold_high=expectation.max_psi, **counts)
    if current.total <= 0:
        return _result(expectation, ERRORED, Reason.NO_VALUES,
                       f"'{expectation.column}' has no values to compare", **threshold), []
    reference = context.references.get(expectation.id)
    problem = _reference_problem(expectation, context, reference, current, "PSI", threshold)
    if problem is not None:
        return problem, []

    if expectation.distribution == "numeric":
        cuts = quantile_cuts(reference.counts, expectation.quantile_bins)
        expected = coarsen(reference.counts, cuts)
        actual = coarsen(current.counts, cuts)
        edges = [None, *[reference.bins[i].lower for i in cuts], None]
        labels = [f"q{i}" for i in range(len(expected))]
    else:
        expected, actual = reference.counts, current.counts
        edges = None
        labels = [b.label for b in reference.bins]
    value = psi(expected, actual, context.contract.psi_epsilon)
    rows: list[MetricRow] = [MetricRow("psi", expectation.column, expectation.id, value=value)]
    for index, label in enumerate(labels):
        lower = edges[index] if edges else None
        upper = edges[index + 1] if edges else None
        for name, count in (("psi_bin_expected", expected[index]), ("psi_bin_actual", actual[index])):
            rows.append(MetricRow(name, expectation.column, expectation.id, index, label, lower, upper, int(count)))
    details = {
        "bins": labels,
        "expected": [int(c) for c in expected],
        "actual": [int(c) for c in actual],
        "reference_partitions": [d.isoformat() for d in reference.partitions],
        "epsilon": context.contract.psi_epsilon,
    }
    values = dict(observed_value=value, details=details, evaluated_count=current.total, **threshold)
    if value < expectation.max_psi:
        return _result(expectation, PASSED, Reason.OK,
                       f"PSI {value:.4f} < {expectation.max_psi:g} against "
                       f"{format_count(len(reference.partitions), 'reference partition')}",
                       **values), rows
    return _result(expectation, FAILED, Reason.PSI_ABOVE_THRESHOLD,
                   f"PSI {value:.4f} is at or above {expectation.max_psi:g} against "
                   f"{format_count(len(reference.partitions), 'reference partition')}", **values), rows


_JUDGES = {
    "columns_present": judge_columns_present,
    "column_types_match": judge_column_types,
    "no_unexpected_columns": judge_no_unexpected,
    "column_is_instant": judge_instant,
    "primary_key_unique": judge_primary_key,
    "not_null": judge_not_null,
    "in_set": judge_in_set,
    "between": judge_between,
    "timestamp_matches_date": judge_timestamp_date,
    "timestamp_not_after_as_of": judge_not_after,
    "row_count_between": judge_row_count,
    "distinct_count_between": judge_distinct,
    "max_timestamp_lag": judge_max_lag,
    "partition_date_matches": judge_partition_date,
    "matches_regex": judge_matches_regex,
    "date_not_after_partition": judge_date_not_after,
    "max_date_lag": judge_max_date_lag,
}


def judge(expectation: Expectation, context: JudgeContext) -> tuple[ExpectationResult, list[MetricRow]]:
    """Judge one expectation; drift checks also return their bin rows."""
    if expectation.type == "psi_below":
        return judge_psi(expectation, context)
    if expectation.type == "category_volume_ratio":
        return judge_category_volume(expectation, context)
    return _JUDGES[expectation.type](expectation, context), []


def judge_all(context: JudgeContext) -> tuple[list[ExpectationResult], list[MetricRow]]:
    results: list[ExpectationResult] = []
    rows: list[MetricRow] = []
    for expectation in context.contract.expectations:
        result, metric_rows = judge(expectation, context)
        results.append(result)
        rows.extend(metric_rows)
    return results, rows


def expectation_blocks_pipeline(contract: Contract, expectation: Expectation) -> bool:
    """Return whether a blocking failure of ``expectation`` stops the pipeline.

    The expectation's own ``blocks_pipeline`` wins; without it the contract's applies, which
    defaults by SLA tier (critical feeds stop the pipeline, standard feeds do not).
    """
    if expectation.blocks_pipeline is not None:
        return expectation.blocks_pipeline
    return contract.blocks_pipeline


def pipeline_blocked(contract: Contract, results: list[ExpectationResult]) -> bool:
    """True when a failed or errored ``error`` check stops the pipeline (exit code 1).

    A result whose id is not in the contract (``judge_all`` never produces one) follows the
    contract's ``blocks_pipeline``.
    """
    by_id = {expectation.id: expectation for expectation in contract.expectations}
    for result in results:
        if not result.blocking:
            continue
        expectation = by_id.get(result.expectation_id)
        if expectation is None:
            stops = contract.blocks_pipeline
        else:
            stops = expectation_blocks_pipeline(contract, expectation)
        if stops:
            return True
    return False
