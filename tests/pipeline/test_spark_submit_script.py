"""scripts/spark-submit.sh adds the project's Log4j 2 file to the driver's Java options.

The script runs from a copy of the repository layout whose ``.venv/bin/spark-submit`` is a
stand-in that prints the arguments it receives, one per line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEY = "spark.driver.extraJavaOptions"


@pytest.fixture
def layout(tmp_path):
    """A root with the script, a stand-in spark-submit and one cached jar; returns the root."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "spark-submit.sh", tmp_path / "scripts" / "spark-submit.sh")
    (tmp_path / ".cache" / "jars").mkdir(parents=True)
    (tmp_path / ".cache" / "jars" / "delta.jar").write_text("")
    stand_in = tmp_path / ".venv" / "bin" / "spark-submit"
    stand_in.parent.mkdir(parents=True)
    stand_in.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    stand_in.chmod(0o755)
    return tmp_path


def submitted(root: Path, *arguments: str, log4j_conf: str | None = None) -> list[str]:
    env = {key: value for key, value in os.environ.items() if key != "STREAMREC_LOG4J2_CONF"}
    if log4j_conf is not None:
        env["STREAMREC_LOG4J2_CONF"] = log4j_conf
    result = subprocess.run([str(root / "scripts" / "spark-submit.sh"), *arguments], env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_adds_log4j_option(layout):
    words = submitted(layout, "--master", "local[2]", "jobs/probe_model.py", "--model", "m")

    option = f'{KEY}=-Dlog4j.configurationFile="{layout}/conf/log4j2.properties"'
    assert words[words.index("--conf") + 1] == option
    assert words[-5:] == ["--master", "local[2]", "jobs/probe_model.py", "--model", "m"]


def test_keeps_caller_java_options(layout):
    words = submitted(layout, "--conf", f"{KEY}=-Xss4m -Dlog4j.configurationFile=mine.properties",
                      "jobs/probe_model.py")

    conf_values = [words[i + 1] for i, word in enumerate(words) if word == "--conf"]
    assert conf_values == [
        f'{KEY}=-Dlog4j.configurationFile="{layout}/conf/log4j2.properties" -Xss4m '
        "-Dlog4j.configurationFile=mine.properties"
    ]


def test_merges_driver_java_options(layout):
    words = submitted(layout, "--driver-java-options", "-Xss4m", "jobs/probe_model.py")

    assert "--conf" not in words
    assert words[words.index("--driver-java-options") + 1] == (
        f'-Dlog4j.configurationFile="{layout}/conf/log4j2.properties" -Xss4m'
    )


def test_job_arguments_left_alone(layout):
    words = submitted(layout, "jobs/train_model.py", "--conf", f"{KEY}=-Xss4m")

    assert words[-2:] == ["--conf", f"{KEY}=-Xss4m"]
    assert words.count("--conf") == 2


def test_empty_setting_keeps_spark_default(layout):
    words = submitted(layout, "jobs/probe_model.py", log4j_conf="")

    assert words == ["--jars", f"{layout}/.cache/jars/delta.jar", "jobs/probe_model.py"]
