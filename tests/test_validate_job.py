"""The validation job with its Delta store: re-runs, history, references, bad input, CLI codes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from rows import AS_OF, DAY, clean_rows, event, frame
from streamrec_spark.cli import main
from streamrec_spark.contracts.loader import load_contract
from streamrec_spark.errors import ComputationError, InvalidRequestError
from streamrec_spark.validate_job import (
    ValidationRequest,
    ValidationRun,
    format_report,
    validate_partition,
)
from streamrec_spark.validation.store import ResultStore, RunRecord

HERE = Path(__file__).resolve().parent
CONTRACT_FILE = HERE / "data" / "click_stream_small.yaml"


@pytest.fixture(scope="module")
def contract():
    return load_contract(CONTRACT_FILE)


@pytest.fixture()
def registry(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text(f"contracts:\n  click_stream: {CONTRACT_FILE}\n")
    return path


def write_day(spark, root: Path, rows, day: date = DAY) -> None:
    (frame(spark, rows).write.mode("overwrite").option("partitionOverwriteMode", "dynamic")
     .partitionBy("event_date").parquet(str(root)))


def request(root: Path, warehouse: Path, day: date = DAY, **changes) -> ValidationRequest:
    values = dict(dataset="click_stream", partition_date=day, input_path=str(root),
                  as_of=AS_OF + (day - DAY), warehouse=str(warehouse), database="job_tests")
    values.update(changes)
    return ValidationRequest(**values)


def read(spark, warehouse: Path, table: str):
    return spark.read.format("delta").load(str(warehouse / table))


def test_rerun_replaces_results_and_keeps_history(spark, contract, tmp_path):
    root, warehouse = tmp_path / "input", tmp_path / "warehouse"
    write_day(spark, root, clean_rows())
    first = validate_partition(spark, contract, request(root, warehouse))
    assert first.exit_code == 0
    assert first.record.status == "warned"  # no reference yet: drift checks warn

    rows = clean_rows()
    rows[2] = event(2, event_type="bookmark")
    write_day(spark, root, rows)
    second = validate_partition(spark, contract, request(root, warehouse))
    assert second.exit_code == 1
    assert second.record.status == "failed"

    results = read(spark, warehouse, "expectation_results")
    assert results.count() == 23
    assert {r.run_id for r in results.select("run_id").distinct().collect()} == {second.record.run_id}
    runs = read(spark, warehouse, "runs").orderBy("finished_at").collect()
    assert [r.run_id for r in runs] == [first.record.run_id, second.record.run_id]
    assert [r.exit_code for r in runs] == [0, 1]
    assert runs[1].row_count == 12
    assert runs[1].spark_job_count > 0

    # The first run's results are still readable through Delta time travel.
    history = spark.sql(f"DESCRIBE HISTORY delta.`{warehouse / 'expectation_results'}`")
    versions = sorted(r.version for r in history.collect())
    earlier = (spark.read.format("delta").option("versionAsOf", versions[-2])
               .load(str(warehouse / "expectation_results")))
    assert {r.run_id for r in earlier.select("run_id").distinct().collect()} == {first.record.run_id}

    # The result tables are queryable with Spark SQL through the catalog.
    failed = spark.sql(
        "SELECT expectation_id, reason_code, failed_count FROM job_tests.expectation_results "
        "WHERE dataset = 'click_stream' AND partition_date = DATE'2024-05-01' AND status = 'failed'"
    ).collect()
    assert [(r.expectation_id, r.reason_code, r.failed_count) for r in failed] == [
        ("range_event_type", "VALUE_NOT_IN_SET", 1)
    ]
    metrics = read(spark, warehouse, "metrics")
    row_count = metrics.where(F.col("metric_name") == "row_count").collect()
    assert [r["count"] for r in row_count] == [12]
    types = dict((f.name, f.dataType.simpleString()) for f in metrics.schema.fields)
    assert types["count"] == "bigint"
    assert types["value"] == "double"


def test_failed_write_puts_back_the_previous_results(spark, contract, tmp_path):
    root, warehouse = tmp_path / "input", tmp_path / "warehouse"
    write_day(spark, root, clean_rows())
    first = validate_partition(spark, contract, request(root, warehouse))
    # Give expectation_results, the second table written, a schema the run's rows do not fit,
    # so that metrics is already committed when the second run's write fails.
    (spark.createDataFrame([("x", 1)], "run_id string, dataset int").write.format("delta")
     .mode("overwrite").option("overwriteSchema", "true").save(str(warehouse / "expectation_results")))
    rows = clean_rows()
    rows[2] = event(2, event_type="bookmark")
    write_day(spark, root, rows)

    with pytest.raises(ComputationError, match="cannot write results"):
        validate_partition(spark, contract, request(root, warehouse))

    metrics = read(spark, warehouse, "metrics")
    assert [r.run_id for r in metrics.select("run_id").distinct().collect()] == [first.record.run_id]
    # Created, first run, second run, put back: the undone rows stay in the history.
    history = spark.sql(f"DESCRIBE HISTORY delta.`{warehouse / 'metrics'}`").collect()
    assert len(history) == 4
    second_run_rows = (spark.read.format("delta").option("versionAsOf", 2)
                       .load(str(warehouse / "metrics")).select("run_id").distinct().collect())
    assert [r.run_id for r in second_run_rows] != [first.record.run_id]
    runs = read(spark, warehouse, "runs").orderBy("finished_at").collect()
    assert [(r.status, r.error_code) for r in runs] == [("warned", None), ("errored", "WRITE_FAILED")]


def test_reference_uses_accepted_earlier_partitions(spark, contract, tmp_path):
    root, warehouse = tmp_path / "input", tmp_path / "warehouse"
    days = [DAY, DAY + timedelta(days=1), DAY + timedelta(days=2), DAY + timedelta(days=3)]
    for day in days:
        rows = clean_rows(12, day)
        if day == days[1]:
            rows[0] = event(0, day, event_type="bookmark")  # makes day 2 fail: not a reference
        write_day(spark, root, rows, day)
    runs = [validate_partition(spark, contract, request(root, warehouse, day)) for day in days]
    assert [r.record.status for r in runs] == ["warned", "failed", "passed", "passed"]
    assert runs[2].record.reference_partitions == (days[0],)
    assert runs[3].record.reference_partitions == (days[0], days[2])
    drift = {r.expectation_id: r for r in runs[3].results if r.category == "statistical"}
    assert all(r.status == "passed" for r in drift.values())
    # A named reference date is used even if it failed.
    named = validate_partition(spark, contract, request(root, warehouse, days[3], reference_date=days[1]))
    assert named.record.reference_partitions == (days[1],)
    bins = read(spark, warehouse, "metrics").where(
        (F.col("partition_date") == F.lit(days[3])) & F.col("metric_name").startswith("psi_bin")
    )
    assert bins.where(F.col("expectation_id") == "drift_event_type").count() == 10
    # A named date that was never validated is an invalid request, raised before any scan.
    never = DAY - timedelta(days=30)
    with pytest.raises(InvalidRequestError, match=f"--reference-date {never} has no completed"):
        validate_partition(spark, contract, request(root, warehouse, days[3], reference_date=never))
    # The day itself or a later one is no reference: it would make any day look unchanged.
    for later in (days[3], days[3] + timedelta(days=1)):
        with pytest.raises(InvalidRequestError, match="is not before --date"):
            validate_partition(spark, contract, request(root, warehouse, days[3], reference_date=later))


def test_missing_input_records_errored_run(spark, contract, tmp_path):
    root, warehouse = tmp_path / "input", tmp_path / "warehouse"
    write_day(spark, root, clean_rows())
    good = validate_partition(spark, contract, request(root, warehouse))
    missing = validate_partition(spark, contract, request(tmp_path / "nowhere", warehouse))
    assert missing.exit_code == 3
    assert missing.record.status == "errored"
    assert missing.record.error_code == "INPUT_MISSING"
    assert "does not exist" in missing.record.error_message
    runs = read(spark, warehouse, "runs").where(F.col("status") == "errored").collect()
    assert [r.error_code for r in runs] == ["INPUT_MISSING"]
    # The printed report and the stored row agree: the jobs run so far, and no row count.
    assert runs[0].spark_job_count is not None
    assert runs[0].spark_job_count == missing.record.spark_job_count
    assert runs[0].row_count is None
    report = format_report(missing).splitlines()[0]
    assert "row count unknown" in report
    jobs = runs[0].spark_job_count
    assert f"{jobs} Spark job{'' if jobs == 1 else 's'})" in report
    assert "0 rows" not in report
    # The partition's stored results are those of the good run, untouched.
    stored = read(spark, warehouse, "expectation_results").select("run_id").distinct().collect()
    assert [r.run_id for r in stored] == [good.record.run_id]


def test_empty_folder_is_input_error(spark, contract, tmp_path):
    folder = tmp_path / "input" / f"event_date={DAY}"
    folder.mkdir(parents=True)
    (folder / "_SUCCESS").write_text("")
    run = validate_partition(spark, contract, request(tmp_path / "input", tmp_path / "warehouse"))
    assert run.exit_code == 3
    assert run.record.error_code == "INPUT_EMPTY"
    assert "contains no Parquet files" in run.record.error_message


def test_corrupt_parquet_is_input_error(spark, contract, tmp_path):
    folder = tmp_path / "input" / f"event_date={DAY}"
    folder.mkdir(parents=True)
    (folder / "part-00000.parquet").write_bytes(b"PAR1 this is not a parquet file")
    run = validate_partition(spark, contract, request(tmp_path / "input", tmp_path / "warehouse"))
    assert run.exit_code == 3
    assert run.record.status == "errored"
    assert run.record.error_code == "INPUT_UNREADABLE"
    assert "1 unreadable file: " in run.record.error_message
    assert "part-00000.parquet" in run.record.error_message
    assert "\n" not in run.record.error_message


def test_partly_corrupt_folder_names_the_file(spark, contract, tmp_path):
    root = tmp_path / "input"
    write_day(spark, root, clean_rows())
    folder = root / f"event_date={DAY}"
    (folder / "part-99999-bad.parquet").write_bytes(b"PAR1" + bytes(range(200)) + b"PAR1")

    run = validate_partition(spark, contract, request(root, tmp_path / "warehouse"))

    assert run.exit_code == 3
    assert run.record.error_code == "INPUT_UNREADABLE"
    assert "1 unreadable file: " in run.record.error_message
    assert "part-99999-bad.parquet" in run.record.error_message
    assert "\n" not in run.record.error_message


def test_zero_row_partition_is_recorded_as_failed(spark, contract, tmp_path):
    root, warehouse = tmp_path / "input", tmp_path / "warehouse"
    frame(spark, clean_rows()).limit(0).write.parquet(str(root / f"event_date={DAY}"))
    run = validate_partition(spark, contract, request(root, warehouse))
    assert run.exit_code == 1
    assert run.record.row_count == 0
    statuses = {r.expectation_id: (r.status, r.reason_code) for r in run.results}
    assert statuses["volume_row_count"] == ("failed", "EMPTY_PARTITION")
    assert statuses["complete_user_id"] == ("errored", "EMPTY_PARTITION")


def test_standard_feed_failure_does_not_stop_pipeline(spark, contract, tmp_path):
    from dataclasses import replace

    root, warehouse = tmp_path / "input", tmp_path / "warehouse"
    rows = clean_rows()
    rows[0] = event(0, platform="windows")
    write_day(spark, root, rows)
    run = validate_partition(spark, replace(contract, blocks_pipeline=False), request(root, warehouse))
    assert run.record.status == "failed"
    assert run.exit_code == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--dataset", "clickstream"], "unknown dataset 'clickstream'"),
        (["--date", "2024-13-01"], "invalid date '2024-13-01'"),
        (["--date", "0001-01-03"], "invalid date '0001-01-03'; use a date from 1900-01-01"),
        (["--date", "9999-12-31"], "to 9999-12-30"),
        (["--as-of", "yesterday"], "invalid --as-of 'yesterday'"),
    ],
)
def test_cli_invalid_request_exits_2(registry, tmp_path, capsys, arguments, message):
    base = {"--dataset": "click_stream", "--date": "2024-05-01", "--input": str(tmp_path),
            "--registry": str(registry), "--warehouse": str(tmp_path / "wh")}
    base.update(dict(zip(arguments[::2], arguments[1::2])))
    argv = ["validate", *[item for pair in base.items() for item in pair]]
    with pytest.raises(SystemExit) if arguments[0] == "--date" else _no_exit():
        code = main(argv)
        assert code == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert len(captured.err.strip().splitlines()) == 1


class _no_exit:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_cli_malformed_contract_exits_2(tmp_path, capsys):
    contract = tmp_path / "broken.yaml"
    contract.write_text(CONTRACT_FILE.read_text().replace("expectation_overrides:", "expectation_overides:"))
    contract.write_text(contract.read_text().replace("../../conf", str(HERE.parent / "conf")))
    registry = tmp_path / "registry.yaml"
    registry.write_text(f"contracts:\n  click_stream: {contract}\n")
    code = main(["validate", "--dataset", "click_stream", "--date", "2024-05-01", "--input",
                 str(tmp_path), "--registry", str(registry), "--warehouse", str(tmp_path / "wh")])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{contract}:3: unknown key 'expectation_overides'" in err
    assert not (tmp_path / "wh").exists()


def test_root_without_requested_date_is_missing(spark, contract, tmp_path):
    root, warehouse = tmp_path / "input", tmp_path / "warehouse"
    write_day(spark, root, clean_rows())
    run = validate_partition(spark, contract, request(root, warehouse, DAY + timedelta(days=5)))
    assert run.exit_code == 3
    assert run.record.error_code == "INPUT_MISSING"
    assert f"event_date={DAY + timedelta(days=5)}" in run.record.error_message


def test_cli_invalid_database_exits_2_before_spark(registry, tmp_path, capsys):
    code = main(["validate", "--dataset", "click_stream", "--date", "2024-05-01", "--input",
                 str(tmp_path), "--registry", str(registry), "--warehouse", str(tmp_path / "wh"),
                 "--database", "my-db"])
    assert code == 2
    assert "invalid --database 'my-db'" in capsys.readouterr().err
    assert not (tmp_path / "wh").exists()


def test_cli_sql_invalid_query_exits_2(spark, contract, tmp_path, capsys):
    root, warehouse = tmp_path / "input", tmp_path / "wh"
    write_day(spark, root, clean_rows())
    validate_partition(spark, contract, request(root, warehouse))
    capsys.readouterr()

    for query, problem in [
        ("SELECT no_such_column FROM cli_sql.runs", "UNRESOLVED_COLUMN"),
        ("SELECT * FROM cli_sqll.runs", "TABLE_OR_VIEW_NOT_FOUND"),
        ("SELEKT 1", "PARSE_SYNTAX_ERROR"),
    ]:
        code = main(["sql", query, "--warehouse", str(warehouse), "--database", "cli_sql"])
        assert code == 2, query
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, query
        assert err[0].startswith("streamrec-spark: invalid query: ["), query
        assert problem in err[0], query
        assert "cli_sql.expectation_results" in err[0], query

    assert main(["sql", "SELECT COUNT(*) AS n FROM cli_sql.expectation_results", "--warehouse",
                 str(warehouse), "--database", "cli_sql"]) == 0
    assert re.search(r"^\|23 *\|$", capsys.readouterr().out, re.MULTILINE)


def test_cli_sql_mistyped_warehouse_exits_2(spark, tmp_path, capsys):
    code = main(["sql", "SELECT 1", "--warehouse", str(tmp_path / "no_such_warehouse"),
                 "--database", "cli_sql_missing"])

    assert code == 2
    assert "no Delta result tables under --warehouse" in capsys.readouterr().err
    assert not (tmp_path / "no_such_warehouse").exists()


def test_delta_root_read_as_parquet_is_invalid(spark, contract, tmp_path):
    root, warehouse = tmp_path / "events_delta", tmp_path / "warehouse"
    (frame(spark, clean_rows()).write.format("delta").partitionBy("event_date").save(str(root)))

    # Exit code 2 means nothing ran, so an invalid request is raised and leaves no row in runs.
    with pytest.raises(InvalidRequestError, match="--input-format delta") as caught:
        validate_partition(spark, contract, request(root, warehouse))
    assert caught.value.exit_code == 2
    with pytest.raises(InvalidRequestError, match="one of its partition folders"):
        validate_partition(spark, contract, request(root / f"event_date={DAY}", warehouse))
    with pytest.raises(InvalidRequestError, match="has no completed click_stream run"):
        validate_partition(spark, contract, request(root, warehouse, input_format="delta",
                                                    reference_date=DAY - timedelta(days=1)))
    assert not (warehouse / "runs").exists()

    delta_run = validate_partition(spark, contract, request(root, warehouse, input_format="delta"))
    assert delta_run.exit_code == 0
    assert delta_run.record.row_count == 12
    runs = read(spark, warehouse, "runs").collect()
    assert [r.exit_code for r in runs] == [0]


def test_filesystem_error_records_errored_run(spark, contract, tmp_path):
    warehouse = tmp_path / "warehouse"

    # Hadoop fails while listing the input, before the suite: an error after the run started.
    run = validate_partition(spark, contract, request("nosuchfs://bucket/events", warehouse))

    assert run.exit_code == 3
    assert run.record.status == "errored"
    assert run.record.error_code == "COMPUTATION_ERROR"
    assert "nosuchfs" in run.record.error_message
    assert "\n" not in run.record.error_message
    stored = read(spark, warehouse, "runs").collect()
    assert [(r.run_id, r.exit_code, r.status) for r in stored] == [(run.record.run_id, 3, "errored")]
    assert stored[0].spark_job_count == run.record.spark_job_count
    assert stored[0].row_count is None


def _report_run(contract, **values) -> ValidationRun:
    fields = dict(run_id="r1", dataset="click_stream", partition_date=DAY, contract_version="1",
                  status="passed", exit_code=0, as_of=AS_OF, started_at=AS_OF, finished_at=AS_OF,
                  input_path="/in", code_version="0", spark_app_id="app")
    fields.update(values)
    return ValidationRun(record=RunRecord(**fields), contract=contract)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"row_count": 1, "spark_job_count": 1}, "1 row, 1 Spark job)"),
        ({"row_count": 12_000, "spark_job_count": 4}, "12,000 rows, 4 Spark jobs)"),
        ({"row_count": 0, "spark_job_count": 0}, "0 rows, 0 Spark jobs)"),
        ({"status": "errored", "exit_code": 3, "spark_job_count": 2},
         "row count unknown, 2 Spark jobs)"),
        ({"status": "errored", "exit_code": 3}, "row count unknown, Spark job count unknown)"),
    ],
)
def test_report_counts_and_plurals(contract, values, expected):
    first_line = format_report(_report_run(contract, **values)).splitlines()[0]

    assert first_line.endswith(expected), first_line


def test_table_path_keeps_uri_authority():
    from streamrec_spark.delta_tables import table_path

    assert table_path("s3a://bucket/streamrec", "runs") == "s3a://bucket/streamrec/runs"
    assert table_path("hdfs://namenode:8020/warehouse/", "runs") == "hdfs://namenode:8020/warehouse/runs"
    assert table_path("/tmp/warehouse", "runs") == "/tmp/warehouse/runs"


@pytest.mark.parametrize("reference", ["2024-05-01", "2024-05-03"])
def test_cli_late_reference_date_exits_2(registry, tmp_path, capsys, monkeypatch, reference):
    def no_spark(*_):
        raise AssertionError("Spark must not start for an invalid request")

    monkeypatch.setattr("streamrec_spark.cli._session", no_spark)

    code = main(["validate", "--dataset", "click_stream", "--date", "2024-05-01", "--input",
                 str(tmp_path), "--registry", str(registry), "--warehouse", str(tmp_path / "wh"),
                 "--reference-date", reference])

    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"--reference-date {reference} is not before --date 2024-05-01" in err[0]
    assert "leave out --reference-date" in err[0]
    assert not (tmp_path / "wh").exists()


@pytest.mark.parametrize("setting, named", [
    ("spark.driver.memory=lots", "--conf spark.driver.memory=lots"),
    ("spark.task.maxDirectResultSize=lots", "--conf spark.task.maxDirectResultSize=lots"),
    # Spark checks a SQL setting only when it builds the session state. The JVM's own message
    # names the value and the type it should have.
    ("spark.sql.shuffle.partitions=abc", "spark.sql.shuffle.partitions should be int, but was abc"),
])
def test_cli_bad_conf_value_exits_2(tmp_path, setting, named):
    # A separate process, because the shared session of the other tests has started already.
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYSPARK_GATEWAY")}
    finished = subprocess.run(
        [sys.executable, "-m", "streamrec_spark.cli", "sql", "SELECT 1", "--warehouse", str(tmp_path),
         "--conf", setting],
        capture_output=True, text=True, timeout=300, env=environment, cwd=tmp_path,
    )

    assert finished.returncode == 2, finished.stderr[-2000:]
    # Spark's own log lines from its failed start may follow ours (shutdown hooks).
    ours = [line for line in finished.stderr.splitlines() if line.startswith("streamrec-spark:")]
    assert len(ours) == 1, finished.stderr[-2000:]
    assert ours[0].startswith("streamrec-spark: Spark failed to start with the given settings")
    assert named in ours[0]


def test_cli_corrupt_parquet_console(tmp_path):
    folder = tmp_path / "input" / f"event_date={DAY}"
    folder.mkdir(parents=True)
    (folder / "part-0.parquet").write_bytes(b"PAR1garbagegarbagePAR1")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYSPARK_GATEWAY")}
    finished = subprocess.run(
        [sys.executable, "-m", "streamrec_spark.cli", "validate", "--dataset", "click_stream",
         "--date", str(DAY), "--input", str(tmp_path / "input"), "--warehouse", str(tmp_path / "wh")],
        capture_output=True, text=True, timeout=300, env=environment, cwd=tmp_path,
    )

    assert finished.returncode == 3, finished.stderr[-2000:]
    lines = finished.stderr.strip().splitlines()
    assert not [line for line in lines if line.startswith(("Caused by:", "\tat ", "    at "))]
    assert "part-0.parquet" in finished.stdout


def test_cli_relative_input_path(spark, tmp_path):
    rows = clean_rows()
    write_day(spark, tmp_path / "input", rows)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYSPARK_GATEWAY")}
    finished = subprocess.run(
        [sys.executable, "-m", "streamrec_spark.cli", "validate", "--dataset", "click_stream",
         "--date", str(DAY), "--input", "input", "--warehouse", "wh", "--as-of", "2024-05-02T00:30:00Z"],
        capture_output=True, text=True, timeout=300, env=environment, cwd=tmp_path,
    )

    assert finished.returncode == 1, finished.stderr[-2000:]  # the volume bounds fail
    runs = read(spark, tmp_path / "wh", "runs").collect()
    assert [(r["status"], r["row_count"]) for r in runs] == [("failed", len(rows))]


def test_cli_oversized_task_result(spark, tmp_path):
    # One file of 90,000 rows is one task whose two key sets take 1.4 MB. An executor drops a
    # result above spark.driver.maxResultSize (1 MB at least). The driver then reports the
    # result lost without naming the setting, and the keys are counted with the shuffle pass.
    root = tmp_path / "input"
    (spark.range(90_000, numPartitions=1)
     .select(F.concat(F.lit("e-"), F.col("id").cast("string")).alias("event_id"),
             (F.col("id") % 1000).alias("user_id"), F.col("id").alias("item_id"),
             F.lit("s").alias("session_id"), F.lit("view").alias("event_type"),
             F.lit("ios").alias("platform"), F.lit(10.0).alias("duration_seconds"),
             F.lit(datetime(2024, 5, 1, 12, tzinfo=timezone.utc)).alias("event_ts"),
             F.lit(DAY).alias("event_date"))
     .write.partitionBy("event_date").parquet(str(root)))
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYSPARK_GATEWAY")}
    finished = subprocess.run(
        [sys.executable, "-m", "streamrec_spark.cli", "validate", "--dataset", "click_stream",
         "--date", str(DAY), "--input", str(root), "--warehouse", str(tmp_path / "wh"),
         "--as-of", "2024-05-02T00:30:00Z", "--conf", "spark.driver.maxResultSize=1m"],
        capture_output=True, text=True, timeout=300, env=environment, cwd=tmp_path,
    )

    assert finished.returncode == 1, finished.stderr[-2000:]  # the volume bounds fail
    assert "did not reach the driver (a task result was lost" in finished.stderr
    assert "counting them with a shuffle pass instead" in finished.stderr
    metrics = read(spark, tmp_path / "wh", "metrics")
    users = metrics.where(F.col("metric_name") == "distinct_count").collect()
    assert [(r["column_name"], r["count"]) for r in users] == [("user_id", 1000)]


def test_cli_unknown_log_level_is_exit_2(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--log-level", "LOUD", "validate", "--dataset", "click_stream", "--date", "2024-05-01",
                  "--input", "/nonexistent"])

    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "invalid level 'LOUD'" in error
    assert len(error.strip().splitlines()) == 1
