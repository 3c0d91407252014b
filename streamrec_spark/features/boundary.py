"""Declared-schema checks on Spark DataFrames at a function's boundary.

:func:`check_frame` counts the offending rows of every rule of a declared schema in one
aggregation, then fetches a few sample values for the failed rules only, so a passing
DataFrame costs one Spark job. :func:`enforce_schemas` applies it to a function's first
argument and to its result; a violation raises :class:`SchemaViolationError` listing each
failed rule with its count and samples.

Each checked call is also handed to the recorder set by :func:`recording_boundaries`, when
one is set, which stores it in the result tables like any other validation run.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from streamrec_spark.errors import SchemaViolationError
from streamrec_spark.features.schema import DeclaredColumn, DeclaredSchema, named_schema
from streamrec_spark.validation.metrics import col
from streamrec_spark.validation.results import Reason

logger = logging.getLogger(__name__)

# How many distinct offending values (or duplicated keys) a failed rule lists.
SAMPLE_VALUES = 5

INPUT = "input"
OUTPUT = "output"

# The category each rule kind is stored under, as the contract expectations are.
RULE_CATEGORIES = {
    "present": "schema",
    "type": "schema",
    "extra_columns": "schema",
    "unique_key": "schema",
    "not_null": "completeness",
    "in_set": "value_range",
    "range": "value_range",
}


@dataclass(frozen=True)
class SampleValue:
    """An offending value (or duplicated key) and how many rows have it."""

    value: str
    count: int


@dataclass(frozen=True)
class RuleOutcome:
    """The verdict of one rule of a declared schema on one DataFrame."""

    rule_id: str
    kind: str
    column: str | None
    passed: bool
    reason_code: str
    message: str
    evaluated_count: int | None = None
    failed_count: int = 0
    samples: tuple[SampleValue, ...] = ()

    @property
    def category(self) -> str:
        return RULE_CATEGORIES[self.kind]


@dataclass(frozen=True)
class BoundaryReport:
    """Every rule's outcome for one DataFrame at one side (input or output) of a boundary."""

    boundary: str
    side: str
    schema: DeclaredSchema
    row_count: int | None
    rules: tuple[RuleOutcome, ...]

    @property
    def passed(self) -> bool:
        return all(rule.passed for rule in self.rules)

    @property
    def failures(self) -> tuple[RuleOutcome, ...]:
        return tuple(rule for rule in self.rules if not rule.passed)

    def rule(self, rule_id: str) -> RuleOutcome:
        for rule in self.rules:
            if rule.rule_id == rule_id:
                return rule
        raise KeyError(rule_id)

    def describe(self) -> str:
        """Render the failed rules, one per line, for error messages and logs."""
        rows = "unknown" if self.row_count is None else f"{self.row_count:,}"
        head = (f"{self.boundary} {self.side} violates the declared schema '{self.schema.name}' "
                f"({self.schema.source_file}): {len(self.failures)} of {len(self.rules)} rules "
                f"failed over {rows} rows")
        lines = [head]
        for rule in self.failures:
            line = f"  {rule.rule_id} [{rule.reason_code}]: {rule.message}"
            if rule.samples:
                listing = ", ".join(f"'{s.value}' ({s.count:,} rows)" for s in rule.samples)
                line += f"; samples: {listing}"
            lines.append(line)
        return "\n".join(lines)


BoundaryRecorder = Callable[[str, list[BoundaryReport]], None]
_RECORDER: ContextVar[BoundaryRecorder | None] = ContextVar("boundary_recorder", default=None)


@contextlib.contextmanager
def recording_boundaries(recorder: BoundaryRecorder) -> Iterator[None]:
    """Hand every boundary check made inside the block to ``recorder(boundary, reports)``.

    The recorder receives the reports of one checked call together: the input report, and the
    output report when the function ran. Outside such a block checks are not recorded.
    """
    token = _RECORDER.set(recorder)
    try:
        yield
    finally:
        _RECORDER.reset(token)


