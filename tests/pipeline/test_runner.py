"""The daily pipeline: its configuration, its stages, the runner and the cron wrapper's lock.

Most runner tests start real subprocesses through a small launcher script that the test
configuration names in place of ``scripts/spark-submit.sh``. The launcher records which job
it was asked to run and exits with the code the test chose, so the stop and continue rules are
tested without starting Spark. One test runs the real ``scripts/run_daily.sh`` twice at once
over a tiny click-stream partition with the real ``spark-submit``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from datetime import date, datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from streamrec_spark.errors import ConfigError, InvalidRequestError
from streamrec_spark.pipeline.config import load_pipeline_config
from streamrec_spark.pipeline.runner import (
    ACTION_ALERT,
    ACTION_ALERT_FAILED,
    ACTION_CONTINUE_AFTER_FEED_ERROR,
    ACTION_CONTINUE_TO_GATE,
    ACTION_STOP,
    feed_tiers,
    main,
    run_pipeline,
    select_stages,
    yesterday_utc,
)
from streamrec_spark.pipeline.runner import build_parser as build_runner_parser
from streamrec_spark.pipeline.stages import (
    FEED_ALERT_STAGES,
    STAGES,
    PipelineRequest,
    continues_after,
    stage_named,
)

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "conf" / "registry.yaml"
DAY = date(2024, 5, 1)
EXIT_LOCKED = 75
STAGE_NAMES = [
    "validate_click_stream",
    "validate_item_metadata",
    "validate_user_profiles",
    "compute_features",
    "train_model",
    "evaluate_model",
    "evaluate_champion",
    "run_behavioral",
    "probe_model",
    "apply_gate",
]
# What the launcher writes for each stage: the job file's stem, and the dataset for validations.
LAUNCHER_NAMES = {
    "validate_click_stream": "validate_partition:click_stream",
    "validate_item_metadata": "validate_partition:item_metadata",
    "validate_user_profiles": "validate_partition:user_profiles",
    "compute_features": "compute_features",
    "train_model": "train_model",
    "evaluate_model": "evaluate_model",
    "evaluate_champion": "evaluate_champion",
    "run_behavioral": "run_behavioral",
    "probe_model": "probe_model",
    "apply_gate": "apply_gate",
    "alert_click_stream": "send_feed_alert:click_stream",
    "alert_item_metadata": "send_feed_alert:item_metadata",
}
TIERS = {"click_stream": "critical", "item_metadata": "standard", "user_profiles": "standard"}

LAUNCHER = """\
#!{python}
# Stands in for spark-submit: records the job and its dataset, then exits with the chosen code.
import json, os, pathlib, sys, time
args = sys.argv[1:]
job = next(arg for arg in args if arg.endswith(".py"))
name = pathlib.Path(job).stem
if "--dataset" in args:
    name += ":" + args[args.index("--dataset") + 1]
with open(os.environ["LAUNCHER_LOG"], "a") as log:
    log.write(name + "\\n")
