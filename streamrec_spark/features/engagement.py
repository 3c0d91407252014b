"""Per-user engagement features of a window of click-stream events.

For each user with at least one ``view`` in the window:

- ``engagement_rate = completions / views`` (``complete`` events per ``view`` event);
- ``click_rate = clicks / events`` (``click`` events per event of any type).

Users without a view have no engagement rate and get no row. The function's input and output
are checked against ``conf/schemas/user_events.yaml`` and
``conf/schemas/engagement_features.yaml`` at the function boundary.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from streamrec_spark.features.boundary import enforce_schemas

BOUNDARY = "engagement"
INPUT_SCHEMA = "user_events"
OUTPUT_SCHEMA = "engagement_features"

# Column order of the features table.
FEATURE_COLUMNS = (
    "user_id",
    "events",
    "views",
    "clicks",
    "completions",
    "engagement_rate",
    "click_rate",
    "window_start",
    "feature_date",
)


def _count_of(event_type: str) -> Column:
    return F.count(F.when(F.col("event_type") == F.lit(event_type), F.lit(1)))


def engagement_counts(events: DataFrame) -> DataFrame:
    """Count events, views, clicks and completions per user (one shuffle by ``user_id``)."""
    return events.groupBy("user_id").agg(
        F.count(F.lit(1)).alias("events"),
        _count_of("view").alias("views"),
        _count_of("click").alias("clicks"),
        _count_of("complete").alias("completions"),
    )


def assemble_features(
    counts: DataFrame, engagement_rate: Column, window_start: date, feature_date: date
) -> DataFrame:
    """Add the rates and window columns to per-user counts, keeping users with a view."""
    return counts.where(F.col("views") > 0).select(
        F.col("user_id").cast("bigint").alias("user_id"),
        F.col("events").cast("bigint").alias("events"),
        F.col("views").cast("bigint").alias("views"),
        F.col("clicks").cast("bigint").alias("clicks"),
        F.col("completions").cast("bigint").alias("completions"),
        engagement_rate.cast("double").alias("engagement_rate"),
        (F.col("clicks") / F.col("events")).cast("double").alias("click_rate"),
        F.lit(window_start).alias("window_start"),
        F.lit(feature_date).alias("feature_date"),
    )


@enforce_schemas(BOUNDARY, input_schema=INPUT_SCHEMA, output_schema=OUTPUT_SCHEMA)
def compute_engagement_features(events: DataFrame, window_start: date, feature_date: date) -> DataFrame:
    """Compute one row of engagement features per user from ``events`` (the window's events).

    Raises SchemaViolationError when ``events`` or the result violates its declared schema.
    """
    counts = engagement_counts(events)
    return assemble_features(counts, F.col("completions") / F.col("views"), window_start, feature_date)
