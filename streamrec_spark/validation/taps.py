"""Histograms and exact key counts gathered during the fused aggregation, through ``jvm/``.

A tap is a column that records each row's value in a JVM accumulator and is true, or null for
a null value. The fused aggregation counts it, so Spark evaluates it in the same scan as every
other metric. ``streamrec.spark.HistogramAccumulator`` counts bin indexes, one array increment
a row instead of one conditional count per bin. ``streamrec.spark.KeySetAccumulator`` collects
64-bit keys per task, and the driver counts them into exact distinct and repeated counts. The
tap column is a Catalyst expression of its own (``streamrec.spark.TapExpression``), whose
generated code hands each row's primitive value to the accumulator.

Both accumulators keep one state per input partition, so a retried or speculative task
replaces its partition's state instead of adding to it. ``metrics.compute_metrics`` still
compares what a tap recorded with the aggregation's own count of the tap column, which Spark
computes exactly once, and counts another way when they differ.

scripts/setup.sh builds the jar into .cache/jars, and the session builder adds that folder to
``spark.jars``. Without the jar, ``taps_available`` is false and the caller uses plain
aggregates and a shuffle pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from py4j.java_gateway import JavaClass
from pyspark.sql import Column, SparkSession

from streamrec_spark.contracts.model import Grid

logger = logging.getLogger(__name__)

HISTOGRAM_CLASS = "streamrec.spark.HistogramAccumulator"
KEY_SET_CLASS = "streamrec.spark.KeySetAccumulator"
# Maximum keys per task buffer and in the driver's merge; 0 lets each JVM allow 1/16 of its
# maximum heap.
MAX_KEYS_PER_BUFFER = 0

_warned_applications: set[str] = set()


def _java_class(spark: SparkSession, name: str) -> JavaClass | None:
    found = spark._jvm
    for part in name.split("."):
        found = getattr(found, part)
    return found if isinstance(found, JavaClass) else None


def taps_available(spark: SparkSession) -> bool:
    """Return whether the driver can load the accumulators; warn once per application if not."""
    if all(_java_class(spark, name) is not None for name in (HISTOGRAM_CLASS, KEY_SET_CLASS)):
        return True
    application = spark.sparkContext.applicationId
    if application not in _warned_applications:
        _warned_applications.add(application)
        logger.warning(
            "classes %s and %s not found on the driver's classpath; histograms use one aggregate "
            "per bin and exact key counts a shuffle pass (run scripts/setup.sh to build "
            ".cache/jars/streamrec-spark-jvm-1.jar and add it to spark.jars)",
            HISTOGRAM_CLASS, KEY_SET_CLASS,
        )
    return False


@dataclass
class HistogramTap:
    """A registered histogram accumulator and the column that feeds it."""

    accumulator: Any
    column: Column

    def counts(self) -> list[int]:
        return [int(count) for count in self.accumulator.counts()]

    def recorded(self) -> int:
        return int(self.accumulator.recorded())


@dataclass
class KeyTap:
    """A registered key-set accumulator and the column that feeds it."""

    accumulator: Any
    column: Column

    def recorded(self) -> int:
        return int(self.accumulator.recorded())

    def counts(self) -> tuple[int, int] | None:
        """Return (distinct keys, keys occurring more than once), or None over the memory limit.

        The driver's copy of the keys is dropped after counting, so a second call returns (0, 0).
        """
        result = self.accumulator.counts()
        self.accumulator.reset()
        if result.getDistinctCount() is None:
            return None
        return int(result.getDistinctCount()), int(result.getRepeatedCount())


def histogram_tap(spark: SparkSession, index: Column, bins: int) -> HistogramTap:
    """Return a tap counting ``index`` (an int in [0, bins), or null) into ``bins`` bins."""
    accumulator = _java_class(spark, HISTOGRAM_CLASS).register(spark._jsparkSession, bins)
    return HistogramTap(accumulator, Column(accumulator.tap(index._jc)))


def grid_tap(spark: SparkSession, value: Column, grid: Grid, span: float) -> HistogramTap:
    """Return a tap counting the DOUBLE ``value`` into the bins of ``grid``; null and NaN are
    skipped. ``span`` is the divisor of ``metrics.grid_index``, so both give the same bins."""
    jvm_grid = spark._jvm.streamrec.spark.GridBins(
        float(grid.lower), float(grid.upper), grid.bins, grid.scale == "log", span
    )
    accumulator = _java_class(spark, HISTOGRAM_CLASS).register(spark._jsparkSession, jvm_grid)
    return HistogramTap(accumulator, Column(accumulator.tap(value._jc)))


def key_tap(spark: SparkSession, key: Column) -> KeyTap:
    """Return a tap collecting the integral ``key`` (cast to BIGINT; nulls skipped)."""
    accumulator = _java_class(spark, KEY_SET_CLASS).register(spark._jsparkSession, MAX_KEYS_PER_BUFFER)
    return KeyTap(accumulator, Column(accumulator.tap(key.cast("bigint")._jc)))
