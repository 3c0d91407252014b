"""Reading the evaluation's inputs: click-stream events and Delta or Parquet tables."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from streamrec_spark.errors import InputDataError

EVENT_COLUMNS: tuple[str, ...] = ("user_id", "item_id", "session_id", "event_type", "platform", "event_ts")


def midnight(day: date) -> datetime:
    """Return midnight UTC of ``day`` as the naive datetime that a UTC Spark session expects."""
    return datetime(day.year, day.month, day.day)


def read_table(spark: SparkSession, path: str | Path, what: str) -> DataFrame:
    """Read a Delta table (a folder with ``_delta_log``) or else a Parquet dataset at ``path``.

    Raises InputDataError (``INPUT_UNREADABLE``) naming ``what`` when nothing readable is there.
    """
    path = str(path)
    try:
        if (Path(path) / "_delta_log").is_dir():
            return spark.read.format("delta").load(path)
        return spark.read.parquet(path)
    except AnalysisException as exc:
        raise InputDataError(
            f"cannot read the {what} at {path}: {exc.getMessage() if hasattr(exc, 'getMessage') else exc}",
            error_code="INPUT_UNREADABLE",
        ) from exc


def read_events(spark: SparkSession, path: str | Path, extra_columns: tuple[str, ...] = ()) -> DataFrame:
    """Read click-stream events and check that the columns the evaluation uses are present.

    ``extra_columns`` are kept after the evaluation's columns, for example the partition column
    ``event_date``, and are required as well.
    """
    events = read_table(spark, path, "click-stream events")
    missing = [name for name in (*EVENT_COLUMNS, *extra_columns) if name not in events.columns]
    if missing:
        raise InputDataError(
            f"the click-stream events at {path} lack the columns {', '.join(missing)}",
            error_code="INVALID_EVENTS",
        )
    return events.select(*EVENT_COLUMNS, *extra_columns)


def split_holdout(events: DataFrame, start: datetime, end: datetime) -> tuple[DataFrame, DataFrame]:
    """Return (holdout events in ``[start, end)``, history events before ``start``)."""
    holdout = events.where((F.col("event_ts") >= F.lit(start)) & (F.col("event_ts") < F.lit(end)))
    history = events.where(F.col("event_ts") < F.lit(start))
    return holdout, history


def describe_holdout(start: date, end: date, events_path: str | Path | None = None) -> str:
    """Name a holdout window, and the events it is taken from if known, for error messages."""
    text = f"the holdout window {start:%Y-%m-%d} to {end:%Y-%m-%d} (end exclusive)"
    return f"{text} of the events at {events_path}" if events_path is not None else text
