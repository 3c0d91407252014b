"""The Spark side of validation: every scan-shareable metric of a suite in one aggregation.

``plan_metrics`` turns a contract and the arriving schema into named aggregate expressions,
histograms and keys to count exactly. ``compute_metrics`` runs them as a single ``agg`` over one
projection of the partition. The JVM taps of ``taps`` count the histograms and collect the
integral keys (primary-key hashes, user ids) in that same scan; other keys, and keys the taps
could not count, go through a shuffle pass. Verdicts read the resulting plain dict of numbers
(see ``verdicts``).
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from streamrec_spark.contracts.model import ColumnSpec, Contract, Expectation, Grid
from streamrec_spark.errors import InvalidRequestError
from streamrec_spark.validation import taps
from streamrec_spark.validation.schema_check import SchemaReport

logger = logging.getLogger(__name__)

ROWS = "rows"
# Spark setting: "false" counts exact keys with a shuffle pass, so the driver never merges the
# key sets, for a driver with less memory than the keys need.
KEY_TAPS_SETTING = "spark.streamrec.validation.keyTaps"


def col(name: str) -> Column:
    """Reference a column by its exact name, whatever characters it contains."""
    return F.col("`" + name.replace("`", "``") + "`")


def grid_span(grid: Grid) -> float:
    """Return the divisor of ``grid_index``: the grid's width on its scale."""
    if grid.scale == "log":
        return math.log1p(grid.upper - grid.lower)
    return grid.upper - grid.lower


def grid_index(value: Column, grid: Grid) -> Column:
    """Index of the grid bin holding ``value``, clamped to [0, bins - 1]; null for null or NaN.

    The value is read as a double. ``streamrec.spark.GridBins`` computes the same index in the
    JVM histogram tap, from thresholds derived from this expression.
    """
    value = value.cast("double")
    offset = value - F.lit(float(grid.lower))
    if grid.scale == "log":
        offset = F.log1p(offset)
    raw = F.floor(offset / F.lit(grid_span(grid)) * F.lit(float(grid.bins))).cast("int")
    return (
        F.when(value.isNull() | F.isnan(value), F.lit(None).cast("int"))
        .when(value < F.lit(float(grid.lower)), F.lit(0))
        .when(value >= F.lit(float(grid.upper)), F.lit(grid.bins - 1))
        .otherwise(F.least(F.greatest(raw, F.lit(0)), F.lit(grid.bins - 1)))
    )


@dataclass
class MetricPlan:
    """Named aggregate expressions, deduplicated by name, plus the columns they read."""

    projection: dict[str, Column] = field(default_factory=dict)
    aggregates: dict[str, Column] = field(default_factory=dict)
    # Expectation id -> (projected numeric column, its grid): counted as metrics grid:<id>:<bin>.
    histograms: dict[str, tuple[str, Grid]] = field(default_factory=dict)
    # (key, column) pairs counted exactly after the fused aggregation: "pk" or "distinct:<column>".
    exact_keys: dict[str, Column] = field(default_factory=dict)

    def add(self, key: str, expression: Column) -> None:
        self.aggregates.setdefault(key, expression.alias(key))

    def count_where(self, key: str, condition: Column) -> None:
        # count_if counts the rows where the condition is true, not false or null, and is 0 on
        # no rows. It is one function call into the JVM where count(when(cond, lit(1))) took three.
        self.add(key, F.count_if(condition))


def _missing_condition(column: Column, state_type: str, blanks_missing: bool) -> Column:
    condition = column.isNull()
    if state_type in ("double", "float"):
        condition = condition | F.isnan(column)
    if state_type == "string" and blanks_missing:
        condition = condition | (F.trim(column) == F.lit(""))
    return condition


def _literal(value: Any) -> Column:
    return F.lit(value)


