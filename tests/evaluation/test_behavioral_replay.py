"""Holiday incident replay: better recall, MFT and INV pass, the recency test blocks the model."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np

from streamrec_spark.behavioral.incident import format_replay
from streamrec_spark.models import load_model


def test_holiday_model_has_better_recall(replay):
    assert replay.holiday.value > replay.usual.value


def test_holiday_model_passes_mft_and_inv(replay):
    for result in replay.holiday.suite.results:
        if result.test_type in ("MFT", "INV"):
            assert result.passed, result


def test_recency_blocks_only_holiday_model(replay):
    assert not replay.holiday.suite.result("dir_recency").passed
    assert replay.holiday.suite.result("dir_recency").reason == "FAILURE_RATE_ABOVE_MAX"
    assert replay.usual.suite.result("dir_recency").passed


def test_usual_model_passes_inv_and_dir(replay):
    failed = [result.name for result in replay.usual.suite.results if result.test_type != "MFT" and not result.passed]
    assert failed == []


def test_usual_model_below_floors_in_holiday(replay):
    # Trained three weeks before the shared window, it misses the holiday return to old genres.
    for result in replay.usual.suite.results:
        if result.test_type == "MFT":
            assert result.reason == "BELOW_FLOOR", result


def test_replay_reports_reproduced(replay):
    assert replay.problems == ()
    assert replay.reproduced


def test_recency_failure_is_learned(replay):
    usual = load_model(replay.usual.path)
    holiday = load_model(replay.holiday.path)

    # Same settings: no switch separates the two models, only the training window.
    assert usual.params == holiday.params
    assert usual.window.days == holiday.window.days
    assert usual.window.end < holiday.window.end

    recent, old = np.array([1 / 24]), np.array([45.0])
    assert usual.recency_weight(recent)[0] > usual.recency_weight(old)[0]
    assert holiday.recency_weight(recent)[0] < holiday.recency_weight(old)[0]


def test_popularity_baseline_fails_directional(spark, replay_config, suite_config, tmp_path):
    from streamrec_spark.behavioral.scenario import generate_scenario
    from streamrec_spark.behavioral.suite import SuiteInputs, default_holdout, run_suite
    from streamrec_spark.evaluation.config import EvaluationConfig
    from streamrec_spark.models import PopularityModel, TrainingWindow

    scenario = generate_scenario(spark, replay_config.scenario)
    window = TrainingWindow(replay_config.scenario.day(replay_config.usual_train_end_day), 60)
    model = PopularityModel().fit(scenario.events, window, scenario.items)
    start, end = default_holdout(model, suite_config)
    directional = [test for test in suite_config.tests if test.test_type == "DIR"]
    invariance = [test for test in suite_config.tests if test.test_type == "INV"]
    config = replace(suite_config, tests=(*invariance, *directional), case_users=20)
    run = run_suite(model, SuiteInputs(scenario.events, start, end, scenario.items), config, EvaluationConfig())

    for result in run.results:
        if result.test_type == "DIR":
            # Its scores ignore the history, so nothing moves: every case fails.
            assert result.failure_rate == 1.0, result
        else:
            assert result.observed == 1.0, result


def test_both_models_share_holdout_window(replay):
    holiday = load_model(replay.holiday.path)

    assert replay.holdout_start == holiday.window.end
    assert replay.holdout_end - replay.holdout_start == timedelta(days=7)
    # The same holdout window gives both models the same evaluated users in every slice.
    for usual_row, holiday_row in zip(replay.usual.suite.metrics.rows, replay.holiday.suite.metrics.rows):
        assert (usual_row.slice, usual_row.metric, usual_row.k) == (holiday_row.slice, holiday_row.metric, holiday_row.k)
        assert usual_row.user_count == holiday_row.user_count, usual_row


def test_replay_report_names_window(replay, replay_config):
    report = format_replay(replay, replay_config)
    window = f"holdout {replay.holdout_start:%Y-%m-%d} to {replay.holdout_end:%Y-%m-%d}"

    assert f"both models are tested on the same {window}" in report
    assert f"incident reproduced: on the {window}" in report
