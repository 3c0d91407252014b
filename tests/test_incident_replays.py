"""The data incident replays on the real KuaiRand sample: where each is caught and the numbers.

The replays share one work folder, so the sample is converted once. The formula-change
replay uses one-day windows and one reference day to keep the run short. The command line
replays with three-day windows and three reference days.
"""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import functions as F

from streamrec_spark.errors import PartitionNotAcceptedError
from streamrec_spark.features.job import (
    STAGE_FEATURES_TO_TRAINING,
    STAGE_VALIDATED_TO_FEATURES,
    read_training_features,
)
from streamrec_spark.incidents import (
    STAGE_RAW_TO_VALIDATED,
    format_summary,
    replay_formula_change,
    replay_new_event_type,
    replay_platform_drop,
)
from streamrec_spark.validation.results import Reason
from streamrec_spark.validation.store import ResultStore

DATABASE = "streamrec_test_replay"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("replay")


@pytest.fixture(scope="module")
def formula_change(spark, workdir):
    return replay_formula_change(spark, workdir, window_days=1, reference_days=1, database=DATABASE)


@pytest.fixture(scope="module")
def new_event_type(spark, workdir):
    return replay_new_event_type(spark, workdir, database=DATABASE)


def test_formula_change_caught_by_drift(formula_change):
    outcome = formula_change

    assert outcome.caught
    assert outcome.stage == STAGE_FEATURES_TO_TRAINING
    assert outcome.dataset == "engagement_features"
    assert outcome.check == "drift_engagement_rate"
    assert outcome.reason_code == Reason.PSI_ABOVE_THRESHOLD
    assert outcome.partition_date == date(2022, 4, 9)
    assert outcome.exit_code == 1
    assert outcome.threshold == 0.2
    assert outcome.observed_value > 1.0


def test_formula_change_passes_schema_but_not_training(formula_change):
    details = formula_change.details

    # Every rate stays in [0, 1]: the output schema and range checks cannot see the change.
    assert details["range_checks_passed"]
    assert details["training_input_rejected"]
    # The correct formula on the same day stays well below the threshold.
    assert details["control_psi"] < 0.2
    assert details["reference_partitions"] == ["2022-04-08"]
    # The refactoring moves users out of the upper quantiles of the reference.
    assert sum(details["expected"]) > 0
    assert details["actual"][-1] < details["expected"][-1]


def test_formula_change_psi_stored_with_bins(spark, workdir, formula_change):
    metrics = (
        spark.read.format("delta").load(str(workdir / "warehouse" / "metrics"))
        .where((F.col("dataset") == "engagement_features")
               & (F.col("partition_date") == F.lit(formula_change.partition_date))
               & (F.col("expectation_id") == "drift_engagement_rate"))
    )
    psi = metrics.where(F.col("metric_name") == "psi").collect()
    expected_bins = metrics.where(F.col("metric_name") == "psi_bin_expected").count()

    assert [row["value"] for row in psi] == [pytest.approx(formula_change.observed_value)]
    assert expected_bins == len(formula_change.details["bins"])


def test_features_table_partitioned_by_date(spark, workdir, formula_change):
    from delta.tables import DeltaTable

    detail = DeltaTable.forPath(spark, str(workdir / "engagement_features")).detail().collect()[0]
    days = spark.read.format("delta").load(str(workdir / "engagement_features")) \
        .select("feature_date").distinct().collect()

    assert detail["partitionColumns"] == ["feature_date"]
    assert sorted(row["feature_date"] for row in days) == [date(2022, 4, 8), date(2022, 4, 9)]


def test_training_reads_accepted_features_only(spark, workdir, formula_change):
    store = ResultStore(spark, str(workdir / "warehouse"), DATABASE)

    reference = read_training_features(spark, str(workdir / "engagement_features"), date(2022, 4, 8), store)

    assert reference.count() > 100
    with pytest.raises(PartitionNotAcceptedError, match=r"2022-04-09 \(latest run failed\)") as caught:
        read_training_features(spark, str(workdir / "engagement_features"), date(2022, 4, 9), store)
    assert caught.value.exit_code == 1


