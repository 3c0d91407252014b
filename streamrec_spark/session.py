"""SparkSession construction with Delta Lake configured."""

from __future__ import annotations

import getpass
import glob
import logging
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

DELTA_PACKAGE = "io.delta:delta-spark_2.12:3.3.2"
_REPO_ROOT = Path(__file__).resolve().parent.parent


def delta_jars_dir() -> Path:
    """Return the folder with the Delta jars that scripts/setup.sh resolved with Maven.

    STREAMREC_JARS_DIR overrides the project-local default ``.cache/jars``.
    """
    override = os.environ.get("STREAMREC_JARS_DIR")
    return Path(override) if override else _REPO_ROOT / ".cache" / "jars"


def local_catalog_dir() -> Path:
    """Return the folder that holds the empty database folders of a local-mode session."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry and no $USER
        user = "default"
    return Path(tempfile.gettempdir()) / f"streamrec-spark-catalog-{user}"


def delta_conf(conf: Mapping[str, str]) -> dict[str, str]:
    """Return the Spark settings that add Delta Lake, keeping any the caller already set.

    When the caller already ships Delta (``--packages`` or ``--jars`` naming delta-spark), the
    jars are left alone. Otherwise the project-local jars are used, and only when those are
    missing does Spark resolve the Maven package itself at start-up.
    """
    settings = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    }
    shipped = conf.get("spark.jars.packages", "") + "," + conf.get("spark.jars", "")
    if "delta-spark" not in shipped:
        jars = sorted(glob.glob(str(delta_jars_dir() / "*.jar")))
        if jars:
            settings["spark.jars"] = ",".join(filter(None, [conf.get("spark.jars"), *jars]))
        else:
            logger.warning(
                "no Delta jars in %s; Spark will resolve %s from Maven at start-up "
                "(run scripts/setup.sh to cache them)",
                delta_jars_dir(),
                DELTA_PACKAGE,
            )
            settings["spark.jars.packages"] = ",".join(
                filter(None, [conf.get("spark.jars.packages"), DELTA_PACKAGE])
            )
    return settings


def build_session(
    app_name: str,
    conf: Mapping[str, str] | None = None,
    master: str | None = None,
) -> SparkSession:
    """Build (or reuse) a SparkSession with Delta Lake and a UTC session time zone.

    ``conf`` is passed through to Spark unchanged; ``master`` defaults to whatever
    spark-submit set, or ``local[*]`` when the code runs outside spark-submit.
    """
    conf = dict(conf or {})
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    elif "spark.master" not in conf and not os.environ.get("SPARK_ENV_LOADED"):
        # Outside spark-submit there is no master yet; a plain `python -m` run gets local mode.
        builder = builder.config("spark.master", os.environ.get("STREAMREC_SPARK_MASTER", "local[*]"))
    local = (master or conf.get("spark.master") or "").startswith("local") or (
        not master and "spark.master" not in conf and not os.environ.get("SPARK_ENV_LOADED")
    )
    if local:
        # Python workers run on this machine, and the first python3 on PATH may lack numpy or
        # this package: use the driver's interpreter unless the caller chose one.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # Local mode has a few cores: Spark's defaults (200 shuffle partitions, 50 partitions
        # for Delta's log replay) mostly schedule empty tasks. Values given in ``conf`` win.
        conf = {
            "spark.sql.shuffle.partitions": "8",
            "spark.databricks.delta.snapshotPartitions": "4",
            # Local mode keeps its catalog in memory, so the folder Spark makes for each
            # database holds nothing. Its default is ./spark-warehouse, which would litter the
            # caller's working directory.
            "spark.sql.warehouse.dir": str(local_catalog_dir()),
            **conf,
        }
    settings = {
        "spark.ui.showConsoleProgress": "false",
        # Every timestamp comparison in the product is between instants; a UTC session makes the
        # conversions to local dates explicit (from_utc_timestamp with the contract's zone).
        "spark.sql.session.timeZone": "UTC",
        **conf,
        **delta_conf(conf),
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if spark.conf.get("spark.sql.session.timeZone") != "UTC":
        logger.warning(
            "spark.sql.session.timeZone was %s; setting it to UTC for this session",
            spark.conf.get("spark.sql.session.timeZone"),
        )
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    return spark
