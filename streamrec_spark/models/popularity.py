"""Popularity baseline: the same ranking of items for every user, from decayed event counts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from streamrec_spark.errors import InputDataError
from streamrec_spark.models.base import (
    SECONDS_PER_DAY,
    Interaction,
    Recommender,
    TrainingWindow,
    UserContext,
    window_events,
)
from streamrec_spark.models.config import EventWeights, PopularityParams

logger = logging.getLogger(__name__)


def event_weight_column(weights: EventWeights) -> F.Column:
    """Return the configured weight of each row's ``event_type`` (0 for an unknown type)."""
    expression = F.lit(0.0)
    for name, value in weights.as_dict().items():
        expression = F.when(F.col("event_type") == F.lit(name), F.lit(value)).otherwise(expression)
    return expression


def decay_column(end_epoch: float, half_life_days: float) -> F.Column:
    """Return 0.5 ** (age in days / half-life), with age measured back from ``end_epoch``."""
    age_days = (F.lit(end_epoch) - F.col("event_ts").cast("double")) / F.lit(SECONDS_PER_DAY)
    return F.pow(F.lit(0.5), age_days / F.lit(half_life_days))


class PopularityModel(Recommender):
    """Scores every item by its time-decayed, event-weighted count in the training window.

    The score ignores the history and the request, so this baseline is invariant to every
    perturbation and fails every directional behavioral test by design.
    """

    model_type = "popularity"

    def __init__(self, params: PopularityParams | None = None):
        super().__init__()
        self.params = params or PopularityParams()
        self.popularity = np.zeros(0)

    def fit(self, events: DataFrame, window: TrainingWindow, items: DataFrame | None = None) -> PopularityModel:
        weight = event_weight_column(self.params.event_weights) * decay_column(
            window.end_epoch, self.params.half_life_days
        )
        rows = (
            window_events(events, window)
            .groupBy(F.col("item_id").cast("bigint").alias("item_id"))
            .agg(F.sum(weight).alias("popularity"))
            .orderBy("item_id")
            .collect()
        )
        if not rows:
            raise InputDataError(
                f"no events between {window.start} and {window.end}; cannot fit a popularity model",
                error_code="EMPTY_TRAINING_WINDOW",
            )
        self._set_items(np.array([row["item_id"] for row in rows], dtype=np.int64))
        raw = np.maximum(np.array([row["popularity"] for row in rows], dtype=float), 0.0)
        self.popularity = np.log1p(raw) / max(np.log1p(raw.max()), 1e-12)
        self.window = window
        logger.info("fitted popularity model on %d items (%s to %s)", len(rows), window.start, window.end)
        return self

    def score_all(self, history: Sequence[Interaction], context: UserContext) -> np.ndarray:
        return self.popularity

    def _params(self) -> dict[str, Any]:
        return asdict(self.params)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity}

    def _restore(self, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        weights = EventWeights(**params.pop("event_weights"))
        self.params = PopularityParams(event_weights=weights, **params)
        self.popularity = arrays["popularity"]
