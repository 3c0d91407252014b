"""The gate driver end to end: real Delta result tables, Spark and a local MLflow store.

Each test writes its candidates' aggregated rows with the product's own writers (the serving
probe rows through a helper with the probe table's schema), runs the driver, and reads back
the gate tables and the MLflow registry. The tests share one warehouse, because creating the
Delta tables takes seconds, and stay apart through their own gate name (the champion is per
gate) and model ids.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from streamrec_spark import delta_tables
from streamrec_spark.behavioral.store import write_behavioral_results
from streamrec_spark.behavioral.verdicts import TestResult
from streamrec_spark.cli import main as cli_main
from streamrec_spark.errors import (
    EXIT_FAILED,
    EXIT_INFRASTRUCTURE,
    EXIT_INVALID,
    EXIT_PASSED,
    ComputationError,
    InvalidRequestError,
)
from streamrec_spark.evaluation.results import MetricRow
from streamrec_spark.evaluation.store import write_model_metrics
from streamrec_spark.gate import rules
from streamrec_spark.gate.config import load_gate_config
from streamrec_spark.gate.driver import GateRequest, apply_gate, format_outcome
from streamrec_spark.validation.store import ResultStore, RunRecord

REPO = Path(__file__).resolve().parents[2]
GATE_FILE = REPO / "conf" / "gates" / "streamrec_v2_gate.yaml"
SUITE = "streamrec_recommendation_v2"
# The gate must decide in seconds on tiny tables; this bound leaves room for a loaded CI host.
MAX_GATE_SECONDS = 60.0
# The data date every test gates for: the shared warehouse has a passing click_stream run for it.
DATA_DATE = date(2024, 5, 1)
# 3 metric rules, 5 slice floors, 14 behavioral tests, 2 serving limits and 1 dataset.
TEAM_GATE_COMPARISONS = 25

# Schema of the serving_probes columns that the gate reads.
PROBE_SCHEMA = T.StructType(
    [
        T.StructField("model_id", T.StringType(), False),
        T.StructField("run_id", T.StringType(), False),
        T.StructField("requests", T.LongType(), False),
        T.StructField("p50_ms", T.DoubleType(), True),
        T.StructField("p99_ms", T.DoubleType(), True),
        T.StructField("max_ms", T.DoubleType(), True),
        T.StructField("size_mb", T.DoubleType(), True),
        T.StructField("status", T.StringType(), False),
        T.StructField("reason", T.StringType(), True),
        T.StructField("probed_at", T.TimestampType(), False),
    ]
)

# Base metric values of a good candidate, all well above the team gate's floors.
BASE_VALUES = {
    ("recall", 20): 0.30,
    ("ndcg", 20): 0.20,
    ("hit_rate", 10): 0.50,
}
SLICE_RECALL = {
    "all": 0.30,
    "new_users": 0.10,
    "platform=ios": 0.25,
    "platform=android": 0.25,
    "platform=web": 0.20,
    "top_active": 0.40,
}


@pytest.fixture(scope="module")
def gate_config():
    return load_gate_config(GATE_FILE)


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory):
    """One sqlite MLflow store for the module: creating its schema takes seconds."""
    folder = tmp_path_factory.mktemp("mlflow")
    return "sqlite:///" + (folder / "mlflow.db").as_posix()


@pytest.fixture(scope="module")
def warehouse(spark, tmp_path_factory):
    """The shared warehouse, with a passing click_stream validation run for DATA_DATE."""
    folder = str(tmp_path_factory.mktemp("gate") / "warehouse")
    write_validation_run(spark, folder)
    return folder


def gate_named(config, name: str):
    """Return the team gate under another name, with its own registered model."""
    return replace(config, name=name, registered_model_name=f"{name}_model")


@pytest.fixture
def model_dir(saved_model_dir):
    return saved_model_dir


def metric_row(slice_name, metric, k, value, status="ok", reason=None, users=100) -> MetricRow:
    return MetricRow(
        slice=slice_name, metric=metric, k=k, user_count=users, value=value, status=status,
        reason=reason,
    )


def metric_rows(recall_all: float = 0.30, overrides: dict | None = None) -> list[MetricRow]:
    """Rows of an evaluation run; ``overrides`` maps (metric, k, slice) to a replacement row."""
    rows = {}
    for (metric, k), value in BASE_VALUES.items():
        for slice_name, slice_recall in SLICE_RECALL.items():
            scaled = value * (slice_recall / 0.30)
            if metric == "recall" and slice_name == "all":
                scaled = recall_all
            rows[(metric, k, slice_name)] = metric_row(slice_name, metric, k, scaled)
    rows[("input.invalid_scores", None, "all")] = metric_row(
        "all", "input.invalid_scores", None, None, status="passed"
    )
    for key, row in (overrides or {}).items():
        if row is None:
            rows.pop(key, None)
        else:
            rows[key] = row
    return list(rows.values())


def write_metrics(spark, warehouse, model_id, rows, run_id="run-1", holdout=(None, None)):
    write_model_metrics(
        spark, rows, model_id=model_id, run_id=run_id, warehouse=warehouse,
        database="streamrec", table="model_metrics", holdout_start=holdout[0], holdout_end=holdout[1],
    )


def behavioral_results(config, failed=(), missing=()) -> list[TestResult]:
    results = []
    for name in config.behavioral.tests:
        if name in missing:
            continue
        passed = name not in failed
        results.append(
            TestResult(
                name=name,
                test_type="MFT",
                cases=100,
                failures=5 if passed else 60,
                failure_rate=0.05 if passed else 0.6,
                observed=0.2 if passed else 0.1,
                threshold=0.15,
                threshold_kind="min_value",
                passed=passed,
                status="passed" if passed else "failed",
                reason=None if passed else "BELOW_FLOOR",
            )
        )
    return results


def write_behavioral(spark, warehouse, model_id, results, run_id="run-1", suite=SUITE):
    write_behavioral_results(
        spark, results, model_id=model_id, run_id=run_id, suite=suite, warehouse=warehouse,
        database="streamrec", table="behavioral_results",
    )


def write_probe(spark, warehouse, model_id, p99=30.0, size=120.0, status="OK", reason=None, run_id="run-1"):
    """Append one serving_probes row with the probe table's schema."""
    path = delta_tables.table_path(warehouse, "serving_probes")
    row = (model_id, run_id, 500, 10.0, p99, (p99 or 0.0) + 5.0, size, status, reason, datetime.utcnow())
    delta_tables.append(spark.createDataFrame([row], PROBE_SCHEMA), path, ("model_id",))