time.sleep(float(os.environ.get("LAUNCHER_SLEEP", "0")))
sys.exit(json.loads(os.environ.get("LAUNCHER_EXIT_CODES", "{{}}")).get(name, 0))
"""


def write_config(folder: Path, **overrides: str) -> Path:
    """Write a pipeline YAML under ``folder``; ``overrides`` replace top-level lines by key."""
    lines = {
        "warehouse": f"warehouse: {folder / 'warehouse'}",
        "registry": f"registry: {REGISTRY}",
        "feeds": textwrap.dedent(f"""\
            feeds:
              click_stream: {{input: {folder / 'click_stream'}}}
              item_metadata: {{input: {folder / 'item_metadata'}}}
              user_profiles: {{input: {folder / 'user_profiles'}}}"""),
        "features": f"features: {{output: {folder / 'features'}, window_days: 1}}",
        "model": f"model: {{type: popularity, output: '{folder}/models/{{model_type}}/{{date}}', "
                 "training_days: 30}",
        "holdout_days": "holdout_days: 7",
        "gate": "gate: {config: conf/gates/streamrec_v2_gate.yaml}",
        "spark_submit": "spark_submit: {options: [--master, 'local[1]']}",
    }
    lines.update(overrides)
    path = folder / "daily.yaml"
    path.write_text("\n".join(lines.values()) + "\n")
    return path


@pytest.fixture
def launcher(tmp_path, monkeypatch):
    """A stand-in for spark-submit, and the file it records each started job in."""
    script = tmp_path / "launcher.py"
    script.write_text(LAUNCHER.format(python=sys.executable))
    script.chmod(0o755)
    log = tmp_path / "launched.txt"
    monkeypatch.setenv("LAUNCHER_LOG", str(log))
    launcher_line = f"spark_submit: {{script: {script}, options: [--master, 'local[1]']}}"
    config = load_pipeline_config(write_config(tmp_path, spark_submit=launcher_line), ROOT)
    return config, log


def launched(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def set_exit_codes(monkeypatch, codes: dict[str, int]) -> None:
    monkeypatch.setenv("LAUNCHER_EXIT_CODES", json.dumps({LAUNCHER_NAMES[k]: v for k, v in codes.items()}))


# --- stages and their commands ------------------------------------------------------------


def test_stages_in_pipeline_order():
    assert [stage.name for stage in STAGES] == STAGE_NAMES


def test_stage_jobs_exist():
    for stage in (*STAGES, *FEED_ALERT_STAGES.values()):
        assert (ROOT / stage.job).is_file(), stage.job


def test_stage_commands_use_holdout_dates(tmp_path):
    config = load_pipeline_config(write_config(tmp_path), ROOT)
    request = PipelineRequest(DAY)

    train = stage_named("train_model").arguments(config, request)
    evaluate = stage_named("evaluate_model").arguments(config, request)
    champion = stage_named("evaluate_champion").arguments(config, request)
    gate = stage_named("apply_gate").command(config, request)

    # 7 holdout days end with 2024-05-01, so they start on 2024-04-25, where training ends.
    assert train[train.index("--train-end") + 1] == "2024-04-25"
    assert train[train.index("--training-days") + 1] == "30"
    assert evaluate[evaluate.index("--holdout-start") + 1] == "2024-04-25"
    assert evaluate[evaluate.index("--holdout-days") + 1] == "7"
    # The champion is evaluated on the candidate's window, under a run id of its own.
    assert champion[champion.index("--holdout-start") + 1] == "2024-04-25"
    assert champion[champion.index("--holdout-days") + 1] == "7"
    assert champion[champion.index("--candidate-model-id") + 1] == "popularity-2024-05-01"
    assert champion[champion.index("--run-id") + 1] == "daily-2024-05-01-champion"
    assert evaluate[evaluate.index("--run-id") + 1] == "daily-2024-05-01"
    assert champion[champion.index("--config") + 1] == gate[gate.index("--config") + 1]
    assert champion[champion.index("--database") + 1] == gate[gate.index("--database") + 1]
    assert train[train.index("--output") + 1] == f"{tmp_path}/models/popularity/2024-05-01"
    # Training reads the validation runs, so it trains on accepted click-stream days only.
    assert train[train.index("--warehouse") + 1] == f"{tmp_path}/warehouse"
    assert gate[0] == str(ROOT / "scripts" / "spark-submit.sh")
    assert gate[1:3] == ("--master", "local[1]")
    assert gate[3] == str(ROOT / "jobs" / "apply_gate.py")
    assert gate[gate.index("--model-id") + 1] == "popularity-2024-05-01"
    assert gate[gate.index("--model-dir") + 1] == f"{tmp_path}/models/popularity/2024-05-01"


def job_subcommand(job: str) -> str:
    """Return the ``streamrec-spark`` subcommand a job file runs, read from its source."""
    match = re.search(r'main\(\["([a-z-]+)"', (ROOT / job).read_text())
    assert match, f"{job} does not call main([\"<subcommand>\", ...])"
    return match.group(1)


@pytest.mark.parametrize("items", [None, "catalog/items"])
def test_stage_commands_parse(tmp_path, items):
    from streamrec_spark.cli import build_parser

    model = "model: {type: recency_affinity, output: 'models/{date}', training_days: 60"
    config = load_pipeline_config(
        write_config(tmp_path, model=model + (f", items: {items}}}" if items else "}")), ROOT
    )
    request = PipelineRequest(DAY, as_of="2024-05-02T00:30:00Z")
    parser = build_parser()

    for stage in STAGES:
        command = [job_subcommand(stage.job), *stage.arguments(config, request)]
        try:
            parser.parse_args(command)
        except SystemExit as exc:
            pytest.fail(f"{stage.name}: {shlex.join(command)} does not parse (exit {exc.code})")


def test_feed_alert_commands_parse(tmp_path):
    config = load_pipeline_config(write_config(tmp_path), ROOT)
    parser = build_runner_parser()

    for dataset, alert in FEED_ALERT_STAGES.items():
        arguments = [job_subcommand(alert.job), *alert.arguments(config, PipelineRequest(DAY))]
        parsed = parser.parse_args(arguments)
        assert parsed.dataset == dataset
        assert parsed.partition_date == DAY
        assert parsed.config == str(tmp_path / "daily.yaml")


def test_as_of_reaches_validation_and_features_only(tmp_path):
    config = load_pipeline_config(write_config(tmp_path), ROOT)
    request = PipelineRequest(DAY, as_of="2024-05-02T00:30:00Z")

    with_as_of = [stage.name for stage in STAGES if "--as-of" in stage.arguments(config, request)]

    assert with_as_of == STAGE_NAMES[:4]


@pytest.mark.parametrize(
    ("stage", "exit_code", "tier", "continues"),
    [
        ("validate_click_stream", 0, "critical", True),
        ("validate_click_stream", 1, "critical", False),
        ("validate_click_stream", 2, "critical", False),
        ("validate_click_stream", 3, "critical", False),
        ("validate_item_metadata", 0, "standard", True),
        ("validate_item_metadata", 1, "standard", False),
        ("validate_item_metadata", 2, "standard", False),
        ("validate_item_metadata", 3, "standard", True),
        ("validate_item_metadata", 3, None, False),
        ("train_model", 3, None, False),
        ("evaluate_model", 1, None, False),
        ("evaluate_champion", 1, None, False),
        ("evaluate_champion", 3, None, False),
        ("run_behavioral", 1, None, True),
        ("run_behavioral", 3, None, False),
        ("apply_gate", 1, None, False),
        ("apply_gate", 0, None, True),
    ],
)
def test_continues_after_exit_code(stage, exit_code, tier, continues):
    assert continues_after(stage_named(stage), exit_code, tier) is continues


def test_feed_tiers_from_registry():
    assert feed_tiers(str(REGISTRY)) == TIERS


def test_select_stages_range():
    selected = select_stages(STAGES, "train_model", "probe_model")

    assert [stage.name for stage in selected] == STAGE_NAMES[4:9]


@pytest.mark.parametrize(("first", "last"), [("train", None), (None, "gate"), ("apply_gate", "train_model")])
def test_select_stages_rejects_bad_range(first, last):
    with pytest.raises(InvalidRequestError, match="the stages are|the order is"):
        select_stages(STAGES, first, last)


def test_yesterday_utc_crosses_midnight():
    just_after_midnight = datetime(2024, 5, 2, 0, 30, tzinfo=timezone.utc)

    assert yesterday_utc(just_after_midnight) == date(2024, 5, 1)


# --- configuration errors -----------------------------------------------------------------


def test_config_reports_every_problem_with_line(tmp_path):
    path = write_config(
        tmp_path,
        feeds=f"feeds:\n  click_stream: {{input: {tmp_path}}}\n  item_metadata: {{input: {tmp_path}}}",
        model="model: {type: bert, output: 'models/{name}', training_days: 0}",
        holdout_days="holdout_days: 7\nschedule: daily",
    )

    with pytest.raises(ConfigError) as raised:
        load_pipeline_config(path, ROOT)

    problems = raised.value.problems
    assert any("missing key 'feeds.user_profiles'" in p for p in problems)
    assert any("'model.type' must be one of popularity, recency_affinity" in p for p in problems)
    assert any("'model.output' must contain {date}" in p for p in problems)
    assert any("'model.training_days' must be at least 1" in p for p in problems)
    assert any("unknown key 'schedule'" in p for p in problems)
    assert all(p.startswith(f"{path}:") for p in problems)


def test_config_resolves_relative_paths(tmp_path):
    path = write_config(tmp_path, warehouse="warehouse: relative/warehouse")

    config = load_pipeline_config(path, ROOT)

    assert config.warehouse == str(ROOT / "relative" / "warehouse")
    assert config.gate_config == str(ROOT / "conf" / "gates" / "streamrec_v2_gate.yaml")
    assert config.lock_path() == str(ROOT / "relative" / "warehouse" / "daily-pipeline.lock")


def test_lock_path_needs_local_file_for_uri_warehouse(tmp_path):
    config = load_pipeline_config(write_config(tmp_path, warehouse="warehouse: s3a://bucket/streamrec"), ROOT)

    with pytest.raises(ConfigError, match="set 'lock_file'"):
        config.lock_path()


def test_shipped_config_loads():
    config = load_pipeline_config(ROOT / "conf" / "pipeline" / "daily.yaml", ROOT)

    assert [feed.dataset for feed in config.feeds] == ["click_stream", "item_metadata", "user_profiles"]
    assert Path(config.gate_config).is_file()
    assert Path(config.registry).is_file()


# --- the runner, with real subprocesses -------------------------------------------------


def test_runner_runs_every_stage_in_order(launcher):
    config, log = launcher

    run = run_pipeline(config, PipelineRequest(DAY), TIERS)

    assert run.exit_code == 0
    assert run.stopped_at is None
    assert launched(log) == [LAUNCHER_NAMES[name] for name in STAGE_NAMES]
    assert [stage.exit_code for stage in run.stages] == [0] * len(STAGE_NAMES)


def test_failed_critical_feed_stops_before_training(launcher, monkeypatch):
    config, log = launcher
    set_exit_codes(monkeypatch, {"validate_click_stream": 1})

    run = run_pipeline(config, PipelineRequest(DAY), TIERS)

    assert run.exit_code == 1
    assert run.stopped_at == "validate_click_stream"
    assert launched(log) == ["validate_partition:click_stream", "send_feed_alert:click_stream"]
    assert not run.ran("train_model")
    assert run.stages[-1].action == ACTION_ALERT


def test_invalid_feed_invocation_sends_no_alert(launcher, monkeypatch):
    config, log = launcher
    set_exit_codes(monkeypatch, {"validate_click_stream": 2})

    run = run_pipeline(config, PipelineRequest(DAY), TIERS)

    # Exit 2 means the job was invoked with invalid arguments, not that the feed failed its checks.
    assert run.exit_code == 2
    assert run.stopped_at == "validate_click_stream"
    assert launched(log) == ["validate_partition:click_stream"]


def test_failed_alert_keeps_feed_exit_code(launcher, monkeypatch):
    config, log = launcher
    set_exit_codes(monkeypatch, {"validate_click_stream": 1, "alert_click_stream": 3})

    run = run_pipeline(config, PipelineRequest(DAY), TIERS)

    assert run.exit_code == 1
    assert run.stages[-1].exit_code == 3
    assert run.stages[-1].action == ACTION_ALERT_FAILED


def test_unreadable_standard_feed_is_logged_and_skipped(launcher, monkeypatch, caplog):
    config, log = launcher
    set_exit_codes(monkeypatch, {"validate_user_profiles": 3})

    with caplog.at_level(logging.WARNING, logger="streamrec_spark.pipeline.runner"):
        run = run_pipeline(config, PipelineRequest(DAY), TIERS)

    assert run.exit_code == 0
    assert launched(log)[-1] == "apply_gate"
    assert not any(name.startswith("send_feed_alert") for name in launched(log))
    assert run.stages[2].action == ACTION_CONTINUE_AFTER_FEED_ERROR
    assert "user_profiles is standard tier, so the pipeline continues" in caplog.text


def test_blocking_check_of_standard_feed_stops(launcher, monkeypatch):
    config, log = launcher
    set_exit_codes(monkeypatch, {"validate_item_metadata": 1})

    run = run_pipeline(config, PipelineRequest(DAY), TIERS)

    assert run.exit_code == 1
    assert run.stopped_at == "validate_item_metadata"
    assert "compute_features" not in launched(log)
    assert launched(log)[-1] == "send_feed_alert:item_metadata"


def test_failed_behavioral_test_goes_to_gate(launcher, monkeypatch):
    config, log = launcher
    set_exit_codes(monkeypatch, {"run_behavioral": 1, "apply_gate": 1})

    run = run_pipeline(config, PipelineRequest(DAY), TIERS)

    assert run.exit_code == 1
    assert run.stopped_at == "apply_gate"
    assert launched(log)[-3:] == ["run_behavioral", "probe_model", "apply_gate"]
    assert run.stages[STAGE_NAMES.index("run_behavioral")].action == ACTION_CONTINUE_TO_GATE


def test_failed_behavioral_test_without_gate_exits_1(launcher, monkeypatch):
    config, log = launcher
    set_exit_codes(monkeypatch, {"run_behavioral": 1})
    stages = select_stages(STAGES, "train_model", "probe_model")

    run = run_pipeline(config, PipelineRequest(DAY), TIERS, stages)

    assert run.exit_code == 1
    assert run.stopped_at is None
    assert launched(log)[-1] == "probe_model"


def test_unknown_tier_counts_as_critical(launcher, monkeypatch):
    config, log = launcher
    set_exit_codes(monkeypatch, {"validate_item_metadata": 3})

    run = run_pipeline(config, PipelineRequest(DAY), {"click_stream": "critical"})

    assert run.exit_code == 3
    assert run.stopped_at == "validate_item_metadata"


@pytest.mark.parametrize(
    ("stage", "code"),
    [("evaluate_model", 1), ("train_model", 3), ("evaluate_champion", 3), ("apply_gate", 1)],
)
def test_runner_exits_with_failing_stage_code(launcher, monkeypatch, stage, code):
    config, log = launcher
    set_exit_codes(monkeypatch, {stage: code})

    run = run_pipeline(config, PipelineRequest(DAY), TIERS)

    assert run.exit_code == code
    assert run.stopped_at == stage
    assert launched(log)[-1] == LAUNCHER_NAMES[stage]
    assert run.stages[-1].action == ACTION_STOP
    assert not any(name.startswith("send_feed_alert") for name in launched(log))


def test_runner_logs_command_exit_and_time(launcher, monkeypatch, caplog):
    config, log = launcher
    set_exit_codes(monkeypatch, {"compute_features": 1})

    with caplog.at_level(logging.INFO, logger="streamrec_spark.pipeline.runner"):
        run_pipeline(config, PipelineRequest(DAY), TIERS)

    assert "stage validate_click_stream: " in caplog.text
    assert f"{ROOT}/jobs/validate_partition.py --dataset click_stream --date 2024-05-01" in caplog.text
    assert "stage validate_click_stream: exit 0 after " in caplog.text
    assert "stage compute_features: exit 1 after " in caplog.text
    assert "the pipeline stops" in caplog.text


def test_launcher_that_cannot_start_is_exit_3(tmp_path):
    path = write_config(tmp_path, spark_submit=f"spark_submit: {{script: {tmp_path / 'missing.sh'}}}")
    config = load_pipeline_config(path, ROOT)

    run = run_pipeline(config, PipelineRequest(DAY), TIERS)

    assert run.exit_code == 3
    assert run.stopped_at == "validate_click_stream"


def test_stage_ended_by_signal_is_exit_3(launcher, tmp_path):
    config, log = launcher
    killer = tmp_path / "killed.sh"
    killer.write_text("#!/bin/sh\nkill -9 $$\n")
    killer.chmod(0o755)
    config = replace(config, spark_submit=str(killer))

    stages = select_stages(STAGES, "train_model", "train_model")

    run = run_pipeline(config, PipelineRequest(DAY), TIERS, stages)

    assert run.exit_code == 3
    assert run.stopped_at == "train_model"


def test_cli_runs_stage_range(launcher, monkeypatch, capsys):
    config, log = launcher

    code = main(["run", "--config", config.source_file, "--date", "2024-05-01",
                 "--from-stage", "train_model", "--to-stage", "evaluate_model"])

    assert code == 0
    assert launched(log) == ["train_model", "evaluate_model"]
    assert "daily pipeline 2024-05-01: finished with exit 0" in capsys.readouterr().out


def test_cli_dry_run_starts_nothing(launcher, capsys):
    config, log = launcher

    code = main(["run", "--config", config.source_file, "--date", "2024-05-01", "--dry-run"])

    assert code == 0
    assert launched(log) == []
    assert capsys.readouterr().out.count("dry run") == len(STAGE_NAMES)


def test_missing_gate_file_is_exit_2(launcher, tmp_path, capsys):
    _, log = launcher
    path = write_config(tmp_path, gate=f"gate: {{config: {tmp_path / 'no-gate.yaml'}}}")

    code = main(["run", "--config", str(path), "--date", "2024-05-01", "--dry-run"])

    assert code == 2
    assert launched(log) == []
    assert "no-gate.yaml" in capsys.readouterr().err


def test_cli_invalid_as_of_is_exit_2(tmp_path, capsys):
    path = write_config(tmp_path)

    with pytest.raises(SystemExit) as exited:
        main(["run", "--config", str(path), "--date", "2024-05-01", "--as-of", "yesterday"])

    assert exited.value.code == 2
    assert "invalid --as-of 'yesterday'" in capsys.readouterr().err


def test_cli_unknown_log_level_is_exit_2(tmp_path, capsys):
    path = write_config(tmp_path)

    with pytest.raises(SystemExit) as exited:
        main(["--log-level", "LOUD", "run", "--config", str(path), "--date", "2024-05-01"])

    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "invalid level 'LOUD'" in error
    assert "DEBUG, INFO, WARNING, ERROR, CRITICAL" in error
    assert len(error.strip().splitlines()) == 1


def test_cli_invalid_config_is_exit_2(tmp_path, capsys):
    path = write_config(tmp_path, holdout_days="holdout_days: -1")

    code = main(["run", "--config", str(path), "--date", "2024-05-01"])

    assert code == 2
    assert "'holdout_days' must be at least 1" in capsys.readouterr().err


# --- the cron wrapper: lock, and a real failed critical feed -------------------------------


def write_tiny_click_stream(spark, root: Path) -> None:
    """Write 12 valid events of 2024-05-01: far below the production contract's volume floor."""
    from pyspark.sql import Row

    from streamrec_spark.datasets.clickstream import write_click_stream

    rows = []
    for index in range(12):
        ts = datetime(2024, 5, 1, 10, index * 4, tzinfo=timezone.utc)
        rows.append(Row(
            event_id=f"e{index}", user_id=index % 4 + 1, item_id=100 + index, session_id=f"s{index % 2}",
            event_type=["view", "click", "complete", "skip"][index % 4],
            platform=["ios", "android", "web"][index % 3], duration_seconds=float(index + 1),
            event_ts=ts, event_date=ts.date(),
        ))
    write_click_stream(spark.createDataFrame(rows), str(root))


