"""Driver logging settings of build_session: pure functions, no Spark."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamrec_spark.session import DRIVER_JAVA_OPTIONS, console_log4j_file, driver_log_settings

PACKAGE_FILE = Path(__file__).resolve().parents[1] / "streamrec_spark" / "log4j2.properties"
OPTION = f"-Dlog4j2.configurationFile={PACKAGE_FILE.as_uri()}"


def test_package_log4j_file_by_default():
    assert console_log4j_file({}) == PACKAGE_FILE
    assert PACKAGE_FILE.is_file()
    assert driver_log_settings({}, jvm_running=False, environ={}) == {DRIVER_JAVA_OPTIONS: OPTION}


def test_package_log4j_file_drops_stack_traces():
    text = PACKAGE_FILE.read_text(encoding="utf-8")
    assert "rootLogger.level = warn" in text
    assert "appender.console.layout.alwaysWriteExceptions = false" in text


def test_option_goes_before_user_java_options():
    settings = driver_log_settings({DRIVER_JAVA_OPTIONS: "-Xss4m"}, jvm_running=False, environ={})
    assert settings == {DRIVER_JAVA_OPTIONS: f"{OPTION} -Xss4m"}


@pytest.mark.parametrize(
    ("conf", "environ"),
    [
        ({DRIVER_JAVA_OPTIONS: "-Dlog4j2.configurationFile=/etc/mine.properties"}, {}),
        ({DRIVER_JAVA_OPTIONS: "-Xss4m -Dlog4j.configurationFile=mine.properties"}, {}),
        ({}, {"PYSPARK_SUBMIT_ARGS": "--driver-java-options -Xss4m pyspark-shell"}),
        ({}, {"SPARK_SUBMIT_OPTS": "-Dlog4j2.configurationFile=/etc/mine.properties"}),
        ({}, {"STREAMREC_LOG4J2_CONF": ""}),
    ],
    ids=["log4j2_option", "log4j_option", "submit_args", "submit_opts", "empty_env"],
)
def test_user_logging_settings_win(conf, environ):
    assert driver_log_settings(conf, jvm_running=False, environ=environ) == {}


def test_log4j_file_in_spark_conf_dir_wins(tmp_path):
    (tmp_path / "log4j2.properties").write_text("rootLogger.level = info\n", encoding="utf-8")
    assert driver_log_settings({}, jvm_running=False, environ={"SPARK_CONF_DIR": str(tmp_path)}) == {}


def test_spark_defaults_java_options_are_kept(tmp_path):
    defaults = tmp_path / "spark-defaults.conf"
    defaults.write_text(f"{DRIVER_JAVA_OPTIONS} -Xss4m\n", encoding="utf-8")
    assert driver_log_settings({}, jvm_running=False, environ={"SPARK_CONF_DIR": str(tmp_path)}) == {}


def test_environment_names_another_file(tmp_path):
    mine = tmp_path / "mine.properties"
    settings = driver_log_settings({}, jvm_running=False, environ={"STREAMREC_LOG4J2_CONF": str(mine)})
    assert settings == {DRIVER_JAVA_OPTIONS: f"-Dlog4j2.configurationFile={mine.as_uri()}"}


def test_running_jvm_is_left_alone():
    # Under spark-submit the JVM has started with scripts/spark-submit.sh's options already.
    assert driver_log_settings({}, jvm_running=True, environ={}) == {}


def test_local_driver_listens_on_loopback(spark):
    # The shared test session is a local one that build_session started.
    address = spark.sparkContext._jsc.sc().env().rpcEnv().address().host()

    assert spark._jvm.System.getenv("SPARK_LOCAL_IP") == "127.0.0.1"
    assert address in ("127.0.0.1", "localhost")
