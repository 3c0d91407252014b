"""The recommender interface: fit in Spark, save to a folder, serve single users in Python.

A model is fitted on click-stream events over a training window with Spark, and keeps only
compact artifacts (JSON and NumPy arrays) that :meth:`Recommender.save` writes to a folder. A
loaded model scores candidates for one user history in plain Python, which is what both the
behavioral suite and single-user serving call; :meth:`Recommender.recommend` runs the same
scorer over many users inside Spark tasks.
"""

from __future__ import annotations

import json
import zipfile
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pyspark.sql import DataFrame

from streamrec_spark.errors import InputDataError, InvalidRequestError

logger = logging.getLogger(__name__)

METADATA_FILE = "model.json"
ARRAYS_FILE = "arrays.npz"
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class Interaction:
    """One click-stream event of a user history; ``timestamp`` is in epoch seconds (UTC)."""

    item_id: int
    event_type: str
    timestamp: float
    session_id: str | None = None
    platform: str | None = None


@dataclass(frozen=True)
class UserContext:
    """The request that a history is scored for: the user, the platform and the request time.

    ``now`` is the request time in epoch seconds; history ages are measured from it.
    ``display_name`` is part of the request so that the invariance suite can check that no
    model depends on it.
    """

    user_id: int
    now: float
    platform: str | None = None
    display_name: str | None = None


@dataclass(frozen=True)
class TrainingWindow:
    """Events with ``end - days <= event_ts < end`` (``end`` is a naive UTC datetime)."""

    end: datetime
    days: int

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)

    @property
    def end_epoch(self) -> float:
        return self.end.replace(tzinfo=timezone.utc).timestamp()

    def to_json(self) -> dict[str, Any]:
        return {"end": self.end.isoformat(), "days": self.days}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainingWindow:
        return cls(end=datetime.fromisoformat(data["end"]), days=int(data["days"]))


def parse_history(events: Iterable[Mapping[str, Any]]) -> tuple[Interaction, ...]:
    """Parse a request's history events (item_id, event_type, timestamp in epoch seconds).

    Raises KeyError, TypeError or ValueError for an event with a missing or invalid field.
    """
    return tuple(
        Interaction(
            item_id=int(event["item_id"]),
            event_type=str(event["event_type"]),
            timestamp=float(event["timestamp"]),
            session_id=event.get("session_id"),
            platform=event.get("platform"),
        )
        for event in events
    )


def window_events(events: DataFrame, window: TrainingWindow) -> DataFrame:
    """Filter ``events`` to the training window (start inclusive, end exclusive)."""
    from pyspark.sql import functions as F

    return events.where(
        (F.col("event_ts") >= F.lit(window.start)) & (F.col("event_ts") < F.lit(window.end))
    )


