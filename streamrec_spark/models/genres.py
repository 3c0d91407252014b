"""Item genres: taken from a catalog when one is given, otherwise assigned by a fixed hash.

The KuaiRand item tags do not join to its interaction log, so items without a catalog genre get
``GENRES[pmod(xxhash64(GENRE_SALT, item_id), len(GENRES))]``. Spark's ``xxhash64`` uses a fixed
seed (42), so the same item gets the same genre in every run, on every machine, in training
and in the behavioral suite alike.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

GENRES: tuple[str, ...] = (
    "drama",
    "comedy",
    "news",
    "sports",
    "music",
    "kids",
    "documentary",
    "gaming",
)
GENRE_SALT = "streamrec-genre-v1"


def hashed_genre(item_id: Column) -> Column:
    """Return the deterministic genre of ``item_id`` (a name from :data:`GENRES`)."""
    index = F.pmod(F.xxhash64(F.lit(GENRE_SALT), item_id.cast("bigint")), F.lit(len(GENRES)))
    return F.element_at(F.array(*[F.lit(name) for name in GENRES]), (index + 1).cast("int"))


def item_genres(events: DataFrame, items: DataFrame | None = None) -> DataFrame:
    """Return ``item_id``, ``genre`` for every item of ``events`` and of ``items``.

    ``items`` must have ``item_id`` and ``genre``; a null or missing catalog genre falls back to
    :func:`hashed_genre`. An item listed twice in ``items`` keeps its smallest genre name.
    """
    ids = events.select(F.col("item_id").cast("bigint").alias("item_id")).distinct()
    if items is None:
        return ids.select("item_id", hashed_genre(F.col("item_id")).alias("genre"))
    catalog = items.groupBy(F.col("item_id").cast("bigint").alias("item_id")).agg(
        F.min(F.col("genre").cast("string")).alias("catalog_genre")
    )
    every = ids.unionByName(catalog.select("item_id")).distinct()
    return every.join(catalog, "item_id", "left").select(
        "item_id", F.coalesce(F.col("catalog_genre"), hashed_genre(F.col("item_id"))).alias("genre")
    )