def write_validation_run(
    spark, warehouse, dataset="click_stream", status="passed", day=DATA_DATE, run_id=None,
    blocking_failures=0,
):
    now = datetime.utcnow()
    record = RunRecord(
        run_id=run_id or f"{dataset}-run", dataset=dataset, partition_date=day,
        contract_version="1", status=status, exit_code=0 if status == "passed" else 1,
        as_of=now, started_at=now, finished_at=now, input_path="/data", code_version=None,
        spark_app_id=None, row_count=1000, expectations_total=22,
        expectations_failed=blocking_failures, blocking_failures=blocking_failures,
    )
    ResultStore(spark, warehouse, "streamrec").append_run(record)


def write_good_candidate(spark, warehouse, config, model_id, recall_all=0.30, run_id="run-1"):
    write_metrics(spark, warehouse, model_id, metric_rows(recall_all), run_id)
    write_behavioral(spark, warehouse, model_id, behavioral_results(config), run_id)
    write_probe(spark, warehouse, model_id, run_id=run_id)


def gate(
    spark, config, warehouse, model_id, tracking_uri, model_dir=None, register=True,
    data_date=DATA_DATE, **kwargs,
):
    request = GateRequest(
        config=config, model_id=model_id, warehouse=warehouse, model_dir=model_dir,
        register=register, tracking_uri=tracking_uri, data_date=data_date, **kwargs,
    )
    started = time.monotonic()
    outcome = apply_gate(spark, request)
    assert time.monotonic() - started < MAX_GATE_SECONDS
    return outcome


def decisions(spark, warehouse, gate_name):
    path = delta_tables.table_path(warehouse, "gate_decisions")
    rows = spark.read.format("delta").load(path).where(F.col("gate") == gate_name).collect()
    return {row["decision_id"]: row for row in rows}


def comparisons(spark, warehouse, decision_id):
    path = delta_tables.table_path(warehouse, "gate_comparisons")
    rows = (
        spark.read.format("delta").load(path)
        .where(F.col("decision_id") == decision_id).orderBy("position").collect()
    )
    return {row["rule"]: row for row in rows}


def registry_champion_version(tracking_uri, name):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    return int(client.get_model_version_by_alias(name, "champion").version)


@pytest.fixture(scope="module")
def candidates(spark, gate_config, warehouse):
    """Write four complete candidates once; gates of different names judge them separately.

    good-030, good-028 and good-025 have recall@20 0.30, 0.28 and 0.25 on the ``all`` slice,
    and low-010 has 0.10, below the 0.15 floor. Every other value is above its floor.
    """
    for model_id, recall_all in (("good-030", 0.30), ("good-028", 0.28), ("good-025", 0.25), ("low-010", 0.10)):
        write_good_candidate(spark, warehouse, gate_config, model_id, recall_all=recall_all)
    return warehouse


def gate_file(tmp_path: Path, name: str) -> str:
    """Write the team gate under another name, for the command-line tests.

    The copy keeps the relative suite_file, which resolves under the repository root.
    """
    text = GATE_FILE.read_text(encoding="utf-8")
    text = text.replace("name: streamrec_v2_gate", f"name: {name}")
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- champion logic over successive candidates -----------------------------------------------