class Recommender(ABC):
    """A recommender with Spark fitting and single-user scoring over the known items."""

    model_type: ClassVar[str]

    def __init__(self) -> None:
        self.item_ids: np.ndarray = np.zeros(0, dtype=np.int64)
        self.window: TrainingWindow | None = None
        self._index: dict[int, int] = {}

    @abstractmethod
    def fit(
        self, events: DataFrame, window: TrainingWindow, items: DataFrame | None = None
    ) -> Recommender:
        """Fit on the events of ``window``; ``items`` (item_id, genre) is the catalog, if any."""

    @abstractmethod
    def score_all(self, history: Sequence[Interaction], context: UserContext) -> np.ndarray:
        """Return one score per item of :attr:`item_ids` for this history (higher is better)."""

    @abstractmethod
    def _params(self) -> dict[str, Any]:
        """Return the JSON-serialisable settings and fitted scalars."""

    @abstractmethod
    def _arrays(self) -> dict[str, np.ndarray]:
        """Return the fitted arrays to save."""

    @abstractmethod
    def _restore(self, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Set the fitted state from what :meth:`_params` and :meth:`_arrays` returned."""

    @property
    def fitted(self) -> bool:
        return self.window is not None

    def _set_items(self, item_ids: np.ndarray) -> None:
        self.item_ids = np.asarray(item_ids, dtype=np.int64)
        self._index = {int(item): position for position, item in enumerate(self.item_ids)}

    def item_index(self, item_id: int) -> int | None:
        return self._index.get(int(item_id))

    def score(
        self, history: Sequence[Interaction], candidates: Sequence[int], context: UserContext
    ) -> np.ndarray:
        """Return the score of each candidate item; items unknown to the model get NaN."""
        scores = self.score_all(history, context)
        result = np.full(len(candidates), np.nan)
        for position, item in enumerate(candidates):
            index = self._index.get(int(item))
            if index is not None:
                result[position] = scores[index]
        return result

    def recommend_for_history(
        self,
        history: Sequence[Interaction],
        context: UserContext,
        k: int,
        exclude_seen: bool = False,
    ) -> list[tuple[int, float]]:
        """Return the top ``k`` (item_id, score) pairs, ties broken by ascending item_id."""
        scores = self.score_all(history, context).astype(float, copy=True)
        if exclude_seen:
            for interaction in history:
                index = self._index.get(int(interaction.item_id))
                if index is not None:
                    scores[index] = -np.inf
        order = np.lexsort((self.item_ids, -scores))[:k]
        return [(int(self.item_ids[i]), float(scores[i])) for i in order if np.isfinite(scores[i])]

    def recommend(
        self,
        events: DataFrame,
        users: DataFrame,
        k: int,
        now: datetime,
        history_days: int | None = None,
        exclude_seen: bool = False,
    ) -> DataFrame:
        """Recommend ``k`` items to every user of ``users`` inside Spark tasks.

        See :func:`streamrec_spark.models.batch.recommend_users` for the columns.
        """
        from streamrec_spark.models.batch import recommend_users

        return recommend_users(self, events, users, k, now, history_days, exclude_seen)

    def save(self, path: str | Path) -> Path:
        """Write ``model.json`` and ``arrays.npz`` into the folder ``path`` and return it."""
        if not self.fitted:
            raise InvalidRequestError("the model has not been fitted; call fit() before save()")
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        metadata = {
            "model_type": self.model_type,
            "format_version": 1,
            "window": self.window.to_json(),
            "params": self._params(),
        }
        (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True), encoding="utf-8")
        np.savez(folder / ARRAYS_FILE, item_ids=self.item_ids, **self._arrays())
        logger.info("saved %s model to %s (%d bytes)", self.model_type, folder, model_size_bytes(folder))
        return folder

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        folder = Path(path)
        metadata = read_metadata(folder)
        if metadata.get("model_type") != cls.model_type:
            raise InputDataError(
                f"{folder / METADATA_FILE} describes a {metadata.get('model_type')!r} model, "
                f"expected {cls.model_type!r}",
                error_code="INVALID_MODEL",
            )
        # A truncated or hand-edited folder raises many kinds of error: a bad zip, a missing
        # key, a wrong JSON shape. Each is an invalid model, never a failed check.
        try:
            with np.load(folder / ARRAYS_FILE, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
            model = cls.__new__(cls)
            Recommender.__init__(model)
            model._set_items(arrays.pop("item_ids"))
            model.window = TrainingWindow.from_json(metadata["window"])
            model._restore(metadata["params"], arrays)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile) as exc:
            raise InputDataError(
                f"cannot load the model at {folder}: {type(exc).__name__}: {exc}; re-save the "
                "model or check the --model path",
                error_code="INVALID_MODEL",
            ) from exc
        return model


def read_metadata(folder: Path) -> dict[str, Any]:
    """Read ``model.json``; raise InputDataError (``INVALID_MODEL``) when it is unreadable."""
    try:
        metadata = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputDataError(
            f"no model at {folder}: {METADATA_FILE} is missing; check the --model path",
            error_code="INVALID_MODEL",
        ) from None
    except (OSError, ValueError) as exc:
        raise InputDataError(f"cannot read {folder / METADATA_FILE}: {exc}", error_code="INVALID_MODEL") from exc
    if not isinstance(metadata, dict):
        raise InputDataError(
            f"{folder / METADATA_FILE} must contain a JSON object, found {type(metadata).__name__}",
            error_code="INVALID_MODEL",
        )
    return metadata


def model_size_bytes(path: str | Path) -> int:
    """Return the total size in bytes of the files in a saved model folder."""
    return sum(file.stat().st_size for file in Path(path).rglob("*") if file.is_file())