def allowed_literals(spec: ColumnSpec) -> list[Column]:
    """Return the column's allowed values as literals, as strings for a string column.

    The loader already reads a string column's values as strings, but a contract built in code
    may hold integers. Compared with a string column, an integer literal makes Spark cast each
    value to a number, so that " 1" equals 1, and fails under ANSI mode on other values.
    """
    values = spec.allowed_values or ()
    if spec.type == "string":
        return [F.lit(str(value)) for value in values]
    return [F.lit(value) for value in values]


def category_column_name(name: str) -> str:
    """Return the name of the projected column with the index of ``name``'s allowed value."""
    return f"__category_{name}"


def category_index(value: Column, spec: ColumnSpec) -> Column:
    """Return the position of ``value`` among the column's allowed values, or null for a value
    outside them or null."""
    index = None
    for position, allowed in enumerate(allowed_literals(spec)):
        matched = value == allowed
        index = F.when(matched, F.lit(position)) if index is None else index.when(matched, F.lit(position))
    return index


def local_day_bounds(day: date, zone: str) -> tuple[int, int]:
    """Return the first and the first-after-last microsecond since the epoch of ``day`` in
    ``zone``. A day with a daylight-saving change is 23 or 25 hours long."""
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time.min, tz)
    end = datetime.combine(day + timedelta(days=1), time.min, tz)
    return int(start.timestamp() * 1_000_000), int(end.timestamp() * 1_000_000)


def value_conditions(expectation: Expectation, spec: ColumnSpec) -> tuple[Column, Column]:
    """Return (evaluated, failing) row conditions of a closed-set or pattern check.

    Null, NaN and, in a required string column, blank values are not evaluated: completeness
    reports them. The conditions are shared by the fused aggregation and by the query that
    lists a failed check's offending values.
    """
    value = col(spec.name)
    valid = ~_missing_condition(value, spec.type, not spec.nullable)
    if expectation.type == "in_set":
        return valid, valid & ~value.isin(allowed_literals(spec))
    # rlike finds the pattern anywhere, so the anchors make it match the whole value.
    return valid, valid & ~value.rlike(f"^(?:{expectation.pattern})$")


def key_missing_condition(contract: Contract, report: SchemaReport) -> Column:
    """Return the row condition of a missing primary key.

    A key is missing when any of its columns is null, NaN, or blank in a required string
    column, as completeness counts them. Missing keys are counted apart, not as key values.
    """
    condition = None
    for name in contract.primary_key:
        spec = report.columns[name].spec
        term = _missing_condition(col(name), spec.type, not spec.nullable)
        condition = term if condition is None else condition | term
    return condition


