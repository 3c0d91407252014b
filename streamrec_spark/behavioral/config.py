"""The behavioral suite's tests, cases and pass rules, parsed once from YAML."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from streamrec_spark.contracts.yaml_source import SourceMap
from streamrec_spark.evaluation.config import METRIC_NAMES
from streamrec_spark.evaluation.config_reader import ConfigReader

TEST_TYPES: tuple[str, ...] = ("MFT", "INV", "DIR")
INVARIANCE_PERTURBATIONS: tuple[str, ...] = ("display_name", "timestamp_jitter", "platform_switch", "session_ids")
DIRECTIONAL_PERTURBATIONS: tuple[str, ...] = ("genre_completions", "recency", "completion_vs_skip", "more_sessions")

# A suite name is stored in the results table and matched by the gate, so it is an identifier.
SUITE_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Settings that each perturbation accepts, with defaults.
PERTURBATION_SETTINGS: dict[str, dict[str, float]] = {
    "display_name": {},
    "timestamp_jitter": {"max_shift_minutes": 30.0},
    "platform_switch": {},
    "session_ids": {},
    "genre_completions": {"completions": 3.0},
    "recency": {"recent_age_hours": 1.0, "old_age_days": 45.0},
    "completion_vs_skip": {"age_hours": 1.0},
    "more_sessions": {"sessions": 5.0, "events_per_session": 3.0, "engagement_quantile": 0.75},
}


@dataclass(frozen=True)
class MinimumFunctionalityTest:
    """Passes when the slice's mean ``metric``@``k`` is at least ``min_value``.

    Cases are the slice's evaluated users, and a failure is a user whose own value is below
    ``min_value``. The failure rate is reported, but the pass rule is on the mean.
    """

    name: str
    metric: str
    k: int
    slice: str
    min_value: float
    test_type: str = "MFT"


@dataclass(frozen=True)
class InvarianceTest:
    """Passes when the mean share of unchanged top-K items is at least ``min_unchanged_share``.

    A case is one sampled user; it fails when its own unchanged share is below the minimum.
    """

    name: str
    perturbation: str
    min_unchanged_share: float
    settings: dict[str, float] = field(default_factory=dict)
    test_type: str = "INV"


@dataclass(frozen=True)
class DirectionalTest:
    """Passes when the share of cases whose scores moved the wrong way is at most the maximum."""

    name: str
    perturbation: str
    max_failure_rate: float
    settings: dict[str, float] = field(default_factory=dict)
    test_type: str = "DIR"


BehavioralTest = MinimumFunctionalityTest | InvarianceTest | DirectionalTest


@dataclass(frozen=True)
class SuiteConfig:
    """The suite's name, its tests in order, how cases are drawn, and where results go.

    ``name`` is written to the ``suite`` column of every result row, so that a gate can
    require the results of one named suite. ``case_users`` users with at least
    ``min_history_events`` events in the history window before the holdout start (as long as
    the model's training window) are drawn by a seeded hash of user_id. ``k`` is the length of
    the top-K lists that invariance tests compare.
    """

    name: str
    tests: tuple[BehavioralTest, ...]
    case_users: int = 150
    min_history_events: int = 5
    seed: int = 11
    k: int = 20
    holdout_days: int = 7
    database: str = "streamrec"
    results_table: str = "behavioral_results"


def _settings(reader: ConfigReader, node: SourceMap, perturbation: str, name: str) -> dict[str, float]:
    defaults = PERTURBATION_SETTINGS.get(perturbation, {})
    return {key: reader.number(node, key, name, default=value, minimum=0.0) for key, value in defaults.items()}


def _parse_test(reader: ConfigReader, node: SourceMap, index: int) -> BehavioralTest | None:
    label = f"tests[{index}]"
    name = reader.string(node, "name", label)
    test_type = reader.string(node, "type", label, choices=TEST_TYPES)
    common = ("name", "type", "description")
    if test_type == "MFT":
        reader.check_keys(node, (*common, "metric", "k", "slice", "min_value"), label)
        return MinimumFunctionalityTest(
            name=name,
            metric=reader.string(node, "metric", label, choices=METRIC_NAMES),
            k=reader.integer(node, "k", label, minimum=1),
            slice=reader.string(node, "slice", label, default="all"),
            min_value=reader.number(node, "min_value", label, minimum=0.0, maximum=1.0),
        )
    if test_type == "INV":
        perturbation = reader.string(node, "perturbation", label, choices=INVARIANCE_PERTURBATIONS)
        allowed = PERTURBATION_SETTINGS.get(perturbation, {})
        reader.check_keys(node, (*common, "perturbation", "min_unchanged_share", *allowed), label)
        return InvarianceTest(
            name=name,
            perturbation=perturbation,
            min_unchanged_share=reader.number(node, "min_unchanged_share", label, minimum=0.0, maximum=1.0),
            settings=_settings(reader, node, perturbation, label),
        )
    if test_type == "DIR":
        perturbation = reader.string(node, "perturbation", label, choices=DIRECTIONAL_PERTURBATIONS)
        allowed = PERTURBATION_SETTINGS.get(perturbation, {})
        reader.check_keys(node, (*common, "perturbation", "max_failure_rate", *allowed), label)
        return DirectionalTest(
            name=name,
            perturbation=perturbation,
            max_failure_rate=reader.number(node, "max_failure_rate", label, minimum=0.0, maximum=1.0),
            settings=_settings(reader, node, perturbation, label),
        )
    return None


def load_suite_config(path: str | Path) -> SuiteConfig:
    """Parse the suite YAML file; raise ConfigError listing every problem with file:line."""
    reader = ConfigReader(path)
    root = reader.root
    reader.check_keys(root, ("name", "cases", "holdout_days", "results", "tests"), "")
    name = reader.string(root, "name", "")
    if name and not SUITE_NAME_PATTERN.fullmatch(name):
        reader.problem(
            root.where("name"),
            f"'name' must be an identifier (a letter or '_', then letters, digits or '_'), found {name!r}",
        )

    cases = reader.mapping(root, "cases", "cases", required=False)
    reader.check_keys(cases, ("users", "min_history_events", "seed", "k"), "cases")
    tests_node = reader.sequence(root, "tests", "tests")
    tests: list[BehavioralTest] = []
    names: set[str] = set()
    for index, node in enumerate(tests_node):
        if not isinstance(node, SourceMap):
            reader.problem(tests_node.where(index), f"'tests[{index}]' must be a mapping")
            continue
        test = _parse_test(reader, node, index)
        if test is None:
            continue
        if test.name in names:
            reader.problem(node.where("name"), f"duplicate test name {test.name!r}; names must be unique")
        names.add(test.name)
        tests.append(test)
    if not tests_node:
        reader.problem(root.where("tests"), "'tests' must list at least one test")

    results = reader.mapping(root, "results", "results", required=False)
    reader.check_keys(results, ("database", "table"), "results")
    config = SuiteConfig(
        name=name,
        tests=tuple(tests),
        case_users=reader.integer(cases, "users", "cases", default=150, minimum=1),
        min_history_events=reader.integer(cases, "min_history_events", "cases", default=5, minimum=1),
        seed=reader.integer(cases, "seed", "cases", default=11),
        k=reader.integer(cases, "k", "cases", default=20, minimum=1),
        holdout_days=reader.integer(root, "holdout_days", "", default=7, minimum=1),
        database=reader.string(results, "database", "results", default="streamrec"),
        results_table=reader.string(results, "table", "results", default="behavioral_results"),
    )
    reader.finish()
    return config
