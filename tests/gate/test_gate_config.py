"""Parsing of gate YAML files: the team's gate, and every kind of invalid file."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamrec_spark.errors import EXIT_INVALID, ConfigError
from streamrec_spark.gate.config import (
    AlertConfig,
    DataValidationRequirement,
    load_gate_config,
    parse_metric_rule_name,
)

REPO = Path(__file__).resolve().parents[2]
TEAM_GATE = REPO / "conf" / "gates" / "streamrec_v2_gate.yaml"
SUITE_FILE = REPO / "conf" / "behavioral" / "suite.yaml"

MINIMAL = """\
name: g
registered_model_name: m
metrics:
  recall_at_20: {floor: 0.15, max_regression: 0.02}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gate.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_gate_config(write(tmp_path, text))
    assert caught.value.exit_code == EXIT_INVALID
    return caught.value.problems


def test_team_gate_values():
    config = load_gate_config(TEAM_GATE)
    assert config.name == "streamrec_v2_gate"
    assert config.registered_model_name == "streamrec_v2"
    assert config.tolerance == 1e-9
    rules = {(r.rule, r.metric, r.k, r.floor, r.max_regression) for r in config.metrics}
    assert rules == {
        ("recall_at_20", "recall", 20, 0.15, 0.02),
        ("ndcg_at_20", "ndcg", 20, 0.12, 0.015),
        ("hit_rate_at_10", "hit_rate", 10, 0.30, 0.03),
    }
    floors = {(f.metric, f.k, f.slice, f.floor) for f in config.slice_floors}
    assert floors == {
        ("recall", 20, "new_users", 0.05),
        ("recall", 20, "platform=ios", 0.12),
        ("recall", 20, "platform=android", 0.12),
        ("recall", 20, "platform=web", 0.10),
        ("recall", 20, "top_active", 0.20),
    }
    assert config.behavioral.suite == "streamrec_recommendation_v2"
    assert Path(config.behavioral.suite_file) == SUITE_FILE
    assert config.serving.max_p99_latency_ms == 45.0
    assert config.serving.max_size_mb == 250.0
    assert config.tables.decisions_table == "gate_decisions"
    assert config.tables.comparisons_table == "gate_comparisons"
    assert config.mlflow.experiment == "streamrec_v2_gate"
    assert config.mlflow.tracking_uri is None
    assert config.mlflow.http_timeout_seconds == 10
    assert config.mlflow.http_max_retries == 2
    assert config.mlflow.http_backoff_factor == 1
    assert config.data_validation == DataValidationRequirement(datasets=("click_stream",))
    assert config.alerts == AlertConfig(
        url_env="STREAMREC_ALERT_WEBHOOK_URL", url=None, timeout_seconds=5.0, max_attempts=3,
        backoff_seconds=1.0,
    )


def test_minimal_gate_defaults(tmp_path):
    config = load_gate_config(write(tmp_path, MINIMAL))
    assert config.tolerance == 1e-9
    assert config.behavioral is None
    assert config.serving is None
    assert config.slice_floors == ()
    assert config.tables.database == "streamrec"
    assert config.mlflow.experiment == "g"
    assert config.data_validation is None


def test_alert_url_is_hidden_from_repr(tmp_path):
    text = MINIMAL + "alerts:\n  url: http://127.0.0.1:9/hook-secret\n  max_attempts: 2\n"
    config = load_gate_config(write(tmp_path, text))
    assert config.alerts.url == "http://127.0.0.1:9/hook-secret"
    assert config.alerts.max_attempts == 2
    assert "hook-secret" not in repr(config)


def test_gate_without_metric_rules_is_invalid(tmp_path):
    found = problems(tmp_path, "name: g\nregistered_model_name: m\nmetrics: {}\n")
    assert len(found) == 1
    assert "no metric rules" in found[0]
    assert found[0].startswith(f"{tmp_path / 'gate.yaml'}:")


def test_gate_with_metrics_key_absent_is_invalid(tmp_path):
    found = problems(tmp_path, "name: g\nregistered_model_name: m\n")
    assert any("no metric rules" in problem for problem in found)


def test_unknown_keys_name_file_and_line(tmp_path):
    text = MINIMAL + "serving:\n  max_p99_latency_ms: 45\n  max_size_mb: 250\n  max_p95: 3\nthreshold: 1\n"
    found = problems(tmp_path, text)
    path = tmp_path / "gate.yaml"
    assert len(found) == 2
    assert any(p.startswith(f"{path}:8: unknown key 'serving.max_p95'") for p in found)
    assert any(p.startswith(f"{path}:9: unknown key 'threshold'") for p in found)


