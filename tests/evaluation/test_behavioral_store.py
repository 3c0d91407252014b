"""The suite name in the config and in every row of the Delta behavioral-results table."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from pyspark.sql import types as T

from streamrec_spark.behavioral.config import load_suite_config
from streamrec_spark.behavioral.job import BehavioralRequest, run_behavioral
from streamrec_spark.behavioral.store import write_behavioral_results
from streamrec_spark.behavioral.verdicts import TestResult
from streamrec_spark.delta_tables import table_path
from streamrec_spark.errors import ConfigError, InputDataError
from streamrec_spark.evaluation.config import EvaluationConfig

REPO = Path(__file__).resolve().parents[2]
MINIMAL_TESTS = "tests:\n  - {name: a, type: MFT, metric: recall, k: 20, min_value: 0.1}\n"


def _results() -> list[TestResult]:
    return [
        TestResult("mft_a", "MFT", 10, 2, 0.2, 0.3, 0.15, "min_value", True, "passed", None),
        TestResult("dir_b", "DIR", 8, 4, 0.5, 0.5, 0.1, "max_failure_rate", False, "failed", "FAILURE_RATE_ABOVE_MAX"),
    ]


def test_shipped_suite_name():
    config = load_suite_config(REPO / "conf" / "behavioral" / "suite.yaml")
    assert config.name == "streamrec_recommendation_v2"


def test_suite_name_missing(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(MINIMAL_TESTS, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"missing key 'name'"):
        load_suite_config(path)


@pytest.mark.parametrize("name", ["streamrec v2", "2fast", "suite-v2", "''"])
def test_suite_name_not_identifier(tmp_path, name):
    path = tmp_path / "suite.yaml"
    path.write_text(f"name: {name}\n{MINIMAL_TESTS}", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_suite_config(path)
    assert any(problem.startswith(f"{path}:1:") and "'name' must be" in problem for problem in raised.value.problems)


def test_results_rows_carry_suite(spark, tmp_path):
    warehouse = tmp_path / "warehouse"
    for suite in ("suite_a", "suite_b"):
        write_behavioral_results(
            spark, _results(), model_id="m1", run_id="r1", suite=suite, warehouse=warehouse,
            database="store_suite", table="behavioral_results",
        )
    # A re-run of suite_a replaces its own rows only.
    write_behavioral_results(
        spark, _results()[:1], model_id="m1", run_id="r1", suite="suite_a", warehouse=warehouse,
        database="store_suite", table="behavioral_results",
    )
    table = spark.read.format("delta").load(table_path(warehouse, "behavioral_results"))
    rows = table.collect()

    assert table.columns[:3] == ["model_id", "run_id", "suite"]
    assert table.schema["suite"].dataType == T.StringType()
    assert sorted((row["suite"], row["test_name"]) for row in rows) == [
        ("suite_a", "mft_a"),
        ("suite_b", "dir_b"),
        ("suite_b", "mft_a"),
    ]


def test_table_without_suite_column_upgraded(spark, tmp_path):
    warehouse = tmp_path / "warehouse"
    path = table_path(warehouse, "behavioral_results")
    old_schema = T.StructType(
        [
            T.StructField("model_id", T.StringType(), nullable=False),
            T.StructField("run_id", T.StringType(), nullable=False),
            T.StructField("test_name", T.StringType(), nullable=False),
            T.StructField("test_type", T.StringType(), nullable=False),
            T.StructField("cases", T.LongType(), nullable=False),
            T.StructField("failures", T.LongType(), nullable=False),
            T.StructField("failure_rate", T.DoubleType(), nullable=True),
            T.StructField("observed", T.DoubleType(), nullable=True),
            T.StructField("threshold", T.DoubleType(), nullable=False),
            T.StructField("threshold_kind", T.StringType(), nullable=False),
            T.StructField("passed", T.BooleanType(), nullable=False),
            T.StructField("status", T.StringType(), nullable=False),
            T.StructField("reason", T.StringType(), nullable=True),
            T.StructField("evaluated_at", T.TimestampType(), nullable=False),
        ]
    )
    old_row = ("m0", "r0", "mft_a", "MFT", 10, 1, 0.1, 0.3, 0.15, "min_value", True, "passed", None, datetime(2024, 1, 1))
    spark.createDataFrame([old_row], old_schema).write.format("delta").partitionBy("model_id").save(path)

    write_behavioral_results(
        spark, _results(), model_id="m1", run_id="r1", suite="suite_a", warehouse=warehouse,
        database="store_upgrade", table="behavioral_results",
    )
    table = spark.read.format("delta").load(path)
    suites = {row["model_id"]: row["suite"] for row in table.select("model_id", "suite").collect()}

    assert table.columns[:3] == ["model_id", "run_id", "suite"]
    assert suites == {"m0": None, "m1": "suite_a"}
    assert table.count() == 3


@pytest.mark.parametrize(
    ("change", "error_code"),
    [({"holdout_start": date(2024, 6, 1)}, "EMPTY_HOLDOUT"), ({"events_path": "absent"}, "INPUT_UNREADABLE")],
)
def test_errored_run_writes_rows(spark, replay, scenario_files, suite_config, tmp_path, change, error_code):
    events, items = scenario_files
    values = {"events_path": events, **change}
    if values["events_path"] == "absent":
        values["events_path"] = str(tmp_path / "absent")
    request = BehavioralRequest(
        model_path=replay.usual.path,
        model_id="errored-model",
        run_id="run-1",
        warehouse=str(tmp_path / "warehouse"),
        items_path=items,
        **values,
    )
    with pytest.raises(InputDataError) as raised:
        run_behavioral(spark, request, suite_config, EvaluationConfig())
    assert raised.value.error_code == error_code

    rows = spark.read.format("delta").load(table_path(tmp_path / "warehouse", "behavioral_results")).collect()
    assert len(rows) == len(suite_config.tests)
    assert {row["suite"] for row in rows} == {"streamrec_recommendation_v2"}
    assert {(row["status"], row["reason"], row["passed"]) for row in rows} == {("errored", error_code, False)}
    assert {row["cases"] for row in rows} == {0}
    assert {row["observed"] for row in rows} == {None}
