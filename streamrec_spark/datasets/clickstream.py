"""The click-stream schema, the synthetic platform assignment and the partitioned Parquet writer.

Both the KuaiRand converter and the synthetic generator produce DataFrames in
:data:`CLICK_STREAM_SCHEMA` and write them with :func:`write_click_stream`, so the two sources
are interchangeable for the validation job.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

logger = logging.getLogger(__name__)

EVENT_TYPES: tuple[str, ...] = ("view", "click", "complete", "skip")
PLATFORMS: tuple[str, ...] = ("ios", "android", "web")

# Shares of users (not of events) per platform. Neither KuaiRand nor any other source behind
# this project records a platform: these shares are an assumption of the synthetic assignment.
PLATFORM_USER_SHARES: Mapping[str, float] = {"ios": 0.45, "android": 0.45, "web": 0.10}

PARTITION_COLUMN = "event_date"

CLICK_STREAM_SCHEMA = T.StructType(
    [
        T.StructField("event_id", T.StringType(), nullable=False),
        T.StructField("user_id", T.LongType(), nullable=False),
        T.StructField("item_id", T.LongType(), nullable=False),
        T.StructField("session_id", T.StringType(), nullable=True),
        T.StructField("event_type", T.StringType(), nullable=False),
        T.StructField("platform", T.StringType(), nullable=True),
        T.StructField("duration_seconds", T.DoubleType(), nullable=True),
        T.StructField("event_ts", T.TimestampType(), nullable=False),
        T.StructField("event_date", T.DateType(), nullable=False),
    ]
)
CLICK_STREAM_COLUMNS: tuple[str, ...] = tuple(CLICK_STREAM_SCHEMA.fieldNames())

# Salt of the platform hash, so the assignment does not correlate with other hashes of user_id.
_PLATFORM_SALT = "streamrec-platform-v1"


def synthetic_platform(user_id: Column) -> Column:
    """Assign a platform to each user from a hash of ``user_id`` (synthetic, not observed).

    The same user always gets the same platform, in every run and in every source. About
    :data:`PLATFORM_USER_SHARES` of the users land on each platform; event shares differ from
    user shares because active users weigh more. A null ``user_id`` gets a null platform.
    """
    bucket = F.when(
        user_id.isNotNull(), F.pmod(F.xxhash64(F.lit(_PLATFORM_SALT), user_id), F.lit(10_000))
    )
    # Count the cumulative thresholds below the bucket. Spark computes `bucket` once because it
    # appears outside any conditional branch, and a null bucket gives a null platform.
    index = F.lit(1)
    upper = 0.0
    for share in list(PLATFORM_USER_SHARES.values())[:-1]:
        upper += share
        index = index + (bucket >= F.lit(round(upper * 10_000))).cast("int")
    names = F.array(*[F.lit(platform) for platform in PLATFORM_USER_SHARES])
    return F.element_at(names, index)


def select_click_stream(df: DataFrame) -> DataFrame:
    """Select the click-stream columns in schema order, cast to the schema's types."""
    return df.select(
        *[F.col(field.name).cast(field.dataType).alias(field.name) for field in CLICK_STREAM_SCHEMA]
    )


def write_click_stream(df: DataFrame, output_root: str, *, one_file_per_date: bool = True) -> None:
    """Write ``df`` as Parquet under ``output_root/event_date=YYYY-MM-DD/``.

    Only the dates present in ``df`` are replaced (dynamic partition overwrite), and other date
    folders under ``output_root`` stay as they are. With ``one_file_per_date`` every date is
    written by one task as one file sorted by ``event_ts``, which suits small inputs. Without it
    each Spark partition of ``df`` writes its own unsorted file, so large days are written in
    parallel.
    """
    logger.info("writing click stream to %s", output_root)
    selected = select_click_stream(df)
    if one_file_per_date:
        selected = selected.repartition(PARTITION_COLUMN).sortWithinPartitions(
            PARTITION_COLUMN, "event_ts", "event_id"
        )
    (
        selected.write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy(PARTITION_COLUMN)
        .parquet(output_root)
    )
