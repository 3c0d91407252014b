"""Evaluation settings: metrics and cut-offs, holdout relevance, slices, input policy, tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from streamrec_spark.evaluation.config_reader import ConfigReader

METRIC_NAMES: tuple[str, ...] = ("recall", "ndcg", "hit_rate", "precision", "map")
DEFAULT_CUTOFFS: dict[str, tuple[int, ...]] = {
    "recall": (20,),
    "ndcg": (20,),
    "hit_rate": (10,),
    "precision": (20,),
    "map": (20,),
}
PLATFORMS: tuple[str, ...] = ("ios", "android", "web")
EVENT_TYPES: tuple[str, ...] = ("view", "click", "complete", "skip")

# Outcomes of the input checks: "fail" makes the evaluation exit with code 1, "warn" is logged,
# "info" is only recorded. Every outcome is written to the model-metrics table either way.
POLICY_LEVELS: tuple[str, ...] = ("fail", "warn", "info")
INPUT_CHECK_CODES: tuple[str, ...] = (
    "INVALID_SCORES",
    "DUPLICATE_ITEMS",
    "DUPLICATE_RANKS",
    "UNKNOWN_ITEMS",
    "USERS_NOT_IN_HOLDOUT",
    "HOLDOUT_USERS_WITHOUT_RECOMMENDATIONS",
    "EMPTY_SLICE",
)
DEFAULT_POLICY: dict[str, str] = {
    "INVALID_SCORES": "fail",
    "DUPLICATE_ITEMS": "warn",
    "DUPLICATE_RANKS": "warn",
    "UNKNOWN_ITEMS": "warn",
    "USERS_NOT_IN_HOLDOUT": "info",
    "HOLDOUT_USERS_WITHOUT_RECOMMENDATIONS": "warn",
    "EMPTY_SLICE": "warn",
}


@dataclass(frozen=True)
class MetricSpec:
    """One metric at one cut-off, for example ``recall`` at ``k`` = 20."""

    name: str
    k: int

    @property
    def column(self) -> str:
        return f"{self.name}_at_{self.k}"


@dataclass(frozen=True)
class SliceConfig:
    """How users are assigned to the reported slices.

    A user is new when they have fewer than ``new_user_min_events`` events before the holdout
    window (zero included). The most active slice contains the ``top_active_share`` of evaluated
    users with the most events before the holdout window.
    """

    new_user_min_events: int = 5
    platforms: tuple[str, ...] = PLATFORMS
    top_active_share: float = 0.10


@dataclass(frozen=True)
class EvaluationConfig:
    metrics: tuple[MetricSpec, ...] = tuple(
        MetricSpec(name, k) for name, ks in DEFAULT_CUTOFFS.items() for k in ks
    )
    relevant_event_types: tuple[str, ...] = ("click", "complete")
    slices: SliceConfig = field(default_factory=SliceConfig)
    input_policy: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_POLICY))
    database: str = "streamrec"
    metrics_table: str = "model_metrics"

    @property
    def max_k(self) -> int:
        return max(spec.k for spec in self.metrics)


def load_evaluation_config(path: str | Path) -> EvaluationConfig:
    """Parse the evaluation YAML file; raise ConfigError listing every problem with file:line."""
    reader = ConfigReader(path)
    root = reader.root
    reader.check_keys(root, ("metrics", "relevant_event_types", "slices", "input_policy", "results"), "")

    metrics_node = reader.mapping(root, "metrics", "metrics", required=False)
    reader.check_keys(metrics_node, METRIC_NAMES, "metrics")
    metrics: list[MetricSpec] = []
    for name in METRIC_NAMES:
        cutoffs = reader.int_list(metrics_node, name, "metrics", default=DEFAULT_CUTOFFS[name])
        metrics.extend(MetricSpec(name, k) for k in sorted(set(cutoffs)))

    relevant = reader.string_list(
        root, "relevant_event_types", "", default=("click", "complete"), choices=EVENT_TYPES
    )
    if not relevant:
        reader.problem(root.where("relevant_event_types"), "'relevant_event_types' must not be empty")

    slices_node = reader.mapping(root, "slices", "slices", required=False)
    reader.check_keys(slices_node, ("new_user_min_events", "platforms", "top_active_share"), "slices")
    slices = SliceConfig(
        new_user_min_events=reader.integer(
            slices_node, "new_user_min_events", "slices", default=5, minimum=1
        ),
        platforms=reader.string_list(slices_node, "platforms", "slices", default=PLATFORMS),
        top_active_share=reader.number(
            slices_node, "top_active_share", "slices", default=0.10, minimum=0.0, maximum=1.0
        ),
    )
    if slices.top_active_share == 0.0:
        reader.problem(slices_node.where("top_active_share"), "'slices.top_active_share' must be above 0")

    policy_node = reader.mapping(root, "input_policy", "input_policy", required=False)
    reader.check_keys(policy_node, INPUT_CHECK_CODES, "input_policy")
    policy = {
        code: reader.string(policy_node, code, "input_policy", default=level, choices=POLICY_LEVELS)
        for code, level in DEFAULT_POLICY.items()
    }

    results_node = reader.mapping(root, "results", "results", required=False)
    reader.check_keys(results_node, ("database", "metrics_table"), "results")
    database = reader.string(results_node, "database", "results", default="streamrec")
    table = reader.string(results_node, "metrics_table", "results", default="model_metrics")

    reader.finish()
    return EvaluationConfig(
        metrics=tuple(metrics),
        relevant_event_types=relevant,
        slices=slices,
        input_policy=policy,
        database=database,
        metrics_table=table,
    )
