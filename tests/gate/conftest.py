"""Fixtures shared by the gate tests: a small saved model that a passing gate registers."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from streamrec_spark.models import PopularityModel, TrainingWindow

TRAIN_END = datetime(2024, 5, 1)
# (item_id, event_type, hours before TRAIN_END): item 30 is the most popular, then 20, then 10.
EVENTS = (
    (30, "complete", 2), (30, "complete", 5), (30, "click", 9),
    (20, "complete", 3), (20, "view", 30),
    (10, "view", 40),
)


@pytest.fixture(scope="session")
def saved_model_dir(spark, tmp_path_factory) -> str:
    """Fit a popularity model on six events and save it. It ranks items 30, 20, 10."""
    rows = [(item, kind, TRAIN_END - timedelta(hours=hours)) for item, kind, hours in EVENTS]
    events = spark.createDataFrame(rows, "item_id long, event_type string, event_ts timestamp")
    folder = tmp_path_factory.mktemp("saved-model") / "popularity"
    PopularityModel().fit(events, TrainingWindow(end=TRAIN_END, days=7)).save(folder)
    return str(folder)