def test_successive_candidates_and_champion(
    spark, gate_config, candidates, model_dir, tracking_uri, tmp_path
):
    config = gate_named(gate_config, "sequence_gate")
    warehouse = candidates

    # 1. No champion yet: floors only, registered, becomes the champion.
    first = gate(spark, config, warehouse, "good-030", tracking_uri, model_dir)
    assert first.decision == rules.PASS
    assert first.exit_code == EXIT_PASSED
    assert first.no_baseline
    assert first.champion_model_id is None
    assert first.registered
    assert first.registered_version == 1
    assert first.tracking_error is None
    assert {c.reason_code for c in first.comparisons if c.kind == rules.KIND_METRIC} == {rules.NO_CHAMPION}
    assert first.record["data_validation"]["click_stream.status"] == "passed"
    assert first.record["data_validation"]["partition_date"] == "2024-05-01"
    validated = next(c for c in first.comparisons if c.rule == "data_validation:click_stream")
    assert validated.passed

    # 2. 0.02 below the champion's recall@20 (0.30 -> 0.28): allowed, compared with good-030.
    second = gate(spark, config, warehouse, "good-028", tracking_uri, model_dir)
    assert second.decision == rules.PASS
    assert second.champion_model_id == "good-030"
    assert not second.no_baseline
    recall = next(c for c in second.comparisons if c.rule == "recall_at_20")
    assert recall.champion_value == pytest.approx(0.30)
    assert recall.difference == pytest.approx(-0.02)
    assert recall.reason_code is None
    assert second.registered_version == 2

    # 3. 0.03 below the new champion good-028 (0.28 -> 0.25): blocked, not registered.
    third = gate(spark, config, warehouse, "good-025", tracking_uri, model_dir)
    assert third.decision == rules.BLOCK
    assert third.exit_code == EXIT_FAILED
    assert third.champion_model_id == "good-028"
    assert third.reason_codes == (rules.REGRESSION,)
    assert not third.registered
    assert third.registered_version is None
    assert third.mlflow_run_id is not None
    assert "exit 1" in format_outcome(third)

    # The gate tables hold the three decisions with every comparison behind them.
    rows = decisions(spark, warehouse, "sequence_gate")
    assert len(rows) == 3
    assert rows[first.decision_id]["registered"] is True
    assert rows[first.decision_id]["no_baseline"] is True
    assert rows[third.decision_id]["decision"] == rules.BLOCK
    assert rows[third.decision_id]["registered"] is False
    assert list(rows[third.decision_id]["reason_codes"]) == [rules.REGRESSION]
    assert rows[third.decision_id]["comparisons_total"] == TEAM_GATE_COMPARISONS
    assert rows[third.decision_id]["comparisons_failed"] == 1
    assert rows[third.decision_id]["champion_model_id"] == "good-028"
    assert rows[third.decision_id]["metrics_run_id"] == "run-1"
    stored = comparisons(spark, warehouse, third.decision_id)
    assert len(stored) == TEAM_GATE_COMPARISONS
    assert stored["recall_at_20"]["passed"] is False
    assert stored["recall_at_20"]["reason_code"] == rules.REGRESSION
    assert stored["recall_at_20"]["candidate_value"] == pytest.approx(0.25)
    assert stored["recall_at_20"]["champion_value"] == pytest.approx(0.28)
    assert stored["recall_at_20"]["floor"] == pytest.approx(0.15)
    assert stored["recall_at_20"]["max_regression"] == pytest.approx(0.02)
    assert stored["recall_at_20"]["difference"] == pytest.approx(-0.03)
    assert stored["p99_latency_ms"]["upper_limit"] == pytest.approx(45.0)

    # The MLflow registry points its champion alias at good-028's version.
    assert registry_champion_version(tracking_uri, "sequence_gate_model") == 2

    # 4. Gating the champion itself is an invalid request, through the library and the CLI.
    with pytest.raises(InvalidRequestError, match="already the champion"):
        gate(spark, config, warehouse, "good-028", tracking_uri, model_dir)
    code = cli_main([
        "gate", "--model-id", "good-028", "--model-dir", model_dir, "--warehouse", warehouse,
        "--config", gate_file(tmp_path, "sequence_gate"), "--tracking-uri", tracking_uri,
        "--data-date", DATA_DATE.isoformat(),
    ])
    assert code == EXIT_INVALID
    assert len(decisions(spark, warehouse, "sequence_gate")) == 3


def test_unregistered_pass_does_not_become_champion(spark, gate_config, candidates, tracking_uri):
    config = gate_named(gate_config, "unregistered_gate")
    outcome = gate(spark, config, candidates, "good-030", tracking_uri, register=False)
    assert outcome.decision == rules.PASS
    assert outcome.exit_code == EXIT_PASSED
    assert not outcome.registered

    # good-030 passed but is not registered, so good-025 still has no baseline.
    second = gate(spark, config, candidates, "good-025", tracking_uri, register=False)
    assert second.no_baseline
    assert second.champion_model_id is None


def test_failed_registration_exits_3(spark, gate_config, candidates, model_dir, tmp_path):
    config = gate_named(gate_config, "broken_registry_gate")
    # A regular file where the sqlite database's folder should be: the store cannot open.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x", encoding="utf-8")
    broken_uri = "sqlite:///" + (blocker / "mlflow.db").as_posix()
    outcome = gate(spark, config, candidates, "good-030", broken_uri, model_dir)
    assert outcome.decision == rules.PASS
    assert outcome.exit_code == EXIT_INFRASTRUCTURE
    assert not outcome.registered
    assert outcome.tracking_error
    row = decisions(spark, candidates, "broken_registry_gate")[outcome.decision_id]
    assert row["decision"] == rules.PASS
    assert row["registered"] is False
    assert row["exit_code"] == EXIT_INFRASTRUCTURE
    assert row["tracking_error"] == outcome.tracking_error