def _missing(value: Column, spec: DeclaredColumn) -> Column:
    """Null, NaN for floating columns, and a blank string for a required string column."""
    condition = value.isNull()
    if spec.is_floating:
        condition = condition | F.isnan(value)
    if spec.type == "string" and not spec.nullable:
        condition = condition | (F.trim(value) == F.lit(""))
    return condition


def _out_of_range(value: Column, spec: DeclaredColumn) -> Column:
    condition = F.isnan(value) if spec.is_floating else F.lit(False)
    if spec.min_value is not None:
        condition = condition | (value < F.lit(spec.min_value))
    if spec.max_value is not None:
        condition = condition | (value > F.lit(spec.max_value))
    return condition


@dataclass
class _Plan:
    aggregates: dict[str, Column]
    failing: dict[str, Column]  # rule id -> row condition, for fetching samples


def _plan(schema: DeclaredSchema, usable: list[DeclaredColumn], key_usable: bool) -> _Plan:
    plan = _Plan(aggregates={"rows": F.count(F.lit(1))}, failing={})

    def count_where(key: str, condition: Column) -> None:
        plan.aggregates[key] = F.count(F.when(condition, F.lit(1)))

    for spec in usable:
        value = col(spec.name)
        if not spec.nullable:
            rule_id = f"{spec.name}:not_null"
            count_where(f"fail:{rule_id}", _missing(value, spec))
        if spec.allowed_values is not None:
            rule_id = f"{spec.name}:in_set"
            valid = ~_missing(value, spec)
            failing = valid & ~value.isin([F.lit(v) for v in spec.allowed_values])
            count_where(f"eval:{rule_id}", valid)
            count_where(f"fail:{rule_id}", failing)
            plan.failing[rule_id] = failing
        if spec.min_value is not None or spec.max_value is not None:
            rule_id = f"{spec.name}:range"
            valid = value.isNotNull()
            failing = valid & _out_of_range(value, spec)
            count_where(f"eval:{rule_id}", valid)
            count_where(f"fail:{rule_id}", failing)
            plan.failing[rule_id] = failing
    if key_usable:
        keys = [col(name) for name in schema.unique_key]
        complete = functools.reduce(lambda a, b: a & b, [k.isNotNull() for k in keys])
        count_where("key_rows", complete)
        # count_distinct skips rows with a null in any key column, as key_rows does.
        plan.aggregates["key_distinct"] = F.count_distinct(*keys)
    return plan


def _value_samples(df: DataFrame, column: str, failing: Column) -> tuple[SampleValue, ...]:
    rows = (
        df.where(failing)
        .groupBy(col(column).alias("value"))
        .count()
        .orderBy(F.col("count").desc(), F.col("value"))
        .limit(SAMPLE_VALUES)
        .collect()
    )
    return tuple(SampleValue(str(row["value"]), int(row["count"])) for row in rows)


def _key_samples(df: DataFrame, key: tuple[str, ...]) -> tuple[SampleValue, ...]:
    keys = [col(name) for name in key]
    rows = (
        df.where(functools.reduce(lambda a, b: a & b, [k.isNotNull() for k in keys]))
        .groupBy(*keys)
        .count()
        .where(F.col("count") > 1)
        .orderBy(F.col("count").desc(), *keys)
        .limit(SAMPLE_VALUES)
        .collect()
    )
    return tuple(
        SampleValue(", ".join(f"{name}={row[name]}" for name in key), int(row["count"]))
        for row in rows
    )


