"""User slices of an evaluation: all users, new users, each platform and the most active users."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from streamrec_spark.evaluation.config import SliceConfig

ALL = "all"
NEW_USERS = "new_users"
TOP_ACTIVE = "top_active"


def platform_slice(platform: str) -> str:
    return f"platform={platform}"


def slice_names(config: SliceConfig) -> list[str]:
    """Return the reported slices in a fixed order; every one is reported, even when empty."""
    return [ALL, NEW_USERS, *[platform_slice(name) for name in config.platforms], TOP_ACTIVE]


def slice_predicates(config: SliceConfig) -> dict[str, Column]:
    """Map each slice name to a boolean Column over the output of :func:`add_top_active`."""
    predicates = {
        ALL: F.lit(True),
        NEW_USERS: F.coalesce(F.col("is_new"), F.lit(False)),
        TOP_ACTIVE: F.coalesce(F.col("is_top_active"), F.lit(False)),
    }
    for name in config.platforms:
        predicates[platform_slice(name)] = F.coalesce(F.col("platform") == F.lit(name), F.lit(False))
    return predicates


def top_active_cutoff(histogram: Sequence[tuple[int, int]], share: float) -> tuple[int, int, int]:
    """Find how the ``share`` of most active users is chosen from a histogram of activity.

    ``histogram`` contains ``(event count, number of users with that count)`` pairs. The slice
    takes ``ceil(share * users)`` users: all users above the returned cut-off count, and the
    returned number of users at the cut-off, chosen by ascending user_id. Returns
    ``(slice size, cut-off count, users taken at the cut-off)``, and a size of 0 when there is
    no user.
    """
    total = sum(users for _, users in histogram)
    wanted = math.ceil(share * total) if total else 0
    taken = 0
    for count, users in sorted(histogram, reverse=True):
        if taken + users >= wanted:
            return wanted, count, wanted - taken
        taken += users
    return wanted, -1, 0


def holdout_user_activity(
    holdout_users: DataFrame, history_events: DataFrame, config: SliceConfig
) -> DataFrame:
    """Add ``evaluated``, ``history_events`` and ``is_new`` to the holdout users.

    ``holdout_users`` is the output of ``relevant_sets`` and ``history_events`` are the events
    before the holdout window. A user is evaluated when they have a relevant item, and new when
    their history count is below ``config.new_user_min_events`` (users with no history
    included).
    """
    counts = history_events.groupBy(F.col("user_id").cast("bigint").alias("user_id")).agg(
        F.count(F.lit(1)).alias("history_events")
    )
    history_count = F.coalesce(F.col("history_events"), F.lit(0).cast("bigint"))
    return holdout_users.join(counts, on="user_id", how="left").select(
        "user_id",
        "relevant",
        "platform",
        (F.size("relevant") > 0).alias("evaluated"),
        history_count.alias("history_events"),
        (history_count < F.lit(config.new_user_min_events)).alias("is_new"),
    )


def add_top_active(activity: DataFrame, config: SliceConfig) -> DataFrame:
    """Add ``is_top_active`` to the output of :func:`holdout_user_activity`.

    The slice contains exactly ``ceil(top_active_share * evaluated users)`` evaluated users, taken
    by descending history count, then ascending user_id. Two small jobs find the cut-off: a
    histogram of history counts and, when users tie at the cut-off, the last user id taken.
    Only those aggregates reach the driver. Persist ``activity`` first, because both jobs and
    the caller's later job read it.
    """
    evaluated = activity.where(F.col("evaluated"))
    histogram = [
        (int(row["history_events"]), int(row["users"]))
        for row in evaluated.groupBy("history_events").agg(F.count(F.lit(1)).alias("users")).collect()
    ]
    size, cutoff, at_cutoff = top_active_cutoff(histogram, config.top_active_share)
    if size == 0:
        return activity.withColumn("is_top_active", F.lit(False))

    is_top = F.col("history_events") > F.lit(cutoff)
    if at_cutoff > 0:
        last_user = (
            evaluated.where(F.col("history_events") == F.lit(cutoff))
            .select("user_id")
            .orderBy("user_id")
            .limit(at_cutoff)
            .agg(F.max("user_id"))
            .collect()[0][0]
        )
        is_top = is_top | ((F.col("history_events") == F.lit(cutoff)) & (F.col("user_id") <= F.lit(last_user)))
    return activity.withColumn("is_top_active", F.col("evaluated") & is_top)