# --- fail closed -----------------------------------------------------------------------------


def test_mistyped_model_id_exits_2(spark, candidates, tracking_uri, tmp_path, capsys, monkeypatch):
    # Other models' rows exist, so every table is there but none names this id.
    webhook = Webhook()
    monkeypatch.setenv("STREAMREC_ALERT_WEBHOOK_URL", webhook.url)
    code = cli_main([
        "gate", "--model-id", "good-03", "--no-register", "--warehouse", candidates,
        "--config", gate_file(tmp_path, "typo_gate"), "--tracking-uri", tracking_uri,
        "--data-date", DATA_DATE.isoformat(),
    ])
    webhook.close()

    captured = capsys.readouterr()
    error = captured.err.strip().splitlines()
    assert code == EXIT_INVALID
    assert len(error) == 1
    assert error[0].startswith(
        "streamrec-spark: model id 'good-03' not found: no row of model_metrics, "
        f"behavioral_results or serving_probes under {candidates} names it."
    )
    assert "Did you mean good-030" in error[0]
    assert "Models with evaluation runs, latest first: " in error[0]
    assert "Check --model-id" in error[0]
    assert captured.out == ""
    assert webhook.bodies == []
    assert decisions(spark, candidates, "typo_gate") == {}


def test_unknown_model_without_result_tables_is_invalid(spark, gate_config, warehouse, tracking_uri):
    config = gate_named(gate_config, "no_tables_gate")
    tables = replace(
        config.tables, model_metrics_table="none_metrics", behavioral_table="none_behavioral",
        probes_table="none_probes",
    )
    with pytest.raises(InvalidRequestError, match="No model has evaluation runs in none_metrics yet"):
        gate(spark, replace(config, tables=tables), warehouse, "nobody-x", tracking_uri, register=False)
    assert not (Path(warehouse) / "gate_decisions").exists() or decisions(
        spark, warehouse, "no_tables_gate"
    ) == {}


def test_model_with_only_input_checks_is_known(spark, gate_config, warehouse, tracking_uri):
    # An evaluation whose input checks failed writes only rows without k, which the gate skips.
    config = gate_named(gate_config, "input_checks_gate")
    check = metric_row("all", "input.invalid_scores", None, None, status="failed")
    write_metrics(spark, warehouse, "checks-only-x", [check])
    outcome = gate(spark, config, warehouse, "checks-only-x", tracking_uri, register=False)
    assert outcome.decision == rules.BLOCK
    assert outcome.exit_code == EXIT_FAILED
    assert outcome.reason_codes == (
        rules.MISSING_METRIC,
        rules.MISSING_SLICE,
        rules.MISSING_BEHAVIORAL_RESULT,
        rules.MISSING_PROBE_RESULT,
    )
    assert outcome.metrics_run_id is None


def test_missing_tables_block(spark, gate_config, warehouse, tracking_uri):
    # Only the probe table exists and names the candidate, so it is a known model.
    config = gate_named(gate_config, "missing_tables_gate")
    tables = replace(
        config.tables, model_metrics_table="absent_metrics", behavioral_table="absent_behavioral",
        runs_table="absent_runs",
    )
    write_probe(spark, warehouse, "absent-x")
    outcome = gate(spark, replace(config, tables=tables), warehouse, "absent-x", tracking_uri, register=False)
    assert outcome.decision == rules.BLOCK
    assert outcome.exit_code == EXIT_FAILED
    assert outcome.reason_codes == (
        rules.MISSING_METRIC,
        rules.MISSING_SLICE,
        rules.MISSING_BEHAVIORAL_RESULT,
        rules.MISSING_VALIDATION_TABLE,
    )
    assert outcome.data_validation == ()
    assert outcome.record["data_validation"]["runs_table_found"] is False
    stored = comparisons(spark, warehouse, outcome.decision_id)["data_validation:click_stream"]
    assert stored["passed"] is False
    assert stored["reason_code"] == rules.MISSING_VALIDATION_TABLE
    assert stored["kind"] == rules.KIND_DATA_VALIDATION
    assert "absent_runs" in stored["detail"]