class _Planner:
    def __init__(self, contract: Contract, report: SchemaReport, partition_date: date, as_of: datetime):
        self.contract = contract
        self.report = report
        self.partition_date = partition_date
        self.as_of = as_of
        self.plan = MetricPlan()
        # Each column reference is made once: every Column the Python API makes is a call into
        # the JVM, and a plan reads each column in several expressions.
        self._references: dict[str, Column] = {}

    def col(self, name: str) -> Column:
        if name not in self._references:
            self._references[name] = col(name)
        return self._references[name]

    def column(self, name: str) -> Column:
        """Return the column as checks read it, converting a zone-less timestamp to an instant."""
        state = self.report.columns[name]
        if state.interpreted_zone is not None:
            # With the session in UTC, casting timestamp_ntz to timestamp keeps the wall-clock
            # fields; to_utc_timestamp then reads them as time in the declared zone.
            return F.to_utc_timestamp(self.col(name).cast("timestamp"), state.interpreted_zone)
        return self.col(name)

    def column_basics(self, name: str) -> None:
        state = self.report.columns[name]
        self.plan.projection.setdefault(name, self.column(name).alias(name))
        value = self.col(name)
        self.plan.count_where(f"null:{name}", value.isNull())
        if state.spec.type in ("double", "float"):
            self.plan.count_where(f"nan:{name}", F.isnan(value))
            finite = F.when(~F.isnan(value), value)
            self.plan.add(f"min:{name}", F.min(finite))
            self.plan.add(f"max:{name}", F.max(finite))
        elif state.spec.type == "string":
            self.plan.count_where(f"blank:{name}", F.trim(value) == F.lit(""))
        elif state.spec.type == "timestamp":
            # Microseconds since the epoch: collecting a timestamp would give a naive datetime
            # in the driver's local zone.
            self.plan.add(f"min:{name}", F.unix_micros(F.min(value)))
            self.plan.add(f"max:{name}", F.unix_micros(F.max(value)))
        elif state.spec.type in ("bigint", "int", "smallint", "date"):
            self.plan.add(f"min:{name}", F.min(value))
            self.plan.add(f"max:{name}", F.max(value))
        if state.spec.allowed_values:
            # Each row is matched against the allowed values once, in this projected index, and
            # the value counts and the closed-set check compare ints. Comparing the strings in
            # each count and again in the check's IN made the string comparisons a fifth of the
            # tasks' samples at 10M rows (Java Flight Recorder), and 0.15 s more task CPU.
            index_name = category_column_name(name)
            self.plan.projection.setdefault(index_name, category_index(value, state.spec).alias(index_name))
            index = self.col(index_name)
            for position, allowed in enumerate(state.spec.allowed_values):
                self.plan.count_where(f"value:{name}:{allowed}", index == F.lit(position))

    def expectation(self, expectation: Expectation) -> None:
        plan = self.plan
        key = expectation.id
        name = expectation.column
        kind = expectation.type
        if kind == "primary_key_unique":
            key_columns = self.contract.primary_key
            if not key_columns or not all(self.report.usable(c) for c in key_columns):
                return
            for column_name in key_columns:
                plan.projection.setdefault(column_name, self.column(column_name).alias(column_name))
            missing = key_missing_condition(self.contract, self.report)
            plan.count_where("pk_null", missing)
            plan.exact_keys["pk"] = F.when(~missing, F.xxhash64(*[self.col(c) for c in key_columns]))
            return
        if name is None or not self.report.usable(name):
            return
        state = self.report.columns[name]
        value = self.col(name)
        blanks_missing = not state.spec.nullable
        if kind in ("in_set", "matches_regex"):
            valid, failing = value_conditions(expectation, state.spec)
            if kind == "in_set":
                # The same rows as failing: valid values that match no allowed value.
                failing = valid & self.col(category_column_name(name)).isNull()
            plan.count_where(f"eval:{key}", valid)
            plan.count_where(f"fail:{key}", failing)
        elif kind == "between":
            valid = value.isNotNull()
            outside = F.lit(False)
            if state.spec.type in ("double", "float"):
                outside = F.isnan(value)
            if expectation.min_value is not None:
                outside = outside | (value < F.lit(expectation.min_value))
            if expectation.max_value is not None:
                outside = outside | (value > F.lit(expectation.max_value))
            plan.count_where(f"eval:{key}", valid)
            plan.count_where(f"fail:{key}", valid & outside)
        elif kind == "timestamp_matches_date":
            if not self.report.usable(expectation.date_column):
                return
            date_value = self.col(expectation.date_column)
            plan.projection.setdefault(
                expectation.date_column,
                self.column(expectation.date_column).alias(expectation.date_column),
            )
            # Rows dated on the partition day (nearly all) are compared with that local day's
            # bounds as instants, which are computed once here. Only the other rows pay for a
            # per-row time-zone conversion.
            start, end = local_day_bounds(self.partition_date, expectation.time_zone)
            micros = F.unix_micros(value)
            outside_day = (micros < F.lit(start)) | (micros >= F.lit(end))
            local_date = F.to_date(F.from_utc_timestamp(value, expectation.time_zone))
            mismatch = F.when(date_value == F.lit(self.partition_date), outside_day).otherwise(
                local_date != date_value
            )
            valid = value.isNotNull() & date_value.isNotNull()
            plan.count_where(f"eval:{key}", valid)
            plan.count_where(f"fail:{key}", valid & mismatch)
        elif kind == "timestamp_not_after_as_of":
            limit = self.as_of.timestamp() + 60.0 * (expectation.tolerance_minutes or 0.0)
            plan.count_where(f"eval:{key}", value.isNotNull())
            plan.count_where(f"fail:{key}", F.unix_micros(value) > F.lit(int(limit * 1_000_000)))
        elif kind == "date_not_after_partition":
            plan.count_where(f"eval:{key}", value.isNotNull())
            plan.count_where(f"fail:{key}", value > F.lit(self.partition_date))
        elif kind == "partition_date_matches":
            plan.count_where(f"eval:{key}", F.lit(True))
            plan.count_where(
                f"fail:{key}", value.isNull() | (value != F.lit(self.partition_date))
            )
        elif kind == "distinct_count_between":
            plan.exact_keys[f"distinct:{name}"] = value
        elif kind == "psi_below" and expectation.distribution == "numeric":
            plan.histograms[key] = (name, expectation.grid)


