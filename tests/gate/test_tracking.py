"""MLflow record of gate decisions, against real local sqlite stores.

Spark is used only to fit the small model that a passing decision registers."""

from __future__ import annotations

import json
import math
import os
import socket
from pathlib import Path

import pandas as pd
import pytest

from streamrec_spark.errors import InvalidRequestError
from streamrec_spark.gate.tracking import (
    CHAMPION_ALIAS,
    DECISION_ARTIFACT,
    HTTP_BACKOFF_FACTOR_ENV,
    HTTP_MAX_RETRIES_ENV,
    HTTP_TIMEOUT_ENV,
    MODEL_ARTIFACT_PATH,
    TrackingConfig,
    default_tracking_uri,
    http_settings,
    record_decision,
)

EXPERIMENT = "streamrec_v2_gate"


def comparison(rule, kind, candidate, champion, floor, max_regression, passed, reason_code):
    difference = None
    if candidate is not None and champion is not None:
        difference = candidate - champion
    return {
        "rule": rule,
        "kind": kind,
        "candidate_value": candidate,
        "champion_value": champion,
        "floor": floor,
        "max_regression": max_regression,
        "difference": difference,
        "passed": passed,
        "reason_code": reason_code,
    }


def gate_record(decision: str, model_id: str, gate_run_id: str, **changes) -> dict:
    """Return a decision record shaped like the gate driver's, with ``changes`` applied."""
    record = {
        "gate": "streamrec_v2_gate",
        "model_id": model_id,
        "run_id": gate_run_id,
        "decision": decision,
        "reasons": [] if decision == "PASS" else ["REGRESSION", "BEHAVIORAL_TEST_FAILED"],
        "champion_model_id": "affinity-2024-04-30",
        "no_baseline": False,
        "comparisons": [
            comparison("recall_at_20", "metric", 0.21, 0.25, 0.15, 0.02, False, "REGRESSION"),
            comparison("ndcg_at_20", "metric", 0.14, 0.145, 0.12, 0.015, True, None),
            comparison("recall_at_20@ios", "slice_floor", 0.13, None, 0.12, None, True, None),
            comparison(
                "behavioral:recency_boost", "behavioral", 0.4, None, None, None, False,
                "BEHAVIORAL_TEST_FAILED",
            ),
        ],
        "behavioral": [
            {
                "test_name": "recency_boost",
                "test_type": "DIR",
                "passed": False,
                "observed": 0.4,
                "threshold": 0.8,
                "failures": 12,
                "cases": 20,
            }
        ],
        "probe": {"p50_ms": 3.5, "p99_ms": 12.25, "size_mb": 4.0, "requests": 200},
        "data_validation": {"click_stream": "passed", "failed_checks": 0},
    }
    record.update(changes)
    return record


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    # One store for the module, because creating a sqlite store runs MLflow's migrations.
    return tmp_path_factory.mktemp("warehouse")


@pytest.fixture(scope="module")
def client(warehouse):
    from mlflow import MlflowClient

    uri = default_tracking_uri(str(warehouse))
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture()
def model_dir(saved_model_dir) -> Path:
    return Path(saved_model_dir)


def tracking(model_name: str = "streamrec_v2") -> TrackingConfig:
    return TrackingConfig(
        tracking_uri=None,
        registry_uri=None,
        experiment=EXPERIMENT,
        registered_model_name=model_name,
    )


def decision_document(client, run_id: str, tmp_path: Path) -> dict:
    local = client.download_artifacts(run_id, DECISION_ARTIFACT, str(tmp_path))
    return json.loads(Path(local).read_text(encoding="utf-8"))


def test_default_uri_under_warehouse(tmp_path):
    expected = "sqlite:///" + (tmp_path / "mlflow" / "mlflow.db").as_posix()
    assert default_tracking_uri(str(tmp_path)) == expected
    assert default_tracking_uri(tmp_path.as_uri()) == expected


def test_default_uri_rejects_remote_warehouse():
    with pytest.raises(InvalidRequestError, match="s3a://bucket/warehouse"):
        default_tracking_uri("s3a://bucket/warehouse")