def test_nan_empty_slice_incomplete_and_limits_block(spark, gate_config, warehouse, tracking_uri):
    config = gate_named(gate_config, "nan_gate")
    overrides = {
        ("ndcg", 20, "all"): metric_row("all", "ndcg", 20, math.nan),
        ("recall", 20, "platform=web"): metric_row(
            "platform=web", "recall", 20, None, "missing", "EMPTY_SLICE", users=0
        ),
        ("recall", 20, "top_active"): None,
    }
    write_metrics(spark, warehouse, "nan-x", metric_rows(overrides=overrides))
    write_behavioral(spark, warehouse, "nan-x", behavioral_results(config, missing=("dir_recency",)))
    write_probe(spark, warehouse, "nan-x", p99=45.2, size=251.0)
    outcome = gate(spark, config, warehouse, "nan-x", tracking_uri, register=False)

    failed = {c.rule: c.reason_code for c in outcome.failed}
    assert failed == {
        "ndcg_at_20": rules.NAN_METRIC,
        "recall_at_20[platform=web]": rules.MISSING_SLICE,
        "recall_at_20[top_active]": rules.MISSING_SLICE,
        "behavioral:dir_recency": rules.INCOMPLETE_BEHAVIORAL_RESULT,
        "p99_latency_ms": rules.LATENCY_ABOVE_LIMIT,
        "size_mb": rules.SIZE_ABOVE_LIMIT,
    }
    stored = comparisons(spark, warehouse, outcome.decision_id)
    assert math.isnan(stored["ndcg_at_20"]["candidate_value"])
    assert stored["size_mb"]["difference"] == pytest.approx(1.0)


class Webhook:
    """A webhook receiver on the loopback interface that keeps the JSON bodies posted to it."""

    def __init__(self):
        bodies = self.bodies = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        host, port = self.server.server_address[:2]
        self.url = f"http://{host}:{port}/hooks/gate-test-secret"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_failed_test_errored_probe_and_floor_block(spark, gate_config, warehouse, tracking_uri):
    webhook = Webhook()
    config = gate_named(gate_config, "floor_gate")
    config = replace(config, alerts=replace(config.alerts, url=webhook.url, backoff_seconds=0.01))
    overrides = {("recall", 20, "new_users"): metric_row("new_users", "recall", 20, 0.049)}
    write_metrics(spark, warehouse, "floor-x", metric_rows(recall_all=0.149, overrides=overrides))
    write_behavioral(
        spark, warehouse, "floor-x", behavioral_results(config, failed=("inv_platform_switch",))
    )
    write_probe(spark, warehouse, "floor-x", p99=None, size=None, status="ERRORED", reason="LOAD_FAILED")
    outcome = gate(spark, config, warehouse, "floor-x", tracking_uri, register=False)

    failed = {c.rule: c.reason_code for c in outcome.failed}
    assert failed == {
        "recall_at_20": rules.BELOW_FLOOR,
        "recall_at_20[new_users]": rules.BELOW_FLOOR,
        "behavioral:inv_platform_switch": rules.BEHAVIORAL_TEST_FAILED,
        "p99_latency_ms": rules.PROBE_ERRORED,
        "size_mb": rules.PROBE_ERRORED,
    }
    # The block is posted once to the webhook, naming the model and the failed rules.
    webhook.close()
    assert outcome.alert.sent
    assert len(webhook.bodies) == 1
    text = webhook.bodies[0]["text"]
    assert "floor-x" in text
    assert "floor_gate" in text
    assert "recall_at_20" in json.dumps(webhook.bodies[0])
    assert (
        "- behavioral:inv_platform_switch BEHAVIORAL_TEST_FAILED: MFT test inv_platform_switch "
        "failed: observed value 0.1 is below the required minimum 0.15; 60 of 100 cases failed"
    ) in text
    alerts = (spark.read.format("delta").load(str(Path(warehouse) / "alerts"))
              .where(F.col("model_id") == "floor-x").collect())
    assert [(row.kind, row.sent) for row in alerts] == [("gate_blocked", True)]
    assert webhook.url not in json.dumps([row.asDict() for row in alerts], default=str)


def test_gate_reads_latest_runs(spark, gate_config, warehouse, tracking_uri):
    config = gate_named(gate_config, "latest_gate")
    # An old failing run of each input, then a newer passing one: only the newest counts.
    write_metrics(spark, warehouse, "latest-x", metric_rows(recall_all=0.01), run_id="run-old")
    write_behavioral(
        spark, warehouse, "latest-x", behavioral_results(config, failed=("dir_recency",)), "run-old"
    )
    write_probe(spark, warehouse, "latest-x", p99=400.0, run_id="run-old")
    write_good_candidate(spark, warehouse, config, "latest-x", run_id="run-new")
    # A newer result of another suite must not replace the required suite's run.
    write_behavioral(spark, warehouse, "latest-x", behavioral_results(config)[:1], "run-y", "other")

    outcome = gate(spark, config, warehouse, "latest-x", tracking_uri, register=False)
    assert outcome.decision == rules.PASS
    assert outcome.metrics_run_id == "run-new"
    assert outcome.behavioral.run_id == "run-new"
    assert outcome.probe.run_id == "run-new"


