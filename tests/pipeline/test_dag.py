"""The Airflow DAG, loaded by Airflow's own DagBag from dags/ (sqlite, no scheduler).

Airflow reads its settings when it is first imported, so the fixture sets AIRFLOW_HOME to a
temporary folder before importing it. Tests that load the DAG with other settings build a new
DagBag, which parses the file again.
"""

from __future__ import annotations

import os
import shlex
import sys
from datetime import date
from pathlib import Path

import pytest

from streamrec_spark.pipeline.config import load_pipeline_config
from streamrec_spark.pipeline.stages import STAGES, PipelineRequest, stage_named

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
DAG_ID = "streamrec_daily"
FEED_TASKS = {"validate_click_stream", "validate_item_metadata", "validate_user_profiles"}
CHAIN = [
    "compute_features", "train_model", "evaluate_model", "evaluate_champion", "run_behavioral",
    "probe_model", "apply_gate",
]
JOB_FILES = {
    "validate_click_stream": "jobs/validate_partition.py",
    "validate_item_metadata": "jobs/validate_partition.py",
    "validate_user_profiles": "jobs/validate_partition.py",
    "compute_features": "jobs/compute_features.py",
    "train_model": "jobs/train_model.py",
    "evaluate_model": "jobs/evaluate_model.py",
    "evaluate_champion": "jobs/evaluate_champion.py",
    "run_behavioral": "jobs/run_behavioral.py",
    "probe_model": "jobs/probe_model.py",
    "apply_gate": "jobs/apply_gate.py",
    "alert_click_stream": "jobs/send_feed_alert.py",
    "alert_item_metadata": "jobs/send_feed_alert.py",
    "alert_user_profiles": "jobs/send_feed_alert.py",
}
ALERT_TASKS = {"alert_click_stream", "alert_item_metadata", "alert_user_profiles"}


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow-home")
    settings = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
    }
    if "airflow" in sys.modules and os.environ.get("AIRFLOW_HOME") != str(home):
        pytest.fail("airflow was imported before this module set AIRFLOW_HOME; run the DAG tests "
                    "in their own pytest process")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in settings.items():
            patch.setenv(key, value)
        patch.delenv("STREAMREC_ROOT", raising=False)
        patch.delenv("STREAMREC_PIPELINE_CONF", raising=False)
        yield home


def load_dagbag():
    from airflow.models import DagBag

    return DagBag(dag_folder=str(DAGS), include_examples=False)


@pytest.fixture(scope="module")
def dagbag(airflow_home):
    return load_dagbag()


@pytest.fixture(scope="module")
def dag(dagbag):
    # DagBag.get_dag would query the metadata database, which these tests never create.
    return dagbag.dags[DAG_ID]


def test_dag_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert DAG_ID in dagbag.dags


def test_dag_schedule_and_limits(dag):
    assert dag.schedule_interval == "@daily"
    assert dag.catchup is False
    assert dag.max_active_runs == 1


def test_dag_task_ids_follow_stages(dag):
    assert dag.task_ids[:len(STAGES)] == [stage.name for stage in STAGES]
    assert set(dag.task_ids[len(STAGES):]) == ALERT_TASKS


def test_feed_validations_run_in_parallel(dag):
    for task_id in FEED_TASKS:
        task = dag.get_task(task_id)
        assert task.upstream_task_ids == set()
        assert task.downstream_task_ids == {"compute_features", task_id.replace("validate_", "alert_")}


def test_feed_alert_runs_when_validation_fails(dag):
    for task_id in ALERT_TASKS:
        task = dag.get_task(task_id)
        assert task.upstream_task_ids == {task_id.replace("alert_", "validate_")}
        assert task.downstream_task_ids == set()
        assert task.trigger_rule == "one_failed"


def test_chain_runs_in_stage_order(dag):
    assert dag.get_task("compute_features").upstream_task_ids == FEED_TASKS
    for upstream, downstream in zip(CHAIN, CHAIN[1:]):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
        assert dag.get_task(upstream).downstream_task_ids == {downstream}
    assert dag.get_task("apply_gate").downstream_task_ids == set()


