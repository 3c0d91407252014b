"""Gate configuration: metric rules, sliced floors, behavioral suite, serving limits, the
data-validation requirement, MLflow and alerts.

A gate YAML file (``conf/gates/*.yaml``) is parsed once into the frozen dataclasses below. Every
problem in the file is reported at once with ``file:line``, as one :class:`ConfigError`.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from streamrec_spark.behavioral.config import load_suite_config
from streamrec_spark.contracts.yaml_source import SourceMap
from streamrec_spark.errors import ConfigError
from streamrec_spark.evaluation.config import METRIC_NAMES
from streamrec_spark.evaluation.config_reader import ConfigReader

DEFAULT_TOLERANCE = 1e-9
DEFAULT_ALERT_URL_ENV = "STREAMREC_ALERT_WEBHOOK_URL"
# Relative paths in a gate file that are not found next to it are looked up here: the
# repository root, which contains the bundled conf/ folder.
# NOTE: this is true for a source checkout or an editable install only. A built wheel does not
# ship conf/, so there a relative path must resolve next to the gate file.
BUNDLED_ROOT = Path(__file__).resolve().parents[2]
# MLflow's HTTP client settings for a tracking or registry server. MLflow's own defaults (7
# retries, backoff factor 2, 120 s timeout in MLflow 3.17) keep a run waiting for minutes when the
# server is down.
DEFAULT_HTTP_TIMEOUT_SECONDS = 10
DEFAULT_HTTP_MAX_RETRIES = 2
DEFAULT_HTTP_BACKOFF_FACTOR = 1

_METRIC_RULE_PATTERN = re.compile(r"^(?P<metric>[a-z_]+?)_at_(?P<k>[1-9][0-9]*)$")
_SLICE_PATTERN = re.compile(r"^(all|new_users|top_active|platform=[A-Za-z0-9_.-]+)$")
_ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_TOP_KEYS = (
    "name",
    "registered_model_name",
    "tolerance",
    "metrics",
    "slice_floors",
    "behavioral",
    "serving",
    "data_validation",
    "tables",
    "mlflow",
    "alerts",
)


@dataclass(frozen=True)
class MetricRule:
    """A floor and a maximum regression against the champion for one metric on the ``all`` slice.

    ``rule`` is the name used in the YAML file and in results, for example ``recall_at_20``.
    ``metric`` and ``k`` are the matching ``metric`` and ``k`` columns of ``model_metrics``.
    """

    rule: str
    metric: str
    k: int
    floor: float
    max_regression: float


@dataclass(frozen=True)
class SliceFloor:
    """An absolute floor for one metric on one user slice (no comparison with the champion)."""

    rule: str
    metric: str
    k: int
    slice: str
    floor: float

    @property
    def name(self) -> str:
        return f"{self.rule}[{self.slice}]"


@dataclass(frozen=True)
class BehavioralRequirement:
    """The behavioral suite whose every test the candidate must have run and passed.

    ``tests`` are the test names listed in ``suite_file``, read when the gate configuration is
    loaded. A test in that list with no result row for the candidate blocks the gate.
    """

    suite: str
    suite_file: str
    tests: tuple[str, ...]


@dataclass(frozen=True)
class ServingLimits:
    """Upper bounds, inclusive, on the serving probe's p99 latency (ms) and model size (MB)."""

    max_p99_latency_ms: float
    max_size_mb: float


@dataclass(frozen=True)
class DataValidationRequirement:
    """The datasets whose latest validation run for the gate's data date must have been accepted.

    A run is accepted when its status is ``passed`` or ``warned`` (only non-blocking checks
    failed). A failed or errored run, no run, or no ``runs`` table blocks the gate.
    """

    datasets: tuple[str, ...]


@dataclass(frozen=True)
class GateTables:
    """Table names the gate reads its inputs from and writes its decisions to, in the warehouse."""

    database: str = "streamrec"
    decisions_table: str = "gate_decisions"
    comparisons_table: str = "gate_comparisons"
    model_metrics_table: str = "model_metrics"
    behavioral_table: str = "behavioral_results"
    probes_table: str = "serving_probes"
    runs_table: str = "runs"