def start_wrapper(config: Path, output: Path, webhook_url: str) -> subprocess.Popen:
    handle = output.open("w")
    env = {**os.environ, "STREAMREC_PIPELINE_LOCK": "", "STREAMREC_ALERT_WEBHOOK_URL": webhook_url}
    return subprocess.Popen(
        [str(ROOT / "scripts" / "run_daily.sh"), "--config", str(config), "--date", "2024-05-01",
         "--as-of", "2024-05-01T23:59:00Z"],
        stdout=handle, stderr=subprocess.STDOUT, env=env,
    )


@pytest.fixture
def webhook():
    """A webhook receiver on the loopback interface; yields its URL and the bodies it received."""
    received: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the name http.server calls)
            length = int(self.headers.get("Content-Length", 0))
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()
    server.server_close()


def test_two_wrappers_one_exits_locked(spark, tmp_path, webhook):
    write_tiny_click_stream(spark, tmp_path / "click_stream")
    config = write_config(
        tmp_path,
        spark_submit="spark_submit: {options: [--master, 'local[1]', --driver-memory, 1g, "
                     "--conf, spark.ui.enabled=false, --conf, spark.sql.shuffle.partitions=1]}",
    )
    outputs = [tmp_path / "first.log", tmp_path / "second.log"]

    url, received = webhook

    started = time.monotonic()
    wrappers = [start_wrapper(config, output, url) for output in outputs]
    codes = [wrapper.wait(timeout=600) for wrapper in wrappers]
    seconds = time.monotonic() - started
    texts = [output.read_text() for output in outputs]

    assert sorted(codes) == [1, EXIT_LOCKED], texts
    ran = texts[codes.index(1)]
    locked = texts[codes.index(EXIT_LOCKED)]
    assert "is taken by another daily run" in locked
    assert str(tmp_path / "warehouse" / "daily-pipeline.lock") in locked
    assert "stopped at validate_click_stream with exit 1" in ran
    assert "volume_row_count" in ran
    assert "stage train_model" not in ran
    assert not (tmp_path / "models").exists()
    # The failed critical feed's alert reached the webhook, naming the feed and the failed check.
    assert len(received) == 1
    assert "Feed click_stream failed validation for 2024-05-01" in received[0]["text"]
    assert "volume_row_count" in received[0]["text"]
    assert "feed alert for click_stream 2024-05-01: SENT (1 attempt)" in ran
    print(f"two wrappers finished in {seconds:.0f} s")


