"""Evaluation config and result rows: pure Python, no Spark."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamrec_spark.errors import ConfigError
from streamrec_spark.evaluation.config import EvaluationConfig, MetricSpec, load_evaluation_config
from streamrec_spark.evaluation.ranking import RankingAggregates
from streamrec_spark.evaluation.results import build_result
from streamrec_spark.evaluation.slices import slice_names, top_active_cutoff

REPO = Path(__file__).resolve().parents[2]


def test_shipped_config_defaults():
    config = load_evaluation_config(REPO / "conf" / "evaluation" / "metrics.yaml")
    cutoffs = {(spec.name, spec.k) for spec in config.metrics}
    assert {("recall", 20), ("ndcg", 20), ("hit_rate", 10), ("precision", 20), ("map", 20)} == cutoffs
    assert config.input_policy["INVALID_SCORES"] == "fail"
    assert config.slices.top_active_share == 0.10


def test_config_problems_are_all_reported(tmp_path):
    path = tmp_path / "metrics.yaml"
    path.write_text(
        "metrics:\n  recall: [0]\n  mrr: [5]\nslices:\n  top_active_share: 2\n"
        "input_policy:\n  EMPTY_SLICE: ignore\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_evaluation_config(path)
    problems = raised.value.problems
    assert len(problems) == 4
    assert any(f"{path}:2" in problem and "metrics.recall" in problem for problem in problems)
    assert any(f"{path}:3" in problem and "unknown key 'metrics.mrr'" in problem for problem in problems)
    assert any(f"{path}:5" in problem and "at most 1.0" in problem for problem in problems)
    assert any(f"{path}:7" in problem and "'ignore'" in problem for problem in problems)


def _aggregates(config, users, values):
    names = slice_names(config.slices)
    return RankingAggregates(
        values={(name, spec.column): values.get(name) for name in names for spec in config.metrics},
        hit_users={(name, spec.column): 1 if users.get(name) else 0 for name in names for spec in config.metrics},
        user_counts={name: users.get(name, 0) for name in names},
        checks={
            "INVALID_SCORES": 0,
            "DUPLICATE_ITEMS": 3,
            "DUPLICATE_RANKS": 0,
            "UNKNOWN_ITEMS": 0,
            "USERS_NOT_IN_HOLDOUT": 0,
            "HOLDOUT_USERS_WITHOUT_RECOMMENDATIONS": 0,
        },
        users_below={},
    )


def test_build_result_marks_empty_slices_missing():
    config = EvaluationConfig(metrics=(MetricSpec("recall", 20),))
    result = build_result(_aggregates(config, {"all": 5, "platform=ios": 5}, {"all": 0.4, "platform=ios": 0.4}), config)

    assert result.value("recall", 20) == 0.4
    web = result.row("recall", 20, "platform=web")
    assert (web.value, web.status, web.reason, web.user_count) == (None, "missing", "EMPTY_SLICE", 0)
    empty = result.row("input.empty_slice")
    assert empty.affected == 4  # new_users, android, web, top_active
    assert empty.affected_unit == "slices"
    assert empty.status == "warning"
    assert result.row("input.duplicate_items").status == "warning"
    assert result.row("input.invalid_scores").status == "passed"
    assert result.exit_code == 0


def test_build_result_nan_is_missing():
    config = EvaluationConfig(metrics=(MetricSpec("ndcg", 20),))
    result = build_result(_aggregates(config, {"all": 5}, {"all": float("nan")}), config)
    row = result.row("ndcg", 20)
    assert row.value is None
    assert row.reason == "NAN_METRIC"


def test_failing_policy_sets_exit_code():
    config = EvaluationConfig(metrics=(MetricSpec("recall", 20),))
    policy = {**config.input_policy, "DUPLICATE_ITEMS": "fail"}
    config = EvaluationConfig(metrics=config.metrics, input_policy=policy)
    result = build_result(_aggregates(config, {"all": 5}, {"all": 0.4}), config)
    assert result.exit_code == 1
    assert [row.reason for row in result.failed_checks] == ["DUPLICATE_ITEMS"]


@pytest.mark.parametrize(
    ("histogram", "share", "expected"),
    [
        ([(9, 1), (5, 4), (0, 5)], 0.10, (1, 9, 1)),  # one user above everyone
        ([(9, 1), (5, 4), (0, 5)], 0.30, (3, 5, 2)),  # two of the four users at 5 are taken
        ([(3, 10)], 0.10, (1, 3, 1)),  # all tied: the smallest user_id is taken
        ([(4, 2), (2, 1)], 1.0, (3, 2, 1)),
        ([], 0.10, (0, -1, 0)),
    ],
)
def test_top_active_cutoff(histogram, share, expected):
    assert top_active_cutoff(histogram, share) == expected
