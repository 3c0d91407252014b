"""Batch recommendations: the single-user scorer run over many users inside Spark tasks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from streamrec_spark.models.base import Interaction, UserContext

if TYPE_CHECKING:
    from streamrec_spark.models.base import Recommender

RECOMMENDATIONS_SCHEMA = T.StructType(
    [
        T.StructField("user_id", T.LongType(), nullable=False),
        T.StructField("item_id", T.LongType(), nullable=False),
        T.StructField("rank", T.IntegerType(), nullable=False),
        T.StructField("score", T.DoubleType(), nullable=False),
    ]
)


def user_histories(events: DataFrame, start: datetime, end: datetime) -> DataFrame:
    """Return ``user_id`` and ``history`` (events in ``[start, end)`` as an array of structs)."""
    window = events.where((F.col("event_ts") >= F.lit(start)) & (F.col("event_ts") < F.lit(end)))
    return window.groupBy(F.col("user_id").cast("bigint").alias("user_id")).agg(
        F.collect_list(
            F.struct(
                F.col("event_ts").cast("double").alias("timestamp"),
                F.col("item_id").cast("bigint").alias("item_id"),
                "event_type",
                "session_id",
                "platform",
            )
        ).alias("history")
    )


def history_from_rows(rows) -> list[Interaction]:
    """Convert collected history structs to Interactions ordered by time, then item."""
    events = [
        Interaction(
            item_id=int(row["item_id"]),
            event_type=row["event_type"],
            timestamp=float(row["timestamp"]),
            session_id=row["session_id"],
            platform=row["platform"],
        )
        for row in rows or ()
    ]
    return sorted(events, key=lambda event: (event.timestamp, event.item_id))


def recommend_users(
    model: Recommender,
    events: DataFrame,
    users: DataFrame,
    k: int,
    now: datetime,
    history_days: int | None = None,
    exclude_seen: bool = False,
) -> DataFrame:
    """Return ``user_id``, ``item_id``, ``rank`` (1 = best) and ``score`` for every user.

    ``users`` has ``user_id`` and optionally ``platform``, the platform of the request. A user
    with no request platform is served for the platform of their latest event. Histories are
    the events in ``[now - history_days, now)``; ``history_days`` defaults to the model's
    training window length. The model travels to the tasks as a broadcast variable.
    """
    spark = events.sparkSession
    days = history_days if history_days is not None else model.window.days
    histories = user_histories(events, now - timedelta(days=days), now)
    platform = F.col("platform") if "platform" in users.columns else F.lit(None).cast("string")
    requests = users.select(F.col("user_id").cast("bigint").alias("user_id"), platform.alias("platform"))
    joined = requests.dropDuplicates(["user_id"]).join(histories, "user_id", "left")

    shared = spark.sparkContext.broadcast(model)
    now_epoch = now.replace(tzinfo=timezone.utc).timestamp()

    def recommend_partition(rows) -> Iterator[tuple[int, int, int, float]]:
        scorer = shared.value
        for row in rows:
            history = history_from_rows(row["history"])
            request_platform = row["platform"] or (history[-1].platform if history else None)
            context = UserContext(user_id=int(row["user_id"]), now=now_epoch, platform=request_platform)
            ranked = scorer.recommend_for_history(history, context, k, exclude_seen=exclude_seen)
            for rank, (item, score) in enumerate(ranked, start=1):
                yield int(row["user_id"]), item, rank, score

    return spark.createDataFrame(joined.rdd.mapPartitions(recommend_partition), RECOMMENDATIONS_SCHEMA)
