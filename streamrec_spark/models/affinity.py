"""Recency-weighted genre affinity with item co-occurrence, popularity and engagement.

For a history of interactions ``e`` (item, event type, time) and a request at time ``now``,
each interaction weighs ``a_e = event_weight(type) * recency(now - time)``. The score of item
``j`` is

    popularity_weight   * popularity(j, platform)
  + genre_weight        * sum(a_e for e in genre(j)) / (sum |a_e| + 1)
  + cooccurrence_weight * sum(a_e * similarity(item_e, j)) / (sum |a_e| + 1)
  + engagement_weight   * sessions / (sessions + session_half_saturation) * engagement(j)

``recency`` is not a fixed decay but is fitted on the training window. For each age bucket it is
the rate at which interactions of that age were followed by an engagement in their genre during
the last ``target_days`` of the window, relative to the best bucket. A window whose users went
back to old interests therefore learns that old interactions matter more than recent ones.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from streamrec_spark.errors import InputDataError
from streamrec_spark.models.base import (
    SECONDS_PER_DAY,
    Interaction,
    Recommender,
    TrainingWindow,
    UserContext,
    window_events,
)
from streamrec_spark.models.config import EventWeights, RecencyAffinityParams
from streamrec_spark.models.genres import item_genres
from streamrec_spark.models.popularity import decay_column, event_weight_column

logger = logging.getLogger(__name__)

PLATFORMS: tuple[str, ...] = ("ios", "android", "web")
POSITIVE_TYPES: tuple[str, ...] = ("click", "complete")


def bucket_centers(edges: Sequence[float]) -> np.ndarray:
    """Return the age in days that represents each bucket (the open last bucket uses its edge)."""
    middles = [(low + high) / 2.0 for low, high in zip(edges, edges[1:])]
    return np.array([*middles, float(edges[-1])])


def recency_curve(positives: Sequence[float], totals: Sequence[float], prior_events: float) -> np.ndarray:
    """Return per-bucket weights in [0, 1] from follow-up counts, the best bucket at 1.

    Each bucket's rate ``positives / totals`` is shrunk toward the overall rate by
    ``prior_events`` pseudo-events, so an empty bucket gets the overall rate.
    """
    positives = np.asarray(positives, dtype=float)
    totals = np.asarray(totals, dtype=float)
    overall = positives.sum() / totals.sum() if totals.sum() > 0 else 0.0
    rates = (positives + prior_events * overall) / np.maximum(totals + prior_events, 1e-12)
    best = rates.max()
    return rates / best if best > 0 else np.ones_like(rates)


class RecencyAffinityModel(Recommender):
    """The reference personalised model, with the score described in the module docstring."""

    model_type = "recency_affinity"

    def __init__(self, params: RecencyAffinityParams | None = None):
        super().__init__()
        self.params = params or RecencyAffinityParams()
        self.genre_names: list[str] = []
        self.item_genre = np.zeros(0, dtype=np.int32)
        self.popularity = np.zeros((1 + len(PLATFORMS), 0))
        self.engagement = np.zeros(0)
        self.curve = np.ones(len(self.params.age_bucket_edges_days))
        self.neighbor_offsets = np.zeros(1, dtype=np.int64)
        self.neighbor_items = np.zeros(0, dtype=np.int64)
        self.neighbor_weights = np.zeros(0)
        self._event_weights = self.params.event_weights.as_dict()

    # -- fitting (Spark) -------------------------------------------------------------------

    def fit(
        self, events: DataFrame, window: TrainingWindow, items: DataFrame | None = None
    ) -> RecencyAffinityModel:
        params = self.params
        train = window_events(events, window).select(
            F.col("user_id").cast("bigint").alias("user_id"),
            F.col("item_id").cast("bigint").alias("item_id"),
            "event_type",
            "platform",
            "session_id",
            "event_ts",
        )
        genres = item_genres(train, items)
        item_rows = self._fit_items(train, genres, window)
        if not item_rows:
            raise InputDataError(
                f"no events between {window.start} and {window.end}; cannot fit {self.model_type}",
                error_code="EMPTY_TRAINING_WINDOW",
            )
        self._set_items(np.array([row["item_id"] for row in item_rows], dtype=np.int64))
        self.genre_names = sorted({row["genre"] for row in item_rows})
        genre_index = {name: index for index, name in enumerate(self.genre_names)}
        self.item_genre = np.array([genre_index[row["genre"]] for row in item_rows], dtype=np.int32)

        raw = np.array(
            [[max(row[f"popularity_{index}"] or 0.0, 0.0) for row in item_rows] for index in range(1 + len(PLATFORMS))]
        )
        scale = np.maximum(np.log1p(raw.max(axis=1, keepdims=True)), 1e-12)
        self.popularity = np.log1p(raw) / scale

        completes = np.array([row["completes"] for row in item_rows], dtype=float)
        totals = np.array([row["events"] for row in item_rows], dtype=float)
        overall = completes.sum() / max(totals.sum(), 1.0)
        rates = (completes + params.engagement_prior_events * overall) / (totals + params.engagement_prior_events)
        self.engagement = rates / max(rates.max(), 1e-12)

        self.curve = self._fit_recency(train, genres, window)
        self._fit_cooccurrence(train, window)
        self.window = window
        logger.info(
            "fitted %s on %d items (%s to %s); recency curve %s",
            self.model_type,
            len(self.item_ids),
            window.start,
            window.end,
            np.round(self.curve, 3).tolist(),
        )
        return self

    def _fit_items(self, train: DataFrame, genres: DataFrame, window: TrainingWindow) -> list:
        weight = event_weight_column(self.params.event_weights) * decay_column(
            window.end_epoch, self.params.popularity_half_life_days
        )
        sums = [F.sum(weight).alias("popularity_0")]
        for index, platform in enumerate(PLATFORMS, start=1):
            sums.append(F.sum(F.when(F.col("platform") == F.lit(platform), weight)).alias(f"popularity_{index}"))
        stats = train.groupBy("item_id").agg(
            *sums,
            F.sum((F.col("event_type") == F.lit("complete")).cast("bigint")).alias("completes"),
            F.count(F.lit(1)).alias("events"),
        )
        return stats.join(genres, "item_id", "inner").orderBy("item_id").collect()

    def _fit_recency(self, train: DataFrame, genres: DataFrame, window: TrainingWindow) -> np.ndarray:
        params = self.params
        cutoff = window.end - timedelta(days=params.target_days)
        cutoff_epoch = window.end_epoch - params.target_days * SECONDS_PER_DAY
        with_genre = train.join(genres, "item_id", "inner")

        targets = (
            with_genre.where((F.col("event_ts") >= F.lit(cutoff)) & F.col("event_type").isin(list(POSITIVE_TYPES)))
            .select("user_id", "genre")
            .distinct()
            .withColumn("followed", F.lit(1))
        )
        target_users = targets.select("user_id").distinct()

        positive_weight = event_weight_column(params.event_weights) > 0
        age_days = (F.lit(cutoff_epoch) - F.col("event_ts").cast("double")) / F.lit(SECONDS_PER_DAY)
        bucket = F.lit(-1)
        for edge in params.age_bucket_edges_days:
            bucket = bucket + (age_days >= F.lit(edge)).cast("int")
        history = with_genre.where((F.col("event_ts") < F.lit(cutoff)) & positive_weight).join(
            target_users, "user_id", "inner"
        )

        rows = (
            history.join(targets, ["user_id", "genre"], "left")
            .groupBy(bucket.alias("bucket"))
            .agg(F.count(F.lit(1)).alias("events"), F.count("followed").alias("followed"))
            .collect()
        )

        buckets = len(params.age_bucket_edges_days)
        totals = np.zeros(buckets)
        positives = np.zeros(buckets)
        for row in rows:
            totals[row["bucket"]] = row["events"]
            positives[row["bucket"]] = row["followed"]
        if totals.sum() == 0:
            logger.warning(
                "no interaction before the last %d days of the window was followed up; "
                "the recency curve is flat",
                params.target_days,
            )
        return recency_curve(positives, totals, params.prior_events)

    def _fit_cooccurrence(self, train: DataFrame, window: TrainingWindow) -> None:
        params = self.params
        session_key = F.coalesce(
            F.col("session_id"),
            F.concat_ws(":", F.col("user_id").cast("string"), F.to_date("event_ts").cast("string")),
        )
        sessions = (
            train.where(F.col("event_type").isin(list(POSITIVE_TYPES)))
            .groupBy("user_id", session_key.alias("session"))
            .agg(
                F.sort_array(F.collect_list(F.struct("event_ts", "item_id"))).alias("events"),
                F.max("event_ts").alias("last_ts"),
            )
            .select(
                F.slice(F.array_distinct(F.transform("events", lambda e: e["item_id"])), 1, params.max_items_per_session).alias(
                    "items"
                ),
                F.pow(
                    F.lit(0.5),
                    (F.lit(window.end_epoch) - F.col("last_ts").cast("double"))
                    / F.lit(SECONDS_PER_DAY * params.cooccurrence_half_life_days),
                ).alias("decay"),
            )
        )

        item_mass = sessions.select(F.explode("items").alias("item_id"), "decay").groupBy("item_id").agg(
            F.sum("decay").alias("mass")
        )
        pairs = (
            sessions.select(F.explode("items").alias("item_id"), "items", "decay")
            .select("item_id", F.explode("items").alias("neighbor"), "decay")
            .where(F.col("item_id") != F.col("neighbor"))
            .groupBy("item_id", "neighbor")
            .agg(F.sum("decay").alias("together"))
        )
        similarity = (
            pairs.join(item_mass, "item_id")
            .join(item_mass.select(F.col("item_id").alias("neighbor"), F.col("mass").alias("neighbor_mass")), "neighbor")
            .select(
                "item_id",
                "neighbor",
                (F.col("together") / F.sqrt(F.col("mass") * F.col("neighbor_mass"))).alias("similarity"),
            )
        )

        ranked = Window.partitionBy("item_id").orderBy(F.desc("similarity"), F.asc("neighbor"))
        rows = (
            similarity.withColumn("position", F.row_number().over(ranked))
            .where(F.col("position") <= params.neighbors)
            .orderBy("item_id", "position")
            .collect()
        )

        offsets = np.zeros(len(self.item_ids) + 1, dtype=np.int64)
        neighbor_items: list[int] = []
        neighbor_weights: list[float] = []
        by_item: dict[int, list[tuple[int, float]]] = {}
        for row in rows:
            source = self.item_index(row["item_id"])
            target = self.item_index(row["neighbor"])
            if source is not None and target is not None:
                by_item.setdefault(source, []).append((target, float(row["similarity"])))

        for index in range(len(self.item_ids)):
            for target, weight in by_item.get(index, []):
                neighbor_items.append(target)
                neighbor_weights.append(weight)
            offsets[index + 1] = len(neighbor_items)
        self.neighbor_offsets = offsets
        self.neighbor_items = np.array(neighbor_items, dtype=np.int64)
        self.neighbor_weights = np.array(neighbor_weights, dtype=float)

    # -- scoring (plain Python) -------------------------------------------------------------

    def recency_weight(self, age_days: np.ndarray) -> np.ndarray:
        """Interpolate the fitted curve at ``age_days`` (clamped to the first and last bucket)."""
        centers = bucket_centers(self.params.age_bucket_edges_days)
        return np.interp(np.maximum(age_days, 0.0), centers, self.curve)

    def score_all(self, history: Sequence[Interaction], context: UserContext) -> np.ndarray:
        params = self.params
        platform_row = 1 + PLATFORMS.index(context.platform) if context.platform in PLATFORMS else 0
        popularity = self.popularity[0]
        if platform_row:
            popularity = (1 - params.platform_share) * popularity + params.platform_share * self.popularity[platform_row]
        scores = params.popularity_weight * popularity
        if not history:
            return scores

        recent = sorted(history, key=lambda event: event.timestamp)[-params.max_history_events :]
        indexes = np.array([self._index.get(int(event.item_id), -1) for event in recent])
        ages = np.array([(context.now - event.timestamp) / SECONDS_PER_DAY for event in recent])
        kinds = np.array([self._event_weights.get(event.event_type, 0.0) for event in recent])
        weights = kinds * self.recency_weight(ages)
        mass = np.abs(weights).sum() + 1.0

        known = indexes >= 0
        affinity = np.bincount(
            self.item_genre[indexes[known]], weights=weights[known], minlength=len(self.genre_names)
        )
        scores = scores + params.genre_weight * affinity[self.item_genre] / mass

        related = np.zeros(len(self.item_ids))
        for index, weight in zip(indexes[known], weights[known]):
            start, end = self.neighbor_offsets[index], self.neighbor_offsets[index + 1]
            related[self.neighbor_items[start:end]] += weight * self.neighbor_weights[start:end]
        scores = scores + params.cooccurrence_weight * related / mass

        sessions = len(
            {
                event.session_id if event.session_id is not None else f"day:{math.floor(event.timestamp / SECONDS_PER_DAY)}"
                for event in recent
            }
        )
        saturation = sessions / (sessions + params.session_half_saturation)
        return scores + params.engagement_weight * saturation * self.engagement

    # -- persistence -------------------------------------------------------------------------

    def _params(self) -> dict[str, Any]:
        return {"settings": asdict(self.params), "genre_names": self.genre_names}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "item_genre": self.item_genre,
            "popularity": self.popularity,
            "engagement": self.engagement,
            "curve": self.curve,
            "neighbor_offsets": self.neighbor_offsets,
            "neighbor_items": self.neighbor_items,
            "neighbor_weights": self.neighbor_weights,
        }

    def _restore(self, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        settings = dict(params["settings"])
        weights = EventWeights(**settings.pop("event_weights"))
        edges = tuple(settings.pop("age_bucket_edges_days"))
        self.params = RecencyAffinityParams(event_weights=weights, age_bucket_edges_days=edges, **settings)
        self._event_weights = weights.as_dict()
        self.genre_names = list(params["genre_names"])
        for name, value in arrays.items():
            setattr(self, name, value)