def plan_metrics(
    contract: Contract, report: SchemaReport, partition_date: date, as_of: datetime
) -> MetricPlan:
    """Build the aggregate expressions that every usable expectation of ``contract`` needs."""
    planner = _Planner(contract, report, partition_date, as_of)
    planner.plan.add(ROWS, F.count(F.lit(1)))
    for name, state in report.columns.items():
        if state.usable:
            planner.column_basics(name)
    for expectation in contract.expectations:
        planner.expectation(expectation)
    return planner.plan


def grid_index_column(key: str, name: str, grid: Grid) -> Column:
    """Return the bin index of column ``name`` on ``grid``, named for histogram ``key``."""
    return grid_index(col(name), grid).alias(f"__grid_{key}")


def bin_counts(key: str, bins: int) -> list[Column]:
    """Return one conditional count per bin, the histogram as plain aggregates without the
    taps, over the column of ``grid_index_column``."""
    index = col(f"__grid_{key}")
    return [
        F.count_if(index == F.lit(bin_index)).alias(f"grid:{key}:{bin_index}")
        for bin_index in range(bins)
    ]


def compute_metrics(df: DataFrame, plan: MetricPlan, tap_keys: bool = True) -> dict[str, Any]:
    """Run the fused aggregation and the exact key counts; return metric name -> value.

    One Spark job reads each needed column once and evaluates every aggregate. With the JVM
    taps it also fills the histograms and collects the integral keys. Keys that are not
    integral, or that the taps could not count, take a shuffle pass (see ``_shuffle_pass``), as
    all keys do with ``tap_keys`` false.
    """
    projected = df.select(*plan.projection.values()) if plan.projection else df.select()
    spark = df.sparkSession
    use_taps = bool(plan.histograms or plan.exact_keys) and taps.taps_available(spark)
    aggregates = list(plan.aggregates.values())
    # Taps, and without the jar the histograms' bin indexes.
    added_columns: list[Column] = []
    histogram_taps: dict[str, taps.HistogramTap] = {}
    key_taps: dict[str, taps.KeyTap] = {}

    def add_tap(column: Column, counted_as: str) -> None:
        name = f"__tap_{len(added_columns)}"
        added_columns.append(column.alias(name))
        aggregates.append(F.count(F.col(name)).alias(counted_as))

    for key, (name, grid) in plan.histograms.items():
        if use_taps:
            histogram_taps[key] = taps.grid_tap(spark, col(name).cast("double"), grid, grid_span(grid))
            add_tap(histogram_taps[key].column, f"tapped:{key}")
        else:
            added_columns.append(grid_index_column(key, name, grid))
            aggregates.extend(bin_counts(key, grid.bins))
    if key_taps_enabled(spark) and use_taps and tap_keys:
        for kind, value in plan.exact_keys.items():
            if kind == "pk" or _is_integral(projected, value):
                key_taps[kind] = taps.key_tap(spark, value)
                add_tap(key_taps[kind].column, f"tapped:{kind}")
    # The taps are nondeterministic, so Spark keeps them in this projection, evaluated once a
    # row, and never inside the aggregate functions.
    source = projected.select("*", *added_columns) if added_columns else projected
    try:
        row = _aggregate(source, aggregates, len(plan.projection) + len(added_columns))
    except Exception as error:  # noqa: BLE001 - only the result-size limit is handled here
        reason = _lost_result_reason(error)
        if not key_taps or reason is None:
            raise
        # The tasks' key sets travel to the driver as task results, which Spark caps at
        # spark.driver.maxResultSize, in total on the driver and for each task on the executor.
        logger.warning(
            "the key sets of %s did not reach the driver (%s); counting them with a shuffle pass "
            "instead (raise spark.driver.maxResultSize to keep them in one scan)",
            ", ".join(key_taps), reason,
        )
        return compute_metrics(df, plan, tap_keys=False)
    metrics = {name: value for name, value in row.items() if not name.startswith("tapped:")}
    for key, tap in histogram_taps.items():
        metrics.update(_read_histogram(projected, key, plan.histograms[key], tap, row[f"tapped:{key}"]))
    remaining = {kind: value for kind, value in plan.exact_keys.items() if kind not in key_taps}
    for kind, tap in key_taps.items():
        counts = _read_key_counts(kind, tap, row[f"tapped:{kind}"])
        if counts is None:
            remaining[kind] = plan.exact_keys[kind]
        elif kind == "pk":
            metrics["pk_duplicate_hashes"] = counts[1]
        else:
            metrics[kind] = counts[0]
    if remaining:
        metrics.update(_shuffle_pass(projected, remaining))
    return metrics


