"""Storage of boundary checks in the validation result tables.

A checked call becomes one run of dataset ``features.<boundary>`` for the feature date: one
expectation result per rule, ids prefixed by the side (``input:event_type:in_set``), so the
same SQL that reads contract results reads boundary violations too.
"""

from __future__ import annotations

import logging
import uuid
from datetime import date, datetime

from streamrec_spark.errors import EXIT_FAILED, EXIT_PASSED
from streamrec_spark.features.boundary import BoundaryReport
from streamrec_spark.validation.results import (
    FAILED,
    PASSED,
    RUN_FAILED,
    RUN_PASSED,
    ExpectationResult,
    MetricRow,
)
from streamrec_spark.validation.store import ResultStore, RunRecord, utc_now

logger = logging.getLogger(__name__)

DATASET_PREFIX = "features."


def boundary_dataset(boundary: str) -> str:
    """Dataset name under which a boundary's checks are stored, e.g. ``features.engagement``."""
    return DATASET_PREFIX + boundary


def report_results(report: BoundaryReport) -> list[ExpectationResult]:
    """Turn a boundary report into expectation results (every rule is blocking)."""
    results = []
    for rule in report.rules:
        details = {
            "boundary": report.boundary,
            "side": report.side,
            "schema": report.schema.name,
            "schema_file": report.schema.source_file,
        }
        if rule.samples:
            details["samples"] = [{"value": s.value, "count": s.count} for s in rule.samples]
        results.append(
            ExpectationResult(
                expectation_id=f"{report.side}:{rule.rule_id}",
                category=rule.category,
                type=f"boundary_{rule.kind}",
                column=rule.column,
                severity="error",
                status=PASSED if rule.passed else FAILED,
                reason_code=rule.reason_code,
                message=rule.message,
                evaluated_count=rule.evaluated_count,
                failed_count=rule.failed_count,
                details=details,
            )
        )
    return results


class DeltaBoundaryRecorder:
    """Writes each checked call as a run of ``features.<boundary>`` for one feature date."""

    def __init__(
        self,
        store: ResultStore,
        partition_date: date,
        as_of: datetime,
        input_path: str | None = None,
        code_version: str | None = None,
    ):
        self.store = store
        self.partition_date = partition_date
        self.as_of = as_of
        self.input_path = input_path
        self.code_version = code_version
        self.records: list[RunRecord] = []

    def __call__(self, boundary: str, reports: list[BoundaryReport]) -> None:
        started = utc_now()
        results = [result for report in reports for result in report_results(report)]
        failed = sum(1 for r in results if r.status != PASSED)
        versions = ",".join(f"{r.side}:{r.schema.name}@{r.schema.version}" for r in reports)
        record = RunRecord(
            run_id=uuid.uuid4().hex,
            dataset=boundary_dataset(boundary),
            partition_date=self.partition_date,
            contract_version=versions,
            status=RUN_FAILED if failed else RUN_PASSED,
            exit_code=EXIT_FAILED if failed else EXIT_PASSED,
            as_of=self.as_of,
            started_at=started,
            finished_at=utc_now(),
            input_path=self.input_path,
            code_version=self.code_version,
            spark_app_id=self.store.spark.sparkContext.applicationId,
            row_count=reports[0].row_count,
            expectations_total=len(results),
            expectations_failed=failed,
            expectations_errored=0,
            blocking_failures=failed,
            error_code="SCHEMA_VIOLATION" if failed else None,
        )
        metric_rows = [
            MetricRow(f"{report.side}_row_count", count=report.row_count)
            for report in reports
            if report.row_count is not None
        ]
        self.store.write_run(record, results, metric_rows)
        self.records.append(record)
        logger.info("recorded %s checks of %s for %s as run %s (%s)", len(results),
                    record.dataset, self.partition_date, record.run_id, record.status)
