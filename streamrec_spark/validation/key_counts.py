"""Exact key counts without a shuffle, through the JVM aggregate in ``jvm/``.

``streamrec.spark.LongKeyCountAggregator`` collects the integral keys of each task in primitive
arrays, sorts them once in the final task and returns the number of distinct keys and of keys
that occur more than once. scripts/setup.sh builds its jar into .cache/jars, and the session
builder adds that folder to ``spark.jars``. Without the jar, or when the keys exceed the
aggregate's memory limit, ``count_long_keys`` reports the key as not counted so that the caller
can fall back to the shuffle pass.
"""

from __future__ import annotations

import logging

from py4j.java_gateway import JavaClass
from pyspark.sql import Column, DataFrame, SparkSession

logger = logging.getLogger(__name__)

AGGREGATOR_CLASS = "streamrec.spark.LongKeyCountAggregator"
# Maximum keys per aggregation buffer; 0 lets each JVM allow 1/16 of its maximum heap.
MAX_KEYS_PER_BUFFER = 0

_warned_applications: set[str] = set()


def _aggregator_class(spark: SparkSession) -> JavaClass | None:
    found = spark._jvm
    for part in AGGREGATOR_CLASS.split("."):
        found = getattr(found, part)
    return found if isinstance(found, JavaClass) else None


def jvm_counting_available(spark: SparkSession) -> bool:
    """Return whether the driver can load the key-count aggregate; warn once per application."""
    if _aggregator_class(spark) is not None:
        return True
    application = spark.sparkContext.applicationId
    if application not in _warned_applications:
        _warned_applications.add(application)
        logger.warning(
            "class %s not found on the driver's classpath; exact key counts use a shuffle "
            "pass instead (run scripts/setup.sh to build .cache/jars/streamrec-spark-jvm-1.jar "
            "and add it to spark.jars)",
            AGGREGATOR_CLASS,
        )
    return False


def count_long_keys(df: DataFrame, keys: dict[str, Column]) -> dict[str, tuple[int, int] | None]:
    """Count distinct and repeated non-null values of each integral key column in one aggregation.

    The aggregation reads the key columns once. Its partial buffers reach the final task
    through a single-partition exchange, which adaptive query execution runs as a job of its
    own.

    Returns, per key name, (distinct keys, keys occurring more than once), or None when that
    key's values exceeded the aggregate's memory limit. The caller must check availability
    with ``jvm_counting_available`` first.
    """
    spark = df.sparkSession
    aggregator = _aggregator_class(spark)
    columns = [
        Column(aggregator.countKeys(value.cast("bigint")._jc, MAX_KEYS_PER_BUFFER)).alias(f"keys{index}")
        for index, value in enumerate(keys.values())
    ]
    row = df.agg(*columns).collect()[0]
    counts: dict[str, tuple[int, int] | None] = {}
    for index, name in enumerate(keys):
        result = row[f"keys{index}"]
        if result["distinctCount"] is None:
            logger.warning(
                "key %s exceeded the key-count aggregate's memory limit; counting it with a "
                "shuffle pass instead (raise spark.driver.memory, or the executor memory on a "
                "cluster, to avoid the extra pass)",
                name,
            )
            counts[name] = None
        else:
            counts[name] = (int(result["distinctCount"]), int(result["repeatedCount"]))
    return counts