def test_block_recorded_not_registered(warehouse, client, tmp_path):
    record = gate_record("BLOCK", "affinity-block", "gate-run-block")

    result = record_decision(tracking("streamrec_block"), str(warehouse), record, None, False)

    assert result.error is None
    assert result.registered_version is None
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.artifact_uri.startswith((warehouse / "mlflow" / "artifacts").as_uri())
    assert (warehouse / "mlflow" / "mlflow.db").is_file()
    tags = run.data.tags
    assert tags["decision"] == "BLOCK"
    assert tags["reasons"] == "REGRESSION,BEHAVIORAL_TEST_FAILED"
    assert tags["no_baseline"] == "false"
    assert tags["gate_run_id"] == "gate-run-block"
    assert tags["model_id"] == "affinity-block"
    params = run.data.params
    assert params["gate"] == "streamrec_v2_gate"
    assert params["champion_model_id"] == "affinity-2024-04-30"
    assert params["floor/recall_at_20"] == "0.15"
    assert params["max_regression/recall_at_20"] == "0.02"
    assert params["floor/recall_at_20_ios"] == "0.12"
    assert params["behavioral_threshold/recency_boost"] == "0.8"
    assert params["data_validation/click_stream"] == "passed"
    metrics = run.data.metrics
    assert metrics["candidate/recall_at_20"] == 0.21
    assert metrics["champion/recall_at_20"] == 0.25
    assert math.isclose(metrics["difference/recall_at_20"], -0.04)
    assert metrics["candidate/behavioral_recency_boost"] == 0.4
    assert metrics["failed_comparisons"] == 2.0
    assert metrics["behavioral/recency_boost/passed"] == 0.0
    assert metrics["behavioral/recency_boost/failures"] == 12.0
    assert metrics["failed_behavioral_tests"] == 1.0
    assert metrics["probe/p99_ms"] == 12.25
    assert metrics["probe/size_mb"] == 4.0
    assert decision_document(client, result.run_id, tmp_path) == record
    assert client.search_model_versions(f"run_id = '{result.run_id}'") == []
    assert client.search_registered_models(filter_string="name = 'streamrec_block'") == []


def test_pass_registers_new_versions(warehouse, client, model_dir):
    config = tracking("streamrec_pass")
    first = gate_record("PASS", "affinity-first", "gate-run-first", no_baseline=True)
    second = gate_record("PASS", "affinity-second", "gate-run-second")

    first_result = record_decision(config, str(warehouse), first, str(model_dir), True)
    second_result = record_decision(config, str(warehouse), second, str(model_dir), True)

    assert first_result.error is None
    assert first_result.registered_version == 1
    assert second_result.error is None
    assert second_result.registered_version == 2
    version = client.get_model_version("streamrec_pass", "1")
    assert version.run_id == first_result.run_id
    assert version.source.startswith(client.get_run(first_result.run_id).info.artifact_uri)
    assert version.tags["gate_run_id"] == "gate-run-first"
    assert version.tags["model_id"] == "affinity-first"
    artifacts = client.list_artifacts(first_result.run_id, MODEL_ARTIFACT_PATH)
    assert {"MLmodel", "artifacts", "code", "requirements.txt"} <= {Path(item.path).name for item in artifacts}
    saved = client.list_artifacts(first_result.run_id, f"{MODEL_ARTIFACT_PATH}/artifacts/popularity")
    assert {Path(item.path).name for item in saved} == {"model.json", "arrays.npz"}
    run = client.get_run(first_result.run_id)
    assert run.data.tags["no_baseline"] == "true"
    assert run.data.tags["registered_model_version"] == "1"
    champion = client.get_model_version_by_alias("streamrec_pass", CHAMPION_ALIAS)
    assert int(champion.version) == 2
    assert champion.run_id == second_result.run_id


@pytest.fixture()
def registry_uris(warehouse):
    """Point MLflow's process-wide URIs at the module's store, and unset them afterwards."""
    import mlflow

    uri = default_tracking_uri(str(warehouse))
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


