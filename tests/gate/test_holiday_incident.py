"""The holiday model incident, end to end: replay, probe, gate, and where it is caught."""

from __future__ import annotations

import pytest

from streamrec_spark.gate.rules import BEHAVIORAL_TEST_FAILED
from streamrec_spark.model_incident import STAGE_GATE, replay_holiday_model


@pytest.fixture(scope="module")
def outcome(spark, tmp_path_factory):
    return replay_holiday_model(spark, tmp_path_factory.mktemp("holiday"), database="gate_holiday_test")


def test_holiday_model_blocked_by_recency(outcome):
    assert outcome.caught
    assert outcome.stage == STAGE_GATE
    assert outcome.check == "behavioral:dir_recency"
    assert outcome.reason_code == BEHAVIORAL_TEST_FAILED
    assert outcome.exit_code == 1
    assert "registration of holiday-replay-holiday" in outcome.blocked


def test_holiday_model_fails_only_recency(outcome):
    details = outcome.details
    # Its aggregate recall is the better one on the shared holdout week, and every floor,
    # slice, MFT, INV and serving limit passes: only the recency test fails.
    assert details["holiday_value"] > details["usual_value"]
    assert details["holiday_failed_rules"] == {"behavioral:dir_recency": BEHAVIORAL_TEST_FAILED}
    assert details["holiday_decision"] == "BLOCK"
    assert not details["holiday_registered"]
    assert details["replay_problems"] == []


def test_usual_model_is_the_champion(outcome):
    details = outcome.details
    # Gated on its own week before the holiday, the usual model passed every rule and was
    # registered, so the holiday model is compared with it rather than with floors alone.
    assert details["usual_decision"] == "PASS"
    assert details["usual_failed_rules"] == {}
    assert details["champion"] == "holiday-replay-usual"
    assert "the champion stays holiday-replay-usual" in outcome.blocked
