"""The daily pipeline: its configuration, its stages in order, and a runner for one date.

``stages.STAGES`` lists the stages; ``runner.run_pipeline`` runs them as subprocesses;
``scripts/run_daily.sh`` and ``dags/streamrec_daily.py`` run the same stage commands from cron
and Airflow.
"""

from __future__ import annotations

from streamrec_spark.pipeline.config import PipelineConfig, load_pipeline_config
from streamrec_spark.pipeline.stages import STAGES, Stage

__all__ = ["STAGES", "PipelineConfig", "Stage", "load_pipeline_config"]