def _schema_rules(
    schema: DeclaredSchema, actual: dict[str, str]
) -> tuple[list[RuleOutcome], list[DeclaredColumn]]:
    """Presence, type and extra-column rules, which need no Spark job; plus usable columns."""
    rules: list[RuleOutcome] = []
    usable: list[DeclaredColumn] = []
    for spec in schema.columns:
        found = actual.get(spec.name)
        if found is None:
            rules.append(RuleOutcome(
                f"{spec.name}:present", "present", spec.name, False, Reason.COLUMN_MISSING,
                f"column '{spec.name}' is missing; columns found: {', '.join(actual) or 'none'}",
                failed_count=1,
            ))
            continue
        rules.append(RuleOutcome(f"{spec.name}:present", "present", spec.name, True, Reason.OK,
                                 f"column '{spec.name}' is present"))
        if found != spec.type:
            rules.append(RuleOutcome(
                f"{spec.name}:type", "type", spec.name, False, Reason.COLUMN_TYPE_MISMATCH,
                f"column '{spec.name}' is {found}, expected {spec.type}", failed_count=1,
            ))
            continue
        rules.append(RuleOutcome(f"{spec.name}:type", "type", spec.name, True, Reason.OK,
                                 f"column '{spec.name}' is {spec.type}"))
        usable.append(spec)
    if schema.extra_columns == "reject":
        declared = {spec.name for spec in schema.columns}
        extra = [name for name in actual if name not in declared]
        rules.append(RuleOutcome(
            "extra_columns", "extra_columns", None, not extra,
            Reason.UNEXPECTED_COLUMN if extra else Reason.OK,
            f"columns not in the schema: {', '.join(extra)}" if extra else "no undeclared columns",
            failed_count=len(extra),
            samples=tuple(SampleValue(name, 1) for name in extra[:SAMPLE_VALUES]),
        ))
    return rules, usable


def _count_rule(
    rule_id: str, kind: str, spec: DeclaredColumn, metrics: dict[str, Any], rows: int
) -> RuleOutcome:
    evaluated = rows if kind == "not_null" else int(metrics[f"eval:{rule_id}"])
    failed = int(metrics[f"fail:{rule_id}"])
    if kind == "not_null":
        reason, what = Reason.MISSING_VALUES, "are missing (null, NaN or blank)"
    elif kind == "in_set":
        allowed = ", ".join(str(v) for v in spec.allowed_values)
        reason, what = Reason.VALUE_NOT_IN_SET, f"are outside {{{allowed}}}"
    else:
        low = "-inf" if spec.min_value is None else f"{spec.min_value:g}"
        high = "+inf" if spec.max_value is None else f"{spec.max_value:g}"
        reason, what = Reason.VALUE_OUT_OF_RANGE, f"are NaN or outside [{low}, {high}]"
    if failed:
        message = f"{failed:,} of {evaluated:,} rows of '{spec.name}' {what}"
        return RuleOutcome(rule_id, kind, spec.name, False, reason, message, evaluated, failed)
    message = f"all {evaluated:,} checked rows of '{spec.name}' pass"
    return RuleOutcome(rule_id, kind, spec.name, True, Reason.OK, message, evaluated, 0)


def check_frame(
    df: DataFrame, schema: DeclaredSchema, boundary: str = "", side: str = INPUT
) -> BoundaryReport:
    """Check ``df`` against ``schema`` and return every rule's outcome, without raising on
    violations.

    Missing or mistyped columns fail their own rules and are left out of the row-level rules,
    so the aggregation never refers to a column that is not there. All row-level counts run
    as one aggregation; each failed value rule adds one small job for its samples.
    """
    actual = {field.name: field.dataType.simpleString() for field in df.schema.fields}
    rules, usable = _schema_rules(schema, actual)
    usable_names = {spec.name for spec in usable}
    key_usable = bool(schema.unique_key) and all(name in usable_names for name in schema.unique_key)

    plan = _plan(schema, usable, key_usable)
    metrics = df.agg(*[expr.alias(name) for name, expr in plan.aggregates.items()]).collect()[0].asDict()
    rows = int(metrics["rows"])
    for spec in usable:
        kinds = []
        if not spec.nullable:
            kinds.append("not_null")
        if spec.allowed_values is not None:
            kinds.append("in_set")
        if spec.min_value is not None or spec.max_value is not None:
            kinds.append("range")
        for kind in kinds:
            outcome = _count_rule(f"{spec.name}:{kind}", kind, spec, metrics, rows)
            if not outcome.passed and outcome.rule_id in plan.failing:
                samples = _value_samples(df, spec.name, plan.failing[outcome.rule_id])
                outcome = replace(outcome, samples=samples)
            rules.append(outcome)
    if schema.unique_key:
        rules.append(_key_rule(df, schema, metrics, key_usable))
    report = BoundaryReport(boundary, side, schema, rows, tuple(rules))
    logger.info("%s %s: %d rows, %d of %d rules of '%s' failed", boundary, side, rows,
                len(report.failures), len(report.rules), schema.name)
    return report