@dataclass(frozen=True)
class MlflowSettings:
    """MLflow experiment and stores; a ``None`` URI means the local store under the warehouse.

    The ``http_*`` settings bound each request to an MLflow server: a timeout in seconds per
    attempt, the number of retries after the first attempt, and the exponential backoff factor
    in seconds. They apply unless the environment sets MLflow's own variables.
    """

    experiment: str
    tracking_uri: str | None = None
    registry_uri: str | None = None
    http_timeout_seconds: int = DEFAULT_HTTP_TIMEOUT_SECONDS
    http_max_retries: int = DEFAULT_HTTP_MAX_RETRIES
    http_backoff_factor: int = DEFAULT_HTTP_BACKOFF_FACTOR


@dataclass(frozen=True)
class AlertConfig:
    """Webhook settings for the message sent when the gate blocks.

    ``url`` comes from the YAML file and, when absent, from the environment variable named by
    ``url_env`` at send time. The URL is a secret: it is left out of ``repr`` and never logged.
    ``timeout_seconds`` applies to each attempt, ``max_attempts`` counts the first try, and
    ``backoff_seconds`` is the wait before the second attempt.
    """

    url_env: str = DEFAULT_ALERT_URL_ENV
    url: str | None = field(default=None, repr=False)
    timeout_seconds: float = 5.0
    max_attempts: int = 3
    backoff_seconds: float = 1.0


@dataclass(frozen=True)
class GateConfig:
    """One model validation gate, as parsed from its YAML file."""

    name: str
    registered_model_name: str
    tolerance: float
    metrics: tuple[MetricRule, ...]
    slice_floors: tuple[SliceFloor, ...]
    behavioral: BehavioralRequirement | None
    serving: ServingLimits | None
    tables: GateTables
    mlflow: MlflowSettings
    alerts: AlertConfig
    source: str = ""
    data_validation: DataValidationRequirement | None = None


def parse_metric_rule_name(name: str) -> tuple[str, int] | None:
    """Split a rule name such as ``hit_rate_at_10`` into ``("hit_rate", 10)``; None if invalid."""
    match = _METRIC_RULE_PATTERN.match(name)
    if match is None or match.group("metric") not in METRIC_NAMES:
        return None
    return match.group("metric"), int(match.group("k"))


def _metric_name_problem(name: str) -> str:
    return (
        f"invalid metric rule '{name}'; expected <metric>_at_<k> with metric one of "
        f"{', '.join(METRIC_NAMES)}, for example recall_at_20"
    )


def _read_metrics(reader: ConfigReader, root: SourceMap) -> tuple[MetricRule, ...]:
    node = reader.mapping(root, "metrics", "metrics", required=False)
    rules: list[MetricRule] = []
    for name, spec in node.items():
        parsed = parse_metric_rule_name(name)
        if parsed is None:
            reader.problem(node.where(name), _metric_name_problem(name))
            continue
        if not isinstance(spec, SourceMap):
            reader.problem(
                node.where(name),
                f"'metrics.{name}' must be a mapping with floor and max_regression, found {spec!r}",
            )
            continue
        label = f"metrics.{name}"
        reader.check_keys(spec, ("floor", "max_regression"), label)
        # Every metric of METRIC_NAMES is a share in [0, 1], so a floor above 1 would block
        # every model.
        floor = reader.number(spec, "floor", label, minimum=0.0, maximum=1.0)
        regression = reader.number(spec, "max_regression", label, minimum=0.0, maximum=1.0)
        rules.append(MetricRule(name, parsed[0], parsed[1], floor, regression))
    if not rules:
        reader.problem(
            root.where("metrics"),
            "the gate has no metric rules; add at least one under 'metrics' "
            "(for example recall_at_20: {floor: 0.15, max_regression: 0.02})",
        )
    return tuple(rules)