def key_taps_enabled(spark: SparkSession) -> bool:
    """Return whether the scan collects the exact keys, from ``--conf`` KEY_TAPS_SETTING.

    The setting is true (the default) or false; any other value is an invalid request.
    """
    value = spark.conf.get(KEY_TAPS_SETTING, "true").strip().lower()
    if value not in ("true", "false"):
        raise InvalidRequestError(
            f"--conf {KEY_TAPS_SETTING}={value} is neither true nor false; set true (the "
            "default) to count exact keys in the scan, or false to count them with a shuffle pass"
        )
    return value == "true"


def _lost_result_reason(error: Exception) -> str | None:
    """Return why a job's task results did not reach the driver, or None for another failure.

    The driver names spark.driver.maxResultSize when the results' total exceeds it. An executor
    instead drops a single result above it, and the driver then reports only that the task's
    result was lost (TaskResultLost), which a lost executor can also cause.
    """
    text = str(error)
    if "spark.driver.maxResultSize" in text:
        return "their total exceeds spark.driver.maxResultSize"
    if "TaskResultLost" in text:
        return "a task result was lost, as when one exceeds spark.driver.maxResultSize"
    return None


def _aggregate(source: DataFrame, aggregates: list[Column], columns: int) -> dict[str, Any]:
    # Whole-stage code generation is switched off for plans wider than
    # spark.sql.codegen.maxFields (100 in Spark 3.5), and the interpreted fallback made the
    # aggregation several times slower than a scan at 10M rows. The limit is raised for this
    # one query and restored after.
    #
    # Adaptive execution is switched off for it too. A global aggregation has one reducer and
    # nothing to adapt, and adaptive execution plans its final stage as a second job, about
    # 50 ms later (measured at 10M rows).
    spark = source.sparkSession
    max_fields = spark.conf.get("spark.sql.codegen.maxFields")
    adaptive = spark.conf.get("spark.sql.adaptive.enabled")
    needed = len(aggregates) + columns + 16
    if int(max_fields) < needed:
        spark.conf.set("spark.sql.codegen.maxFields", str(needed))
    spark.conf.set("spark.sql.adaptive.enabled", "false")
    try:
        return source.agg(*aggregates).collect()[0].asDict()
    finally:
        spark.conf.set("spark.sql.codegen.maxFields", max_fields)
        spark.conf.set("spark.sql.adaptive.enabled", adaptive)