def test_registered_version_loads_as_pyfunc(warehouse, model_dir, registry_uris):
    import mlflow.pyfunc

    record = gate_record("PASS", "popularity-pyfunc", "gate-run-pyfunc")
    result = record_decision(tracking("streamrec_pyfunc"), str(warehouse), record, str(model_dir), True)
    assert result.error is None

    model = mlflow.pyfunc.load_model(f"models:/streamrec_pyfunc/{result.registered_version}")
    requests = pd.DataFrame(
        [
            {
                "user_id": 7,
                "now": 1714521600.0,
                "platform": "ios",
                "history": [{"item_id": 30, "event_type": "complete", "timestamp": 1714500000.0}],
            },
            {"user_id": 8, "now": 1714521600.0, "history": []},
        ]
    )
    top_two = model.predict(requests, params={"k": 2})
    unseen = model.predict(requests.iloc[[0]], params={"exclude_seen": True})

    # The popularity model ranks items 30, 20, 10 for every user.
    assert list(top_two.columns) == ["user_id", "rank", "item_id", "score"]
    assert top_two[["user_id", "rank", "item_id"]].values.tolist() == [[7, 1, 30], [7, 2, 20], [8, 1, 30], [8, 2, 20]]
    assert top_two[top_two.user_id == 7]["score"].is_monotonic_decreasing
    assert unseen["item_id"].tolist() == [20, 10]
    alias = mlflow.pyfunc.load_model(f"models:/streamrec_pyfunc@{CHAMPION_ALIAS}")
    assert alias.predict(requests.iloc[[1]], params={"k": 1})["item_id"].tolist() == [30]


NOW = 1714521600.0
VALID_EVENT = {"item_id": 30, "event_type": "complete", "timestamp": NOW - 3600.0}


@pytest.mark.parametrize(
    ("second_request", "message"),
    [
        ({"user_id": 8, "now": math.nan, "history": []},
         r"request 1: 'now' is nan; set it to the request time in epoch seconds"),
        ({"user_id": 8, "now": None, "history": []},
         r"request 1: 'now' is (None|nan); set it to the request time in epoch seconds"),
        ({"user_id": 8, "now": NOW, "history": [VALID_EVENT, {**VALID_EVENT, "event_type": "bookmark"}]},
         r"request 1: 'history\[1\]': unknown 'event_type' 'bookmark'; use one of view, click, "
         r"complete, skip"),
        ({"user_id": 8, "now": NOW, "history": [{**VALID_EVENT, "timestamp": NOW + 60.0}]},
         r"request 1: 'history\[0\]': 'timestamp' 1714521660.0 is after 'now' 1714521600.0; "
         r"send only events up to the request time"),
    ],
    ids=["nan_now", "missing_now", "unknown_event_type", "event_after_now"],
)
def test_pyfunc_rejects_invalid_request(pyfunc_model, second_request, message):
    from mlflow.exceptions import MlflowException

    valid = {"user_id": 7, "now": NOW, "history": [VALID_EVENT]}
    with pytest.raises(MlflowException, match=message) as caught:
        pyfunc_model.predict(pd.DataFrame([valid, second_request]), params={"k": 2})
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


def test_pyfunc_accepts_empty_history(pyfunc_model):
    requests = pd.DataFrame([{"user_id": 9, "now": NOW, "history": []}])
    assert pyfunc_model.predict(requests, params={"k": 2})["item_id"].tolist() == [30, 20]


@pytest.fixture(scope="module")
def pyfunc_model(warehouse, saved_model_dir):
    """Register the small model once and load it back through the models:/ URI."""
    import mlflow
    import mlflow.pyfunc

    uri = default_tracking_uri(str(warehouse))
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        record = gate_record("PASS", "popularity-input", "gate-run-input")
        result = record_decision(
            tracking("streamrec_pyfunc_input"), str(warehouse), record, saved_model_dir, True
        )
        assert result.error is None
        model = mlflow.pyfunc.load_model(f"models:/streamrec_pyfunc_input/{result.registered_version}")
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    return model


