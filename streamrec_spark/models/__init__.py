"""Reference recommenders and the interface they share."""

from __future__ import annotations

from pathlib import Path

from streamrec_spark.errors import InputDataError
from streamrec_spark.models.affinity import RecencyAffinityModel
from streamrec_spark.models.base import (
    Interaction,
    Recommender,
    TrainingWindow,
    UserContext,
    model_size_bytes,
    read_metadata,
)
from streamrec_spark.models.config import ModelsConfig
from streamrec_spark.models.popularity import PopularityModel

MODEL_CLASSES: dict[str, type[Recommender]] = {
    PopularityModel.model_type: PopularityModel,
    RecencyAffinityModel.model_type: RecencyAffinityModel,
}

__all__ = [
    "MODEL_CLASSES",
    "Interaction",
    "PopularityModel",
    "RecencyAffinityModel",
    "Recommender",
    "TrainingWindow",
    "UserContext",
    "build_model",
    "load_model",
    "model_size_bytes",
]


def build_model(model_type: str, config: ModelsConfig) -> Recommender:
    """Create an unfitted model of ``model_type`` with its settings from ``config``."""
    if model_type == PopularityModel.model_type:
        return PopularityModel(config.popularity)
    if model_type == RecencyAffinityModel.model_type:
        return RecencyAffinityModel(config.recency_affinity)
    raise ValueError(f"unknown model type {model_type!r}; expected one of {', '.join(MODEL_CLASSES)}")


def load_model(path: str | Path) -> Recommender:
    """Load a saved model of any known type; raise InputDataError when the folder is invalid."""
    folder = Path(path)
    model_type = read_metadata(folder).get("model_type")
    if model_type not in MODEL_CLASSES:
        raise InputDataError(
            f"{folder} contains an unknown model type {model_type!r}; expected one of {', '.join(MODEL_CLASSES)}",
            error_code="INVALID_MODEL",
        )
    return MODEL_CLASSES[model_type].load(folder)