def test_unknown_key_in_metric_rule(tmp_path):
    text = MINIMAL.replace("max_regression: 0.02", "max_regresion: 0.02")
    found = problems(tmp_path, text)
    assert any("unknown key 'metrics.recall_at_20.max_regresion'" in p for p in found)
    assert any("missing key 'metrics.recall_at_20.max_regression'" in p for p in found)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "must be a finite number"),
        (".nan", "must be a finite number"),
        ("-0.1", "must be at least 0.0"),
        ("2", "must be at most 1.0"),
        ("true", "must be a finite number"),
    ],
)
def test_bad_floor_numbers(tmp_path, value, message):
    found = problems(tmp_path, MINIMAL.replace("floor: 0.15", f"floor: {value}"))
    assert len(found) == 1
    assert f"{tmp_path / 'gate.yaml'}:4:" in found[0]
    assert message in found[0]


def test_bad_tolerance(tmp_path):
    found = problems(tmp_path, MINIMAL + "tolerance: 0.5\n")
    assert "'tolerance' must be at most 0.001" in found[0]


@pytest.mark.parametrize("name", ["recall_at_x", "foo_at_20", "recall@20", "recall_at_0"])
def test_invalid_rule_names(tmp_path, name):
    found = problems(tmp_path, MINIMAL.replace("recall_at_20", name))
    assert any(f"invalid metric rule '{name}'" in problem for problem in found)


def test_rule_name_parsing():
    assert parse_metric_rule_name("hit_rate_at_10") == ("hit_rate", 10)
    assert parse_metric_rule_name("ndcg_at_20") == ("ndcg", 20)
    assert parse_metric_rule_name("coverage_at_20") is None


def test_invalid_slice_name(tmp_path):
    text = MINIMAL + "slice_floors:\n  recall_at_20:\n    androids: 0.1\n"
    found = problems(tmp_path, text)
    assert f"{tmp_path / 'gate.yaml'}:7: invalid slice 'androids'" in found[0]


def test_serving_limit_must_be_positive(tmp_path):
    text = MINIMAL + "serving:\n  max_p99_latency_ms: 0\n  max_size_mb: 250\n"
    found = problems(tmp_path, text)
    assert "'serving.max_p99_latency_ms' must be above 0" in found[0]


@pytest.mark.parametrize(
    ("serving", "expected"),
    [
        (
            '  max_p99_latency_ms: "45ms"\n  max_size_mb: 250\n',
            "'serving.max_p99_latency_ms' must be a number of milliseconds without a unit, "
            "for example 45; found '45ms'",
        ),
        (
            '  max_p99_latency_ms: 45\n  max_size_mb: "250 MB"\n',
            "'serving.max_size_mb' must be a number of MB without a unit, for example 250; "
            "found '250 MB'",
        ),
        (
            '  max_p99_latency_ms: -3\n  max_size_mb: 250\n',
            "'serving.max_p99_latency_ms' must be above 0 milliseconds, found -3",
        ),
        (
            '  p99_latency_ms: 45\n  max_size_mb: 250\n',
            "unknown key 'serving.p99_latency_ms'; did you mean 'max_p99_latency_ms'?",
        ),
    ],
)
def test_serving_mistake_is_one_problem(tmp_path, serving, expected):
    found = problems(tmp_path, MINIMAL + "serving:\n" + serving)
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path / 'gate.yaml'}:")
    assert found[0].endswith(expected)


def test_alert_timeout_with_unit_is_one_problem(tmp_path):
    found = problems(tmp_path, MINIMAL + 'alerts:\n  timeout_seconds: "5s"\n')
    assert len(found) == 1
    assert "'alerts.timeout_seconds' must be a number of seconds without a unit" in found[0]


def test_suite_name_must_match_suite_file(tmp_path):
    text = MINIMAL + f"behavioral:\n  suite: other_suite\n  suite_file: {SUITE_FILE}\n"
    found = problems(tmp_path, text)
    assert "'behavioral.suite' is 'other_suite'" in found[0]
    assert "streamrec_recommendation_v2" in found[0]


def test_missing_suite_file(tmp_path):
    text = MINIMAL + "behavioral:\n  suite: s\n  suite_file: nowhere/suite.yaml\n"
    found = problems(tmp_path, text)
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path / 'gate.yaml'}:7: behavioral suite file 'nowhere/suite.yaml' not found")
    assert str(tmp_path / "nowhere" / "suite.yaml") in found[0]
    assert str(REPO / "nowhere" / "suite.yaml") in found[0]
    assert "absolute path or to a path relative to the gate file's folder" in found[0]


