"""The MLflow pyfunc flavor of a saved streamrec model, which the gate registers on a pass.

:func:`save_pyfunc_model` writes an MLflow model folder (with its ``MLmodel`` file) around a
saved model folder, so that a registered version loads with
``mlflow.pyfunc.load_model("models:/<name>/<version>")``. The saved folder is copied in as the
artifact ``streamrec_model``, and the ``streamrec_spark`` package as code, so loading needs the
listed pip requirements but not an installed streamrec-spark.

``predict`` takes a pandas DataFrame with one single-user request per row, in the format of
the serving probe's request files:

- ``user_id`` (int) and ``now`` (request time, epoch seconds UTC);
- ``history``: a list of events, each a dict with ``item_id``, ``event_type``, ``timestamp``
  (epoch seconds) and optionally ``session_id`` and ``platform``;
- optionally ``platform`` (str), the platform the request comes from.

It returns one row per recommended item: ``user_id``, ``rank`` (1 is the best), ``item_id``
and ``score``. The params ``k`` (items per request, default 20) and ``exclude_seen`` (leave
out the items of the history, default false) apply to every row. An invalid request (see
``_parse_row``) raises MlflowException with error code INVALID_PARAMETER_VALUE.

This module imports MLflow, so only code that records or loads an MLflow model imports it.
"""

from __future__ import annotations

import importlib.metadata
import logging
import math
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema
from mlflow.types.schema import Array, Object, Property

import streamrec_spark
from streamrec_spark.evaluation.config import EVENT_TYPES
from streamrec_spark.models import Recommender, load_model
from streamrec_spark.models.base import Interaction, UserContext, parse_history

logger = logging.getLogger(__name__)

MODEL_FOLDER_ARTIFACT = "streamrec_model"
OUTPUT_COLUMNS = ("user_id", "rank", "item_id", "score")
DEFAULT_K = 20
# Distributions that importing streamrec_spark.models and this wrapper needs.
_REQUIREMENTS = ("mlflow", "numpy", "pandas", "pyspark", "PyYAML")


class StreamrecPyfuncModel(mlflow.pyfunc.PythonModel):
    """A saved streamrec recommender behind MLflow's pyfunc interface."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.model: Recommender = load_model(context.artifacts[MODEL_FOLDER_ARTIFACT])

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext | None,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Return the top items of each request row, in the columns that the module docstring lists."""
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        options = dict(params or {})
        k = _positive_int(options.get("k", DEFAULT_K), "the param 'k'")
        exclude_seen = bool(options.get("exclude_seen", False))
        for column in ("user_id", "now", "history"):
            if column not in frame.columns:
                raise invalid_input(
                    f"the request has no '{column}' column. Each row needs user_id, now "
                    "(epoch seconds) and history"
                )

        rows: list[tuple[int, int, int, float]] = []
        for position, record in enumerate(frame.to_dict(orient="records")):
            request, history = _parse_row(record, position)
            ranked = self.model.recommend_for_history(history, request, k, exclude_seen)
            for rank, (item_id, score) in enumerate(ranked, start=1):
                rows.append((request.user_id, rank, item_id, score))
        return pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS))


