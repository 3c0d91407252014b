"""Behavioral verdicts, perturbations and suite config: pure Python, no Spark."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from streamrec_spark.behavioral import perturbations as P
from streamrec_spark.behavioral.config import load_suite_config
from streamrec_spark.behavioral.verdicts import (
    judge_directional,
    judge_invariance,
    judge_minimum,
    moved_up,
    unchanged_share,
)
from streamrec_spark.errors import ConfigError
from streamrec_spark.models.base import Interaction, UserContext

REPO = Path(__file__).resolve().parents[2]
NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("value", "users", "passed", "status", "reason"),
    [
        (0.20, 100, True, "passed", None),
        (0.15, 100, True, "passed", None),  # the floor is inclusive
        (0.149, 100, False, "failed", "BELOW_FLOOR"),
        (None, 0, False, "errored", "EMPTY_SLICE"),
        (float("nan"), 10, False, "errored", "MISSING_METRIC"),
    ],
)
def test_judge_minimum(value, users, passed, status, reason):
    result = judge_minimum("mft", value, users, 7 if users else 0, 0.15)
    assert result.passed is passed
    assert result.status == status
    assert result.reason == reason


def test_judge_minimum_counts():
    result = judge_minimum("mft", 0.3, 40, 10, 0.15)
    assert (result.cases, result.failures) == (40, 10)
    assert result.failure_rate == 0.25
    assert result.observed == 0.3


def test_empty_slice_is_never_zero():
    result = judge_minimum("mft", None, 0, 0, 0.0)
    assert result.observed is None
    assert result.failure_rate is None
    assert not result.passed


def test_judge_invariance():
    result = judge_invariance("inv", [1.0, 1.0, 0.9, 0.5], 0.85)
    assert result.cases == 4
    assert result.failures == 1
    assert result.observed == pytest.approx(0.85)
    assert result.passed
    assert not judge_invariance("inv", [1.0, 0.6], 0.85).passed
    assert judge_invariance("inv", [float("nan")], 0.5).observed == 0.0


def test_judge_directional():
    result = judge_directional("dir", [True] * 9 + [False], 0.10)
    assert result.failure_rate == pytest.approx(0.1)
    assert result.passed
    failed = judge_directional("dir", [True, False], 0.10)
    assert not failed.passed
    assert failed.reason == "FAILURE_RATE_ABOVE_MAX"


def test_no_cases_errors():
    assert judge_directional("dir", [], 0.1).reason == "NO_CASES"
    assert judge_invariance("inv", [], 0.9).status == "errored"


def test_unchanged_share_and_moved_up():
    assert unchanged_share([1, 2, 3, 4], [4, 3, 9, 8]) == 0.5
    assert unchanged_share([], [1]) == 1.0
    assert moved_up(0.1, 0.2)
    assert not moved_up(0.2, 0.2)  # no change is a failure
    assert not moved_up(math.nan, 0.2)


def _case():
    history = (
        Interaction(1, "complete", NOW - 86_400, "a", "ios"),
        Interaction(2, "view", NOW - 80_000, "a", "ios"),
        Interaction(3, "click", NOW - 3_600, "b", "ios"),
        Interaction(4, "skip", NOW - 600, None, "ios"),
    )
    return P.Case(history=history, context=UserContext(7, NOW, "ios", "user-7"))


def _catalog():
    genres = {item: ("drama" if item % 2 else "news") for item in range(1, 21)}
    return P.Catalog.build(genres, frozenset({1, 2, 3, 4}))


def test_session_relabel_keeps_grouping():
    case = _case()
    changed = P.relabel_sessions(case, random.Random(1))
    ids = [event.session_id for event in changed.history]
    assert ids[0] == ids[1]
    assert ids[0] != ids[2]
    assert ids[3] is None
    assert "a" not in ids


def test_jitter_stays_before_request():
    changed = P.jitter_timestamps(_case(), random.Random(2), max_shift_minutes=30)
    for before, after in zip(sorted(_case().history, key=lambda e: e.item_id), sorted(changed.history, key=lambda e: e.item_id)):
        assert abs(before.timestamp - after.timestamp) <= 1800
    assert max(event.timestamp for event in changed.history) < NOW


def test_platform_switch_and_display_name():
    assert P.switch_platform(_case(), random.Random(0)).context.platform == "android"
    renamed = P.change_display_name(_case(), random.Random(0))
    assert renamed.context.display_name != "user-7"
    assert renamed.history == _case().history


def test_genre_completions_target_least_watched_genre():
    directional = P.add_genre_completions(_case(), random.Random(3), _catalog(), completions=3)
    added = [event for event in directional.higher.history if event not in _case().history]
    assert len(added) == 3
    assert all(event.event_type == "complete" for event in added)
    genres = {_catalog().genre_of[event.item_id] for event in added}
    assert len(genres) == 1
    assert not set(directional.candidates) & {event.item_id for event in added}


def test_recent_versus_old_differ_only_in_time():
    directional = P.add_recent_versus_old(_case(), random.Random(4), _catalog(), 1.0, 45.0)
    recent = set(directional.higher.history) - set(_case().history)
    old = set(directional.lower.history) - set(_case().history)
    (recent_event,), (old_event,) = recent, old
    assert recent_event.item_id == old_event.item_id
    assert recent_event.event_type == old_event.event_type == "complete"
    assert recent_event.timestamp - old_event.timestamp == pytest.approx(45 * 86_400 - 3_600)


def test_sessions_replay_own_items():
    directional = P.add_sessions(_case(), random.Random(5), _catalog(), sessions=4, events_per_session=2)
    added = [event for event in directional.higher.history if event not in _case().history]
    assert len(added) == 8
    assert len({event.session_id for event in added}) == 4
    assert {event.item_id for event in added} <= {1, 2, 3, 4}
    assert set(directional.candidates) == {1, 2, 3, 4}
    assert not set(directional.baseline) & {1, 2, 3, 4}


def test_shipped_suite_has_fourteen_tests():
    config = load_suite_config(REPO / "conf" / "behavioral" / "suite.yaml")
    kinds = [test.test_type for test in config.tests]
    assert (kinds.count("MFT"), kinds.count("INV"), kinds.count("DIR")) == (6, 4, 4)
    floors = {test.name: test.min_value for test in config.tests if test.test_type == "MFT"}
    assert floors["mft_recall_web"] == 0.10
    shares = {test.perturbation: test.min_unchanged_share for test in config.tests if test.test_type == "INV"}
    assert shares == {"display_name": 0.95, "timestamp_jitter": 0.85, "platform_switch": 0.70, "session_ids": 0.98}


def test_suite_config_errors_name_file_and_line(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(
        "tests:\n"
        "  - {name: a, type: MFT, metric: recal, k: 20, min_value: 0.1}\n"
        "  - {name: b, type: INV, perturbation: display_name, min_unchanged_share: 1.5}\n"
        "  - {name: a, type: DIR, perturbation: recency, max_failure_rate: 0.1, colour: red}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_suite_config(path)
    problems = raised.value.problems
    assert any(f"{path}:2" in problem and "recal" in problem for problem in problems)
    assert any(f"{path}:3" in problem and "at most 1.0" in problem for problem in problems)
    assert any("duplicate test name 'a'" in problem for problem in problems)
    assert any("unknown key 'tests[2].colour'" in problem for problem in problems)
