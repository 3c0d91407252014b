"""The user-profile feed: KuaiRand's ``user_features`` table as daily snapshots.

The CSV is written as the source exports it; its quirks are left in and declared by the
``user_profiles`` contract instead of being cleaned here:

- ``is_live_streamer`` contains only 1 and -124, never 0: -124 is the source's sentinel for
  unknown, kept as delivered;
- ``onehot_feat4`` and ``onehot_feat12`` to ``onehot_feat17`` are integer codes written as
  floats ("1.0"), with missing values, so they stay double;
- the table has no time column at all.

``snapshot_date`` and ``exported_at`` are derived, not in the source (see ``snapshot``).
"""

from __future__ import annotations

from datetime import date, datetime

from pyspark.sql import SparkSession

from streamrec_spark.feeds.item_metadata import KUAIRAND_SNAPSHOT_DATE
from streamrec_spark.feeds.snapshot import convert_snapshot

FEED = "user_profiles"

# Encoded features that the export writes as floats.
_FLOAT_FEATURES = {4, 12, 13, 14, 15, 16, 17}

# Column -> Spark type, in the export's column order.
USER_PROFILE_TYPES: dict[str, str] = {
    "user_id": "bigint",
    "user_active_degree": "string",
    "is_lowactive_period": "int",
    "is_live_streamer": "int",
    "is_video_author": "int",
    "follow_user_num": "bigint",
    "follow_user_num_range": "string",
    "fans_user_num": "bigint",
    "fans_user_num_range": "string",
    "friend_user_num": "bigint",
    "friend_user_num_range": "string",
    "register_days": "int",
    "register_days_range": "string",
    **{
        f"onehot_feat{index}": "double" if index in _FLOAT_FEATURES else "int"
        for index in range(18)
    },
}


def convert_user_profiles(
    spark: SparkSession,
    csv_path: str,
    output_root: str,
    snapshot_date: date = KUAIRAND_SNAPSHOT_DATE,
    exported_at: datetime | None = None,
) -> date:
    """Convert the user-features CSV into ``output_root/snapshot_date=YYYY-MM-DD/``.

    ``exported_at`` (aware) defaults to the start of the next day in UTC. Returns the
    snapshot date written. Raises InputDataError as ``snapshot.convert_snapshot`` does.
    """
    convert_snapshot(spark, csv_path, output_root, USER_PROFILE_TYPES, FEED, snapshot_date,
                     exported_at)
    return snapshot_date
