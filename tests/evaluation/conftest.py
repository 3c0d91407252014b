"""Fixtures for the evaluation, model and behavioral tests: generated data and trained models.

The data come from ``streamrec_spark.behavioral.scenario``: item ``i`` has genre
``GENRES[i % 8]``, users switch from an old to a current genre around day 40, and days 77 to
100 are a holiday when old content is briefly very popular. The holiday replay trains both
models once per session, and the other tests reuse its saved models.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from streamrec_spark.behavioral.config import load_suite_config
from streamrec_spark.behavioral.incident import load_replay_config, replay_holiday
from streamrec_spark.evaluation.config import EvaluationConfig
from streamrec_spark.models.config import ModelsConfig

REPO = Path(__file__).resolve().parents[2]
# Fewer sampled users than the shipped suite, to keep the test run short.
TEST_CASE_USERS = 60


def pytest_configure(config):
    # Spark's Python workers import numpy and this package, so they must run this interpreter;
    # without it they start the first python3 on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def suite_config():
    return replace(load_suite_config(REPO / "conf" / "behavioral" / "suite.yaml"), case_users=TEST_CASE_USERS)


@pytest.fixture(scope="session")
def replay_config():
    return load_replay_config(REPO / "conf" / "behavioral" / "holiday_replay.yaml")


@pytest.fixture(scope="session")
def replay(spark, replay_config, suite_config, tmp_path_factory):
    """The holiday replay, run once: two trained, saved and tested models."""
    work_dir = tmp_path_factory.mktemp("replay")
    return replay_holiday(spark, replay_config, suite_config, EvaluationConfig(), ModelsConfig(), work_dir)


@pytest.fixture(scope="session")
def scenario_files(spark, replay_config, tmp_path_factory):
    """The replay's scenario written as Parquet: (events root, items folder)."""
    from streamrec_spark.behavioral.scenario import generate_scenario, write_scenario

    return write_scenario(generate_scenario(spark, replay_config.scenario), tmp_path_factory.mktemp("scenario"))