def test_unloadable_model_folder_not_registered(warehouse, client, tmp_path):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "weights.json").write_text("{}", encoding="utf-8")
    record = gate_record("PASS", "broken-model", "gate-run-broken-model")

    result = record_decision(tracking("streamrec_broken"), str(warehouse), record, str(folder), True)

    assert result.run_id is not None
    assert result.registered_version is None
    assert f"model folder '{folder}' cannot be registered" in result.error
    assert "model.json is missing" in result.error
    assert "\n" not in result.error
    assert client.get_run(result.run_id).info.status == "FAILED"
    assert client.search_registered_models(filter_string="name = 'streamrec_broken'") == []


def test_http_settings_respect_environment(monkeypatch):
    monkeypatch.delenv(HTTP_TIMEOUT_ENV, raising=False)
    monkeypatch.delenv(HTTP_BACKOFF_FACTOR_ENV, raising=False)
    monkeypatch.setenv(HTTP_MAX_RETRIES_ENV, "5")
    config = TrackingConfig(None, None, EXPERIMENT, "m", http_timeout_seconds=3, http_max_retries=1, http_backoff_factor=0)

    with http_settings(config) as settings:
        inside = {name: os.environ.get(name) for name in settings}

    assert inside == {HTTP_TIMEOUT_ENV: "3", HTTP_MAX_RETRIES_ENV: "5", HTTP_BACKOFF_FACTOR_ENV: "0"}
    assert settings == inside
    assert HTTP_TIMEOUT_ENV not in os.environ
    assert HTTP_BACKOFF_FACTOR_ENV not in os.environ
    assert os.environ[HTTP_MAX_RETRIES_ENV] == "5"


def test_nan_candidate_stored_as_null(warehouse, client, tmp_path):
    nan_comparison = comparison(
        "recall_at_20", "metric", float("nan"), 0.25, 0.15, 0.02, False, "NAN_METRIC"
    )
    nan_comparison["difference"] = float("nan")
    record = gate_record(
        "BLOCK",
        "affinity-nan",
        "gate-run-nan",
        comparisons=[nan_comparison],
        probe={"p50_ms": 2.0, "p99_ms": float("inf"), "size_mb": 4.0, "requests": 200},
    )

    result = record_decision(tracking(), str(warehouse), record, None, False)

    assert result.error is None
    metrics = client.get_run(result.run_id).data.metrics
    assert "candidate/recall_at_20" not in metrics
    assert "difference/recall_at_20" not in metrics
    assert "probe/p99_ms" not in metrics
    assert metrics["champion/recall_at_20"] == 0.25
    assert metrics["probe/p50_ms"] == 2.0
    stored = decision_document(client, result.run_id, tmp_path)
    assert stored["comparisons"][0]["candidate_value"] is None
    assert stored["comparisons"][0]["difference"] is None
    assert stored["comparisons"][0]["reason_code"] == "NAN_METRIC"
    assert stored["probe"]["p99_ms"] is None


def test_clashing_rule_names_kept_apart(warehouse, client):
    record = gate_record(
        "BLOCK",
        "affinity-clash",
        "gate-run-clash",
        comparisons=[
            comparison("behavioral:x", "behavioral", 0.1, None, None, None, False, "B"),
            comparison("behavioral/x", "behavioral", 0.2, None, None, None, False, "B"),
        ],
    )

    result = record_decision(tracking(), str(warehouse), record, None, False)

    assert result.error is None
    metrics = client.get_run(result.run_id).data.metrics
    assert metrics["candidate/behavioral_x"] == 0.1
    assert metrics["candidate/behavioral_x_2"] == 0.2


