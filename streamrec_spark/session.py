"""SparkSession construction with Delta Lake configured."""

from __future__ import annotations

import getpass
import glob
import importlib.resources
import logging
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pyspark
from pyspark.sql import SparkSession

from streamrec_spark.errors import InvalidRequestError, root_cause

logger = logging.getLogger(__name__)

DELTA_PACKAGE = "io.delta:delta-spark_2.12:3.3.2"
_REPO_ROOT = Path(__file__).resolve().parent.parent


def delta_jars_dir() -> Path:
    """Return the folder with the Delta jars that scripts/setup.sh resolved with Maven.

    STREAMREC_JARS_DIR overrides the project-local default ``.cache/jars``.
    """
    override = os.environ.get("STREAMREC_JARS_DIR")
    return Path(override) if override else _REPO_ROOT / ".cache" / "jars"


def catalog_scratch_dir() -> Path:
    """Return the folder for the empty database folders of an in-memory catalog."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry and no $USER
        user = "default"
    return Path(tempfile.gettempdir()) / f"streamrec-spark-catalog-{user}"


def _in_memory_catalog_configured(conf: Mapping[str, str]) -> bool:
    """Return False when the warehouse folder is set outside ``conf``, or the catalog is Hive.

    spark-submit and spark-defaults.conf pass settings as JVM system properties, which Python
    cannot see until the JVM runs. They are checked when the JVM is already running: under
    spark-submit, or in a process that started Spark before. With a Hive metastore the warehouse folder contains
    managed tables, and Spark may take it from hive-site.xml, so it is left alone.
    """
    from pyspark import SparkContext

    implementation = conf.get("spark.sql.catalogImplementation")
    # Starting the JVM here, before the builder's settings exist, would leave spark.jars off
    # the driver's classpath, so a JVM is only asked when one is already running.
    if SparkContext._gateway is not None or os.environ.get("PYSPARK_GATEWAY_PORT"):
        SparkContext._ensure_initialized()
        jvm_conf = SparkContext._jvm.org.apache.spark.SparkConf(True)
        if jvm_conf.contains("spark.sql.warehouse.dir"):
            return True
        implementation = implementation or jvm_conf.get("spark.sql.catalogImplementation", "in-memory")
    return (implementation or "in-memory") != "in-memory"


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
    if "delta-spark" in shipped and "streamrec-spark-jvm" not in shipped:
        # The caller ships Delta, but the accumulators of jvm/ are still this project's own.
        own = sorted(glob.glob(str(delta_jars_dir() / "streamrec-spark-jvm-*.jar")))
        if own:
            settings["spark.jars"] = ",".join(filter(None, [conf.get("spark.jars"), *own]))
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


# Names a log4j2 file for the JVM that build_session starts; an empty value keeps Spark's
# default settings (INFO, with stack traces). scripts/spark-submit.sh reads the same variable.
LOG4J2_CONF_ENV = "STREAMREC_LOG4J2_CONF"
DRIVER_JAVA_OPTIONS = "spark.driver.extraJavaOptions"
# -Dlog4j2.configurationFile, its older name -Dlog4j.configurationFile, and Log4j 1's option.
_LOG4J_OPTION = re.compile(r"-Dlog4j2?\.configuration(File)?=")


def console_log4j_file(environ: Mapping[str, str] | None = None) -> Path | None:
    """Return the log4j2 file for a JVM started by a console command, or None for Spark's own.

    The default is ``log4j2.properties`` of this package (WARN, no stack traces), which a
    built wheel ships as package data. ``$STREAMREC_LOG4J2_CONF`` names another file.
    """
    environ = os.environ if environ is None else environ
    override = environ.get(LOG4J2_CONF_ENV)
    if override is not None:
        return Path(override).expanduser().resolve() if override else None
    resource = importlib.resources.files("streamrec_spark") / "log4j2.properties"
    # NOTE: a package imported from a zip file has no path that the JVM could read.
    return resource if isinstance(resource, Path) and resource.is_file() else None


def _user_log4j_setting(conf: Mapping[str, str], environ: Mapping[str, str]) -> str | None:
    """Name where the user already configured the driver's logging or Java options, or None."""
    if _LOG4J_OPTION.search(conf.get(DRIVER_JAVA_OPTIONS, "")):
        return f"{DRIVER_JAVA_OPTIONS} in the session settings"
    for name in ("PYSPARK_SUBMIT_ARGS", "SPARK_SUBMIT_OPTS", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS"):
        value = environ.get(name, "")
        if "log4j" in value or (name == "PYSPARK_SUBMIT_ARGS" and (
            "--driver-java-options" in value or DRIVER_JAVA_OPTIONS in value
        )):
            return f"${name}"
    spark_home = environ.get("SPARK_HOME") or str(Path(pyspark.__file__).resolve().parent)
    conf_dir = Path(environ.get("SPARK_CONF_DIR") or Path(spark_home) / "conf")
    if (conf_dir / "log4j2.properties").is_file():
        return str(conf_dir / "log4j2.properties")
    defaults = conf_dir / "spark-defaults.conf"
    if defaults.is_file() and DRIVER_JAVA_OPTIONS in defaults.read_text(encoding="utf-8", errors="replace"):
        # A --conf from the session would replace the file's value instead of adding to it.
        return str(defaults)
    return None


def driver_log_settings(
    conf: Mapping[str, str], jvm_running: bool, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Return the ``spark.driver.extraJavaOptions`` that points the JVM at the log4j2 file.

    The option goes in front of the caller's own Java options. Returns no setting when the JVM
    already runs (under spark-submit, or started earlier in this process), when the caller or
    the environment already configures logging (see :func:`_user_log4j_setting`), and when
    :func:`console_log4j_file` returns None.
    """
    environ = os.environ if environ is None else environ
    if jvm_running:
        return {}
    user_setting = _user_log4j_setting(conf, environ)
    if user_setting is not None:
        logger.debug("leaving the JVM's logging settings alone: %s configures them", user_setting)
        return {}
    log4j_file = console_log4j_file(environ)
    if log4j_file is None:
        return {}
    option = f"-Dlog4j2.configurationFile={log4j_file.as_uri()}"
    user_options = conf.get(DRIVER_JAVA_OPTIONS, "").strip()
    return {DRIVER_JAVA_OPTIONS: f"{option} {user_options}".strip()}


def _jvm_running() -> bool:
    from pyspark import SparkContext

    return SparkContext._gateway is not None or bool(os.environ.get("PYSPARK_GATEWAY_PORT"))


def build_session(
    app_name: str,
    conf: Mapping[str, str] | None = None,
    master: str | None = None,
) -> SparkSession:
    """Build (or reuse) a SparkSession with Delta Lake and a UTC session time zone.

    ``conf`` is passed through to Spark unchanged; ``master`` defaults to whatever
    spark-submit set, or ``local[*]`` when the code runs outside spark-submit. When this call
    starts the JVM, the driver logs at WARN without stack traces (see
    :func:`driver_log_settings`) unless the caller configured its logging.
    """
    conf = dict(conf or {})
    # What the caller set, named in the error when Spark fails to start with it.
    caller_settings = [f"--master {master}"] if master else []
    caller_settings += [f"--conf {key}={value}" for key, value in conf.items()]
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
        # A local driver serves only this machine, so it and its web UI listen on the loopback
        # interface, not on every address. Takes effect when this call starts the JVM.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # Local mode has a few cores: Spark's defaults (200 shuffle partitions, 50 partitions
        # for Delta's log replay) mostly schedule empty tasks. Values given in ``conf`` win.
        # A task result above spark.task.maxDirectResultSize (1m) goes through the block
        # manager and comes back over a loopback connection, which copies the key sets of the
        # validation taps (16 MB per million rows) several more times. In one JVM a direct
        # result is handed over in memory. Spark caps the value at spark.rpc.message.maxSize.
        conf = {
            "spark.sql.shuffle.partitions": "8",
            "spark.databricks.delta.snapshotPartitions": "4",
            "spark.task.maxDirectResultSize": "128m",
            **conf,
        }
    if "spark.sql.warehouse.dir" not in conf and not _in_memory_catalog_configured(conf):
        # The in-memory catalog keeps nothing in the folders it makes for each database, and
        # its default, ./spark-warehouse, would litter the caller's working directory.
        conf["spark.sql.warehouse.dir"] = str(catalog_scratch_dir())
    settings = {
        "spark.ui.showConsoleProgress": "false",
        # Every timestamp comparison in the product is between instants; a UTC session makes the
        # conversions to local dates explicit (from_utc_timestamp with the contract's zone).
        "spark.sql.session.timeZone": "UTC",
        **conf,
        **delta_conf(conf),
        **driver_log_settings(conf, _jvm_running()),
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
        # Spark checks SQL settings when the session state is built, on the first use.
        zone = spark.conf.get("spark.sql.session.timeZone")
    except Exception as exc:  # py4j, PySpark and JVM errors of several unrelated types
        if not caller_settings:
            raise
        raise InvalidRequestError(
            f"Spark failed to start with the given settings ({', '.join(caller_settings)}): "
            f"{root_cause(exc)}; check those values"
        ) from exc
    if zone != "UTC":
        logger.warning("spark.sql.session.timeZone was %s; setting it to UTC for this session", zone)
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    return spark