def test_critical_feed_rule_in_graph(dag):
    # A skipped standard feed lets compute_features run; a failed feed of any tier does not.
    assert dag.get_task("compute_features").trigger_rule == "none_failed"
    assert list(dag.get_task("validate_item_metadata").skip_on_exit_code) == [3]
    assert list(dag.get_task("validate_user_profiles").skip_on_exit_code) == [3]
    assert list(dag.get_task("validate_click_stream").skip_on_exit_code) == []
    for task_id in CHAIN[1:]:
        assert dag.get_task(task_id).trigger_rule == "all_success"
        assert list(dag.get_task(task_id).skip_on_exit_code) == []


def render_context(dag, logical_date: str) -> dict:
    """Return the template variables the commands use, for a scheduled run of ``logical_date``.

    The data interval comes from the DAG's own timetable, as the scheduler computes it.
    """
    import pendulum

    logical = pendulum.parse(logical_date, tz="UTC")
    interval = dag.infer_automated_data_interval(logical)
    return {"ds": logical.to_date_string(), "data_interval_end": interval.end}


def test_task_commands_name_their_job_files(dag):
    config = load_pipeline_config(ROOT / "conf" / "pipeline" / "daily.yaml", ROOT)
    request = PipelineRequest(date(2024, 5, 1), as_of="2024-05-02T00:00:00+00:00")
    context = render_context(dag, "2024-05-01")

    for task in dag.tasks:
        rendered = task.render_template(task.bash_command, context)
        words = shlex.split(rendered)

        assert words[0] == str(ROOT / "scripts" / "spark-submit.sh"), task.task_id
        assert str(ROOT / JOB_FILES[task.task_id]) in words, task.task_id
        assert JOB_FILES[task.task_id] in task.bash_command, task.task_id
        # The DAG and the cron runner build the very same command line.
        assert tuple(words) == stage_named(task.task_id).command(config, request), task.task_id


def test_validation_task_renders_dataset_and_date(dag):
    task = dag.get_task("validate_user_profiles")

    words = shlex.split(task.render_template(task.bash_command, render_context(dag, "2024-05-01")))

    assert words[words.index("--dataset") + 1] == "user_profiles"
    assert words[words.index("--date") + 1] == "2024-05-01"


def test_backfill_passes_end_of_day_as_of(dag):
    # A past date re-run (backfill or clear) measures freshness against the end of that day.
    context = render_context(dag, "2023-12-16")

    for task_id in (*sorted(FEED_TASKS), "compute_features"):
        task = dag.get_task(task_id)
        words = shlex.split(task.render_template(task.bash_command, context))
        assert words[words.index("--date") + 1] == "2023-12-16", task_id
        assert words[words.index("--as-of") + 1] == "2023-12-17T00:00:00+00:00", task_id
    for task_id in CHAIN[1:]:
        task = dag.get_task(task_id)
        assert "--as-of" not in shlex.split(task.render_template(task.bash_command, context)), task_id


def test_only_exit_3_is_retried(dag):
    from airflow.exceptions import AirflowException, AirflowFailException, AirflowSkipException

    operator_type = type(dag.get_task("train_model"))
    assert dag.get_task("train_model").retries == 2

    for code in (1, 2):
        with pytest.raises(AirflowFailException, match=f"exited with code {code}; only exit 3"):
            operator_type(task_id=f"exit_{code}", bash_command=f"exit {code}").execute({})
    with pytest.raises(AirflowException) as raised:
        operator_type(task_id="exit_3", bash_command="exit 3").execute({})
    assert not isinstance(raised.value, AirflowFailException)
    with pytest.raises(AirflowSkipException):
        operator_type(task_id="feed", bash_command="exit 3", skip_on_exit_code=3).execute({})


def test_failed_behavioral_test_reaches_gate(dag):
    behavioral = dag.get_task("run_behavioral")
    operator_type = type(behavioral)

    assert behavioral.continue_exit_codes == (1,)
    assert all(dag.get_task(t).continue_exit_codes == () for t in dag.task_ids if t != "run_behavioral")
    assert operator_type(task_id="tests", bash_command="exit 1", continue_exit_codes=(1,)).execute({}) is None


def test_broken_pipeline_config_is_import_error(airflow_home, tmp_path, monkeypatch):
    broken = tmp_path / "daily.yaml"
    broken.write_text("warehouse: /tmp/warehouse\nholdout_days: seven\n")
    monkeypatch.setenv("STREAMREC_PIPELINE_CONF", str(broken))

    bag = load_dagbag()

    assert DAG_ID not in bag.dags
    errors = "\n".join(bag.import_errors.values())
    assert f"{broken}:2: 'holdout_days' must be an integer" in errors
