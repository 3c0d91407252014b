"""End to end: a saved model, the behavioral command in its own process, the Delta table in SQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from streamrec_spark.delta_tables import register_table, table_path

REPO = Path(__file__).resolve().parents[2]
DATABASE = "e2e_behavioral"


def test_behavioral_command_writes_delta(spark, replay, scenario_files, suite_config, tmp_path):
    events, items = scenario_files
    case_users = suite_config.case_users
    shipped = (REPO / "conf" / "behavioral" / "suite.yaml").read_text(encoding="utf-8")
    config = tmp_path / "suite.yaml"
    config.write_text(
        shipped.replace("  users: 150", f"  users: {case_users}").replace(
            "  database: streamrec", f"  database: {DATABASE}"
        ),
        encoding="utf-8",
    )
    warehouse = tmp_path / "warehouse"
    command = [
        sys.executable, "-m", "streamrec_spark.cli_evaluation", "run-behavioral",
        "--model", replay.usual.path,
        "--model-id", "usual-e2e",
        "--run-id", "run-1",
        "--events", events,
        "--items", items,
        "--warehouse", str(warehouse),
        "--config", str(config),
        "--master", "local[2]",
        "--conf", "spark.sql.shuffle.partitions=2",
        "--conf", "spark.default.parallelism=2",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.databricks.delta.snapshotPartitions=2",
    ]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "14 of 14 tests passed" in completed.stdout

    register_table(spark, DATABASE, "behavioral_results", table_path(warehouse, "behavioral_results"))
    rows = spark.sql(
        f"SELECT suite, test_name, test_type, cases, failures, failure_rate, threshold, passed "
        f"FROM {DATABASE}.behavioral_results WHERE model_id = 'usual-e2e' AND run_id = 'run-1'"
    ).collect()
    by_name = {row["test_name"]: row for row in rows}
    assert len(rows) == 14
    assert {row["suite"] for row in rows} == {"streamrec_recommendation_v2"}
    assert {row["test_type"] for row in rows} == {"MFT", "INV", "DIR"}
    assert all(row["passed"] for row in rows)
    assert by_name["inv_session_ids"]["cases"] == case_users
    assert by_name["mft_recall_overall"]["threshold"] == 0.15
    assert by_name["dir_recency"]["failure_rate"] <= 0.10