def _read_histogram(
    projected: DataFrame, key: str, histogram: tuple[str, Grid], tap: taps.HistogramTap, tapped_rows: int
) -> dict[str, int]:
    counts = tap.counts()
    if tap.recorded() == tapped_rows == sum(counts):
        return {f"grid:{key}:{index}": count for index, count in enumerate(counts)}
    logger.warning(
        "histogram of %s recorded %d values where the aggregation counted %d; counting it "
        "again with one aggregate per bin", key, tap.recorded(), tapped_rows,
    )
    name, grid = histogram
    indexed = projected.select(grid_index_column(key, name, grid))
    return indexed.agg(*bin_counts(key, grid.bins)).collect()[0].asDict()


def _read_key_counts(kind: str, tap: taps.KeyTap, tapped_rows: int) -> tuple[int, int] | None:
    if tap.recorded() != tapped_rows:
        logger.warning(
            "key %s: the tap recorded %d keys where the aggregation counted %d; counting it "
            "with a shuffle pass instead", kind, tap.recorded(), tapped_rows,
        )
        return None
    counts = tap.counts()
    if counts is None:
        logger.warning(
            "key %s exceeded the key buffers' memory limit; counting it with a shuffle pass "
            "instead (raise spark.driver.memory, or the executor memory on a cluster, to avoid "
            "the extra pass)", kind,
        )
    return counts


def _shuffle_pass(projected: DataFrame, keys: dict[str, Column]) -> dict[str, int]:
    # One Spark job: each key kind is grouped on its own key in its own branch, and the
    # branches' one-row results are unioned. Branches read only their own key column, so no
    # column is decoded twice. Grouping each kind separately keeps the map-side hash tables
    # small for the many-repeats kinds (users) instead of sharing one table with the
    # nearly unique primary-key hashes. Measured at 10M rows: 8.4 s against 10.9 s for one
    # exchange keyed on (kind, key).
    logger.info("counting %s exactly with a shuffle pass", ", ".join(keys))
    branches = []
    for index, kind in enumerate(keys):
        value = keys[kind]
        if kind != "pk" and not _is_integral(projected, value):
            value = value.cast("string")
        counted = (
            projected.select(value.alias("key"))
            .where(F.col("key").isNotNull())
            .groupBy("key")
            .agg(F.count(F.lit(1)).alias("n"))
        )
        if kind == "pk":
            result = F.count(F.when(F.col("n") > 1, 1))
        else:
            result = F.count(F.lit(1))
        branches.append(counted.agg(result.alias("value")).select(F.lit(index).alias("kind"), "value"))
    rows = functools.reduce(DataFrame.unionByName, branches).collect()
    names = ["pk_duplicate_hashes" if kind == "pk" else kind for kind in keys]
    return {names[row["kind"]]: row["value"] for row in rows}


def _is_integral(df: DataFrame, value: Column) -> bool:
    return df.select(value).schema.fields[0].dataType.simpleString() in ("bigint", "int", "smallint", "tinyint")


def exact_duplicate_keys(
    df: DataFrame, key_columns: tuple[str, ...], missing: Column, samples: int = 5
) -> dict[str, Any]:
    """Count duplicated primary keys exactly, comparing the key values themselves.

    Called only when the hash pass found repeated hashes, which every true duplicate causes.
    This query separates a hash collision between different keys from a real duplicate. Rows
    where ``missing`` holds (see ``key_missing_condition``) are left out, as in the hash pass.
    """
    keys = [col(name) for name in key_columns]
    duplicated = (
        df.where(~missing)
        .groupBy(*keys)
        .agg(F.count(F.lit(1)).alias("n"))
        .where(F.col("n") > 1)
    )
    summary = duplicated.agg(
        F.count(F.lit(1)).alias("keys"),
        F.coalesce(F.sum(F.col("n") - 1), F.lit(0)).alias("extra_rows"),
    ).collect()[0]
    examples = duplicated.orderBy(F.col("n").desc(), *keys).limit(samples).collect()
    return {
        "pk_duplicate_keys": int(summary["keys"]),
        "pk_duplicate_rows": int(summary["extra_rows"]),
        "pk_duplicate_samples": [
            {**{name: str(row[name]) for name in key_columns}, "count": int(row["n"])} for row in examples
        ],
    }