def invalid_input(message: str) -> MlflowException:
    """Build the error for an invalid request.

    MLflow's scoring server returns an MlflowException's message to the client with HTTP 400,
    but replaces any other exception with a generic message, so input errors use this type.
    """
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def _positive_int(value: Any, name: str) -> int:
    # MLflow may pass NumPy integers, which are not Python ints.
    whole = isinstance(value, numbers.Integral) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or value < 1:
        raise invalid_input(f"{name} must be a positive integer, found {value!r}")
    return int(value)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _finite_number(value: Any) -> float | None:
    """Return ``value`` as a finite float, or None when it is missing, NaN, infinite or not a number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _parse_row(record: Mapping[str, Any], position: int) -> tuple[UserContext, tuple[Interaction, ...]]:
    """Turn one request row into the model's context and history, oldest event first.

    Raises MlflowException (INVALID_PARAMETER_VALUE) naming the request index and the field.
    Invalid are a missing or non-integer ``user_id`` and a missing or non-finite ``now``. So is
    a history event with a missing field, an event type outside EVENT_TYPES, or a timestamp
    that is not finite or is after ``now``. An empty or missing history is valid: a user with
    no events.
    """
    where = f"request {position}"
    now = _finite_number(record.get("now"))
    if now is None:
        raise invalid_input(
            f"{where}: 'now' is {record.get('now')!r}; set it to the request time in epoch "
            "seconds (UTC), a finite number"
        )
    user_id = record.get("user_id")
    if _finite_number(user_id) is None or not float(user_id).is_integer():
        raise invalid_input(f"{where}: 'user_id' is {user_id!r}; set it to the user's integer id")
    platform = record.get("platform")
    context = UserContext(
        user_id=int(user_id), now=now, platform=None if _missing(platform) else str(platform)
    )
    events = record.get("history")
    events = [] if _missing(events) else list(events)
    for index, event in enumerate(events):
        _check_event(event, f"{where}: 'history[{index}]'", now)
    try:
        history = parse_history(events)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise invalid_input(f"invalid {where}: {type(exc).__name__}: {exc}") from exc
    return context, tuple(sorted(history, key=lambda event: (event.timestamp, event.item_id)))


def _check_event(event: Any, where: str, now: float) -> None:
    """Raise MlflowException for a history event that the models would score wrongly."""
    if not isinstance(event, Mapping):
        raise invalid_input(f"{where} is {event!r}; each event must be an object with "
                            "item_id, event_type and timestamp")
    for key in ("item_id", "event_type", "timestamp"):
        if _missing(event.get(key)):
            raise invalid_input(f"{where} has no '{key}'; each event needs item_id, "
                                "event_type and timestamp")
    event_type = event["event_type"]
    if event_type not in EVENT_TYPES:
        raise invalid_input(
            f"{where}: unknown 'event_type' {event_type!r}; use one of {', '.join(EVENT_TYPES)}"
        )
    timestamp = _finite_number(event["timestamp"])
    if timestamp is None:
        raise invalid_input(
            f"{where}: 'timestamp' is {event['timestamp']!r}; use epoch seconds, a finite number"
        )
    if timestamp > now:
        raise invalid_input(
            f"{where}: 'timestamp' {timestamp} is after 'now' {now}; send only events up to "
            "the request time, or set 'now' to the request time"
        )


def model_signature() -> ModelSignature:
    """Return the request and response schemas, and the params with their defaults."""
    event = Object(
        [
            Property("item_id", DataType.long),
            Property("event_type", DataType.string),
            Property("timestamp", DataType.double),
            Property("session_id", DataType.string, required=False),
            Property("platform", DataType.string, required=False),
        ]
    )
    inputs = Schema(
        [
            ColSpec(DataType.long, "user_id"),
            ColSpec(DataType.double, "now"),
            ColSpec(Array(event), "history"),
            ColSpec(DataType.string, "platform", required=False),
        ]
    )
    outputs = Schema(
        [
            ColSpec(DataType.long, "user_id"),
            ColSpec(DataType.long, "rank"),
            ColSpec(DataType.long, "item_id"),
            ColSpec(DataType.double, "score"),
        ]
    )
    params = ParamSchema(
        [
            ParamSpec("k", DataType.long, DEFAULT_K),
            ParamSpec("exclude_seen", DataType.boolean, False),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def _example_request(model: Recommender) -> pd.DataFrame:
    """Return one request with one event of a known item at the end of the training window."""
    now = model.window.end_epoch if model.window is not None else 0.0
    history = []
    if len(model.item_ids):
        history = [{"item_id": int(model.item_ids[0]), "event_type": "click", "timestamp": now - 60.0}]
    return pd.DataFrame([{"user_id": 0, "now": now, "history": history}])


def pip_requirements() -> list[str]:
    """Return the pinned versions, in this environment, of what loading the model imports."""
    return [f"{name}=={importlib.metadata.version(name)}" for name in _REQUIREMENTS]


def save_pyfunc_model(model_dir: str | Path, path: str | Path) -> Path:
    """Write an MLflow pyfunc model folder at ``path`` that serves the saved model ``model_dir``.

    The model is loaded once first, so a folder that is not a loadable streamrec model raises
    InputDataError (``INVALID_MODEL``) before anything is written. ``path`` must not exist or
    must be empty.
    """
    model = load_model(model_dir)
    package = Path(streamrec_spark.__file__).resolve().parent
    mlflow.pyfunc.save_model(
        path=str(path),
        # A model file that MLflow runs at load time, instead of a pickled object.
        python_model=str(package / "gate" / "pyfunc_entry.py"),
        artifacts={MODEL_FOLDER_ARTIFACT: str(Path(model_dir).resolve())},
        code_paths=[str(package)],
        signature=model_signature(),
        input_example=(_example_request(model), {"k": DEFAULT_K, "exclude_seen": False}),
        # Explicit requirements: MLflow would otherwise infer them by loading the model in a
        # subprocess, which takes seconds.
        pip_requirements=pip_requirements(),
    )
    logger.info("wrote the MLflow pyfunc model of %s to %s", model_dir, path)
    return Path(path)
