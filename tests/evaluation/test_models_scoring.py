"""Reference models: single-user scoring, save and load, config; plus one Spark fit check."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from streamrec_spark.errors import ConfigError, InputDataError
from streamrec_spark.models import (
    Interaction,
    PopularityModel,
    RecencyAffinityModel,
    TrainingWindow,
    UserContext,
    load_model,
    model_size_bytes,
)
from streamrec_spark.models.affinity import bucket_centers, recency_curve
from streamrec_spark.models.config import load_models_config

REPO = Path(__file__).resolve().parents[2]
NOW = 1_700_000_000.0
DAY = 86_400.0


def _affinity_model(curve=(1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1, 0.1)) -> RecencyAffinityModel:
    """Six items: 10, 11, 12 are drama and 20, 21, 22 news; 10 and 11 co-occur."""
    model = RecencyAffinityModel()
    model._set_items(np.array([10, 11, 12, 20, 21, 22]))
    model.genre_names = ["drama", "news"]
    model.item_genre = np.array([0, 0, 0, 1, 1, 1], dtype=np.int32)
    model.popularity = np.tile(np.array([0.5, 0.4, 0.3, 0.6, 0.2, 0.1]), (4, 1))
    model.engagement = np.array([1.0, 0.2, 0.2, 0.9, 0.1, 0.1])
    model.curve = np.array(curve)
    model.neighbor_offsets = np.array([0, 1, 2, 2, 2, 2, 2])
    model.neighbor_items = np.array([1, 0])
    model.neighbor_weights = np.array([0.8, 0.8])
    model.window = TrainingWindow(datetime(2023, 11, 14), 60)
    return model


def _context(platform="ios"):
    return UserContext(user_id=1, now=NOW, platform=platform)


def test_recency_curve_shrinks_and_normalises():
    curve = recency_curve([10, 0, 5], [20, 0, 50], prior_events=10)
    assert curve.max() == 1.0
    overall = 15 / 70
    assert curve[1] == pytest.approx(overall / ((10 + 10 * overall) / 30))
    assert list(bucket_centers([0, 1, 3])) == [0.5, 2.0, 3.0]


def test_completion_raises_genre_and_neighbors():
    model = _affinity_model()
    base = model.score_all([], _context())
    after = model.score_all([Interaction(10, "complete", NOW - 3600, "s", "ios")], _context())
    assert after[2] - base[2] > 0  # drama item 12 gains through the genre
    assert after[1] - base[1] > after[2] - base[2]  # neighbor 11 gains more than drama item 12
    # News item 21 gains only through the engagement term (one session), less than drama item 12.
    assert after[4] - base[4] < after[2] - base[2]


def test_skip_lowers_genre():
    model = _affinity_model()
    skip = model.score_all([Interaction(10, "skip", NOW - 3600, "s", "ios")], _context())
    complete = model.score_all([Interaction(10, "complete", NOW - 3600, "s", "ios")], _context())
    assert complete[2] > skip[2]


def test_recent_event_weighs_more_with_decreasing_curve():
    model = _affinity_model()
    recent = model.score_all([Interaction(10, "complete", NOW - 3600, "s", "ios")], _context())
    old = model.score_all([Interaction(10, "complete", NOW - 45 * DAY, "s", "ios")], _context())
    assert recent[2] > old[2]


def test_learned_inverted_curve_prefers_old_events():
    model = _affinity_model(curve=(0.4, 0.4, 0.4, 0.4, 0.4, 1.0, 0.6, 0.6))
    recent = model.score_all([Interaction(10, "complete", NOW - 3600, "s", "ios")], _context())
    old = model.score_all([Interaction(10, "complete", NOW - 45 * DAY, "s", "ios")], _context())
    assert old[2] > recent[2]


def test_more_sessions_raise_engaging_items():
    model = _affinity_model()
    one = [Interaction(10, "view", NOW - DAY, "a", "ios")]
    many = one + [Interaction(10, "view", NOW - DAY - n, f"s{n}", "ios") for n in range(1, 6)]
    margin_one = model.score_all(one, _context())
    margin_many = model.score_all(many, _context())
    assert (margin_many[3] - margin_many[4]) > (margin_one[3] - margin_one[4])


def test_score_and_recommend_for_history():
    model = _affinity_model()
    scores = model.score([], [20, 999, 10], _context())
    assert np.isnan(scores[1])
    assert scores[0] == pytest.approx(model.score_all([], _context())[3])
    top = model.recommend_for_history([], _context(), k=2)
    assert [item for item, _ in top] == [20, 10]
    seen = [Interaction(20, "view", NOW - 60, "a", "ios")]
    assert 20 not in [item for item, _ in model.recommend_for_history(seen, _context(), k=2, exclude_seen=True)]


def test_save_and_load_round_trip(tmp_path):
    model = _affinity_model()
    history = [Interaction(10, "complete", NOW - 3600, "s", "ios"), Interaction(21, "skip", NOW - 60, None, "ios")]
    folder = model.save(tmp_path / "model")
    loaded = load_model(folder)

    assert isinstance(loaded, RecencyAffinityModel)
    assert loaded.params == model.params
    np.testing.assert_allclose(loaded.score_all(history, _context()), model.score_all(history, _context()))
    assert model_size_bytes(folder) > 0


def test_load_rejects_missing_folder(tmp_path):
    with pytest.raises(InputDataError, match="model.json is missing"):
        load_model(tmp_path / "nothing")


def test_popularity_ignores_history(tmp_path):
    model = PopularityModel()
    model._set_items(np.array([1, 2, 3]))
    model.popularity = np.array([0.2, 0.9, 0.5])
    model.window = TrainingWindow(datetime(2024, 1, 1), 30)
    loaded = load_model(model.save(tmp_path / "popularity"))
    history = [Interaction(1, "complete", NOW, "s", "ios")]
    assert [item for item, _ in loaded.recommend_for_history(history, _context(), 3)] == [2, 3, 1]


def test_shipped_models_config_parses():
    config = load_models_config(REPO / "conf" / "evaluation" / "models.yaml")
    assert config.recency_affinity.training_days == 60
    assert config.recency_affinity.event_weights.skip < 0
    assert config.popularity.event_weights.skip == 0.0


def test_models_config_reports_every_problem(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text(
        "recency_affinity:\n  target_days: 90\n  age_bucket_edges_days: [1, 3]\n  blend: 1\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_models_config(path)
    text = "\n".join(raised.value.problems)
    assert f"{path}:2: 'recency_affinity.target_days'" in text
    assert f"{path}:3: 'recency_affinity.age_bucket_edges_days'" in text
    assert "starting at 0" in text
    assert "unknown key 'recency_affinity.blend'" in text


def test_fitted_model_artifacts(replay):
    model = load_model(replay.usual.path)
    assert len(model.item_ids) > 300
    assert set(model.genre_names) == {"comedy", "documentary", "drama", "gaming", "kids", "music", "news", "sports"}
    assert model.neighbor_offsets[-1] == len(model.neighbor_items)
    assert model.popularity.shape == (4, len(model.item_ids))
    assert model.engagement.min() >= 0.0
    assert model.engagement.max() == pytest.approx(1.0)
    assert model_size_bytes(replay.usual.path) < 5_000_000