def test_champion_compared_on_candidate_holdout(
    spark, gate_config, warehouse, model_dir, tracking_uri
):
    config = gate_named(gate_config, "holdout_gate")
    may, june = (date(2024, 5, 1), date(2024, 5, 8)), (date(2024, 6, 1), date(2024, 6, 8))
    for model_id in ("holdout-champ", "holdout-cand"):
        write_behavioral(spark, warehouse, model_id, behavioral_results(config))
        write_probe(spark, warehouse, model_id)
    write_metrics(spark, warehouse, "holdout-champ", metric_rows(0.30), "run-1", holdout=may)
    assert gate(spark, config, warehouse, "holdout-champ", tracking_uri, model_dir).registered

    # June is a harder week: the candidate's 0.20 is 0.10 below the champion's May value, but
    # 0.01 above the champion's own 0.19 on June.
    write_metrics(spark, warehouse, "holdout-cand", metric_rows(0.20), "run-1", holdout=june)
    without_june = gate(spark, config, warehouse, "holdout-cand", tracking_uri, register=False)
    assert without_june.decision == rules.BLOCK
    assert without_june.reason_codes == (rules.REGRESSION,)
    assert without_june.record["inputs"]["champion_holdout"] == ["2024-05-01", "2024-05-08"]
    assert "from different test sets" in format_outcome(without_june)

    write_metrics(spark, warehouse, "holdout-champ", metric_rows(0.19), "run-june", holdout=june)
    with_june = gate(spark, config, warehouse, "holdout-cand", tracking_uri, register=False)
    assert with_june.decision == rules.PASS
    recall = next(c for c in with_june.comparisons if c.rule == "recall_at_20")
    assert recall.champion_value == pytest.approx(0.19)
    assert recall.difference == pytest.approx(0.01)
    assert with_june.record["inputs"]["champion_metrics_run_id"] == "run-june"
    assert with_june.record["inputs"]["champion_holdout"] == ["2024-06-01", "2024-06-08"]
    assert with_june.record["inputs"]["holdout"] == ["2024-06-01", "2024-06-08"]
    printed = format_outcome(with_june)
    assert "champion metrics: run run-june, holdout 2024-06-01 to 2024-06-08" in printed
    assert "different test sets" not in printed


def test_unreadable_metrics_table_exits_3(spark, gate_config, warehouse, tracking_uri):
    config = gate_named(gate_config, "unreadable_gate")
    config = replace(config, tables=replace(config.tables, model_metrics_table="broken_metrics"))
    write_model_metrics(
        spark, metric_rows(), model_id="broken-x", run_id="run-1", warehouse=warehouse,
        database="streamrec", table="broken_metrics",
    )
    for data_file in (Path(warehouse) / "broken_metrics").rglob("*.parquet"):
        data_file.unlink()
    with pytest.raises(ComputationError) as caught:
        gate(spark, config, warehouse, "broken-x", tracking_uri, register=False)
    message = str(caught.value)
    assert message.startswith(f"cannot read the model metrics table {warehouse}/broken_metrics: ")
    assert ".parquet does not exist" in message
    assert "re-run the evaluate_model stage" in message
    assert "collectToPython" not in message
    assert "\n" not in message
    rows = list(decisions(spark, warehouse, "unreadable_gate").values())
    assert len(rows) == 1
    assert rows[0]["decision"] == rules.ERROR
    assert rows[0]["exit_code"] == EXIT_INFRASTRUCTURE
    assert rows[0]["error_message"] == message


@pytest.mark.parametrize("damage", ["garbage_log", "no_log"])
def test_damaged_probe_table_exits_3(spark, candidates, tracking_uri, tmp_path, capsys, damage):
    table = f"probes_{damage}"
    path = Path(candidates) / table
    delta_tables.append(
        spark.createDataFrame(
            [("good-030", "run-1", 500, 10.0, 30.0, 35.0, 120.0, "OK", None, datetime.utcnow())],
            PROBE_SCHEMA,
        ),
        str(path),
        ("model_id",),
    )
    log = path / "_delta_log"
    if damage == "garbage_log":
        # Remove the checksums too, or Hadoop rejects the file before Delta parses it.
        for checksum in log.glob("*.crc"):
            checksum.unlink()
        for checksum in log.glob(".*.crc"):
            checksum.unlink()
        for entry in log.glob("*.json"):
            entry.write_text("not a Delta log entry {", encoding="utf-8")
    else:
        shutil.rmtree(log)
    config_path = Path(gate_file(tmp_path, f"damaged_{damage}_gate"))
    config_path.write_text(
        config_path.read_text(encoding="utf-8").replace(
            "tables:\n", f"tables:\n  probes_table: {table}\n"
        ),
        encoding="utf-8",
    )

    code = cli_main([
        "gate", "--model-id", "good-030", "--no-register", "--warehouse", candidates,
        "--config", str(config_path), "--tracking-uri", tracking_uri,
        "--data-date", DATA_DATE.isoformat(),
    ])

    error = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_INFRASTRUCTURE
    assert len(error) == 1
    assert error[0].startswith(f"streamrec-spark: cannot read the serving probes table {path}: ")
    assert "re-run the probe_model stage" in error[0]
    assert "collectToPython" not in error[0]
    if damage == "no_log":
        assert "no Delta log (_delta_log)" in error[0]
    row = list(decisions(spark, candidates, f"damaged_{damage}_gate").values())[0]
    assert row["decision"] == rules.ERROR


