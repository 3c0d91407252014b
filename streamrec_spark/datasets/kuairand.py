"""Conversion of the KuaiRand interaction log into the click-stream schema.

KuaiRand (Gao et al., "KuaiRand: An Unbiased Sequential Recommendation Dataset with Randomly
Exposed Videos", CIKM '22, doi:10.1145/3511808.3557624, CC BY-SA 4.0) logs one row per video
exposure, with flags for what the user did. :func:`to_click_stream` expands each row into typed
events:

- every row is a ``view``;
- ``is_click == 1`` adds a ``click``;
- ``duration_ms > 0`` and ``play_time_ms >= duration_ms`` adds a ``complete``;
- ``play_time_ms < min(3000, duration_ms)`` adds a ``skip`` (KuaiRand's short-play rule, so a
  row with ``duration_ms == 0`` never adds one).

All events of a row share its ``time_ms`` and ``duration_seconds = play_time_ms / 1000``.

Two columns are not in the source:

- ``platform`` is **synthetic**: a deterministic hash of ``user_id`` (see
  :func:`~streamrec_spark.datasets.clickstream.synthetic_platform`), because KuaiRand records no
  device or platform.
- ``session_id`` is **derived**: a user's events belong to one session until a gap of more than
  30 minutes of event time (:data:`SESSION_GAP_MS`).

``event_date`` is the log's ``date`` column (yyyymmdd in Beijing time, UTC+8) as given. It is
not recomputed from ``time_ms``, so the source's quirks reach the validator unchanged: 312 rows
of the embedded sample have a ``date`` one day after their UTC+8 timestamp, and duplicate rows
produce duplicate ``event_id`` values.
"""

from __future__ import annotations

import datetime as dt
import logging

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from streamrec_spark.datasets.clickstream import (
    select_click_stream,
    synthetic_platform,
    write_click_stream,
)
from streamrec_spark.errors import InputDataError

logger = logging.getLogger(__name__)

# Columns of the tab-separated log, in file order. Flags are 0/1 integers, times are epoch
# milliseconds, `date` is yyyymmdd in Beijing time and `timestamp` is the UTC text of `time_ms`.
KUAIRAND_LOG_SCHEMA = T.StructType(
    [
        T.StructField("user_id", T.LongType()),
        T.StructField("video_id", T.LongType()),
        T.StructField("date", T.IntegerType()),
        T.StructField("hourmin", T.IntegerType()),
        T.StructField("time_ms", T.LongType()),
        T.StructField("is_click", T.IntegerType()),
        T.StructField("is_follow", T.IntegerType()),
        T.StructField("is_comment", T.IntegerType()),
        T.StructField("is_forward", T.IntegerType()),
        T.StructField("long_view", T.IntegerType()),
        T.StructField("play_time_ms", T.LongType()),
        T.StructField("duration_ms", T.LongType()),
        T.StructField("comment_stay_time", T.LongType()),
        T.StructField("is_profile_enter", T.IntegerType()),
        T.StructField("label", T.IntegerType()),
        T.StructField("timestamp", T.StringType()),
    ]
)

SESSION_GAP_MS = 30 * 60 * 1000
SKIP_THRESHOLD_MS = 3000
# Length in hex characters of the SHA-256 prefixes used as ids (128 bits for events).
EVENT_ID_HEX_CHARS = 32
SESSION_ID_HEX_CHARS = 16


def read_kuairand_log(spark: SparkSession, path: str) -> DataFrame:
    """Read the tab-separated KuaiRand log at ``path`` (plain or ``.gz``) with an explicit schema.

    A malformed value fails the first Spark action that parses its column (FAILFAST mode)
    instead of turning into a null. Empty fields are read as nulls. Raises
    :class:`InputDataError` (``INPUT_NOT_FOUND``) when ``path`` does not exist.
    """
    try:
        return spark.read.csv(
            path,
            schema=KUAIRAND_LOG_SCHEMA,
            sep="\t",
            header=True,
            mode="FAILFAST",
        )
    except AnalysisException as error:
        if error.getErrorClass() == "PATH_NOT_FOUND":
            raise InputDataError(
                f"KuaiRand log not found: {path}. Pass the path of "
                "log_27k_standard_likehate_kcore15.tsv or of its .gz copy in data/kuairand/",
                error_code="INPUT_NOT_FOUND",
            ) from error
        raise


