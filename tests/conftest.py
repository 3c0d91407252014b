"""Shared fixtures: one local SparkSession with Delta for the whole test run."""

from __future__ import annotations

import pytest

from streamrec_spark.session import build_session


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = build_session(
        "streamrec-spark-tests",
        master="local[2]",
        conf={
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
            "spark.sql.warehouse.dir": str(warehouse),
            "spark.driver.memory": "2g",
            "spark.databricks.delta.snapshotPartitions": "2",
            # Spark's default instead of build_session's local 128m: task results above 1 MB
            # then travel through the block manager as on a cluster, where
            # spark.driver.maxResultSize applies (test_result_size_limit_uses_shuffle).
            "spark.task.maxDirectResultSize": "1m",
        },
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
