"""Settings of the reference models, parsed once from YAML into frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from streamrec_spark.contracts.yaml_source import SourceMap
from streamrec_spark.evaluation.config import EVENT_TYPES
from streamrec_spark.evaluation.config_reader import ConfigReader

MODEL_TYPES: tuple[str, ...] = ("popularity", "recency_affinity")


@dataclass(frozen=True)
class EventWeights:
    """Weight of one event of each type; a negative weight marks a dislike signal."""

    view: float = 0.2
    click: float = 0.6
    complete: float = 1.0
    skip: float = -0.5

    def as_dict(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in EVENT_TYPES}


@dataclass(frozen=True)
class PopularityParams:
    """Decayed, event-weighted item counts over the training window."""

    training_days: int = 60
    half_life_days: float = 7.0
    event_weights: EventWeights = field(default_factory=lambda: EventWeights(skip=0.0))


@dataclass(frozen=True)
class RecencyAffinityParams:
    """Blend of popularity, recency-weighted genre affinity, co-occurrence and engagement.

    The recency curve is fitted: the last ``target_days`` of the training window are the
    targets, and each earlier interaction is weighted by how often interactions of its age
    (bucketed by ``age_bucket_edges_days``) were followed by an engagement in the same genre.
    ``prior_events`` shrinks each bucket's rate toward the overall rate. Every ``*_weight`` of
    the blend multiplies one score component, each of which lies roughly in [-1, 1].
    """

    training_days: int = 60
    event_weights: EventWeights = field(default_factory=EventWeights)
    popularity_half_life_days: float = 7.0
    target_days: int = 14
    age_bucket_edges_days: tuple[float, ...] = (0.0, 1.0, 3.0, 7.0, 14.0, 30.0, 60.0, 120.0)
    prior_events: float = 50.0
    neighbors: int = 50
    max_items_per_session: int = 30
    cooccurrence_half_life_days: float = 30.0
    engagement_prior_events: float = 10.0
    session_half_saturation: float = 5.0
    popularity_weight: float = 0.3
    platform_share: float = 0.5
    genre_weight: float = 1.0
    cooccurrence_weight: float = 0.5
    engagement_weight: float = 0.3
    max_history_events: int = 500


@dataclass(frozen=True)
class ModelsConfig:
    popularity: PopularityParams = field(default_factory=PopularityParams)
    recency_affinity: RecencyAffinityParams = field(default_factory=RecencyAffinityParams)


def _event_weights(reader: ConfigReader, parent: SourceMap, name: str, defaults: EventWeights) -> EventWeights:
    node = reader.mapping(parent, "event_weights", name, required=False)
    reader.check_keys(node, EVENT_TYPES, f"{name}.event_weights")
    return EventWeights(
        **{
            event: reader.number(node, event, f"{name}.event_weights", default=getattr(defaults, event))
            for event in EVENT_TYPES
        }
    )


def load_models_config(path: str | Path) -> ModelsConfig:
    """Parse the models YAML file; raise ConfigError listing every problem with file:line."""
    reader = ConfigReader(path)
    root = reader.root
    reader.check_keys(root, MODEL_TYPES, "")

    node = reader.mapping(root, "popularity", "popularity", required=False)
    reader.check_keys(node, ("training_days", "half_life_days", "event_weights"), "popularity")
    base = PopularityParams()
    popularity = PopularityParams(
        training_days=reader.integer(node, "training_days", "popularity", default=base.training_days, minimum=1),
        half_life_days=reader.number(node, "half_life_days", "popularity", default=base.half_life_days, minimum=0.01),
        event_weights=_event_weights(reader, node, "popularity", base.event_weights),
    )

    name = "recency_affinity"
    node = reader.mapping(root, name, name, required=False)
    defaults = RecencyAffinityParams()
    numbers = {
        "popularity_half_life_days": 0.01,
        "prior_events": 0.0,
        "cooccurrence_half_life_days": 0.01,
        "engagement_prior_events": 0.0,
        "session_half_saturation": 0.01,
        "popularity_weight": 0.0,
        "platform_share": 0.0,
        "genre_weight": 0.0,
        "cooccurrence_weight": 0.0,
        "engagement_weight": 0.0,
    }
    integers = {
        "training_days": 1,
        "target_days": 1,
        "neighbors": 1,
        "max_items_per_session": 2,
        "max_history_events": 1,
    }
    reader.check_keys(node, (*numbers, *integers, "event_weights", "age_bucket_edges_days"), name)
    values: dict[str, object] = {}
    for key, minimum in numbers.items():
        values[key] = reader.number(node, key, name, default=getattr(defaults, key), minimum=minimum)
    for key, minimum in integers.items():
        values[key] = reader.integer(node, key, name, default=getattr(defaults, key), minimum=minimum)
    if values["platform_share"] > 1.0:
        reader.problem(node.where("platform_share"), f"'{name}.platform_share' must be at most 1")
    edges_raw = node.get("age_bucket_edges_days", list(defaults.age_bucket_edges_days))
    edges_valid = (
        isinstance(edges_raw, list)
        and len(edges_raw) >= 2
        and all(isinstance(edge, (int, float)) and not isinstance(edge, bool) for edge in edges_raw)
        and edges_raw[0] == 0
        and all(low < high for low, high in zip(edges_raw, edges_raw[1:]))
    )
    if not edges_valid:
        reader.problem(
            node.where("age_bucket_edges_days"),
            f"'{name}.age_bucket_edges_days' must be an increasing list of at least two numbers "
            f"starting at 0, found {edges_raw!r}",
        )
        edges_raw = list(defaults.age_bucket_edges_days)
    if values["target_days"] >= values["training_days"]:
        reader.problem(
            node.where("target_days"),
            f"'{name}.target_days' ({values['target_days']}) must be below "
            f"'{name}.training_days' ({values['training_days']})",
        )
    recency_affinity = RecencyAffinityParams(
        event_weights=_event_weights(reader, node, name, defaults.event_weights),
        age_bucket_edges_days=tuple(float(edge) for edge in edges_raw),
        **values,
    )
    reader.finish()
    return ModelsConfig(popularity=popularity, recency_affinity=recency_affinity)
