"""Builders of small click-stream DataFrames for the Spark tests."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from pyspark.sql.types import (
    DateType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

UTC = timezone.utc
DAY = date(2024, 5, 1)
START = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
AS_OF = datetime(2024, 5, 1, 15, 0, tzinfo=UTC)

SCHEMA = StructType(
    [
        StructField("event_id", StringType()),
        StructField("user_id", LongType()),
        StructField("item_id", LongType()),
        StructField("session_id", StringType()),
        StructField("event_type", StringType()),
        StructField("platform", StringType()),
        StructField("duration_seconds", DoubleType()),
        StructField("event_ts", TimestampType()),
        StructField("event_date", DateType()),
    ]
)
EVENT_TYPES = ["view", "click", "complete", "skip"]
PLATFORMS = ["ios", "android", "web"]


def event(index: int, day: date = DAY, **changes) -> dict:
    """Event number ``index`` of a clean partition: every 20 minutes from 10:00 UTC on ``day``."""
    start = datetime.combine(day, START.timetz())
    row = {
        "event_id": f"e{day.isoformat()}-{index}",
        "user_id": index % 4 + 1,
        "item_id": 100 + index,
        "session_id": f"s{index % 2}",
        "event_type": EVENT_TYPES[index % 4],
        "platform": PLATFORMS[index % 3],
        "duration_seconds": float(index * 3 + 1),
        "event_ts": start + timedelta(minutes=20 * index),
        "event_date": day,
    }
    row.update(changes)
    return row


def clean_rows(count: int = 12, day: date = DAY) -> list[dict]:
    return [event(i, day) for i in range(count)]


def frame(spark, rows, schema=SCHEMA):
    return spark.createDataFrame([tuple(r[f.name] for f in schema.fields) for r in rows], schema)
