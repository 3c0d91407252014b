"""MLflow record of each gate decision, and registration of the models that pass.

Every decision becomes one MLflow run in the gate's experiment: params (gate, model, champion
and each rule's thresholds), metrics (candidate values, differences, probe measurements), tags
(decision, reason codes, gate run id) and the driver's whole record as ``decision.json``. On a
pass the driver requests registration. The model folder is then wrapped as an MLflow pyfunc model
(:mod:`streamrec_spark.gate.mlflow_model`) and logged under the run's ``model`` artifact path, a
new version of the registered model is created from it, and the registered model's ``champion``
alias moves to that version.

The MLflow record is secondary to the Delta gate tables, which hold the decision itself. A
tracking or registry store that fails is therefore reported in :class:`TrackingResult` and
logged, and never raised to the caller.

The module talks to MLflow through :class:`mlflow.MlflowClient` objects built with explicit
tracking and registry URIs, never through the fluent API's process-wide active run and URIs,
so two stores used in one process stay apart. MLflow is imported on first use: it takes
seconds to import and it is needed only when a decision is recorded. MLflow reads its HTTP
timeout, retries and backoff for a tracking server only from environment variables, so
:func:`record_decision` sets them from the gate configuration while it runs, unless the
environment sets them already.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from streamrec_spark.errors import InputDataError, InvalidRequestError
from streamrec_spark.gate.config import (
    DEFAULT_HTTP_BACKOFF_FACTOR,
    DEFAULT_HTTP_MAX_RETRIES,
    DEFAULT_HTTP_TIMEOUT_SECONDS,
    GateConfig,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)

DECISION_ARTIFACT = "decision.json"
MODEL_ARTIFACT_PATH = "model"
CHAMPION_ALIAS = "champion"
# Error code of a registered model folder that cannot be downloaded or loaded.
MODEL_UNAVAILABLE = "CHAMPION_MODEL_UNAVAILABLE"
PASS = "PASS"

# Stores that run inside this process against a database. MLflow gives their experiments a
# default artifact root of ./mlruns in the current directory, so experiments created here get
# one under the warehouse instead.
_DATABASE_SCHEMES = frozenset({"sqlite", "postgresql", "mysql", "mssql"})
_SERVER_SCHEMES = frozenset({"http", "https"})
# Metric and param names that every MLflow store accepts (the colon is invalid on Windows).
_INVALID_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_.\- ]+")
_MAX_KEY_LENGTH = 250  # mlflow.utils.validation.MAX_ENTITY_KEY_LENGTH
_MAX_PARAM_LENGTH = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH
_MAX_TAG_LENGTH = 8000  # mlflow.utils.validation.MAX_TAG_VAL_LENGTH
_PARAMS_AND_TAGS_PER_BATCH = 100  # mlflow.utils.validation.MAX_PARAMS_TAGS_PER_BATCH
_METRICS_PER_BATCH = 1000  # mlflow.utils.validation.MAX_METRICS_PER_BATCH
_THRESHOLD_FIELDS = ("floor", "max_regression", "limit")
_MAX_CAUSE_LENGTH = 300
HTTP_TIMEOUT_ENV = "MLFLOW_HTTP_REQUEST_TIMEOUT"
HTTP_MAX_RETRIES_ENV = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
HTTP_BACKOFF_FACTOR_ENV = "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"


@dataclass(frozen=True)
class TrackingConfig:
    """Tracking and registry stores of the gate, with its experiment and registered model."""

    tracking_uri: str | None  # None: default_tracking_uri(warehouse)
    registry_uri: str | None  # None: same as the tracking URI
    experiment: str  # e.g. "streamrec_v2_gate"
    registered_model_name: str  # e.g. "streamrec_v2"
    # Per request to an MLflow server: timeout of each attempt in seconds, retries after the
    # first attempt, and the exponential backoff factor in seconds.
    http_timeout_seconds: int = DEFAULT_HTTP_TIMEOUT_SECONDS
    http_max_retries: int = DEFAULT_HTTP_MAX_RETRIES
    http_backoff_factor: int = DEFAULT_HTTP_BACKOFF_FACTOR


@dataclass(frozen=True)
class TrackingResult:
    """Outcome of recording one decision.

    ``run_id`` is the MLflow run, or None when no run could be created. ``registered_version``
    is set only when registration was requested and succeeded. ``error`` is a one-line message
    naming the store that failed and the fix. It is set together with ``run_id`` when the run
    was recorded but registration or a later step failed.
    """

    run_id: str | None
    registered_version: int | None
    error: str | None


@dataclass
class _Step:
    """The store being used and the action under way, for the message if it fails."""

    store_uri: str
    action: str


def default_tracking_uri(warehouse: str) -> str:
    """Return the URI of the local sqlite store at ``<warehouse>/mlflow/mlflow.db``.

    Its experiments keep their artifacts under ``<warehouse>/mlflow/artifacts``. ``warehouse``
    is a local folder or a ``file:`` URI, and a relative folder is resolved against the current
    directory. Raises InvalidRequestError for a warehouse on another file system (for example
    ``s3a://``), where a sqlite database cannot live.
    """
    folder = _local_folder(warehouse)
    if folder is None:
        raise InvalidRequestError(
            f"no default MLflow tracking store for warehouse '{warehouse}': sqlite needs a local "
            "folder; set a tracking URI (for example http://127.0.0.1:5000) in the gate "
            "configuration"
        )
    return "sqlite:///" + (folder / "mlflow" / "mlflow.db").as_posix()


def tracking_config(
    config: GateConfig, tracking_uri: str | None = None, registry_uri: str | None = None
) -> TrackingConfig:
    """Build the gate's MLflow settings; a URI given here overrides the gate file's."""
    return TrackingConfig(
        tracking_uri=tracking_uri or config.mlflow.tracking_uri,
        registry_uri=registry_uri or config.mlflow.registry_uri,
        experiment=config.mlflow.experiment,
        registered_model_name=config.registered_model_name,
        http_timeout_seconds=config.mlflow.http_timeout_seconds,
        http_max_retries=config.mlflow.http_max_retries,
        http_backoff_factor=config.mlflow.http_backoff_factor,
    )


@contextmanager
def http_settings(config: TrackingConfig) -> Iterator[dict[str, str]]:
    """Set MLflow's HTTP timeout, retries and backoff from ``config`` for the ``with`` block.

    A variable that the environment sets already keeps its value. The variables set here are
    removed again when the block ends. Yields the values in effect, by variable name.
    """
    requested = {
        HTTP_TIMEOUT_ENV: str(config.http_timeout_seconds),
        HTTP_MAX_RETRIES_ENV: str(config.http_max_retries),
        HTTP_BACKOFF_FACTOR_ENV: str(config.http_backoff_factor),
    }
    applied = {name: value for name, value in requested.items() if name not in os.environ}
    os.environ.update(applied)
    try:
        yield {name: os.environ[name] for name in requested}
    finally:
        for name, value in applied.items():
            if os.environ.get(name) == value:
                del os.environ[name]


def record_decision(
    config: TrackingConfig,
    warehouse: str,
    record: dict,
    model_dir: str | None,
    register: bool,
) -> TrackingResult:
    """Record one gate decision as an MLflow run, and register the model when asked.

    ``record`` is the gate driver's JSON-able decision record. Non-finite numbers are stored as
    null in ``decision.json`` and left out of the run's metrics. The driver sets ``register``
    only on a pass. The folder ``model_dir`` is then logged as an MLflow pyfunc model under the
    run's ``model`` artifacts, and a new version of ``config.registered_model_name`` is created
    from it. The registered model is created when absent, and its ``champion`` alias moves to
    the new version. Requests to an MLflow server use the HTTP settings of ``config``
    (:func:`http_settings`).

    Raises InvalidRequestError before touching any store when the record lacks its
    identifying keys, or when ``register`` is set for a decision other than PASS or for a
    ``model_dir`` that is not an existing folder. Failures of the tracking or registry store,
    and a model folder that cannot be loaded, are returned in ``TrackingResult.error`` and
    logged, never raised.
    """
    _check_request(record, model_dir, register)
    with http_settings(config) as settings:
        logger.debug("MLflow HTTP settings: %s", settings)
        return _record(config, warehouse, record, model_dir, register)


def download_model_folder(
    config: TrackingConfig, warehouse: str, name: str, version: int, destination: str | Path
) -> Path:
    """Download the saved model folder of version ``version`` of the registered model ``name``.

    The folder is the ``streamrec_model`` artifact of the pyfunc model that the gate registered
    (see :mod:`streamrec_spark.gate.mlflow_model`). It is downloaded from the version's source
    in the artifact store into ``destination``, and its local path is returned. The stores are
    those of ``config``, as for :func:`record_decision`. Raises InputDataError
    (``CHAMPION_MODEL_UNAVAILABLE``, exit 3) with the store, the version and the fix when the
    registry cannot be read or the version or its artifacts are missing.
    """
    from streamrec_spark.gate.mlflow_model import MODEL_FOLDER_ARTIFACT

    tracking_uri = config.tracking_uri or default_tracking_uri(warehouse)
    registry_uri = config.registry_uri or tracking_uri
    label = f"version {version} of registered model '{name}'"
    step = _Step(registry_uri, f"reading {label}")
    # MLflow and the stores behind it (SQLAlchemy, HTTP, file system, object stores) raise
    # exception types that vary by store, so the handler is broad on purpose.
    try:
        with http_settings(config):
            client = _open_client(tracking_uri, registry_uri)
            model_version = client.get_model_version(name, str(version))
            source = model_version.source.rstrip("/")
            step = _Step(tracking_uri, f"reading {source}/MLmodel of {label}")
            # MLflow keeps an artifact folder under its own base name, so the MLmodel file
            # names where the saved model folder is inside the pyfunc model.
            mlmodel_file = _download(
                f"{source}/MLmodel", Path(destination) / "MLmodel-file", tracking_uri, registry_uri
            )
            folder = _pyfunc_artifact_path(mlmodel_file, MODEL_FOLDER_ARTIFACT)
            step = _Step(tracking_uri, f"downloading {source}/{folder} of {label}")
            local = _download(
                f"{source}/{folder}", Path(destination) / "model", tracking_uri, registry_uri
            )
    except Exception as error:
        network_error = _network_cause(error)
        reported = network_error or error
        cause = _redact_text(" ".join(str(reported).split()) or "no message", step.store_uri)
        if len(cause) > _MAX_CAUSE_LENGTH:
            cause = cause[: _MAX_CAUSE_LENGTH - 3] + "..."
        if network_error is not None:
            fix = _fix_hint(step.store_uri)
        else:
            fix = "restore that version and its artifacts in MLflow from a backup"
        logger.debug("MLflow failure traceback", exc_info=error)
        raise InputDataError(
            f"MLflow store '{_redact(step.store_uri)}' failed while {step.action}: "
            f"{type(reported).__name__}: {cause}; {fix}",
            error_code=MODEL_UNAVAILABLE,
        ) from error
    logger.info("downloaded the saved folder of %s to %s", label, local)
    return Path(local)


def _download(artifact_uri: str, destination: Path, tracking_uri: str, registry_uri: str) -> Path:
    from mlflow.artifacts import download_artifacts

    return Path(
        download_artifacts(
            artifact_uri=artifact_uri,
            dst_path=str(destination),
            tracking_uri=tracking_uri,
            registry_uri=registry_uri,
        )
    )


def _pyfunc_artifact_path(mlmodel_file: Path, artifact: str) -> str:
    """Return the path of ``artifact`` inside a pyfunc model, read from its MLmodel file."""
    import yaml

    document = yaml.safe_load(mlmodel_file.read_text(encoding="utf-8")) or {}
    flavor = (document.get("flavors") or {}).get("python_function") or {}
    path = ((flavor.get("artifacts") or {}).get(artifact) or {}).get("path")
    if not isinstance(path, str) or not path:
        raise ValueError(
            f"the MLmodel file lists no '{artifact}' artifact, so this is not a model the gate "
            "registered"
        )
    return path.strip("/")


def _record(
    config: TrackingConfig,
    warehouse: str,
    record: dict,
    model_dir: str | None,
    register: bool,
) -> TrackingResult:
    document = json.dumps(_json_safe(record), indent=2, sort_keys=True, allow_nan=False)
    params = _build_params(record)
    metrics, skipped = _build_metrics(record)
    tags = _build_tags(record)
    if skipped:
        logger.warning(
            "gate run %s: metrics not logged to MLflow because their values are not finite "
            "(kept as null in %s): %s",
            record["run_id"],
            DECISION_ARTIFACT,
            ", ".join(skipped),
        )

    tracking_uri = config.tracking_uri
    if tracking_uri is None:
        try:
            tracking_uri = default_tracking_uri(warehouse)
        except InvalidRequestError as error:
            logger.error("%s", error)
            return TrackingResult(run_id=None, registered_version=None, error=str(error))
    registry_uri = config.registry_uri if config.registry_uri is not None else tracking_uri

    for uri, role in ((tracking_uri, "tracking"), (registry_uri, "registry")):
        if not uri.strip():
            step = _Step(uri, f"opening the {role} store")
            error = ValueError("the URI is empty")
            return _failure(step, error, run_id=None, registered_version=None)

    step = _Step(tracking_uri, "opening the tracking store")
    run_id: str | None = None
    client: MlflowClient | None = None
    # Any exception from here on comes from MLflow or the store behind it (SQLAlchemy, HTTP,
    # file system), whose exception types vary by store, so the handlers are broad on purpose.
    try:
        client = _open_client(tracking_uri, registry_uri)
        artifact_location = _artifact_location(tracking_uri, warehouse)
        step.action = f"getting or creating experiment '{config.experiment}'"
        experiment_id = _ensure_experiment(client, config.experiment, artifact_location)
        step.action = "creating the run"
        run_id = _create_run(client, experiment_id, record, tags)
        step.action = f"logging params, metrics and {DECISION_ARTIFACT} to run {run_id}"
        _log_record(client, run_id, params, metrics, document)
        if register:
            step.action = f"logging the model folder '{model_dir}' as a pyfunc model to run {run_id}"
            _log_pyfunc_model(client, run_id, str(model_dir))
        step.action = f"finishing run {run_id}"
        client.set_terminated(run_id, status="FINISHED")
    except InputDataError as error:
        # The folder is not a loadable model: the store is fine, so the message names the model.
        if client is not None and run_id is not None:
            _mark_failed(client, run_id)
        message = (
            f"model folder '{model_dir}' cannot be registered: {error}. The decision is in MLflow "
            f"run {run_id}; save the model again and gate it again"
        )
        logger.error("%s", message)
        return TrackingResult(run_id=run_id, registered_version=None, error=message)
    except Exception as error:
        if client is not None and run_id is not None:
            _mark_failed(client, run_id)
        return _failure(step, error, run_id=run_id, registered_version=None)
    logger.info(
        "gate run %s: recorded decision %s of model %s as MLflow run %s in %s",
        record["run_id"],
        record["decision"],
        record["model_id"],
        run_id,
        _redact(tracking_uri),
    )
    if not register:
        return TrackingResult(run_id=run_id, registered_version=None, error=None)

    model_name = config.registered_model_name
    step = _Step(registry_uri, f"registering model '{model_name}'")
    version: int | None = None
    try:
        version = _create_version(client, model_name, run_id, record, step)
        step.action = f"pointing alias '{CHAMPION_ALIAS}' of '{model_name}' at version {version}"
        client.set_registered_model_alias(model_name, CHAMPION_ALIAS, str(version))
        step = _Step(tracking_uri, f"tagging run {run_id} with its model version")
        client.set_tag(run_id, "registered_model_version", str(version))
    except Exception as error:
        return _failure(step, error, run_id=run_id, registered_version=version)
    logger.info(
        "gate run %s: registered model %s as version %d of '%s' in %s",
        record["run_id"],
        record["model_id"],
        version,
        model_name,
        _redact(registry_uri),
    )
    return TrackingResult(run_id=run_id, registered_version=version, error=None)


def _check_request(record: Mapping[str, Any], model_dir: str | None, register: bool) -> None:
    """Raise InvalidRequestError for an incomplete record or an invalid registration request."""
    for key in ("gate", "model_id", "run_id", "decision"):
        value = record.get(key)
        if not isinstance(value, str) or not value:
            raise InvalidRequestError(
                f"the gate record has no '{key}' (found {value!r}). The gate driver must set "
                "gate, model_id, run_id and decision before recording the decision in MLflow"
            )
    if not register:
        return
    if record["decision"] != PASS:
        raise InvalidRequestError(
            f"model {record['model_id']} cannot be registered: gate run {record['run_id']} "
            f"decided {record['decision']}, and only a {PASS} is registered"
        )
    if model_dir is None or not Path(model_dir).is_dir():
        raise InvalidRequestError(
            f"model folder '{model_dir}' of model {record['model_id']} not found. Pass the "
            "folder the candidate was saved to"
        )


def _local_folder(location: str) -> Path | None:
    """Return the absolute local folder of a path or ``file:`` URI, else None."""
    parts = urlsplit(location)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            return None
        return Path(unquote(parts.path)).absolute()
    # A one-letter scheme is a Windows drive letter, not a URI scheme.
    if len(parts.scheme) > 1:
        return None
    return Path(location).absolute()


def _artifact_location(tracking_uri: str, warehouse: str) -> str | None:
    """Return the artifact root for experiments created in a database store, else None."""
    if urlsplit(tracking_uri).scheme.split("+")[0] not in _DATABASE_SCHEMES:
        return None
    folder = _local_folder(warehouse)
    if folder is None:
        # NOTE: MLflow then uses its default root, ./mlruns under the current directory.
        logger.warning(
            "warehouse '%s' is not a local folder, so new MLflow experiments in %s keep "
            "MLflow's default artifact root",
            warehouse,
            _redact(tracking_uri),
        )
        return None
    return (folder / "mlflow" / "artifacts").as_uri()


def _open_client(tracking_uri: str, registry_uri: str) -> MlflowClient:
    """Import MLflow without its usage telemetry and return a client bound to both URIs."""
    # MLflow 3 sends usage telemetry to an external host unless it is disabled before
    # `import mlflow`. An explicit MLFLOW_DISABLE_TELEMETRY or DO_NOT_TRACK setting wins.
    if "DO_NOT_TRACK" not in os.environ:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow import MlflowClient

    # MLflow logs each database migration and engine creation at INFO. Loggers that the
    # application gave a level keep it.
    for name in ("mlflow.store.db.utils", "alembic"):
        migration_logger = logging.getLogger(name)
        if migration_logger.level == logging.NOTSET:
            migration_logger.setLevel(logging.WARNING)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)


def _ensure_experiment(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    """Return the id of the active experiment ``name``, creating it when absent."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, artifact_location=artifact_location)
        except MlflowException as error:
            # Another gate run created it between the lookup and the creation.
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage != "active":
        raise ValueError(
            f"experiment '{name}' is deleted. Restore it with `mlflow experiments restore "
            f"--experiment-id {experiment.experiment_id}` or configure another experiment name"
        )
    return experiment.experiment_id


def _create_run(
    client: MlflowClient, experiment_id: str, record: Mapping[str, Any], tags: dict[str, str]
) -> str:
    run = client.create_run(
        experiment_id,
        run_name=f"{record['model_id']} {record['decision']}",
        tags=tags,
    )
    return run.info.run_id


def _log_record(
    client: MlflowClient,
    run_id: str,
    params: dict[str, str],
    metrics: dict[str, float],
    document: str,
) -> None:
    from mlflow.entities import Metric, Param

    timestamp = int(time.time() * 1000)
    param_entities = [Param(key, value) for key, value in params.items()]
    metric_entities = [Metric(key, value, timestamp, 0) for key, value in metrics.items()]
    for start in range(0, len(param_entities), _PARAMS_AND_TAGS_PER_BATCH):
        client.log_batch(run_id, params=param_entities[start : start + _PARAMS_AND_TAGS_PER_BATCH])
    for start in range(0, len(metric_entities), _METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=metric_entities[start : start + _METRICS_PER_BATCH])
    client.log_text(run_id, document, DECISION_ARTIFACT)


def _log_pyfunc_model(client: MlflowClient, run_id: str, model_dir: str) -> None:
    """Log ``model_dir`` as an MLflow pyfunc model under the run's ``model`` artifact path.

    Raises InputDataError when the folder is not a loadable streamrec model.
    """
    from streamrec_spark.gate.mlflow_model import save_pyfunc_model

    with tempfile.TemporaryDirectory(prefix="streamrec-pyfunc-") as folder:
        local = Path(folder) / MODEL_ARTIFACT_PATH
        save_pyfunc_model(model_dir, local)
        client.log_artifacts(run_id, str(local), MODEL_ARTIFACT_PATH)


def _create_version(
    client: MlflowClient, name: str, run_id: str, record: Mapping[str, Any], step: _Step
) -> int:
    """Create a version of ``name`` from the run's model artifacts and return its number."""
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(
            name, description="Models that passed the streamrec-spark validation gate."
        )
        logger.info("created registered model '%s'", name)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    source = client.get_run(run_id).info.artifact_uri.rstrip("/") + "/" + MODEL_ARTIFACT_PATH
    step.action = f"creating a version of registered model '{name}' from run {run_id}"
    model_version = client.create_model_version(
        name,
        source,
        run_id=run_id,
        tags={
            "gate": record["gate"],
            "gate_run_id": record["run_id"],
            "model_id": record["model_id"],
        },
        description=f"Passed gate {record['gate']} in gate run {record['run_id']}.",
    )
    return int(model_version.version)


def _mark_failed(client: MlflowClient, run_id: str) -> None:
    try:
        client.set_terminated(run_id, status="FAILED")
    except Exception:
        # The store failed once already, and that first error is the one reported.
        logger.debug("could not mark MLflow run %s as FAILED", run_id, exc_info=True)


def _failure(
    step: _Step, error: Exception, *, run_id: str | None, registered_version: int | None
) -> TrackingResult:
    """Log a store failure and return it as a TrackingResult with a one-line message."""
    # MLflow wraps a refused or timed-out connection in three layers of HTTP client errors
    # whose text is mostly the URL. The socket error at the bottom names the cause.
    reported = _network_cause(error) or error
    cause = _redact_text(" ".join(str(reported).split()) or "no message", step.store_uri)
    if len(cause) > _MAX_CAUSE_LENGTH:
        cause = cause[: _MAX_CAUSE_LENGTH - 3] + "..."
    message = (
        f"MLflow store '{_redact(step.store_uri)}' failed while {step.action}: "
        f"{type(reported).__name__}: {cause}; {_fix_hint(step.store_uri)}"
    )
    logger.error("%s", message)
    logger.debug("MLflow failure traceback", exc_info=error)
    return TrackingResult(run_id=run_id, registered_version=registered_version, error=message)


def _network_cause(error: BaseException) -> OSError | None:
    """Return the socket-level error (refused, timed out, unknown host) behind ``error``, if any."""
    seen: set[int] = set()
    current: BaseException | None = error
    deepest: BaseException | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        deepest = current
        current = current.__cause__ or current.__context__
    return deepest if isinstance(deepest, OSError) and deepest is not error else None


def _fix_hint(uri: str) -> str:
    scheme = urlsplit(uri).scheme.split("+")[0]
    if scheme == "sqlite":
        return (
            "check that the database file's folder can be created and written, or configure "
            "another tracking URI"
        )
    if scheme in _SERVER_SCHEMES:
        return (
            "check that the MLflow server at that address is running and reachable, or raise "
            "mlflow.http_timeout_seconds and mlflow.http_max_retries in the gate file"
        )
    if scheme in _DATABASE_SCHEMES:
        return "check that the database is reachable and its credentials are valid"
    return (
        "configure a supported tracking URI, for example sqlite:////absolute/path/mlflow.db "
        "or http://127.0.0.1:5000"
    )


def _redact(uri: str) -> str:
    """Replace the password of a URI such as postgresql://user:secret@host/db with ***."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _redact_text(text: str, uri: str) -> str:
    """Replace the password of ``uri`` with *** wherever ``text`` repeats it."""
    password = urlsplit(uri).password
    return text.replace(password, "***") if password else text


def _json_safe(value: Any) -> Any:
    """Return a copy of ``value`` that strict JSON can encode: non-finite numbers become None."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_safe(item) for item in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def _finite(value: Any) -> float | None:
    """Return ``value`` as a float when it is a finite number (booleans excluded), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _name_segment(text: Any) -> str:
    """Turn ``text`` into one segment of a metric or param name that MLflow accepts."""
    segment = _INVALID_NAME_CHARACTERS.sub("_", str(text)).strip(" .")
    return segment or "_"


class _KeyNames:
    """Builds MLflow keys from name segments, keeping two different sources apart.

    Two rules whose names differ only in characters that MLflow rejects, for example
    ``behavioral:x`` and ``behavioral/x``, would map to one key. The second one gets a ``_2``
    suffix, so it does not overwrite the first.
    """

    def __init__(self) -> None:
        self._sources: dict[str, tuple[str, ...]] = {}

    def key(self, *segments: Any) -> str:
        source = tuple(str(segment) for segment in segments)
        base = "/".join(_name_segment(segment) for segment in segments)[:_MAX_KEY_LENGTH]
        candidate = base
        counter = 2
        while self._sources.setdefault(candidate, source) != source:
            suffix = f"_{counter}"
            candidate = base[: _MAX_KEY_LENGTH - len(suffix)] + suffix
            counter += 1
        return candidate


def _text(value: Any, limit: int) -> str:
    text = "none" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dicts(items: Any) -> Iterable[Mapping[str, Any]]:
    """Return the mappings of a list from the record; anything else gives nothing."""
    if not isinstance(items, (list, tuple)):
        return ()
    return [item for item in items if isinstance(item, Mapping)]


def _build_params(record: Mapping[str, Any]) -> dict[str, str]:
    """Return the run's params: gate, model, champion, thresholds and data-validation scalars."""
    names = _KeyNames()
    params = {
        names.key("gate"): _text(record["gate"], _MAX_PARAM_LENGTH),
        names.key("model_id"): _text(record["model_id"], _MAX_PARAM_LENGTH),
        names.key("champion_model_id"): _text(record.get("champion_model_id"), _MAX_PARAM_LENGTH),
    }
    for comparison in _dicts(record.get("comparisons")):
        for field in _THRESHOLD_FIELDS:
            value = comparison.get(field)
            if value is not None:
                params[names.key(field, comparison.get("rule"))] = _text(value, _MAX_PARAM_LENGTH)
    for test in _dicts(record.get("behavioral")):
        if test.get("threshold") is not None:
            key = names.key("behavioral_threshold", test.get("test_name"))
            params[key] = _text(test["threshold"], _MAX_PARAM_LENGTH)
    data_validation = record.get("data_validation")
    if isinstance(data_validation, Mapping):
        for name, value in data_validation.items():
            if value is None or isinstance(value, (bool, str, numbers.Real)):
                params[names.key("data_validation", name)] = _text(value, _MAX_PARAM_LENGTH)
    return params


def _build_metrics(record: Mapping[str, Any]) -> tuple[dict[str, float], list[str]]:
    """Return the run's finite metrics and the names of those skipped as NaN or infinite."""
    names = _KeyNames()
    metrics: dict[str, float] = {}
    skipped: list[str] = []

    def add(value: Any, *segments: Any) -> None:
        if value is None:
            return
        key = names.key(*segments)
        number = _finite(value)
        if number is not None:
            metrics[key] = number
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            skipped.append(key)

    comparisons = list(_dicts(record.get("comparisons")))
    for comparison in comparisons:
        rule = comparison.get("rule")
        add(comparison.get("candidate_value"), "candidate", rule)
        add(comparison.get("champion_value"), "champion", rule)
        add(comparison.get("difference"), "difference", rule)
    add(sum(1 for item in comparisons if item.get("passed") is not True), "failed_comparisons")

    tests = list(_dicts(record.get("behavioral")))
    for test in tests:
        name = test.get("test_name")
        add(test.get("observed"), "behavioral", name, "observed")
        add(1.0 if test.get("passed") is True else 0.0, "behavioral", name, "passed")
        add(test.get("failures"), "behavioral", name, "failures")
        add(test.get("cases"), "behavioral", name, "cases")
    add(sum(1 for test in tests if test.get("passed") is not True), "failed_behavioral_tests")

    probe = record.get("probe")
    if isinstance(probe, Mapping):
        for name, value in probe.items():
            add(value, "probe", name)
    return metrics, skipped


def _build_tags(record: Mapping[str, Any]) -> dict[str, str]:
    reasons = record.get("reasons") or []
    if isinstance(reasons, (list, tuple)):
        reason_text = ",".join(str(reason) for reason in reasons)
    else:
        reason_text = str(reasons)
    tags = {
        "gate": record["gate"],
        "model_id": record["model_id"],
        "gate_run_id": record["run_id"],
        "decision": record["decision"],
        "reasons": reason_text,
        "no_baseline": "true" if record.get("no_baseline") else "false",
        "champion_model_id": record.get("champion_model_id") or "none",
    }
    return {key: _text(value, _MAX_TAG_LENGTH) for key, value in tags.items()}