def test_missing_absolute_suite_file(tmp_path):
    missing = tmp_path / "absent" / "suite.yaml"
    found = problems(tmp_path, MINIMAL + f"behavioral:\n  suite: s\n  suite_file: {missing}\n")
    assert len(found) == 1
    assert f"tried {missing}." in found[0]


def test_copied_gate_finds_bundled_suite(tmp_path):
    copy = tmp_path / "elsewhere" / "my_gate.yaml"
    copy.parent.mkdir()
    copy.write_text(TEAM_GATE.read_text(encoding="utf-8"), encoding="utf-8")
    config = load_gate_config(copy)
    assert Path(config.behavioral.suite_file) == SUITE_FILE
    assert len(config.behavioral.tests) == 14


def test_suite_next_to_gate_file_wins(tmp_path):
    local_suite = tmp_path / "conf" / "behavioral" / "suite.yaml"
    local_suite.parent.mkdir(parents=True)
    text = SUITE_FILE.read_text(encoding="utf-8")
    first_test = text.index("  - {name: mft_recall_ios")
    end_of_line = text.index("\n", first_test) + 1
    local_suite.write_text(text[:first_test] + text[end_of_line:], encoding="utf-8")
    copy = tmp_path / "gate.yaml"
    copy.write_text(TEAM_GATE.read_text(encoding="utf-8"), encoding="utf-8")
    config = load_gate_config(copy)
    assert Path(config.behavioral.suite_file) == local_suite
    assert "mft_recall_ios" not in config.behavioral.tests
    assert len(config.behavioral.tests) == 13


def test_required_must_be_all(tmp_path):
    text = MINIMAL + f"behavioral:\n  suite: streamrec_recommendation_v2\n  suite_file: {SUITE_FILE}\n  required: some\n"
    found = problems(tmp_path, text)
    assert "'behavioral.required' must be one of all" in found[0]


def test_alert_settings_are_checked(tmp_path):
    text = MINIMAL + "alerts:\n  url_env: 'not a name'\n  timeout_seconds: 0\n  max_attempts: 0\n"
    found = problems(tmp_path, text)
    assert len(found) == 3
    assert "'alerts.url_env' must be an environment variable name" in found[0]
    assert "'alerts.timeout_seconds' must be above 0" in found[1]
    assert "'alerts.max_attempts' must be at least 1" in found[2]


def test_all_problems_reported_at_once(tmp_path):
    text = "name: g\nmetrics:\n  recall_at_20: {floor: x, max_regression: -1}\nextra: 1\n"
    found = problems(tmp_path, text)
    assert len(found) == 4
    joined = "\n".join(found)
    assert "unknown key 'extra'" in joined
    assert "missing key 'registered_model_name'" in joined
    assert "floor' must be a finite number" in joined
    assert "max_regression' must be at least 0.0" in joined


def test_data_validation_section(tmp_path):
    config = load_gate_config(write(tmp_path, MINIMAL + "data_validation:\n  datasets: [click_stream, item_metadata]\n"))
    assert config.data_validation.datasets == ("click_stream", "item_metadata")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("data_validation:\n  datasets: []\n", "'data_validation.datasets' is empty"),
        ("data_validation:\n  datasets: [click_stream, click_stream]\n", "lists 'click_stream' more than once"),
        ("data_validation:\n  datasets: click_stream\n", "must be a list of strings"),
        ("data_validation:\n  feeds: [click_stream]\n", "unknown key 'data_validation.feeds'"),
        ("data_validation:\n  datasets: ['  ']\n", "has an empty name"),
    ],
)
def test_invalid_data_validation_section(tmp_path, section, message):
    found = problems(tmp_path, MINIMAL + section)
    assert any(message in problem for problem in found), found


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("http_timeout_seconds: 0", "'mlflow.http_timeout_seconds' must be at least 1"),
        ("http_timeout_seconds: 2.5", "'mlflow.http_timeout_seconds' must be an integer"),
        ("http_max_retries: -1", "'mlflow.http_max_retries' must be at least 0"),
        ("http_max_retries: 11", "'mlflow.http_max_retries' must be at most 10"),
        ("http_backoff_factor: 121", "'mlflow.http_backoff_factor' must be at most 120"),
    ],
)
def test_invalid_mlflow_http_settings(tmp_path, setting, message):
    found = problems(tmp_path, MINIMAL + f"mlflow:\n  {setting}\n")
    assert len(found) == 1
    assert message in found[0]