def _key_rule(
    df: DataFrame, schema: DeclaredSchema, metrics: dict[str, Any], usable: bool
) -> RuleOutcome:
    key_text = ", ".join(schema.unique_key)
    if not usable:
        return RuleOutcome("unique_key", "unique_key", None, False, Reason.COLUMN_UNAVAILABLE,
                           f"the key ({key_text}) has a missing or mistyped column, so uniqueness "
                           "could not be checked", failed_count=1)
    key_rows = int(metrics["key_rows"])
    surplus = key_rows - int(metrics["key_distinct"])
    if surplus:
        return RuleOutcome("unique_key", "unique_key", None, False, Reason.DUPLICATE_KEY,
                           f"{surplus:,} surplus rows repeat a ({key_text}) value; one row per key "
                           "is required", key_rows, surplus, _key_samples(df, schema.unique_key))
    return RuleOutcome("unique_key", "unique_key", None, True, Reason.OK,
                       f"({key_text}) is unique over {key_rows:,} rows", key_rows, 0)


def _resolve(schema: DeclaredSchema | str | None) -> DeclaredSchema | None:
    if schema is None or isinstance(schema, DeclaredSchema):
        return schema
    return named_schema(schema)


def _raise_if_failed(report: BoundaryReport) -> None:
    if not report.passed:
        raise SchemaViolationError(report.describe(), boundary=f"{report.boundary}:{report.side}",
                                   report=report)


def check_boundary(
    df: DataFrame, schema: DeclaredSchema | str, boundary: str, side: str = INPUT
) -> BoundaryReport:
    """Check ``df`` at a boundary, record the report when a recorder is set, and raise
    SchemaViolationError (exit code 1) when any rule failed. A str names
    ``conf/schemas/<name>.yaml``."""
    report = check_frame(df, _resolve(schema), boundary, side)
    recorder = _RECORDER.get()
    if recorder is not None:
        recorder(boundary, [report])
    _raise_if_failed(report)
    return report


FunctionT = TypeVar("FunctionT", bound=Callable[..., DataFrame])


def enforce_schemas(
    boundary: str,
    input_schema: DeclaredSchema | str | None = None,
    output_schema: DeclaredSchema | str | None = None,
) -> Callable[[FunctionT], FunctionT]:
    """Decorate a DataFrame function so its first argument and its result are checked.

    ``input_schema`` and ``output_schema`` are declared schemas or names of
    ``conf/schemas/<name>.yaml``
    files, loaded on the first call. The input is checked before the function runs and the
    result after it returns, and either violation raises SchemaViolationError with every
    failed rule. The reports of one call go to the recorder of :func:`recording_boundaries`
    together, including the input report of a call whose function then failed.
    """

    def decorate(function: FunctionT) -> FunctionT:
        @functools.wraps(function)
        def checked(df: DataFrame, *args: Any, **kwargs: Any) -> DataFrame:
            reports: list[BoundaryReport] = []
            try:
                if input_schema is not None:
                    reports.append(check_frame(df, _resolve(input_schema), boundary, INPUT))
                    _raise_if_failed(reports[-1])
                result = function(df, *args, **kwargs)
                if output_schema is not None:
                    reports.append(check_frame(result, _resolve(output_schema), boundary, OUTPUT))
                    _raise_if_failed(reports[-1])
                return result
            finally:
                recorder = _RECORDER.get()
                if recorder is not None and reports:
                    recorder(boundary, reports)

        checked.boundary = boundary  # type: ignore[attr-defined]
        checked.input_schema = input_schema  # type: ignore[attr-defined]
        checked.output_schema = output_schema  # type: ignore[attr-defined]
        return checked  # type: ignore[return-value]

    return decorate
