"""End to end: spark-submit the validation job on a real KuaiRand day, then read it with SQL."""

from __future__ import annotations

import csv
import gzip
import os
import subprocess
import sys
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from streamrec_spark.datasets.kuairand import convert_kuairand
from streamrec_spark.validation.store import ResultStore

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / "data" / "kuairand" / "log_27k_standard_likehate_kcore15.tsv.gz"
DAY = date(2022, 4, 10)
BEIJING = timezone(timedelta(hours=8))


def expected_quirks(day: date) -> tuple[int, int, int]:
    """Events, date mismatches and surplus duplicate events of ``day``, computed from the raw log
    with the expansion rules of the sample's README, independently of the converter."""
    events = Counter()
    mismatched = 0
    with gzip.open(LOG, "rt") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if row["date"] != day.strftime("%Y%m%d"):
                continue
            play, length = int(row["play_time_ms"]), int(row["duration_ms"])
            types = ["view"]
            if row["is_click"] == "1":
                types.append("click")
            if length > 0 and play >= length:
                types.append("complete")
            if play < min(3000, length):
                types.append("skip")
            local_day = datetime.fromtimestamp(int(row["time_ms"]) / 1000, BEIJING).date()
            for kind in types:
                events[(row["user_id"], row["video_id"], row["time_ms"], kind)] += 1
                mismatched += local_day != day
    total = sum(events.values())
    surplus = sum(count - 1 for count in events.values() if count > 1)
    return total, mismatched, surplus


def test_spark_submit_job_on_real_day(spark, tmp_path):
    input_root = tmp_path / "click_stream"
    warehouse = tmp_path / "warehouse"
    convert_kuairand(spark, str(LOG), str(input_root))
    command = [
        str(ROOT / "scripts" / "spark-submit.sh"), "--master", "local[2]",
        "--conf", "spark.ui.enabled=false",
        str(ROOT / "jobs" / "validate_partition.py"),
        "--dataset", "click_stream", "--date", DAY.isoformat(), "--input", str(input_root),
        "--as-of", "2022-04-11T01:00:00+08:00", "--registry", str(ROOT / "conf/demo/registry.yaml"),
        "--warehouse", str(warehouse), "--database", "e2e_job",
    ]
    environment = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment,
                              cwd=workdir)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert f"click_stream {DAY}: WARNED" in finished.stdout
    # Registering the tables in the catalog database leaves no spark-warehouse/ behind.
    assert list(workdir.iterdir()) == []

    # A separate session attaches the tables and reads them with Spark SQL.
    ResultStore(spark, str(warehouse), "e2e_read").ensure_tables()
    run = spark.sql(
        "SELECT status, exit_code, row_count, spark_job_count, input_path FROM e2e_read.runs "
        f"WHERE dataset = 'click_stream' AND partition_date = DATE'{DAY}'"
    ).collect()
    total, mismatched, surplus = expected_quirks(DAY)
    assert len(run) == 1
    assert run[0].status == "warned"
    assert run[0].exit_code == 0
    assert run[0].row_count == total
    assert run[0].spark_job_count > 0
    failed = {
        r.expectation_id: r
        for r in spark.sql(
            "SELECT expectation_id, reason_code, failed_count, evaluated_count, severity "
            "FROM e2e_read.expectation_results "
            f"WHERE partition_date = DATE'{DAY}' AND status <> 'passed'"
        ).collect()
    }
    assert failed["range_event_ts_matches_event_date"].reason_code == "DATE_MISMATCH"
    assert failed["range_event_ts_matches_event_date"].failed_count == mismatched
    assert failed["schema_primary_key_unique"].reason_code == "DUPLICATE_KEY"
    assert failed["schema_primary_key_unique"].failed_count == surplus
    assert all(r.severity == "warn" for r in failed.values())
    assert mismatched > 0
    assert surplus > 0