def test_wrapper_after_lock_released_runs(launcher, tmp_path):
    config, log = launcher
    env = {**os.environ}
    lock = tmp_path / "warehouse" / "daily-pipeline.lock"

    first = subprocess.run([str(ROOT / "scripts" / "run_daily.sh"), "--config", config.source_file,
                            "--date", "2024-05-01", "--to-stage", "validate_click_stream"],
                           env=env, capture_output=True, text=True)
    second = subprocess.run([str(ROOT / "scripts" / "run_daily.sh"), "--config", config.source_file,
                             "--date", "2024-05-01", "--to-stage", "validate_click_stream"],
                            env=env, capture_output=True, text=True)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert lock.exists()
    assert launched(log) == ["validate_partition:click_stream"] * 2


def test_wrapper_exits_75_while_locked(launcher, tmp_path):
    config, log = launcher
    lock = tmp_path / "warehouse" / "daily-pipeline.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(["flock", str(lock), "sleep", "30"])
    try:
        time.sleep(0.5)
        started = time.monotonic()
        result = subprocess.run([str(ROOT / "scripts" / "run_daily.sh"), "--config", config.source_file,
                                 "--date", "2024-05-01"], capture_output=True, text=True, timeout=60)
        seconds = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()

    assert result.returncode == EXIT_LOCKED
    assert "is taken by another daily run" in result.stderr
    assert seconds < 20
    assert launched(log) == []
