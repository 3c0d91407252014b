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


def slice_names(config: SliceConfig, with_slices: bool = True) -> list[str]:
    """Return the reported slices in a fixed order; every one is reported, even when empty.

    Without slices, only ``all`` is reported.
    """
    if not with_slices:
        return [ALL]
    return [ALL, NEW_USERS, *[platform_slice(name) for name in config.platforms], TOP_ACTIVE]


def slice_predicates(config: SliceConfig) -> dict[str, Column]:
    """Map each slice name to a boolean Column over per-user rows.

    The rows need ``is_new``, ``is_top_active`` and ``platform``. A null in any of them puts
    the user outside that slice.
    """
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


def top_active_predicate(activity: DataFrame, config: SliceConfig) -> Column:
    """Return a Column that is true for the most active evaluated users.

    ``activity`` has one row per evaluated user with ``user_id`` and ``history_events`` (their
    event count before the holdout window). The slice contains exactly
    ``ceil(top_active_share * evaluated users)`` users, taken by descending history count, then
    ascending user_id. Two small jobs find the cut-off: a histogram of history counts and, when
    users tie at the cut-off, the last user id taken. Only those aggregates reach the driver.
    Persist the data behind ``activity`` first, because both jobs read it. The returned Column
    reads ``history_events`` and ``user_id``, and it must be combined with the evaluated flag.
    """
    histogram = [
        (int(row["history_events"]), int(row["users"]))
        for row in activity.groupBy("history_events").agg(F.count(F.lit(1)).alias("users")).collect()
    ]
    size, cutoff, at_cutoff = top_active_cutoff(histogram, config.top_active_share)
    if size == 0:
        return F.lit(False)

    is_top = F.col("history_events") > F.lit(cutoff)
    if at_cutoff > 0:
        last_user = (
            activity.where(F.col("history_events") == F.lit(cutoff))
            .select("user_id")
            .orderBy("user_id")
            .limit(at_cutoff)
            .agg(F.max("user_id"))
            .collect()[0][0]
        )
        is_top = is_top | ((F.col("history_events") == F.lit(cutoff)) & (F.col("user_id") <= F.lit(last_user)))
    return is_top