def _read_slice_floors(reader: ConfigReader, root: SourceMap) -> tuple[SliceFloor, ...]:
    node = reader.mapping(root, "slice_floors", "slice_floors", required=False)
    floors: list[SliceFloor] = []
    for name, slices in node.items():
        parsed = parse_metric_rule_name(name)
        if parsed is None:
            reader.problem(node.where(name), _metric_name_problem(name))
            continue
        if not isinstance(slices, SourceMap) or not slices:
            reader.problem(
                node.where(name),
                f"'slice_floors.{name}' must map slice names to floors, found {slices!r}",
            )
            continue
        for slice_name in slices:
            if not _SLICE_PATTERN.match(slice_name):
                reader.problem(
                    slices.where(slice_name),
                    f"invalid slice '{slice_name}' in 'slice_floors.{name}'; expected all, "
                    "new_users, top_active or platform=<name>",
                )
                continue
            floor = reader.number(slices, slice_name, f"slice_floors.{name}", minimum=0.0, maximum=1.0)
            floors.append(SliceFloor(name, parsed[0], parsed[1], slice_name, floor))
    return tuple(floors)


def _read_behavioral(
    reader: ConfigReader, root: SourceMap, base: Path
) -> BehavioralRequirement | None:
    if root.get("behavioral") is None:
        return None
    node = reader.mapping(root, "behavioral", "behavioral")
    reader.check_keys(node, ("suite", "suite_file", "required"), "behavioral")
    suite = reader.string(node, "suite", "behavioral")
    suite_file = reader.string(node, "suite_file", "behavioral")
    # Only "all" exists today: a gate that tolerates a failed behavioral test is not supported.
    reader.string(node, "required", "behavioral", default="all", choices=("all",))
    if not suite_file:
        return None
    path, tried = resolve_config_path(base, suite_file)
    if path is None:
        reader.problem(
            node.where("suite_file"),
            f"behavioral suite file '{suite_file}' not found; tried {' and '.join(map(str, tried))}. "
            "Set 'behavioral.suite_file' to an absolute path or to a path relative to the gate "
            "file's folder",
        )
        return None
    try:
        suite_config = load_suite_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            reader.problem(node.where("suite_file"), f"in behavioral suite file: {problem}")
        return None
    if suite and suite_config.name != suite:
        reader.problem(
            node.where("suite"),
            f"'behavioral.suite' is {suite!r} but {path} names its suite {suite_config.name!r}; "
            "make them match",
        )
    tests = tuple(test.name for test in suite_config.tests)
    return BehavioralRequirement(suite=suite, suite_file=str(path), tests=tests)


def resolve_config_path(base: Path, value: str) -> tuple[Path | None, tuple[Path, ...]]:
    """Find a file that a gate file names. Return the path found (or None) and every path tried.

    An absolute ``value`` is used as it is. A relative one is looked up first in ``base``, the
    gate file's folder, and then under :data:`BUNDLED_ROOT`, so ``conf/behavioral/suite.yaml``
    still finds the bundled suite when the gate file is copied elsewhere.
    """
    path = Path(value).expanduser()
    if path.is_absolute():
        candidates: tuple[Path, ...] = (path,)
    else:
        candidates = tuple(dict.fromkeys((base / path, BUNDLED_ROOT / path)))
    for candidate in candidates:
        if candidate.is_file():
            return candidate, candidates
    return None, candidates


def _positive_number(
    reader: ConfigReader,
    node: SourceMap,
    key: str,
    name: str,
    unit: str,
    example: str,
    default: float | None = None,
) -> float:
    """Read a finite number above 0, recording one problem per mistake.

    A string such as "45ms" gets a single problem that names the unit and an example, instead
    of one for the type and a second one for the value that replaces it.
    """
    value = node.get(key)
    label = f"'{name}.{key}'"
    if isinstance(value, str):
        reader.problem(
            node.where(key),
            f"{label} must be a number of {unit} without a unit, for example {example}; "
            f"found {value!r}",
        )
        return 0.0
    number = reader.number(node, key, name, **({} if default is None else {"default": default}))
    valid = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if valid and number <= 0.0:
        reader.problem(node.where(key), f"{label} must be above 0 {unit}, found {value}")
    return number


