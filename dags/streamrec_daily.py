"""Airflow DAG ``streamrec_daily``: the daily pipeline's stages as spark-submit tasks.

Each task runs one stage of ``streamrec_spark.pipeline.stages.STAGES`` through
``scripts/spark-submit.sh`` for the run's logical date ``ds``, the day the run processes. The
end of the run's data interval (``data_interval_end``, midnight UTC after ``ds`` for
``@daily``) is the ``--as-of`` instant of the validation and feature stages, so a backfill or a
cleared task of a past date re-runs with that day's freshness. The job file is part of each
task's command text. The job's arguments are rendered when the task
starts, from the pipeline configuration and by the same code that ``scripts/run_daily.sh``
uses, so cron and Airflow run the same commands.

Graph: the three feed validations run in parallel, then ``compute_features``, ``train_model``,
``evaluate_model``, ``evaluate_champion`` (the gate's champion on the same holdout window),
``run_behavioral``, ``probe_model`` and ``apply_gate`` (which registers the model when it
passes). A feed whose contract tier is critical must succeed. A standard feed
whose input is missing or unreadable (exit 3) ends as skipped and ``compute_features``
(trigger rule ``none_failed``) runs anyway. Any other failure of a standard feed, such as a
check its contract marks ``blocks_pipeline: true`` (exit 1), stops the run. A failed
behavioral test (exit 1 of ``run_behavioral``) lets the run go on, because the gate blocks on
it, records the decision and sends the alert. When a feed's validation task fails, its
``alert_<feed>`` task (trigger rule ``one_failed``) sends the webhook message that lists the
failed checks. Retries apply to exit code 3 only. Other exit 1 (a check or the gate blocked)
and exit 2 (invalid invocation) fail the task at once, because running them again gives the
same result.

Settings, read from the environment of the scheduler and the workers when the file is parsed:

- ``STREAMREC_ROOT``: the repository checkout (default: the folder that contains this ``dags/``);
- ``STREAMREC_PIPELINE_CONF``: the pipeline YAML (default: ``conf/pipeline/daily.yaml`` in the
  checkout).

Airflow Variables are not read here, because a Variable read while parsing queries the
metadata database on every parse. Parsing reads only the pipeline YAML and the contract
registry it names (no Spark, no database, no network).
"""

from __future__ import annotations

import os
import shlex
import sys
from datetime import date, timedelta
from pathlib import Path

import pendulum
from airflow import DAG
from airflow.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from airflow.operators.bash import BashOperator
from airflow.utils.trigger_rule import TriggerRule

REPO_ROOT = Path(os.environ.get("STREAMREC_ROOT") or Path(__file__).resolve().parent.parent)
PIPELINE_CONF = Path(
    os.environ.get("STREAMREC_PIPELINE_CONF") or REPO_ROOT / "conf" / "pipeline" / "daily.yaml"
)
# Airflow puts the dags folder on sys.path, not the checkout that contains the package.
if str(REPO_ROOT) not in sys.path:
    sys.path.append(str(REPO_ROOT))

from streamrec_spark.errors import EXIT_FAILED, EXIT_INFRASTRUCTURE  # noqa: E402
from streamrec_spark.pipeline.config import load_pipeline_config  # noqa: E402
from streamrec_spark.pipeline.runner import feed_tiers  # noqa: E402
from streamrec_spark.pipeline.stages import (  # noqa: E402
    FEED_ALERT_STAGES,
    STANDARD_TIER,
    STAGES,
    PipelineRequest,
    Stage,
    stage_named,
)

DAG_ID = "streamrec_daily"
RETRIES = 2
RETRY_DELAY = timedelta(minutes=10)