@pytest.mark.parametrize(
    "uri",
    ["notascheme://store", "", "sqlite:///{tmp}/not-a-folder/mlflow.db"],
    ids=["unsupported-scheme", "empty", "sqlite-under-a-file"],
)
def test_bad_tracking_uri_returns_error(tmp_path, uri):
    (tmp_path / "not-a-folder").write_text("a file, not a folder", encoding="utf-8")
    uri = uri.format(tmp=tmp_path.as_posix())
    config = TrackingConfig(uri, None, EXPERIMENT, "streamrec_v2")
    record = gate_record("BLOCK", "affinity-bad-uri", "gate-run-bad-uri")

    result = record_decision(config, str(tmp_path), record, None, False)

    assert result.run_id is None
    assert result.registered_version is None
    assert result.error is not None
    assert f"MLflow store '{uri}' failed" in result.error
    assert "\n" not in result.error


def test_server_password_not_in_error(tmp_path, monkeypatch):
    # A loopback port that nothing listens on: bind it, then release it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(HTTP_MAX_RETRIES_ENV, "0")
    config = TrackingConfig(f"http://gate:s3cret@127.0.0.1:{port}", None, EXPERIMENT, "m")
    record = gate_record("BLOCK", "affinity-server", "gate-run-server")

    result = record_decision(config, str(tmp_path), record, None, False)

    assert result.run_id is None
    assert f"MLflow store 'http://gate:***@127.0.0.1:{port}' failed" in result.error
    assert "ConnectionRefusedError" in result.error
    assert "s3cret" not in result.error


def test_bad_registry_uri_keeps_run(warehouse, client, model_dir):
    config = TrackingConfig(None, "notascheme://registry", EXPERIMENT, "streamrec_v2")
    record = gate_record("PASS", "affinity-bad-registry", "gate-run-bad-registry")

    result = record_decision(config, str(warehouse), record, str(model_dir), True)

    assert result.run_id is not None
    assert result.registered_version is None
    assert "MLflow store 'notascheme://registry' failed while registering" in result.error
    assert client.get_run(result.run_id).data.tags["decision"] == "PASS"


def test_deleted_experiment_returns_error(warehouse, client):
    experiment_id = client.create_experiment("streamrec_deleted_gate")
    client.delete_experiment(experiment_id)
    config = TrackingConfig(None, None, "streamrec_deleted_gate", "streamrec_v2")
    record = gate_record("BLOCK", "affinity-deleted", "gate-run-deleted")

    result = record_decision(config, str(warehouse), record, None, False)

    assert result.run_id is None
    assert "experiment 'streamrec_deleted_gate' is deleted" in result.error
    assert f"--experiment-id {experiment_id}" in result.error


def test_explicit_store_stays_separate(warehouse, client, tmp_path):
    other_uri = "sqlite:///" + (tmp_path / "other" / "mlflow.db").as_posix()
    config = TrackingConfig(other_uri, None, EXPERIMENT, "streamrec_v2")
    record = gate_record("BLOCK", "affinity-other-store", "gate-run-other-store")

    result = record_decision(config, str(warehouse), record, None, False)

    assert result.error is None
    from mlflow import MlflowClient

    other = MlflowClient(tracking_uri=other_uri, registry_uri=other_uri)
    assert other.get_run(result.run_id).data.tags["gate_run_id"] == "gate-run-other-store"
    default_runs = client.search_runs(
        [client.get_experiment_by_name(EXPERIMENT).experiment_id],
        filter_string="tags.gate_run_id = 'gate-run-other-store'",
    )
    assert default_runs == []


def test_register_requires_pass(warehouse, model_dir):
    record = gate_record("BLOCK", "affinity-blocked", "gate-run-blocked")
    with pytest.raises(InvalidRequestError, match="only a PASS is registered"):
        record_decision(tracking(), str(warehouse), record, str(model_dir), True)


def test_register_requires_model_folder(warehouse, tmp_path):
    record = gate_record("PASS", "affinity-no-folder", "gate-run-no-folder")
    missing = tmp_path / "missing"
    with pytest.raises(InvalidRequestError, match="model folder .*missing.* not found"):
        record_decision(tracking(), str(warehouse), record, str(missing), True)


def test_record_requires_decision(warehouse):
    record = gate_record("PASS", "affinity-no-decision", "gate-run-no-decision")
    del record["decision"]
    with pytest.raises(InvalidRequestError, match="no 'decision'"):
        record_decision(tracking(), str(warehouse), record, None, False)
