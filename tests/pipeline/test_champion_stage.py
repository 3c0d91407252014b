"""The evaluate_champion stage over two consecutive dates, with the real job files in process.

The first date's model passes the gate and is registered in the local MLflow store under the
warehouse. The second date's stage downloads that registered version and evaluates it on the
second date's holdout window, and the gate then compares the two models on that window. The
stages run through the runner's ``run_pipeline`` on the shared SparkSession, as in
``test_full_run.py``. The first candidate's metrics, and both dates' behavioral results and serving probes, are
written with the product's writers instead of being computed. The popularity model fails the
directional behavioral tests, the first date must pass so that a champion exists, and the
probe would only add time.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from streamrec_spark.behavioral.store import write_behavioral_results
from streamrec_spark.behavioral.verdicts import TestResult
from streamrec_spark.behavioral.scenario import generate_scenario, write_scenario
from streamrec_spark.delta_tables import table_path
from streamrec_spark.evaluation.results import MetricRow
from streamrec_spark.evaluation.store import write_model_metrics
from streamrec_spark.gate.config import load_gate_config
from streamrec_spark.gate.tracking import default_tracking_uri
from streamrec_spark.pipeline.config import load_pipeline_config
from streamrec_spark.pipeline.runner import feed_tiers, run_pipeline
from streamrec_spark.pipeline.sample import as_of, write_registry
from streamrec_spark.pipeline.stages import PipelineRequest, holdout_start, stage_named
from streamrec_spark.serving.probe import LatencySummary, ProbeResult
from streamrec_spark.serving.store import write_probe_result
from streamrec_spark.validation.store import ResultStore
from test_full_run import (
    CLICK_STREAM_OVERRIDES,
    FEATURES_OVERRIDES,
    ROOT,
    SCENARIO,
    record_passed_run,
    run_job_in_process,
    write_pipeline,
)

LAST_DAY = SCENARIO.start_date + timedelta(days=SCENARIO.days - 1)
FIRST, SECOND, THIRD = (LAST_DAY - timedelta(days=2), LAST_DAY - timedelta(days=1), LAST_DAY)
# Metric values of the first candidate, above every floor of the team gate.
APPROVED_RECALL = 0.30
SLICES = ("all", "new_users", "platform=ios", "platform=android", "platform=web", "top_active")
METRICS = (("recall", 20), ("ndcg", 20), ("hit_rate", 10))


def good_metric_rows() -> list[MetricRow]:
    return [
        MetricRow(slice=name, metric=metric, k=k, user_count=100, value=APPROVED_RECALL,
                  status="ok", reason=None)
        for name in SLICES for metric, k in METRICS
    ]


def passing_behavioral(gate) -> list[TestResult]:
    return [
        TestResult(name=name, test_type="MFT", cases=100, failures=0, failure_rate=0.0,
                   observed=0.9, threshold=0.5, threshold_kind="min_value", passed=True,
                   status="passed", reason=None)
        for name in gate.behavioral.tests
    ]


def passing_probe(model_id: str, run_id: str, model_path: str) -> ProbeResult:
    return ProbeResult(
        model_id=model_id, run_id=run_id, status="OK", reason=None, message=None,
        model_path=model_path, size_bytes=100_000,
        latency=LatencySummary(requests=100, p50_ms=1.0, p99_ms=2.0, max_ms=3.0, mean_ms=1.2),
        k=20, sample_seed=7, warmup_requests=10, distinct_users=50, empty_responses=0,
        probed_at=datetime.utcnow(),
    )


def stages(*names):
    return tuple(stage_named(name) for name in names)


def metric_rows_of(spark, config, model_id, run_id):
    path = table_path(config.warehouse, "model_metrics")
    return (
        spark.read.format("delta").load(path)
        .where((F.col("model_id") == model_id) & (F.col("run_id") == run_id) & F.col("k").isNotNull())
        .collect()
    )


def holdout_of(config, day):
    start = holdout_start(config, day)
    return start, start + timedelta(days=config.holdout_days)


def test_second_date_compares_on_its_holdout(spark, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("STREAMREC_ALERT_WEBHOOK_URL", raising=False)
    events, items = write_scenario(generate_scenario(spark, SCENARIO), tmp_path / "scenario")
    registry = write_registry(tmp_path / "conf", CLICK_STREAM_OVERRIDES, FEATURES_OVERRIDES)
    config = load_pipeline_config(write_pipeline(tmp_path, events, items, registry), ROOT)
    gate = load_gate_config(config.gate_config)
    tiers = feed_tiers(config.registry)
    store = ResultStore(spark, config.warehouse, config.database)
    # The training days of both dates, and the two dates the gate requires validated.
    for day in (FIRST - timedelta(days=4), FIRST - timedelta(days=3), FIRST - timedelta(days=2),
                SECOND - timedelta(days=2), FIRST, SECOND):
        record_passed_run(store, day)

    def run(day, *names):
        request = PipelineRequest(day, as_of=as_of(day).isoformat())
        return run_pipeline(config, request, tiers, stages(*names), launch=run_job_in_process)

    def behavioral_and_probe(day):
        model_id, run_id = f"popularity-{day}", f"daily-{day}"
        write_behavioral_results(
            spark, passing_behavioral(gate), model_id=model_id, run_id=run_id,
            suite=gate.behavioral.suite, warehouse=config.warehouse, database=config.database,
            table="behavioral_results",
        )
        probe = passing_probe(model_id, run_id, config.model_folder(day))
        write_probe_result(spark, probe, warehouse=config.warehouse, database=config.database)

    # First date: no champion yet, so the stage has nothing to evaluate and exits 0.
    first = run(FIRST, "train_model", "evaluate_champion")
    assert [stage.exit_code for stage in first.stages] == [0, 0]
    assert "has no champion, so there is nothing to compare with" in capsys.readouterr().out
    first_id, first_window = f"popularity-{FIRST}", holdout_of(config, FIRST)
    write_model_metrics(
        spark, good_metric_rows(), model_id=first_id, run_id=f"daily-{FIRST}",
        warehouse=config.warehouse, database=config.database, table="model_metrics",
        holdout_start=first_window[0], holdout_end=first_window[1],
    )
    behavioral_and_probe(FIRST)
    assert run(FIRST, "apply_gate").exit_code == 0

    # Second date: the champion is evaluated on the second date's window, under its own id.
    second = run(SECOND, "train_model", "evaluate_model", "evaluate_champion")
    assert [stage.exit_code for stage in second.stages] == [0, 0, 0]
    champion_run = f"daily-{SECOND}-champion"
    rows = metric_rows_of(spark, config, first_id, champion_run)
    second_window = holdout_of(config, SECOND)
    assert rows
    assert {(row["holdout_start"], row["holdout_end"]) for row in rows} == {second_window}
    recall = next(row["value"] for row in rows if row["metric"] == "recall" and row["k"] == 20
                  and row["slice"] == "all")
    assert recall != pytest.approx(APPROVED_RECALL)
    assert f"champion {first_id} of gate {gate.name} (version 1 of" in capsys.readouterr().out

    # Re-running the stage for the same date replaces its rows.
    assert run(SECOND, "evaluate_champion").exit_code == 0
    assert len(metric_rows_of(spark, config, first_id, champion_run)) == len(rows)

    behavioral_and_probe(SECOND)
    capsys.readouterr()
    run(SECOND, "apply_gate")
    printed = capsys.readouterr().out
    assert f"champion metrics: run {champion_run}, holdout {second_window[0]} to {second_window[1]}" in printed
    assert "different test sets" not in printed

    decisions = spark.read.format("delta").load(table_path(config.warehouse, "gate_decisions"))
    decision = decisions.where(F.col("model_id") == f"popularity-{SECOND}").collect()[0]
    assert decision["champion_model_id"] == first_id
    comparisons = spark.read.format("delta").load(table_path(config.warehouse, "gate_comparisons"))
    compared = comparisons.where(
        (F.col("decision_id") == decision["decision_id"]) & (F.col("rule") == "recall_at_20")
    ).collect()[0]
    assert compared["champion_value"] == pytest.approx(recall)

    from mlflow import MlflowClient

    tracking = default_tracking_uri(config.warehouse)
    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    record = json.loads(Path(client.download_artifacts(
        decision["mlflow_run_id"], "decision.json", str(tmp_path))).read_text())
    assert record["inputs"]["champion_metrics_run_id"] == champion_run
    assert record["inputs"]["champion_holdout"] == [day.isoformat() for day in second_window]
    assert record["inputs"]["champion_holdout"] == record["inputs"]["holdout"]

    # The champion's approval run id would replace the rows it was approved on: exit 2.
    from streamrec_spark.cli import main as cli_main

    # The second candidate was blocked, so the first date's model is still the champion.
    approved_rows = metric_rows_of(spark, config, first_id, f"daily-{FIRST}")
    code = cli_main(["evaluate-champion", "--config", config.gate_config,
                     "--candidate-model-id", f"popularity-{THIRD}", "--run-id", f"daily-{FIRST}",
                     "--events", config.feed("click_stream").input,
                     "--holdout-start", holdout_start(config, THIRD).isoformat(),
                     "--warehouse", config.warehouse, "--database", config.database])
    assert code == 2
    assert f"--run-id daily-{FIRST} is the run champion {first_id} was approved on" in (
        capsys.readouterr().err)
    assert metric_rows_of(spark, config, first_id, f"daily-{FIRST}") == approved_rows

    # The champion's registered artifacts are gone: exit 3 naming the version, the run stops,
    # and no row is written for the third date.
    shutil.rmtree(Path(config.warehouse) / "mlflow" / "artifacts")
    capsys.readouterr()
    third = run(THIRD, "evaluate_champion", "run_behavioral")
    assert third.exit_code == 3
    assert third.stopped_at == "evaluate_champion"
    error = capsys.readouterr().err
    assert "of registered model 'streamrec_v2'" in error
    assert "restore that version and its artifacts in MLflow from a backup" in error
    champions = metric_rows_of(spark, config, decision["champion_model_id"], f"daily-{THIRD}-champion")
    newest = metric_rows_of(spark, config, f"popularity-{SECOND}", f"daily-{THIRD}-champion")
    assert champions == []
    assert newest == []
