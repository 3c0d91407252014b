"""Every stage, run in this process on a small generated click stream, up to the gate.

The runner's own stop and continue rules decide what runs. Each stage runs its real job file
with the arguments the runner builds, in this process and on the shared SparkSession, so no
spark-submit starts (the spark-submit options are not used). The model is the popularity
baseline, whose scores ignore a user's history: the directional behavioral tests fail, the
run goes on to the gate, and the gate blocks the model and records why. No model has passed
the gate yet, so ``evaluate_champion`` has nothing to evaluate.
"""

from __future__ import annotations

import runpy
import sys
import uuid
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from streamrec_spark.behavioral.scenario import ScenarioConfig, generate_scenario, write_scenario
from streamrec_spark.delta_tables import table_path
from streamrec_spark.pipeline.config import load_pipeline_config
from streamrec_spark.pipeline.runner import feed_tiers, run_pipeline
from streamrec_spark.pipeline.sample import as_of, write_registry
from streamrec_spark.pipeline.stages import STAGES, PipelineRequest
from streamrec_spark.validation.store import ResultStore, RunRecord

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = replace(ScenarioConfig(), users=60, days=12, holiday_start_day=None, holiday_end_day=None)
PARTITION_DATE = SCENARIO.start_date + timedelta(days=SCENARIO.days - 1)
# About 150 events of 35 users on each scenario day, and as many users in a one-day window.
# At that size the per-platform volumes and the distributions move from day to day by more
# than the production limits allow, so those checks only warn here.
CLICK_STREAM_OVERRIDES = """\
expectation_overrides:
  volume_row_count: {min: 20, max: 10000}
  volume_distinct_users: {min: 5, max: 1000}
  volume_by_platform: {min_reference_rows: 20, severity: warn}
  drift_event_type: {severity: warn}
  drift_duration_seconds: {severity: warn}
  drift_platform: {severity: warn}
  drift_duration_null_rate: {severity: warn}
"""
FEATURES_OVERRIDES = """\
expectation_overrides:
  volume_row_count: {min: 5, max: 10000}
"""


def run_job_in_process(command, cwd) -> int:
    """Run the job file of a stage command in this process and return its exit code."""
    job = next(word for word in command if word.endswith(".py"))
    arguments = list(command[command.index(job) + 1:])
    saved = sys.argv
    sys.argv = [job, *arguments]
    try:
        runpy.run_path(job, run_name="__main__")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    finally:
        sys.argv = saved
    return 0


def record_passed_run(store: ResultStore, day: date) -> None:
    finished = as_of(day)
    store.append_run(RunRecord(
        run_id=uuid.uuid4().hex, dataset="click_stream", partition_date=day,
        contract_version="1.0.0", status="passed", exit_code=0, as_of=finished,
        started_at=finished, finished_at=finished, input_path=None, code_version=None,
        spark_app_id=None,
    ))


def write_pipeline(folder: Path, events: str, items: str, registry: Path) -> Path:
    config = folder / "daily.yaml"
    config.write_text(
        f"warehouse: {folder / 'warehouse'}\n"
        "database: full_run_test\n"
        f"registry: {registry}\n"
        "feeds:\n"
        f"  click_stream: {{input: {events}}}\n"
        # The snapshot feeds are not delivered: their tier is standard, so the run goes on.
        f"  item_metadata: {{input: {folder / 'missing' / 'item_metadata'}}}\n"
        f"  user_profiles: {{input: {folder / 'missing' / 'user_profiles'}}}\n"
        f"features: {{output: {folder / 'features'}, window_days: 1}}\n"
        f"model: {{type: popularity, output: '{folder}/models/{{date}}', "
        f"training_days: 3, items: {items}}}\n"
        "holdout_days: 2\n"
        "gate: {config: conf/gates/streamrec_v2_gate.yaml}\n"
    )
    return config


def test_every_stage_reaches_gate(spark, tmp_path, monkeypatch):
    monkeypatch.delenv("STREAMREC_ALERT_WEBHOOK_URL", raising=False)
    events, items = write_scenario(generate_scenario(spark, SCENARIO), tmp_path / "scenario")
    registry = write_registry(tmp_path / "conf", CLICK_STREAM_OVERRIDES, FEATURES_OVERRIDES)
    config = load_pipeline_config(write_pipeline(tmp_path, events, items, registry), ROOT)
    # The three training days passed the earlier daily runs' validation. The holdout is the day
    # before the partition and the partition.
    store = ResultStore(spark, config.warehouse, config.database)
    for offset in (4, 3, 2):
        record_passed_run(store, PARTITION_DATE - timedelta(days=offset))

    request = PipelineRequest(PARTITION_DATE, as_of=as_of(PARTITION_DATE).isoformat())
    run = run_pipeline(config, request, feed_tiers(config.registry), launch=run_job_in_process)

    codes = {stage.stage: stage.exit_code for stage in run.stages}
    assert list(codes) == [stage.name for stage in STAGES]
    assert codes["validate_click_stream"] == 0
    assert codes["validate_item_metadata"] == 3
    assert codes["validate_user_profiles"] == 3
    for stage in ("compute_features", "train_model", "evaluate_model", "evaluate_champion", "probe_model"):
        assert codes[stage] == 0, stage
    assert codes["run_behavioral"] == 1
    assert codes["apply_gate"] == 1
    # The gate's exit 1 is the run's: the model is blocked and not registered.
    assert run.exit_code == 1
    assert run.stopped_at == "apply_gate"

    decisions = spark.read.format("delta").load(table_path(config.warehouse, "gate_decisions")).collect()
    assert len(decisions) == 1
    assert decisions[0]["model_id"] == f"popularity-{PARTITION_DATE}"
    assert decisions[0]["decision"] == "BLOCK"
    assert decisions[0]["registered"] is False
    assert "BEHAVIORAL_TEST_FAILED" in decisions[0]["reason_codes"]
    assert decisions[0]["no_baseline"] is True
    # Without a champion the stage writes no rows; only the candidate was evaluated.
    metrics = spark.read.format("delta").load(table_path(config.warehouse, "model_metrics"))
    assert {row["model_id"] for row in metrics.select("model_id").distinct().collect()} == {
        f"popularity-{PARTITION_DATE}"
    }
