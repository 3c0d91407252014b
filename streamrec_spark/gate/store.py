"""The Delta tables of gate decisions: ``gate_decisions`` and ``gate_comparisons``.

Both tables are partitioned by ``gate``. A gate run appends its comparisons in one commit and
then its decision row in a second one, so a decision row that exists always has all of its
comparisons stored. Every run is a new decision with its own ``decision_id``: nothing is
replaced, because the champion is defined by the history of decisions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from streamrec_spark import delta_tables
from streamrec_spark.errors import ComputationError, root_cause
from streamrec_spark.gate.config import GateTables
from streamrec_spark.gate.delta_log import find_log_damage
from streamrec_spark.gate.rules import PASS, Comparison

logger = logging.getLogger(__name__)

PARTITION_COLUMNS = ("gate",)

GATE_DECISIONS_SCHEMA = T.StructType(
    [
        T.StructField("decision_id", T.StringType(), nullable=False),
        T.StructField("gate", T.StringType(), nullable=False),
        T.StructField("model_id", T.StringType(), nullable=False),
        T.StructField("decision", T.StringType(), nullable=False),
        T.StructField("exit_code", T.IntegerType(), nullable=False),
        T.StructField("registered", T.BooleanType(), nullable=False),
        T.StructField("registered_model_name", T.StringType(), nullable=True),
        T.StructField("registered_version", T.LongType(), nullable=True),
        T.StructField("no_baseline", T.BooleanType(), nullable=False),
        T.StructField("champion_model_id", T.StringType(), nullable=True),
        T.StructField("champion_decision_id", T.StringType(), nullable=True),
        T.StructField("reason_codes", T.ArrayType(T.StringType(), containsNull=False), nullable=False),
        T.StructField("comparisons_total", T.LongType(), nullable=False),
        T.StructField("comparisons_failed", T.LongType(), nullable=False),
        T.StructField("metrics_run_id", T.StringType(), nullable=True),
        T.StructField("behavioral_suite", T.StringType(), nullable=True),
        T.StructField("behavioral_run_id", T.StringType(), nullable=True),
        T.StructField("probe_run_id", T.StringType(), nullable=True),
        T.StructField("data_validation", T.StringType(), nullable=True),
        T.StructField("mlflow_run_id", T.StringType(), nullable=True),
        T.StructField("tracking_error", T.StringType(), nullable=True),
        T.StructField("error_message", T.StringType(), nullable=True),
        T.StructField("config_file", T.StringType(), nullable=True),
        T.StructField("tolerance", T.DoubleType(), nullable=False),
        T.StructField("decided_at", T.TimestampType(), nullable=False),
    ]
)

GATE_COMPARISONS_SCHEMA = T.StructType(
    [
        T.StructField("decision_id", T.StringType(), nullable=False),
        T.StructField("gate", T.StringType(), nullable=False),
        T.StructField("model_id", T.StringType(), nullable=False),
        T.StructField("position", T.IntegerType(), nullable=False),
        T.StructField("rule", T.StringType(), nullable=False),
        T.StructField("kind", T.StringType(), nullable=False),
        T.StructField("candidate_value", T.DoubleType(), nullable=True),
        T.StructField("champion_value", T.DoubleType(), nullable=True),
        T.StructField("floor", T.DoubleType(), nullable=True),
        T.StructField("max_regression", T.DoubleType(), nullable=True),
        T.StructField("upper_limit", T.DoubleType(), nullable=True),
        T.StructField("difference", T.DoubleType(), nullable=True),
        T.StructField("passed", T.BooleanType(), nullable=False),
        T.StructField("reason_code", T.StringType(), nullable=True),
        T.StructField("detail", T.StringType(), nullable=True),
        T.StructField("decided_at", T.TimestampType(), nullable=False),
    ]
)


@dataclass(frozen=True)
class DecisionRecord:
    """One row of ``gate_decisions``; ``decided_at`` is naive UTC."""

    decision_id: str
    gate: str
    model_id: str
    decision: str
    exit_code: int
    registered: bool
    no_baseline: bool
    reason_codes: tuple[str, ...]
    comparisons_total: int
    comparisons_failed: int
    tolerance: float
    decided_at: datetime
    registered_model_name: str | None = None
    registered_version: int | None = None
    champion_model_id: str | None = None
    champion_decision_id: str | None = None
    metrics_run_id: str | None = None
    behavioral_suite: str | None = None
    behavioral_run_id: str | None = None
    probe_run_id: str | None = None
    data_validation: str | None = None
    mlflow_run_id: str | None = None
    tracking_error: str | None = None
    error_message: str | None = None
    config_file: str | None = None


@dataclass(frozen=True)
class Champion:
    """The latest decision of a gate that passed and registered its model."""

    model_id: str
    decision_id: str
    decided_at: datetime
    metrics_run_id: str | None
    probe_run_id: str | None
    registered_version: int | None
    # The MLflow registered model that ``registered_version`` belongs to.
    registered_model_name: str | None = None


class GateStore:
    """Reads and writes the two gate tables under one warehouse folder."""

    def __init__(self, spark: SparkSession, warehouse: str, tables: GateTables):
        self.spark = spark
        self.warehouse = warehouse
        self.tables = tables

    def path(self, table: str) -> str:
        return delta_tables.table_path(self.warehouse, table)

    def ensure_tables(self) -> None:
        """Create both tables if needed and register them as ``<database>.<table>``."""
        for table, schema in (
            (self.tables.decisions_table, GATE_DECISIONS_SCHEMA),
            (self.tables.comparisons_table, GATE_COMPARISONS_SCHEMA),
        ):
            delta_tables.ensure_table(self.spark, self.path(table), schema, PARTITION_COLUMNS)
            delta_tables.register_table(self.spark, self.tables.database, table, self.path(table))

    def champion(self, gate: str) -> Champion | None:
        """Return the latest decision of ``gate`` with decision PASS and ``registered`` true.

        Raises ComputationError when the decisions table exists but cannot be read, or its
        Delta log is damaged (an empty or truncated commit file).
        """
        path = self.path(self.tables.decisions_table)
        fix = "The champion is read from this table: restore its folder from a backup"
        try:
            if not delta_tables.table_exists(self.spark, path):
                return None
            damage = find_log_damage(self.spark, path)
        except Exception as exc:  # py4j and Delta raise several unrelated types here
            logger.debug("checking the log of %s failed", path, exc_info=True)
            raise ComputationError(
                f"cannot read the gate decisions table {path}: {root_cause(exc)}. {fix}"
            ) from exc
        if damage is not None:
            raise ComputationError(f"cannot read the gate decisions table {path}: {damage}. {fix}")
        try:
            rows = (
                self.spark.read.format("delta")
                .load(path)
                .where(
                    (F.col("gate") == F.lit(gate))
                    & (F.col("decision") == F.lit(PASS))
                    & F.col("registered")
                )
                .orderBy(F.col("decided_at").desc(), F.col("decision_id").desc())
                .limit(1)
                .collect()
            )
        except Exception as exc:  # py4j and Delta raise several unrelated types here
            logger.debug("reading gate decisions from %s failed", path, exc_info=True)
            raise ComputationError(
                f"cannot read the gate decisions table {path}: {root_cause(exc)}. {fix}"
            ) from exc
        if not rows:
            return None
        row = rows[0]
        return Champion(
            model_id=row["model_id"],
            decision_id=row["decision_id"],
            decided_at=row["decided_at"],
            metrics_run_id=row["metrics_run_id"],
            probe_run_id=row["probe_run_id"],
            registered_version=row["registered_version"],
            registered_model_name=row["registered_model_name"],
        )

    def write(self, record: DecisionRecord, comparisons: Sequence[Comparison]) -> None:
        """Append the comparisons (one commit), then the decision row (a second commit).

        Raises ComputationError when either Delta write fails.
        """
        comparison_rows = [
            (
                record.decision_id,
                record.gate,
                record.model_id,
                position,
                comparison.rule,
                comparison.kind,
                _double(comparison.candidate_value),
                _double(comparison.champion_value),
                _double(comparison.floor),
                _double(comparison.max_regression),
                _double(comparison.upper_limit),
                _double(comparison.difference),
                bool(comparison.passed),
                comparison.reason_code,
                comparison.detail,
                record.decided_at,
            )
            for position, comparison in enumerate(comparisons)
        ]
        decision_row = (
            record.decision_id,
            record.gate,
            record.model_id,
            record.decision,
            int(record.exit_code),
            bool(record.registered),
            record.registered_model_name,
            record.registered_version,
            bool(record.no_baseline),
            record.champion_model_id,
            record.champion_decision_id,
            list(record.reason_codes),
            int(record.comparisons_total),
            int(record.comparisons_failed),
            record.metrics_run_id,
            record.behavioral_suite,
            record.behavioral_run_id,
            record.probe_run_id,
            record.data_validation,
            record.mlflow_run_id,
            record.tracking_error,
            record.error_message,
            record.config_file,
            float(record.tolerance),
            record.decided_at,
        )
        comparisons_path = self.path(self.tables.comparisons_table)
        decisions_path = self.path(self.tables.decisions_table)
        try:
            self.ensure_tables()
            if comparison_rows:
                frame = self.spark.createDataFrame(comparison_rows, GATE_COMPARISONS_SCHEMA)
                delta_tables.append(frame, comparisons_path, PARTITION_COLUMNS)
            frame = self.spark.createDataFrame([decision_row], GATE_DECISIONS_SCHEMA)
            delta_tables.append(frame, decisions_path, PARTITION_COLUMNS)
        except Exception as exc:  # py4j and Delta raise several unrelated types here
            logger.debug("writing gate decision %s failed", record.decision_id, exc_info=True)
            raise ComputationError(
                f"writing gate decision {record.decision_id} to {decisions_path} failed: "
                f"{root_cause(exc)}"
            ) from exc
        logger.info(
            "recorded gate %s decision %s (%s) for model %s with %d comparisons",
            record.gate,
            record.decision_id,
            record.decision,
            record.model_id,
            len(comparison_rows),
        )


def _double(value: float | None) -> float | None:
    return None if value is None else float(value)
