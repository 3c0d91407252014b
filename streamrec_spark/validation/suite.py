"""Run a contract's expectation suite on one partition: Spark metrics, then driver verdicts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from streamrec_spark.contracts.model import Contract
from streamrec_spark.validation import metrics as spark_metrics
from streamrec_spark.validation.profiles import PROFILED_TYPES, Profile, current_profile
from streamrec_spark.validation.results import ExpectationResult, MetricRow, run_status
from streamrec_spark.validation.schema_check import SchemaReport, check_schema
from streamrec_spark.validation.verdicts import JudgeContext, judge_all

logger = logging.getLogger(__name__)

# How many distinct unexpected values a failed closed-set check lists with their counts.
UNEXPECTED_VALUES_LISTED = 10

ReferenceLoader = Callable[[dict[str, Profile]], dict[str, "Profile | None"]]


@dataclass(frozen=True)
class SuiteOutcome:
    results: list[ExpectationResult]
    metric_rows: list[MetricRow]
    row_count: int
    status: str
    reference_partitions: tuple[date, ...]
    schema: SchemaReport


def _list_unexpected_values(df: DataFrame, contract: Contract, metrics: dict[str, Any]) -> None:
    """For each failed closed-set or pattern check, count its most frequent offending values.

    This is a filtered extra job that runs only on failure, so a passing partition keeps to
    the fused aggregation.
    """
    for expectation in contract.expectations:
        if expectation.type not in ("in_set", "matches_regex"):
            continue
        if not metrics.get(f"fail:{expectation.id}"):
            continue
        spec = contract.column(expectation.column)
        value = spark_metrics.col(expectation.column)
        _, failing = spark_metrics.value_conditions(expectation, spec)
        top = (
            df.where(failing)
            .groupBy(value.alias("value"))
            .count()
            .orderBy(F.col("count").desc(), F.col("value"))
            .limit(UNEXPECTED_VALUES_LISTED)
            .collect()
        )
        metrics[f"unexpected_values:{expectation.id}"] = [
            {"value": str(row["value"]), "count": int(row["count"])} for row in top
        ]


def _summary_metrics(contract: Contract, report: SchemaReport, metrics: dict[str, Any]) -> list[MetricRow]:
    rows = [MetricRow("row_count", count=int(metrics.get("rows") or 0))]
    for name, state in report.columns.items():
        if not state.usable:
            continue
        for kind in ("null", "nan", "blank"):
            value = metrics.get(f"{kind}:{name}")
            if value is not None:
                rows.append(MetricRow(f"{kind}_count", column=name, count=int(value)))
        for kind in ("min", "max"):
            value = metrics.get(f"{kind}:{name}")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                # Timestamps are stored as seconds since the epoch (UTC).
                scale = 1e-6 if state.spec.type == "timestamp" else 1.0
                rows.append(MetricRow(kind, column=name, value=float(value) * scale))
        for allowed in state.spec.allowed_values or ():
            rows.append(MetricRow("value_count", column=name, bin_label=str(allowed),
                                  count=int(metrics.get(f"value:{name}:{allowed}") or 0)))
    for key, value in metrics.items():
        if key.startswith("distinct:") and value is not None:
            rows.append(MetricRow("distinct_count", column=key.split(":", 1)[1], count=int(value)))
    for key in ("pk_null", "pk_duplicate_keys", "pk_duplicate_rows"):
        if metrics.get(key) is not None:
            rows.append(MetricRow(key.replace("pk_", "primary_key_"), count=int(metrics[key])))
    return rows


def _profile_rows(profiles: dict[str, Profile], contract: Contract) -> list[MetricRow]:
    rows = []
    for expectation_id, profile in profiles.items():
        column = contract.expectation(expectation_id).column
        for index, item in enumerate(profile.bins):
            rows.append(MetricRow("profile", column, expectation_id, index, item.label, item.lower,
                                  item.upper, item.count))
    return rows


def run_suite(
    df: DataFrame,
    contract: Contract,
    partition_date: date,
    as_of: datetime,
    load_references: ReferenceLoader,
) -> SuiteOutcome:
    """Validate ``df`` (one partition) against ``contract``.

    ``as_of`` must be timezone-aware. ``load_references`` receives the partition's own drift
    profiles and returns the reference profile of each drift expectation, or None.
    """
    spark = df.sparkSession
    session_zone = spark.conf.get("spark.sql.session.timeZone")
    if session_zone != "UTC":
        # Casting timestamp_ntz to an instant and to_date both read the session zone. The
        # suite's date rules assume UTC, so it runs in UTC and restores the setting after.
        logger.warning("session time zone is %s; the suite runs in UTC and restores it after",
                       session_zone)
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    try:
        return _run_suite(df, contract, partition_date, as_of, load_references)
    finally:
        if session_zone != "UTC":
            spark.conf.set("spark.sql.session.timeZone", session_zone)


def _run_suite(
    df: DataFrame,
    contract: Contract,
    partition_date: date,
    as_of: datetime,
    load_references: ReferenceLoader,
) -> SuiteOutcome:
    report = check_schema(contract, df.schema)
    for name, state in report.columns.items():
        if not state.usable:
            logger.warning("column %s of %s is %s; its checks are recorded as errored", name,
                           contract.name, "missing" if not state.present else f"{state.actual_type}")
    plan = spark_metrics.plan_metrics(contract, report, partition_date, as_of)
    logger.info("computing %d aggregates over %d columns of %s %s", len(plan.aggregates),
                len(plan.projection), contract.name, partition_date)
    metrics = spark_metrics.compute_metrics(df, plan)
    if metrics.get("pk_duplicate_hashes"):
        missing = spark_metrics.key_missing_condition(contract, report)
        metrics.update(spark_metrics.exact_duplicate_keys(df, contract.primary_key, missing))
    elif "pk_duplicate_hashes" in metrics:
        metrics.update(pk_duplicate_keys=0, pk_duplicate_rows=0, pk_duplicate_samples=[])
    _list_unexpected_values(df, contract, metrics)

    profiles = {
        e.id: current_profile(e, contract, metrics)
        for e in contract.expectations
        if e.type in PROFILED_TYPES and report.usable(e.column)
    }
    references = load_references(profiles) if profiles else {}
    context = JudgeContext(contract, report, metrics, partition_date, as_of, references)
    results, drift_rows = judge_all(context)
    reference_partitions = sorted({d for p in references.values() if p for d in p.partitions})
    metric_rows = _summary_metrics(contract, report, metrics) + _profile_rows(profiles, contract) + drift_rows
    return SuiteOutcome(
        results=results,
        metric_rows=metric_rows,
        row_count=int(metrics.get("rows") or 0),
        status=run_status(results),
        reference_partitions=tuple(reference_partitions),
        schema=report,
    )
