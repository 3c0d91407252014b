"""Decision rules of the gate, without Spark, on hand-computed values."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from streamrec_spark.errors import ConfigError
from streamrec_spark.gate import rules
from streamrec_spark.gate.config import (
    BehavioralRequirement,
    DataValidationRequirement,
    MetricRule,
    ServingLimits,
    SliceFloor,
    load_gate_config,
)
from streamrec_spark.gate.rules import (
    BehavioralRow,
    BehavioralRun,
    MetricValue,
    ModelMetrics,
    ProbeResult,
    ValidationRun,
    ValidationSummary,
    compare_behavioral,
    compare_data_validation,
    compare_metric,
    compare_serving,
    compare_slice_floor,
    decide,
)

REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-9
RECALL = MetricRule("recall_at_20", "recall", 20, floor=0.15, max_regression=0.02)
LIMITS = ServingLimits(max_p99_latency_ms=45.0, max_size_mb=250.0)


def metrics(model_id: str, values: dict[tuple[str, int, str], float | None], **rows) -> ModelMetrics:
    """Build ModelMetrics with status ok rows; ``rows`` adds explicit MetricValue rows by key."""
    built = {
        key: MetricValue(key[0], key[1], key[2], value, "ok", None, 100)
        for key, value in values.items()
    }
    for row in rows.values():
        built[(row.metric, row.k, row.slice)] = row
    return ModelMetrics(model_id=model_id, run_id=f"{model_id}-run", values=built)


def recall(value: float | None) -> dict[tuple[str, int, str], float | None]:
    return {("recall", 20, "all"): value}


def probe(p99: float | None = 30.0, size: float | None = 120.0, status: str = "OK") -> ProbeResult:
    return ProbeResult("cand", "run-1", 500, 10.0, p99, 60.0, size, status, None)


def behavioral_row(name: str, passed: bool = True, status: str = "passed") -> BehavioralRow:
    return BehavioralRow(name, "MFT", passed, status, None, 0.2, 0.15, "min_value", 100, 10)


DATA_DATE = date(2024, 5, 1)
RUNS_TABLE = "/warehouse/runs"


def validation(*runs: ValidationRun, found: bool = True) -> ValidationSummary:
    return ValidationSummary(table=RUNS_TABLE, table_found=found, partition_date=DATA_DATE, runs=runs)


def validation_run(dataset: str = "click_stream", status: str = "passed", **changes) -> ValidationRun:
    return ValidationRun(dataset=dataset, partition_date=DATA_DATE, run_id=f"{dataset}-run", status=status, **changes)


# --- tolerance -------------------------------------------------------------------------------


def test_regression_tolerance_example_passes():
    # In binary floating point 0.50 - 0.49 is slightly above 0.01.
    assert 0.50 - 0.49 > 0.01
    rule = MetricRule("recall_at_20", "recall", 20, floor=0.10, max_regression=0.01)
    comparison = compare_metric(
        rule, metrics("cand", recall(0.49)), metrics("champ", recall(0.50)), TOLERANCE
    )
    assert comparison.passed
    assert comparison.reason_code is None
    assert comparison.difference == pytest.approx(-0.01)


def test_regression_without_tolerance_fails():
    rule = MetricRule("recall_at_20", "recall", 20, floor=0.10, max_regression=0.01)
    comparison = compare_metric(rule, metrics("cand", recall(0.49)), metrics("champ", recall(0.50)), 0.0)
    assert not comparison.passed
    assert comparison.reason_code == rules.REGRESSION


@pytest.mark.parametrize(
    ("candidate", "champion", "passed", "code"),
    [
        (0.18, 0.20, True, None),  # exactly 0.02 below: inclusive
        (0.179, 0.20, False, rules.REGRESSION),  # 0.021 below
        (0.25, 0.20, True, None),  # an improvement
        (0.15, 0.16, True, None),  # at the floor, 0.01 below the champion
        (0.149, 0.15, False, rules.BELOW_FLOOR),  # regression allowed, floor not
    ],
)
def test_metric_rule_cases(candidate, champion, passed, code):
    comparison = compare_metric(
        RECALL, metrics("cand", recall(candidate)), metrics("champ", recall(champion)), TOLERANCE
    )
    assert comparison.passed is passed
    assert comparison.reason_code == code
    assert comparison.candidate_value == candidate
    assert comparison.champion_value == champion
    assert comparison.floor == 0.15
    assert comparison.max_regression == 0.02
    assert comparison.difference == pytest.approx(candidate - champion)


def test_metric_regression_detail_names_values():
    comparison = compare_metric(
        RECALL, metrics("cand", recall(0.17)), metrics("champ", recall(0.20)), TOLERANCE
    )
    assert comparison.reason_code == rules.REGRESSION
    assert comparison.difference == pytest.approx(-0.03)
    assert "0.03 below the champion" in comparison.detail


# --- no champion -----------------------------------------------------------------------------


def test_no_champion_applies_floor_only():
    comparison = compare_metric(RECALL, metrics("cand", recall(0.16)), None, TOLERANCE)
    assert comparison.passed
    assert comparison.reason_code == rules.NO_CHAMPION
    assert comparison.champion_value is None
    assert comparison.difference == pytest.approx(0.01)


def test_no_champion_still_blocks_below_floor():
    comparison = compare_metric(RECALL, metrics("cand", recall(0.10)), None, TOLERANCE)
    assert not comparison.passed
    assert comparison.reason_code == rules.BELOW_FLOOR
    assert comparison.difference == pytest.approx(-0.05)


def test_champion_without_metric_blocks():
    champion = metrics("champ", {})
    comparison = compare_metric(RECALL, metrics("cand", recall(0.30)), champion, TOLERANCE)
    assert not comparison.passed
    assert comparison.reason_code == rules.MISSING_CHAMPION_METRIC
    assert "champ" in comparison.detail


# --- fail closed on metrics ------------------------------------------------------------------


def test_missing_metric_blocks():
    comparison = compare_metric(RECALL, metrics("cand", {}), None, TOLERANCE)
    assert not comparison.passed
    assert comparison.reason_code == rules.MISSING_METRIC
    assert comparison.candidate_value is None


def test_nan_metric_blocks():
    comparison = compare_metric(RECALL, metrics("cand", recall(math.nan)), None, TOLERANCE)
    assert not comparison.passed
    assert comparison.reason_code == rules.NAN_METRIC


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_infinite_metric_blocks(value):
    comparison = compare_metric(RECALL, metrics("cand", recall(value)), None, TOLERANCE)
    assert not comparison.passed
    assert comparison.reason_code == rules.NAN_METRIC


def test_infinite_champion_value_is_unusable():
    comparison = compare_metric(RECALL, metrics("cand", recall(0.3)), metrics("champ", recall(math.inf)), TOLERANCE)
    assert not comparison.passed


def test_nan_reason_without_value_blocks():
    row = MetricValue("recall", 20, "all", None, "missing", "NAN_METRIC", 100)
    comparison = compare_metric(RECALL, metrics("cand", {}, nan=row), None, TOLERANCE)
    assert comparison.reason_code == rules.NAN_METRIC


def test_empty_all_slice_is_missing_metric():
    row = MetricValue("recall", 20, "all", None, "missing", "EMPTY_SLICE", 0)
    comparison = compare_metric(RECALL, metrics("cand", {}, empty=row), None, TOLERANCE)
    assert not comparison.passed
    assert comparison.reason_code == rules.MISSING_METRIC
    assert "EMPTY_SLICE" in comparison.detail


def test_value_with_bad_status_blocks():
    row = MetricValue("recall", 20, "all", 0.4, "missing", None, 10)
    comparison = compare_metric(RECALL, metrics("cand", {}, odd=row), None, TOLERANCE)
    assert not comparison.passed
    assert comparison.reason_code == rules.MISSING_METRIC


# --- sliced floors ---------------------------------------------------------------------------

IOS = SliceFloor("recall_at_20", "recall", 20, "platform=ios", 0.12)


@pytest.mark.parametrize(
    ("value", "passed", "code", "difference"),
    [
        (0.12, True, None, 0.0),
        (0.13, True, None, 0.01),
        (0.11, False, rules.BELOW_FLOOR, -0.01),
    ],
)
def test_slice_floor_cases(value, passed, code, difference):
    candidate = metrics("cand", {("recall", 20, "platform=ios"): value})
    comparison = compare_slice_floor(IOS, candidate, None, TOLERANCE)
    assert comparison.rule == "recall_at_20[platform=ios]"
    assert comparison.kind == rules.KIND_SLICE_FLOOR
    assert comparison.passed is passed
    assert comparison.reason_code == code
    assert comparison.difference == pytest.approx(difference)
    assert comparison.max_regression is None


def test_slice_floor_missing_slice_blocks():
    comparison = compare_slice_floor(IOS, metrics("cand", recall(0.5)), None, TOLERANCE)
    assert not comparison.passed
    assert comparison.reason_code == rules.MISSING_SLICE


def test_slice_floor_empty_slice_blocks():
    row = MetricValue("recall", 20, "platform=ios", None, "missing", "EMPTY_SLICE", 0)
    comparison = compare_slice_floor(IOS, metrics("cand", {}, ios=row), None, TOLERANCE)
    assert comparison.reason_code == rules.MISSING_SLICE


def test_slice_floor_nan_blocks():
    candidate = metrics("cand", {("recall", 20, "platform=ios"): math.nan})
    comparison = compare_slice_floor(IOS, candidate, None, TOLERANCE)
    assert comparison.reason_code == rules.NAN_METRIC


def test_slice_floor_records_champion_value():
    key = ("recall", 20, "platform=ios")
    comparison = compare_slice_floor(
        IOS, metrics("cand", {key: 0.10}), metrics("champ", {key: 0.30}), TOLERANCE
    )
    assert comparison.champion_value == 0.30
    # The champion is for reference only: the difference is measured from the floor.
    assert comparison.difference == pytest.approx(-0.02)


# --- behavioral ------------------------------------------------------------------------------

TESTS = ("mft_a", "inv_b", "dir_c")


def test_behavioral_all_passed():
    run = BehavioralRun("suite_v2", "run-1", tuple(behavioral_row(name) for name in TESTS))
    comparisons = compare_behavioral(TESTS, run)
    assert [c.rule for c in comparisons] == ["behavioral:mft_a", "behavioral:inv_b", "behavioral:dir_c"]
    assert all(c.passed for c in comparisons)


def test_behavioral_no_run_blocks():
    comparisons = compare_behavioral(TESTS, BehavioralRun("suite_v2", None))
    assert len(comparisons) == 1
    assert comparisons[0].reason_code == rules.MISSING_BEHAVIORAL_RESULT
    assert not comparisons[0].passed


def test_behavioral_missing_test_is_incomplete():
    run = BehavioralRun("suite_v2", "run-1", (behavioral_row("mft_a"), behavioral_row("dir_c")))
    comparisons = compare_behavioral(TESTS, run)
    codes = {c.rule: c.reason_code for c in comparisons}
    assert codes["behavioral:inv_b"] == rules.INCOMPLETE_BEHAVIORAL_RESULT
    assert codes["behavioral:mft_a"] is None


@pytest.mark.parametrize(("passed", "status"), [(False, "failed"), (False, "errored"), (True, "errored")])
def test_behavioral_failed_or_errored_test_blocks(passed, status):
    rows = (behavioral_row("mft_a"), behavioral_row("inv_b", passed, status), behavioral_row("dir_c"))
    comparisons = compare_behavioral(TESTS, BehavioralRun("suite_v2", "run-1", rows))
    failed = [c for c in comparisons if not c.passed]
    assert [c.rule for c in failed] == ["behavioral:inv_b"]
    assert failed[0].reason_code == rules.BEHAVIORAL_TEST_FAILED


def test_behavioral_extra_test_is_ignored():
    rows = (*(behavioral_row(name) for name in TESTS), behavioral_row("old_test", False, "failed"))
    comparisons = compare_behavioral(TESTS, BehavioralRun("suite_v2", "run-1", rows))
    assert len(comparisons) == 3
    assert all(c.passed for c in comparisons)


def test_behavioral_failure_rate_detail():
    row = BehavioralRow("dir_recency", "DIR", False, "failed", "FAILURE_RATE_ABOVE_MAX", 0.6, 0.1, "max_failure_rate", 100, 60)
    comparison = compare_behavioral(("dir_recency",), BehavioralRun("suite_v2", "run-1", (row,)))[0]
    assert comparison.detail == (
        "DIR test dir_recency failed: failure rate 0.6 is above the allowed maximum 0.1; "
        "60 of 100 cases failed (rate 0.6)"
    )
    assert comparison.upper_limit == 0.1
    assert comparison.floor is None
    assert comparison.difference == pytest.approx(0.5)


def test_behavioral_minimum_detail():
    row = BehavioralRow("inv_platform_switch", "INV", False, "failed", None, 0.6, 0.7, "min_unchanged_share", 150, 45)
    comparison = compare_behavioral(("inv_platform_switch",), BehavioralRun("suite_v2", "run-1", (row,)))[0]
    assert comparison.detail == (
        "INV test inv_platform_switch failed: mean unchanged share 0.6 is below the required "
        "minimum 0.7; 45 of 150 cases failed (rate 0.3)"
    )
    assert comparison.floor == 0.7
    assert comparison.upper_limit is None


def test_behavioral_errored_detail():
    row = BehavioralRow("mft_recall_web", "MFT", False, "errored", "EMPTY_SLICE", None, 0.1, "min_value", 0, 0)
    comparison = compare_behavioral(("mft_recall_web",), BehavioralRun("suite_v2", "run-1", (row,)))[0]
    assert comparison.detail == "MFT test mft_recall_web errored (EMPTY_SLICE): no cases; a required test must pass"
    assert comparison.difference is None


def test_behavioral_missing_details():
    missing_run = compare_behavioral(TESTS, BehavioralRun("suite_v2", None))[0]
    assert missing_run.detail == "required suite suite_v2 has no result for the candidate"
    incomplete = compare_behavioral(("absent",), BehavioralRun("suite_v2", "run-1", (behavioral_row("mft_a"),)))[0]
    assert incomplete.detail == "required test absent has no result in run run-1"


# --- data validation -------------------------------------------------------------------------

REQUIRED = DataValidationRequirement(datasets=("click_stream",))


@pytest.mark.parametrize("status", ["passed", "warned"])
def test_data_validation_accepted(status):
    comparisons = compare_data_validation(REQUIRED, validation(validation_run(status=status)))
    assert len(comparisons) == 1
    assert comparisons[0].passed
    assert comparisons[0].rule == "data_validation:click_stream"
    assert comparisons[0].kind == rules.KIND_DATA_VALIDATION
    assert comparisons[0].reason_code is None


@pytest.mark.parametrize("status", ["failed", "errored"])
def test_data_validation_failed_run_blocks(status):
    run = validation_run(status=status, blocking_failures=2, error_code="INPUT_MISSING")
    comparison = compare_data_validation(REQUIRED, validation(run))[0]
    assert not comparison.passed
    assert comparison.reason_code == rules.DATA_VALIDATION_FAILED
    assert comparison.detail == (
        f"validation run click_stream-run of click_stream for 2024-05-01 {status} with 2 "
        "blocking check failures (error INPUT_MISSING)"
    )


def test_data_validation_missing_run_blocks():
    # Another dataset's passing run does not stand in for the required one.
    comparison = compare_data_validation(REQUIRED, validation(validation_run("item_metadata")))[0]
    assert not comparison.passed
    assert comparison.reason_code == rules.MISSING_DATA_VALIDATION
    assert comparison.detail == f"no validation run of click_stream for 2024-05-01 in {RUNS_TABLE}"


def test_data_validation_missing_table_blocks():
    comparison = compare_data_validation(REQUIRED, validation(found=False))[0]
    assert not comparison.passed
    assert comparison.reason_code == rules.MISSING_VALIDATION_TABLE
    assert RUNS_TABLE in comparison.detail


def test_data_validation_not_read_blocks():
    comparison = compare_data_validation(REQUIRED, None)[0]
    assert comparison.reason_code == rules.MISSING_VALIDATION_TABLE


def test_data_validation_each_dataset_judged():
    requirement = DataValidationRequirement(datasets=("click_stream", "user_profiles"))
    comparisons = compare_data_validation(requirement, validation(validation_run(), validation_run("user_profiles", "failed")))
    assert [(c.rule, c.reason_code) for c in comparisons] == [
        ("data_validation:click_stream", None),
        ("data_validation:user_profiles", rules.DATA_VALIDATION_FAILED),
    ]


# --- serving ---------------------------------------------------------------------------------


def serving_codes(result: ProbeResult | None) -> dict[str, str | None]:
    return {c.rule: c.reason_code for c in compare_serving(LIMITS, result, None, TOLERANCE)}


def test_serving_within_limits():
    comparisons = compare_serving(LIMITS, probe(45.0, 250.0), None, TOLERANCE)
    assert all(c.passed for c in comparisons)
    assert [c.difference for c in comparisons] == [0.0, 0.0]
    assert [c.upper_limit for c in comparisons] == [45.0, 250.0]


def test_serving_latency_above_limit():
    assert serving_codes(probe(p99=45.5)) == {"p99_latency_ms": rules.LATENCY_ABOVE_LIMIT, "size_mb": None}


def test_serving_size_above_limit():
    assert serving_codes(probe(size=250.01)) == {"p99_latency_ms": None, "size_mb": rules.SIZE_ABOVE_LIMIT}


def test_serving_missing_probe_blocks_both():
    codes = serving_codes(None)
    assert codes == {"p99_latency_ms": rules.MISSING_PROBE_RESULT, "size_mb": rules.MISSING_PROBE_RESULT}


def test_serving_errored_probe_blocks():
    codes = serving_codes(probe(None, None, status="ERRORED"))
    assert set(codes.values()) == {rules.PROBE_ERRORED}


def test_serving_null_and_nan_values_block():
    assert serving_codes(probe(p99=None))["p99_latency_ms"] == rules.MISSING_PROBE_RESULT
    assert serving_codes(probe(size=math.nan))["size_mb"] == rules.NAN_METRIC
    assert serving_codes(probe(p99=-math.inf))["p99_latency_ms"] == rules.NAN_METRIC
    assert serving_codes(probe(size=-math.inf))["size_mb"] == rules.NAN_METRIC


# --- whole decisions -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def team_gate():
    return load_gate_config(REPO / "conf" / "gates" / "streamrec_v2_gate.yaml")


def good_metrics(model_id: str, scale: float = 1.0) -> ModelMetrics:
    values = {
        ("recall", 20, "all"): 0.30 * scale,
        ("ndcg", 20, "all"): 0.20 * scale,
        ("hit_rate", 10, "all"): 0.50 * scale,
        ("recall", 20, "new_users"): 0.10 * scale,
        ("recall", 20, "platform=ios"): 0.25 * scale,
        ("recall", 20, "platform=android"): 0.25 * scale,
        ("recall", 20, "platform=web"): 0.20 * scale,
        ("recall", 20, "top_active"): 0.40 * scale,
    }
    return metrics(model_id, values)


def all_tests_passed(config) -> BehavioralRun:
    return BehavioralRun(
        config.behavioral.suite, "run-1", tuple(behavioral_row(name) for name in config.behavioral.tests)
    )


def test_team_gate_pass_without_champion(team_gate):
    decision = decide(
        team_gate, good_metrics("cand"), None, all_tests_passed(team_gate), probe(), None,
        validation(validation_run()),
    )
    assert decision.decision == rules.PASS
    assert decision.no_baseline
    # 3 metric rules, 5 slice floors, 14 behavioral tests, 2 serving limits, 1 dataset.
    assert len(decision.comparisons) == 3 + 5 + 14 + 2 + 1
    assert decision.reason_codes == ()


def test_team_gate_blocks_on_failed_click_stream(team_gate):
    decision = decide(
        team_gate, good_metrics("cand"), None, all_tests_passed(team_gate), probe(), None,
        validation(validation_run(status="failed")),
    )
    assert decision.decision == rules.BLOCK
    assert [c.rule for c in decision.failed] == ["data_validation:click_stream"]
    assert decision.reason_codes == (rules.DATA_VALIDATION_FAILED,)


def test_team_gate_without_validation_input_blocks(team_gate):
    decision = decide(team_gate, good_metrics("cand"), None, all_tests_passed(team_gate), probe())
    assert decision.reason_codes == (rules.MISSING_VALIDATION_TABLE,)


def test_team_gate_blocks_on_regression(team_gate):
    # The champion's values are 10% above the candidate's. Recall 0.30 is 0.03 below 0.33
    # (0.02 allowed), NDCG 0.20 is 0.02 below 0.22 (0.015 allowed), and hit rate 0.50 is
    # 0.05 below 0.55 (0.03 allowed).
    decision = decide(
        team_gate, good_metrics("cand"), good_metrics("champ", 1.1), all_tests_passed(team_gate), probe(),
        None, validation(validation_run()),
    )
    assert decision.decision == rules.BLOCK
    assert not decision.no_baseline
    assert [c.rule for c in decision.failed] == ["recall_at_20", "ndcg_at_20", "hit_rate_at_10"]
    assert decision.reason_codes == (rules.REGRESSION,)


def test_team_gate_collects_every_reason(team_gate):
    candidate = good_metrics("cand")
    values = dict(candidate.values)
    del values[("recall", 20, "platform=web")]
    values[("ndcg", 20, "all")] = MetricValue("ndcg", 20, "all", math.nan, "ok", None, 100)
    decision = decide(
        team_gate,
        replace(candidate, values=values),
        None,
        BehavioralRun(team_gate.behavioral.suite, None),
        probe(p99=50.0),
        None,
        validation(),
    )
    assert decision.decision == rules.BLOCK
    assert decision.reason_codes == (
        rules.NAN_METRIC,
        rules.MISSING_SLICE,
        rules.MISSING_BEHAVIORAL_RESULT,
        rules.LATENCY_ABOVE_LIMIT,
        rules.MISSING_DATA_VALIDATION,
    )


def test_decide_without_behavioral_input_fails_closed(team_gate):
    decision = decide(team_gate, good_metrics("cand"), None, None, probe(), None, validation(validation_run()))
    assert decision.reason_codes == (rules.MISSING_BEHAVIORAL_RESULT,)


def test_decide_rejects_gate_without_metric_rules(team_gate):
    with pytest.raises(ConfigError, match="no metric rules"):
        decide(replace(team_gate, metrics=()), good_metrics("cand"), None)


def test_decide_skips_unconfigured_sections(team_gate):
    gate = replace(team_gate, behavioral=None, serving=None, slice_floors=(), data_validation=None)
    decision = decide(gate, good_metrics("cand"), None)
    assert decision.decision == rules.PASS
    assert [c.kind for c in decision.comparisons] == [rules.KIND_METRIC] * 3


def test_behavioral_requirement_lists_suite_tests(team_gate):
    assert isinstance(team_gate.behavioral, BehavioralRequirement)
    assert len(team_gate.behavioral.tests) == 14
    assert "dir_recency" in team_gate.behavioral.tests
