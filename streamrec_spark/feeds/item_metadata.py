"""The item-metadata feed: KuaiRand's ``video_features_basic`` table as daily snapshots.

The CSV is written as the source exports it; its quirks are left in and declared by the
``item_metadata`` contract instead of being cleaned here:

- ``video_duration`` (milliseconds) is missing for 239 of 7,583 videos, all picture posts
  or ShortImport videos;
- ``tag`` contains one to three comma-separated tag ids and is missing for 96 videos;
- several integral columns are written as floats ("720.0") and stay double.

``snapshot_date`` and ``exported_at`` are derived, not in the source (see ``snapshot``).
"""

from __future__ import annotations

from datetime import date, datetime

from pyspark.sql import SparkSession

from streamrec_spark.feeds.snapshot import convert_snapshot

FEED = "item_metadata"

# Column -> Spark type, in the export's column order. Types follow how the CSV writes values:
# "87433.0" is a double even though every value is whole.
ITEM_METADATA_TYPES: dict[str, str] = {
    "video_id": "bigint",
    "author_id": "bigint",
    "video_type": "string",
    "upload_dt": "date",
    "upload_type": "string",
    "visible_status": "double",
    "video_duration": "double",
    "server_width": "double",
    "server_height": "double",
    "music_id": "bigint",
    "music_type": "double",
    "tag": "string",
}

# KuaiRand publishes the feature tables without an export date. The default snapshot is the
# last day of the embedded interaction log (2022-04-08 to 2022-04-21): an assumption, not a fact
# of the source.
KUAIRAND_SNAPSHOT_DATE = date(2022, 4, 21)


def convert_item_metadata(
    spark: SparkSession,
    csv_path: str,
    output_root: str,
    snapshot_date: date = KUAIRAND_SNAPSHOT_DATE,
    exported_at: datetime | None = None,
) -> date:
    """Convert the video-features CSV into ``output_root/snapshot_date=YYYY-MM-DD/``.

    ``exported_at`` (aware) defaults to the start of the next day in UTC. Returns the
    snapshot date written. Raises InputDataError as ``snapshot.convert_snapshot`` does.
    """
    convert_snapshot(spark, csv_path, output_root, ITEM_METADATA_TYPES, FEED, snapshot_date,
                     exported_at)
    return snapshot_date