class StageOperator(BashOperator):
    """A BashOperator whose retries apply to exit code 3 (input or infrastructure error) only.

    An exit code in ``continue_exit_codes`` is logged as a warning and the task succeeds. Any
    other non-zero exit raises AirflowFailException, which fails the task without retrying.
    """

    def __init__(self, *, continue_exit_codes: tuple[int, ...] = (), **kwargs):
        super().__init__(**kwargs)
        self.continue_exit_codes = tuple(continue_exit_codes)

    def execute(self, context):
        try:
            return super().execute(context)
        except AirflowSkipException:
            raise
        except AirflowException as exc:
            process = self.subprocess_hook.sub_process
            exit_code = process.returncode if process is not None else None
            if exit_code in self.continue_exit_codes:
                self.log.warning("stage %s exited with code %s; its failed results are recorded "
                                 "and the gate blocks on them", self.task_id, exit_code)
                return None
            if exit_code == EXIT_INFRASTRUCTURE:
                raise
            raise AirflowFailException(
                f"stage {self.task_id} exited with code {exit_code}; only exit "
                f"{EXIT_INFRASTRUCTURE} is retried"
            ) from exc


CONFIG = load_pipeline_config(PIPELINE_CONF, REPO_ROOT)
TIERS = feed_tiers(CONFIG.registry)


def stage_arguments(stage_name: str, ds: str, data_interval_end=None) -> str:
    """Return the shell-quoted arguments of a stage for the logical date ``ds`` (YYYY-MM-DD).

    ``data_interval_end`` (an aware datetime) becomes the ``--as-of`` instant of the
    validation and feature stages. So a cleared or backfilled run of an old date measures
    freshness against the end of that day, not against the time it runs.
    """
    as_of = data_interval_end.isoformat() if data_interval_end is not None else None
    request = PipelineRequest(date.fromisoformat(ds), as_of)
    return shlex.join(stage_named(stage_name).arguments(CONFIG, request))


def _command_template(stage: Stage) -> str:
    launcher = shlex.join((CONFIG.spark_submit, *CONFIG.spark_submit_options, stage.job_path(CONFIG)))
    return f"{launcher} {{{{ stage_arguments({stage.name!r}, ds, data_interval_end) }}}}"


def _standard_feed(stage: Stage) -> bool:
    return stage.feed is not None and TIERS.get(stage.feed) == STANDARD_TIER


with DAG(
    dag_id=DAG_ID,
    description="Validate the feeds, compute features, train, evaluate and gate one day's model",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "ml-recommendations", "retries": RETRIES, "retry_delay": RETRY_DELAY},
    user_defined_macros={"stage_arguments": stage_arguments},
    doc_md=__doc__,
    tags=["streamrec"],
) as dag:
    tasks = {}
    for stage in STAGES:
        tasks[stage.name] = StageOperator(
            task_id=stage.name,
            bash_command=_command_template(stage),
            cwd=str(REPO_ROOT),
            # A standard feed's missing input ends its task as skipped; BashOperator's default
            # skip code 99 is turned off for every other stage.
            skip_on_exit_code=EXIT_INFRASTRUCTURE if _standard_feed(stage) else None,
            continue_exit_codes=(EXIT_FAILED,) if stage.judged_by_gate else (),
            trigger_rule=(
                TriggerRule.NONE_FAILED if stage.name == "compute_features" else TriggerRule.ALL_SUCCESS
            ),
        )

    feed_tasks = [tasks[stage.name] for stage in STAGES if stage.feed is not None]
    chain_tasks = [tasks[stage.name] for stage in STAGES if stage.feed is None]
    feed_tasks >> chain_tasks[0]
    for upstream, downstream in zip(chain_tasks, chain_tasks[1:]):
        upstream >> downstream

    # A feed's alert runs only when its validation task failed, which is when the feed stops
    # the run. A standard feed that ends as skipped (exit 3) sends none, as in the runner.
    for stage in STAGES:
        if stage.feed is None:
            continue
        alert = FEED_ALERT_STAGES[stage.feed]
        tasks[stage.name] >> StageOperator(
            task_id=alert.name,
            bash_command=_command_template(alert),
            cwd=str(REPO_ROOT),
            skip_on_exit_code=None,
            trigger_rule=TriggerRule.ONE_FAILED,
        )