def damaged_copy(warehouse: str, table: str, damage: str) -> str:
    """Copy a table under a new name and damage the latest commit file of the copy's log.

    ``empty`` empties it. ``cut`` keeps only its first line, as a copy cut at a line break
    would, and removes Hadoop's checksum files, which would otherwise reject the change. The
    copy's checkpoints are removed, because a read does not replay the commit file of a
    checkpointed version.
    """
    copy = f"{table}_{damage}_copy"
    shutil.copytree(Path(warehouse) / table, Path(warehouse) / copy)
    log = Path(warehouse) / copy / "_delta_log"
    for checkpoint in [*log.glob("*.checkpoint*"), *log.glob("_last_checkpoint")]:
        checkpoint.unlink()
    latest = max(log.glob("[0-9]*.json"))
    assert latest.name != "00000000000000000000.json", "the table needs two commits"
    lines = latest.read_text(encoding="utf-8").splitlines(keepends=True)
    latest.write_text("" if damage == "empty" else lines[0], encoding="utf-8")
    for checksum in log.glob(".*.crc"):
        checksum.unlink()
    return copy


@pytest.mark.parametrize(
    ("table_key", "table", "description", "damage", "expected"),
    [
        ("probes_table", "serving_probes", "serving probes", "empty", "is empty"),
        ("probes_table", "serving_probes", "serving probes", "cut", "a commit file is truncated"),
        ("model_metrics_table", "model_metrics", "model metrics", "cut", "a commit file is truncated"),
        ("behavioral_table", "behavioral_results", "behavioral results", "empty", "is empty"),
        ("runs_table", "runs", "data-validation runs", "empty", "is empty"),
        ("decisions_table", "gate_decisions", "gate decisions", "cut", "a commit file is truncated"),
    ],
)
def test_damaged_log_exits_3(
    spark, gate_config, candidates, tracking_uri, table_key, table, description, damage, expected
):
    config = gate_named(gate_config, f"log_{table}_{damage}_gate")
    if table == "gate_decisions":
        gate(spark, gate_named(gate_config, "log_seed_gate"), candidates, "good-030", tracking_uri,
             register=False)
        gate(spark, gate_named(gate_config, "log_seed_gate"), candidates, "good-028", tracking_uri,
             register=False)
    copy = damaged_copy(candidates, table, damage)
    config = replace(config, tables=replace(config.tables, **{table_key: copy}))

    with pytest.raises(ComputationError) as caught:
        gate(spark, config, candidates, "good-030", tracking_uri, register=False)

    message = str(caught.value)
    assert message.startswith(f"cannot read the {description} table {candidates}/{copy}: the Delta log")
    assert expected in message
    assert "restore" in message
    assert "\n" not in message


def test_console_gate_prints_no_java_traces(candidates, tracking_uri, tmp_path):
    # A fresh process, because the JVM's logging is set when build_session starts it. The
    # metrics are the first input the gate reads; without data files its Spark task fails.
    copy = "model_metrics_no_data"
    shutil.copytree(Path(candidates) / "model_metrics", Path(candidates) / copy)
    for data_file in (Path(candidates) / copy).rglob("*.parquet"):
        data_file.unlink()
    config_path = Path(gate_file(tmp_path, "trace_gate"))
    config_path.write_text(
        config_path.read_text(encoding="utf-8").replace(
            "tables:\n", f"tables:\n  model_metrics_table: {copy}\n"
        ),
        encoding="utf-8",
    )
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("STREAMREC_LOG4J2_CONF", "PYSPARK_GATEWAY_PORT", "PYSPARK_SUBMIT_ARGS")}
    environment["SPARK_LOCAL_IP"] = "127.0.0.1"

    completed = subprocess.run(
        [sys.executable, "-m", "streamrec_spark.cli", "gate", "--model-id", "good-030",
         "--no-register", "--warehouse", candidates, "--config", str(config_path),
         "--tracking-uri", tracking_uri, "--master", "local[1]"],
        capture_output=True, text=True, timeout=300, check=False, env=environment, cwd=tmp_path,
    )

    lines = completed.stderr.splitlines()
    assert completed.returncode == EXIT_INFRASTRUCTURE
    assert [line for line in lines if line.lstrip().startswith("at ")] == []
    assert any("ERROR Executor: Exception in task" in line for line in lines)
    assert any(
        line.startswith(f"streamrec-spark: cannot read the model metrics table {candidates}/{copy}: ")
        for line in lines
    )
    # Spark's own lines (one per event) and the command's INFO lines; 69 with stack traces.
    assert len(lines) < 25


# --- data validation and MLflow availability -------------------------------------------------