def _with_session_id(log_df: DataFrame) -> DataFrame:
    """Add ``session_id``: a new session starts after more than 30 minutes without events."""
    by_user = Window.partitionBy("user_id").orderBy("time_ms")
    previous_ms = F.lag("time_ms").over(by_user)
    starts_session = previous_ms.isNull() | ((F.col("time_ms") - previous_ms) > SESSION_GAP_MS)
    session_start_ms = F.last(
        F.when(starts_session, F.col("time_ms")), ignorenulls=True
    ).over(by_user.rowsBetween(Window.unboundedPreceding, Window.currentRow))
    session_hash = F.sha2(
        F.concat_ws("|", F.lit("session"), F.col("user_id"), session_start_ms), 256
    )
    session_id = F.when(
        F.col("user_id").isNotNull() & F.col("time_ms").isNotNull(),
        F.substring(session_hash, 1, SESSION_ID_HEX_CHARS),
    )
    return log_df.withColumn("session_id", session_id)


def _event_types() -> Column:
    """Build the array of event types that one log row expands into, view first."""
    play_ms = F.col("play_time_ms")
    length_ms = F.col("duration_ms")
    is_complete = (length_ms > 0) & (play_ms >= length_ms)
    is_skip = play_ms < F.least(F.lit(SKIP_THRESHOLD_MS).cast("long"), length_ms)
    candidates = F.array(
        F.lit("view"),
        F.when(F.col("is_click") == 1, F.lit("click")),
        F.when(is_complete, F.lit("complete")),
        F.when(is_skip, F.lit("skip")),
    )
    return F.filter(candidates, lambda event_type: event_type.isNotNull())


def to_click_stream(log_df: DataFrame) -> DataFrame:
    """Expand KuaiRand log rows into click-stream events (see the module docstring for the rules).

    ``log_df`` has the columns of :data:`KUAIRAND_LOG_SCHEMA`. The result has the click-stream
    schema. Rows are neither deduplicated nor filtered, and ``event_date`` is the source's
    ``date``. ``platform`` is synthetic and ``session_id`` is derived, as the module docstring
    explains. Deriving sessions needs one shuffle by ``user_id``.
    """
    events = _with_session_id(log_df).withColumn("event_type", F.explode(_event_types()))
    event_key = F.concat_ws(
        "|",
        *[
            F.coalesce(F.col(name).cast("string"), F.lit(""))
            for name in ("user_id", "video_id", "time_ms", "event_type")
        ],
    )
    return select_click_stream(
        events.select(
            F.substring(F.sha2(event_key, 256), 1, EVENT_ID_HEX_CHARS).alias("event_id"),
            F.col("user_id"),
            F.col("video_id").alias("item_id"),
            F.col("session_id"),
            F.col("event_type"),
            synthetic_platform(F.col("user_id")).alias("platform"),
            (F.col("play_time_ms") / F.lit(1000.0)).alias("duration_seconds"),
            F.timestamp_millis(F.col("time_ms")).alias("event_ts"),
            F.to_date(F.col("date").cast("string"), "yyyyMMdd").alias("event_date"),
        )
    )


def _parse_log_date(value: int, log_path: str) -> dt.date:
    """Parse one yyyymmdd value of the log's ``date`` column."""
    try:
        return dt.datetime.strptime(str(value), "%Y%m%d").date()
    except ValueError as error:
        raise InputDataError(
            f"invalid 'date' {value} in {log_path}: expected yyyymmdd, for example 20220408",
            error_code="INPUT_INVALID",
        ) from error


def convert_kuairand(spark: SparkSession, log_path: str, output_root: str) -> list[dt.date]:
    """Convert the KuaiRand log at ``log_path`` into ``output_root/event_date=YYYY-MM-DD/``.

    Each date in the log's ``date`` column replaces its own folder. Date folders that the log
    does not contain are left alone. Returns the dates written, in ascending order.

    Raises :class:`InputDataError` when the log is missing (``INPUT_NOT_FOUND``), has no rows
    (``INPUT_EMPTY``) or has rows without a ``date`` (``INPUT_INVALID``), before anything is
    written.
    """
    log_df = read_kuairand_log(spark, log_path)
    date_counts = log_df.groupBy("date").count().collect()
    rows_without_date = sum(row["count"] for row in date_counts if row["date"] is None)
    if rows_without_date:
        raise InputDataError(
            f"{rows_without_date} rows of {log_path} have no 'date' (yyyymmdd), so they cannot "
            "be placed in a date partition; fix or remove those rows and convert again",
            error_code="INPUT_INVALID",
        )
    if not date_counts:
        raise InputDataError(
            f"KuaiRand log {log_path} has a header but no rows, so there is nothing to convert",
            error_code="INPUT_EMPTY",
        )

    dates = sorted(_parse_log_date(row["date"], log_path) for row in date_counts)
    log_rows = sum(row["count"] for row in date_counts)
    logger.info(
        "converting %d KuaiRand log rows from %s (%d dates, %s to %s)",
        log_rows,
        log_path,
        len(dates),
        dates[0],
        dates[-1],
    )
    write_click_stream(to_click_stream(log_df), output_root)
    logger.info("wrote %d date partitions to %s", len(dates), output_root)
    return dates