def _renamed_serving_keys(reader: ConfigReader, node: SourceMap, allowed: tuple[str, ...]) -> set[str]:
    """Report unknown ``serving`` keys, and return the allowed keys they are misspellings of.

    ``p99_latency_ms`` in place of ``max_p99_latency_ms`` is one mistake, so it gets one
    problem that names the key meant, and the caller skips the missing-key problem.
    """
    renamed: set[str] = set()
    for key in node:
        if key in allowed:
            continue
        missing = [name for name in allowed if name not in node]
        meant = difflib.get_close_matches(str(key), missing, n=1, cutoff=0.6)
        hint = f"; did you mean '{meant[0]}'?" if meant else f"; expected one of {', '.join(allowed)}"
        reader.problem(node.where(key), f"unknown key 'serving.{key}'{hint}")
        renamed.update(meant)
    return renamed


def _read_serving(reader: ConfigReader, root: SourceMap) -> ServingLimits | None:
    if root.get("serving") is None:
        return None
    node = reader.mapping(root, "serving", "serving")
    renamed = _renamed_serving_keys(reader, node, ("max_p99_latency_ms", "max_size_mb"))
    latency = size = 0.0
    if "max_p99_latency_ms" not in renamed:
        latency = _positive_number(reader, node, "max_p99_latency_ms", "serving", "milliseconds", "45")
    if "max_size_mb" not in renamed:
        size = _positive_number(reader, node, "max_size_mb", "serving", "MB", "250")
    return ServingLimits(max_p99_latency_ms=latency, max_size_mb=size)


def _read_data_validation(
    reader: ConfigReader, root: SourceMap
) -> DataValidationRequirement | None:
    if root.get("data_validation") is None:
        return None
    node = reader.mapping(root, "data_validation", "data_validation")
    reader.check_keys(node, ("datasets",), "data_validation")
    datasets = reader.string_list(node, "datasets", "data_validation")
    if "datasets" in node and not datasets and isinstance(node.get("datasets"), list):
        reader.problem(
            node.where("datasets"),
            "'data_validation.datasets' is empty; list at least one dataset, for example "
            "[click_stream], or remove the 'data_validation' section",
        )
    for dataset in sorted({name for name in datasets if datasets.count(name) > 1}):
        reader.problem(
            node.where("datasets"), f"'data_validation.datasets' lists {dataset!r} more than once"
        )
    for dataset in datasets:
        if not dataset.strip():
            reader.problem(node.where("datasets"), "'data_validation.datasets' has an empty name")
    return DataValidationRequirement(datasets=datasets)


def _read_tables(reader: ConfigReader, root: SourceMap) -> GateTables:
    node = reader.mapping(root, "tables", "tables", required=False)
    defaults = GateTables()
    keys = tuple(GateTables.__dataclass_fields__)
    reader.check_keys(node, keys, "tables")
    values = {key: reader.string(node, key, "tables", default=getattr(defaults, key)) for key in keys}
    return GateTables(**values)


def _optional_string(reader: ConfigReader, node: SourceMap, key: str, name: str) -> str | None:
    """Read a string that may be absent or null; an empty or non-string value is a problem."""
    if node.get(key) is None:
        return None
    return reader.string(node, key, name) or None