def test_failed_click_stream_validation_blocks(spark, gate_config, candidates, tracking_uri):
    config = gate_named(gate_config, "data_gate")
    failed_day, unvalidated_day = date(2024, 6, 1), date(2024, 6, 2)
    write_validation_run(
        spark, candidates, status="failed", day=failed_day, run_id="cs-0601", blocking_failures=3
    )

    failed = gate(spark, config, candidates, "good-030", tracking_uri, register=False, data_date=failed_day)
    missing = gate(
        spark, config, candidates, "good-030", tracking_uri, register=False, data_date=unvalidated_day
    )
    # Without a data date the gate judges each dataset's latest partition: the failed one.
    latest = gate(spark, config, candidates, "good-030", tracking_uri, register=False, data_date=None)

    assert failed.decision == rules.BLOCK
    assert failed.exit_code == EXIT_FAILED
    assert failed.reason_codes == (rules.DATA_VALIDATION_FAILED,)
    assert [c.rule for c in failed.failed] == ["data_validation:click_stream"]
    assert failed.record["data_validation"]["click_stream.run_id"] == "cs-0601"
    stored = comparisons(spark, candidates, failed.decision_id)["data_validation:click_stream"]
    assert stored["passed"] is False
    assert stored["reason_code"] == rules.DATA_VALIDATION_FAILED
    assert stored["detail"] == (
        "validation run cs-0601 of click_stream for 2024-06-01 failed with 3 blocking check failures"
    )
    row = decisions(spark, candidates, "data_gate")[failed.decision_id]
    assert list(row["reason_codes"]) == [rules.DATA_VALIDATION_FAILED]
    assert missing.reason_codes == (rules.MISSING_DATA_VALIDATION,)
    assert "no validation run of click_stream for 2024-06-02" in missing.failed[0].detail
    assert latest.reason_codes == (rules.DATA_VALIDATION_FAILED,)


def test_closed_tracking_port_exits_3(spark, candidates, tmp_path, capsys, monkeypatch):
    # The gate file's bounded HTTP settings apply, not an environment value.
    for name in (
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    ):
        monkeypatch.delenv(name, raising=False)
    # A loopback port that nothing listens on: bind it, then release it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    started = time.monotonic()
    code = cli_main([
        "gate", "--model-id", "low-010", "--no-register", "--warehouse", candidates,
        "--config", gate_file(tmp_path, "offline_gate"), "--tracking-uri",
        f"http://127.0.0.1:{port}", "--data-date", DATA_DATE.isoformat(),
    ])
    elapsed = time.monotonic() - started

    captured = capsys.readouterr()
    assert code == EXIT_INFRASTRUCTURE
    assert elapsed < 30.0
    error = captured.err.strip().splitlines()
    assert len(error) == 1
    assert "decided BLOCK for model low-010 and recorded it in Delta" in error[0]
    assert f"MLflow store 'http://127.0.0.1:{port}' failed" in error[0]
    assert "ConnectionRefusedError" in error[0]
    assert "exit 3: gate run" in captured.out
    rows = list(decisions(spark, candidates, "offline_gate").values())
    assert len(rows) == 1
    assert rows[0]["decision"] == rules.BLOCK
    assert rows[0]["exit_code"] == EXIT_INFRASTRUCTURE
    assert rows[0]["mlflow_run_id"] is None
    assert f"127.0.0.1:{port}" in rows[0]["tracking_error"]
    assert len(comparisons(spark, candidates, rows[0]["decision_id"])) == TEAM_GATE_COMPARISONS
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


# --- entry points ----------------------------------------------------------------------------


def test_cli_prints_table_and_exits_1(spark, candidates, tracking_uri, tmp_path, capsys):
    code = cli_main([
        "gate", "--model-id", "low-010", "--no-register", "--warehouse", candidates,
        "--config", gate_file(tmp_path, "cli_gate"), "--tracking-uri", tracking_uri,
        "--data-date", DATA_DATE.isoformat(),
    ])
    output = capsys.readouterr().out
    assert code == EXIT_FAILED
    assert "recall_at_20" in output
    assert "BELOW_FLOOR" in output
    assert f"BLOCK: 1 of {TEAM_GATE_COMPARISONS} comparisons failed (BELOW_FLOOR)" in output
    assert len(decisions(spark, candidates, "cli_gate")) == 1


def test_cli_json_output(spark, candidates, tracking_uri, tmp_path, capsys):
    code = cli_main([
        "gate", "--model-id", "low-010", "--no-register", "--warehouse", candidates, "--format",
        "json", "--config", gate_file(tmp_path, "json_gate"), "--tracking-uri", tracking_uri,
        "--data-date", DATA_DATE.isoformat(),
    ])
    document = json.loads(capsys.readouterr().out)
    assert code == EXIT_FAILED
    assert document["exit_code"] == EXIT_FAILED
    assert document["decision"] == rules.BLOCK
    assert document["reasons"] == [rules.BELOW_FLOOR]
    assert document["gate"] == "json_gate"
    assert len(document["comparisons"]) == TEAM_GATE_COMPARISONS
    assert document["data_validation"]["datasets"] == 1


def test_cli_requires_model_dir_to_register():
    code = cli_main(["gate", "--model-id", "model-x", "--warehouse", "/nonexistent"])
    assert code == EXIT_INVALID


def test_job_rejects_invalid_config_before_spark(tmp_path):
    bad = tmp_path / "gate.yaml"
    bad.write_text("name: g\nregistered_model_name: m\nmetrics: {}\n", encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, str(REPO / "jobs" / "apply_gate.py"), "--model-id", "m", "--no-register",
         "--config", str(bad), "--warehouse", str(tmp_path / "w")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert completed.returncode == EXIT_INVALID
    assert "no metric rules" in completed.stderr
    assert f"{bad}:3" in completed.stderr