def test_new_event_type_rejected_by_contract(new_event_type):
    outcome = new_event_type
    injected = outcome.details["injected_rows"]

    assert outcome.caught
    assert outcome.stage == STAGE_RAW_TO_VALIDATED
    assert outcome.dataset == "click_stream"
    assert outcome.check == "range_event_type"
    assert outcome.reason_code == Reason.VALUE_NOT_IN_SET
    assert outcome.exit_code == 1
    assert outcome.offending_value == "bookmark"
    assert injected > 0
    assert outcome.offending_count == injected
    assert f"'bookmark' ({injected:,} rows)" in outcome.message


def test_new_event_type_never_reaches_features(spark, workdir, new_event_type):
    details = new_event_type.details
    runs = (
        spark.read.format("delta").load(str(workdir / "warehouse" / "runs"))
        .where((F.col("dataset") == "features.engagement")
               & (F.col("partition_date") == F.lit(new_event_type.partition_date)))
        .select("status", "error_code").collect()
    )

    assert details["features_rejected"]
    assert details["features_stage"] == STAGE_VALIDATED_TO_FEATURES
    assert details["features_exit_code"] == 1
    assert [(row["status"], row["error_code"]) for row in runs] == [("failed", "PARTITION_NOT_ACCEPTED")]
    # Had validation been skipped, the function's input schema would count the same rows.
    assert details["input_schema_failed_count"] == details["injected_rows"]


@pytest.fixture(scope="module")
def platform_drop(spark, workdir):
    return replay_platform_drop(spark, workdir, database=DATABASE, reference_days=2)


def test_platform_drop_caught_before_training(platform_drop):
    outcome = platform_drop

    assert outcome.caught
    assert outcome.stage == STAGE_RAW_TO_VALIDATED
    assert outcome.check == "volume_by_platform"
    assert outcome.reason_code == Reason.CATEGORY_VOLUME_OUT_OF_RANGE
    assert outcome.exit_code == 1
    assert outcome.threshold == 0.5
    details = outcome.details
    # About 60% of the day's android rows are gone, and only android's ratio is out of range.
    before, after = details["rows_before"]["android"], details["rows_after"]["android"]
    assert after / before == pytest.approx(0.4, abs=0.05)
    ratios = {c["category"]: c["ratio"] for c in details["categories"]}
    assert ratios["android"] < 0.5 <= min(ratios["ios"], ratios["web"])
    assert outcome.observed_value == pytest.approx(ratios["android"], abs=1e-6)
    assert details["features_rejected"]
    assert details["features_stage"] == STAGE_VALIDATED_TO_FEATURES


def test_platform_drop_keeps_total_volume_in_range(platform_drop):
    others = platform_drop.details["other_checks"]

    # The day's total stays within the volume bounds. The platform PSI lands near its 0.2
    # threshold, on either side depending on the reference days, so it is reported, not relied on.
    assert others["volume_row_count"]["status"] == "passed"
    assert 0.1 < others["drift_platform"]["observed"] < 0.4


def test_summary_columns_fit_longest_values(formula_change, new_event_type, platform_drop):
    lines = format_summary([formula_change, new_event_type, platform_drop]).splitlines()

    assert len(lines) == 4
    header = lines[0]
    starts = [header.index(name) for name in ("caught", "stage", "check", "blocked")]
    for outcome, line in zip([formula_change, new_event_type, platform_drop], lines[1:]):
        # Every value starts under its own heading, after the longest value above it.
        values = [("yes" if outcome.caught else "NO"), outcome.stage,
                  f"{outcome.dataset}.{outcome.check}", outcome.blocked or "-"]
        for start, value in zip(starts, values):
            assert line[start:].startswith(value), (line, value)
            assert line[start - 2:start] == "  ", line
