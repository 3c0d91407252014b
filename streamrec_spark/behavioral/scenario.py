"""A small, deterministic click stream with known tastes and an optional holiday period.

The behavioral tests and the holiday incident replay need data whose structure is known. This
generator builds it from ``spark.range`` and seeded ``rand`` columns. No shuffle happens before
a random draw, so the same settings always give the same rows.

* Items: item ``i`` has genre ``GENRES[i % len(GENRES)]`` and position ``i // len(GENRES)``
  inside its genre. Positions below ``classics_per_genre`` are old catalog content
  ("classics"); the others are current content, picked with a skewed (Zipf-like) popularity.
  Items whose position is a multiple of 4 are long-form content that users complete more often.
* Users: each user has an old genre, a different current genre, and a switch day between
  ``switch_day_min`` and ``switch_day_max``. Before the switch, a preferred choice is the old
  genre; after it, the current genre. ``late_joiner_share`` of users start late, so the
  holdout windows contain new users. Platforms come from ``synthetic_platform``.
* Events: on an active day, a user picks a preferred genre with probability
  ``preference_strength`` and a uniformly random genre otherwise. Random picks are skipped more
  often than preferred ones, and long-form items are completed more often. Each pick is a
  ``view`` of the item. When the user did more, a ``click``, ``complete`` or ``skip`` of the same
  item by the same user follows 30 seconds later, as the KuaiRand conversion expands a log row
  into a view and its outcomes. So no user has more completions, clicks or skips than views.
* Holiday: between ``holiday_start_day`` and ``holiday_end_day`` (end exclusive) users go back
  to their old genre and mostly watch its classics, so old content is briefly very popular.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from streamrec_spark.datasets.clickstream import select_click_stream, synthetic_platform, write_click_stream
from streamrec_spark.models.genres import GENRES

logger = logging.getLogger(__name__)

# Seconds between a view and the click, complete or skip of the same item that follows it.
OUTCOME_DELAY_SECONDS = 30


@dataclass(frozen=True)
class ScenarioConfig:
    """Settings of the generated click stream; days count from ``start_date`` (day 0)."""

    seed: int = 7
    users: int = 300
    items_per_genre: int = 48
    classics_per_genre: int = 2
    start_date: date = date(2023, 10, 1)
    days: int = 100
    switch_day_min: int = 38
    switch_day_max: int = 46
    late_joiner_share: float = 0.12
    late_join_first_day: int = 64
    active_day_probability: float = 0.6
    mean_events_per_day: float = 3.0
    preference_strength: float = 0.75
    popularity_skew: float = 2.5
    holiday_start_day: int | None = 77
    holiday_end_day: int | None = 101
    holiday_classic_probability: float = 0.9
    null_session_share: float = 0.05

    def day(self, index: int) -> datetime:
        """Return midnight (UTC, naive) of day ``index``."""
        return datetime.combine(self.start_date + timedelta(days=index), datetime.min.time())

    @property
    def items(self) -> int:
        return self.items_per_genre * len(GENRES)


@dataclass(frozen=True)
class Scenario:
    events: DataFrame
    items: DataFrame
    config: ScenarioConfig


def _hash_unit(salt: str, column: Column) -> Column:
    """Map ``column`` to a number in [0, 1) by a salted xxhash64, the same on every run."""
    return F.pmod(F.xxhash64(F.lit(salt), column), F.lit(1_000_003)) / F.lit(1_000_003.0)


def _users(spark: SparkSession, config: ScenarioConfig) -> DataFrame:
    genres = len(GENRES)
    user = F.col("id") + F.lit(1)
    old_genre = F.floor(_hash_unit("old-genre", user) * genres).cast("int")
    shift = 1 + F.floor(_hash_unit("genre-shift", user) * (genres - 1)).cast("int")
    switch_span = config.switch_day_max - config.switch_day_min + 1
    late = _hash_unit("late", user) < F.lit(config.late_joiner_share)
    late_span = max(config.days - config.late_join_first_day - 3, 1)
    join_day = F.when(
        late, F.lit(config.late_join_first_day) + F.floor(_hash_unit("join", user) * late_span)
    ).otherwise(F.lit(0))
    return spark.range(config.users, numPartitions=2).select(
        user.alias("user_id"),
        old_genre.alias("old_genre"),
        F.pmod(old_genre + shift, F.lit(genres)).alias("current_genre"),
        (F.lit(config.switch_day_min) + F.floor(_hash_unit("switch", user) * switch_span)).cast("int").alias("switch_day"),
        join_day.cast("int").alias("join_day"),
        synthetic_platform(user).alias("platform"),
    )


def generate_scenario(spark: SparkSession, config: ScenarioConfig | None = None) -> Scenario:
    """Build the scenario's events (click-stream schema) and items (item_id, genre, is_classic)."""
    config = config or ScenarioConfig()
    genres = len(GENRES)
    seed = config.seed
    days = spark.range(config.days, numPartitions=1).select(F.col("id").cast("int").alias("day"))
    user_days = _users(spark, config).crossJoin(days).where(F.col("day") >= F.col("join_day"))
    user_days = user_days.where(F.rand(seed) < F.lit(config.active_day_probability)).withColumn(
        "events", (F.floor(F.rand(seed + 1) * (2 * config.mean_events_per_day - 1)) + 1).cast("int")
    )
    events = user_days.select("*", F.explode(F.sequence(F.lit(1), F.col("events"))).alias("index"))

    holiday = F.lit(False)
    if config.holiday_start_day is not None and config.holiday_end_day is not None:
        holiday = (F.col("day") >= config.holiday_start_day) & (F.col("day") < config.holiday_end_day)
    preferred = F.when(holiday, F.col("old_genre")).otherwise(
        F.when(F.col("day") < F.col("switch_day"), F.col("old_genre")).otherwise(F.col("current_genre"))
    )
    picks_preferred = F.rand(seed + 2) < F.lit(config.preference_strength)
    genre = F.when(picks_preferred, preferred).otherwise(F.floor(F.rand(seed + 3) * genres).cast("int"))
    current_positions = config.items_per_genre - config.classics_per_genre
    skewed = F.pow(F.rand(seed + 4), F.lit(config.popularity_skew))
    current_position = F.lit(config.classics_per_genre) + F.floor(skewed * current_positions)
    classic_position = F.floor(F.pow(F.rand(seed + 5), F.lit(2.0)) * config.classics_per_genre)
    watches_classic = holiday & (F.rand(seed + 6) < F.lit(config.holiday_classic_probability))
    position = F.when(watches_classic, classic_position).otherwise(current_position).cast("bigint")
    events = events.select(
        "*",
        picks_preferred.alias("preferred"),
        genre.alias("genre_index"),
        position.alias("position"),
        F.rand(seed + 7).alias("type_draw"),
        F.rand(seed + 8).alias("jitter"),
        F.rand(seed + 9).alias("session_draw"),
    )

    long_form = F.pmod(F.col("position"), F.lit(4)) == 0
    complete_share = F.when(long_form, 0.55).otherwise(0.3) * F.when(F.col("preferred"), 1.0).otherwise(0.5)
    skip_share = F.when(F.col("preferred"), 0.1).otherwise(0.4)
    draw = F.col("type_draw")
    outcome = (
        F.when(draw < complete_share, "complete")
        .when(draw < complete_share + 0.2, "click")
        .when(draw < complete_share + 0.2 + skip_share, "skip")
    )
    # Every pick is a view (step 0). An outcome adds its own event (step 1) after the view.
    steps = F.when(outcome.isNull(), F.array(F.lit("view"))).otherwise(F.array(F.lit("view"), outcome))
    events = events.select("*", F.posexplode(steps).alias("step", "event_type"))
    event_type = F.col("event_type")

    start_epoch = config.day(0).replace(tzinfo=timezone.utc).timestamp()
    # Picks are 600 s apart and jitter adds at most 300 s, so an outcome 30 s after its view
    # comes before the user's next pick.
    seconds = (
        F.col("day") * 86_400 + 8 * 3_600 + F.col("index") * 600 + F.floor(F.col("jitter") * 300)
        + F.col("step") * OUTCOME_DELAY_SECONDS
    )
    session = F.concat_ws(
        "-", F.lit("s"), F.col("user_id").cast("string"), F.col("day").cast("string"),
        F.floor((F.col("index") - 1) / 4).cast("string"),
    )
    item_id = F.col("genre_index") + F.col("position") * genres
    frame = events.select(
        F.concat_ws("-", F.lit("e"), F.col("user_id"), F.col("day"), F.col("index"), F.col("step")).alias("event_id"),
        F.col("user_id").cast("bigint").alias("user_id"),
        item_id.cast("bigint").alias("item_id"),
        F.when(F.col("session_draw") >= F.lit(config.null_session_share), session).alias("session_id"),
        event_type,
        F.col("platform"),
        F.when(event_type == "complete", 30.0 + F.col("jitter") * 90.0)
        .otherwise(1.0 + F.col("jitter") * 19.0)
        .alias("duration_seconds"),
        F.timestamp_seconds(F.lit(start_epoch) + seconds).alias("event_ts"),
    )
    frame = select_click_stream(frame.withColumn("event_date", F.to_date("event_ts")))

    items = spark.range(config.items, numPartitions=1).select(
        F.col("id").alias("item_id"),
        F.element_at(F.array(*[F.lit(name) for name in GENRES]), (F.pmod("id", F.lit(genres)) + 1).cast("int")).alias(
            "genre"
        ),
        (F.floor(F.col("id") / genres) < config.classics_per_genre).alias("is_classic"),
    )
    return Scenario(events=frame, items=items, config=config)


def write_scenario(scenario: Scenario, root: str | Path) -> tuple[str, str]:
    """Write events under ``root/events`` (Parquet, by event_date) and items under ``root/items``."""
    root = Path(root)
    events_path = str(root / "events")
    items_path = str(root / "items")
    write_click_stream(scenario.events, events_path)
    scenario.items.write.mode("overwrite").parquet(items_path)
    logger.info("wrote scenario events to %s and items to %s", events_path, items_path)
    return events_path, items_path