def _read_mlflow(reader: ConfigReader, root: SourceMap, gate_name: str) -> MlflowSettings:
    node = reader.mapping(root, "mlflow", "mlflow", required=False)
    reader.check_keys(
        node,
        (
            "experiment",
            "tracking_uri",
            "registry_uri",
            "http_timeout_seconds",
            "http_max_retries",
            "http_backoff_factor",
        ),
        "mlflow",
    )
    # MLflow parses its HTTP variables as integers, so these are integers too.
    timeout = reader.integer(
        node, "http_timeout_seconds", "mlflow", default=DEFAULT_HTTP_TIMEOUT_SECONDS, minimum=1
    )
    retries = reader.integer(
        node, "http_max_retries", "mlflow", default=DEFAULT_HTTP_MAX_RETRIES, minimum=0
    )
    backoff = reader.integer(
        node, "http_backoff_factor", "mlflow", default=DEFAULT_HTTP_BACKOFF_FACTOR, minimum=0
    )
    # MLflow 3.17 rejects more than 10 retries and a backoff factor above 120.
    if retries > 10:
        reader.problem(
            node.where("http_max_retries"), f"'mlflow.http_max_retries' must be at most 10, found {retries}"
        )
    if backoff > 120:
        reader.problem(
            node.where("http_backoff_factor"),
            f"'mlflow.http_backoff_factor' must be at most 120, found {backoff}",
        )
    return MlflowSettings(
        experiment=reader.string(node, "experiment", "mlflow", default=gate_name or "gate"),
        tracking_uri=_optional_string(reader, node, "tracking_uri", "mlflow"),
        registry_uri=_optional_string(reader, node, "registry_uri", "mlflow"),
        http_timeout_seconds=timeout,
        http_max_retries=retries,
        http_backoff_factor=backoff,
    )


def _read_alerts(reader: ConfigReader, root: SourceMap) -> AlertConfig:
    node = reader.mapping(root, "alerts", "alerts", required=False)
    reader.check_keys(
        node, ("url_env", "url", "timeout_seconds", "max_attempts", "backoff_seconds"), "alerts"
    )
    url_env = reader.string(node, "url_env", "alerts", default=DEFAULT_ALERT_URL_ENV)
    if url_env and not _ENV_NAME_PATTERN.match(url_env):
        reader.problem(
            node.where("url_env"),
            f"'alerts.url_env' must be an environment variable name, found {url_env!r}",
        )
    timeout = _positive_number(
        reader, node, "timeout_seconds", "alerts", "seconds", "5", default=5.0
    )
    return AlertConfig(
        url_env=url_env,
        url=_optional_string(reader, node, "url", "alerts"),
        timeout_seconds=timeout,
        max_attempts=reader.integer(node, "max_attempts", "alerts", default=3, minimum=1),
        backoff_seconds=reader.number(node, "backoff_seconds", "alerts", default=1.0, minimum=0.0),
    )


def load_gate_config(path: str | Path) -> GateConfig:
    """Parse a gate YAML file.

    Raises ConfigError (exit code 2) listing every problem with ``file:line``: unknown keys,
    numbers that are not finite or are out of range, invalid rule or slice names, a behavioral
    suite file that is not found, and a gate without any metric rule.
    """
    path = Path(path)
    reader = ConfigReader(path)
    root = reader.root
    reader.check_keys(root, _TOP_KEYS, "")

    name = reader.string(root, "name", "")
    registered_model_name = reader.string(root, "registered_model_name", "")
    tolerance = reader.number(root, "tolerance", "", default=DEFAULT_TOLERANCE, minimum=0.0, maximum=0.001)
    metrics = _read_metrics(reader, root)
    slice_floors = _read_slice_floors(reader, root)
    behavioral = _read_behavioral(reader, root, path.resolve().parent)
    serving = _read_serving(reader, root)
    data_validation = _read_data_validation(reader, root)
    tables = _read_tables(reader, root)
    mlflow = _read_mlflow(reader, root, name)
    alerts = _read_alerts(reader, root)

    reader.finish()
    return GateConfig(
        name=name,
        registered_model_name=registered_model_name,
        tolerance=tolerance,
        metrics=metrics,
        slice_floors=slice_floors,
        behavioral=behavioral,
        serving=serving,
        tables=tables,
        mlflow=mlflow,
        alerts=alerts,
        source=str(path),
        data_validation=data_validation,
    )
