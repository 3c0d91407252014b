"""The daily pipeline's settings (``conf/pipeline/daily.yaml``), parsed once into frozen dataclasses.

Relative paths in the file are resolved against the repository root (the folder that contains
``scripts/`` and ``jobs/``), because cron and Airflow start the pipeline from any working
directory. Values that contain ``://`` are URIs and are kept as they are. Every problem in the
file is reported at once, each with ``file:line``, as one :class:`ConfigError`.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from streamrec_spark.contracts.yaml_source import SourceList, SourceMap
from streamrec_spark.errors import ConfigError
from streamrec_spark.evaluation.config_reader import ConfigReader

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_PIPELINE_CONFIG = REPO_ROOT / "conf" / "pipeline" / "daily.yaml"

# The feeds the daily pipeline validates, in the order the runner validates them.
PIPELINE_FEEDS: tuple[str, ...] = ("click_stream", "item_metadata", "user_profiles")
MODEL_TYPES: tuple[str, ...] = ("popularity", "recency_affinity")
INPUT_FORMATS: tuple[str, ...] = ("parquet", "delta")
MODEL_OUTPUT_FIELDS: tuple[str, ...] = ("model_type", "date")
LOCK_FILE_NAME = "daily-pipeline.lock"

_TOP_KEYS = (
    "warehouse",
    "database",
    "registry",
    "feeds",
    "features",
    "model",
    "holdout_days",
    "gate",
    "spark_submit",
    "lock_file",
)


@dataclass(frozen=True)
class FeedInput:
    """Input of one feed: the root that contains one ``<partition column>=<date>`` folder per day."""

    dataset: str
    input: str
    input_format: str = "parquet"


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of one daily pipeline. Paths are absolute (or URIs) after loading.

    ``model_output`` is a pattern with the fields ``{model_type}`` and ``{date}``; each run
    saves its candidate model to a folder of its own. ``holdout_days`` is the length of the
    evaluation window that ends with the partition date; the model trains on the
    ``training_days`` before it.
    """

    source_file: str
    root: str
    warehouse: str
    database: str
    registry: str
    feeds: tuple[FeedInput, ...]
    features_output: str
    feature_window_days: int
    model_type: str
    model_output: str
    model_items: str | None
    training_days: int
    holdout_days: int
    gate_config: str
    spark_submit: str
    spark_submit_options: tuple[str, ...]
    lock_file: str | None = None

    def feed(self, dataset: str) -> FeedInput:
        for feed in self.feeds:
            if feed.dataset == dataset:
                return feed
        raise KeyError(f"feed {dataset!r} is not in the pipeline configuration {self.source_file}")

    def model_folder(self, partition_date: date) -> str:
        """Return the folder this date's candidate model is saved to."""
        return self.model_output.format(model_type=self.model_type, date=partition_date.isoformat())

    def lock_path(self) -> str:
        """Return the lock file that keeps two daily runs from overlapping.

        Raises ConfigError when the warehouse is a URI and no ``lock_file`` is configured,
        because a lock needs a local file.
        """
        if self.lock_file is not None:
            return self.lock_file
        if "://" in self.warehouse:
            raise ConfigError([
                f"{self.source_file}: the warehouse {self.warehouse} is a URI, so the lock cannot "
                "live under it; set 'lock_file' to a local path"
            ])
        return str(Path(self.warehouse) / LOCK_FILE_NAME)


def _resolve(root: Path, value: str) -> str:
    if "://" in value:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else root / path)


def _pattern_fields(pattern: str) -> list[str] | None:
    """Return the field names of a ``str.format`` pattern, or None when it does not parse."""
    try:
        return [name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None]
    except ValueError:
        return None


def _optional_string(reader: ConfigReader, node: SourceMap, key: str, name: str) -> str | None:
    """Read a string that may be absent or null."""
    if node.get(key) is None:
        return None
    return reader.string(node, key, name) or None


def _read_feeds(reader: ConfigReader, root_node: SourceMap, root: Path) -> tuple[FeedInput, ...]:
    node = reader.mapping(root_node, "feeds", "feeds")
    reader.check_keys(node, PIPELINE_FEEDS, "feeds")
    feeds = []
    for dataset in PIPELINE_FEEDS:
        if dataset not in node:
            reader.problem(node.where(), f"missing key 'feeds.{dataset}'; the pipeline validates "
                                         f"{', '.join(PIPELINE_FEEDS)}")
            continue
        name = f"feeds.{dataset}"
        entry = reader.mapping(node, dataset, name)
        reader.check_keys(entry, ("input", "input_format"), name)
        feeds.append(FeedInput(
            dataset=dataset,
            input=_resolve(root, reader.string(entry, "input", name)),
            input_format=reader.string(entry, "input_format", name, default="parquet",
                                       choices=INPUT_FORMATS),
        ))
    return tuple(feeds)


def _read_model(reader: ConfigReader, root_node: SourceMap, root: Path) -> dict:
    node = reader.mapping(root_node, "model", "model")
    reader.check_keys(node, ("type", "output", "training_days", "items"), "model")
    output = reader.string(node, "output", "model")
    fields = _pattern_fields(output)
    if fields is None:
        reader.problem(node.where("output"), f"'model.output' is not a valid pattern: {output!r}; "
                                             "use {model_type} and {date} as fields")
    elif "date" not in fields or any(field not in MODEL_OUTPUT_FIELDS for field in fields):
        reader.problem(
            node.where("output"),
            f"'model.output' must contain {{date}} and no fields other than "
            f"{', '.join('{' + field + '}' for field in MODEL_OUTPUT_FIELDS)}, found {output!r}",
        )
    items = _optional_string(reader, node, "items", "model")
    return {
        "model_type": reader.string(node, "type", "model", choices=MODEL_TYPES),
        "model_output": _resolve(root, output),
        "model_items": _resolve(root, items) if items else None,
        "training_days": reader.integer(node, "training_days", "model", minimum=1),
    }


def _read_spark_submit(reader: ConfigReader, root_node: SourceMap, root: Path) -> dict:
    node = reader.mapping(root_node, "spark_submit", "spark_submit", required=False)
    reader.check_keys(node, ("script", "options"), "spark_submit")
    options = node.get("options")
    if options is not None and (not isinstance(options, SourceList)
                                or not all(isinstance(item, str) for item in options)):
        reader.problem(node.where("options"),
                       f"'spark_submit.options' must be a list of strings, found {options!r}")
        options = None
    script = reader.string(node, "script", "spark_submit", default="scripts/spark-submit.sh")
    return {
        "spark_submit": _resolve(root, script),
        "spark_submit_options": tuple(options or ()),
    }


def load_pipeline_config(path: str | Path = DEFAULT_PIPELINE_CONFIG,
                         root: str | Path = REPO_ROOT) -> PipelineConfig:
    """Parse a pipeline YAML file; raise ConfigError listing every problem with ``file:line``.

    ``root`` is the repository root that relative paths are resolved against.
    """
    root = Path(root).resolve()
    reader = ConfigReader(path)
    top = reader.root
    reader.check_keys(top, _TOP_KEYS, "")

    database = reader.string(top, "database", "", default="streamrec")
    if database and not database.replace("_", "").isalnum():
        reader.problem(top.where("database"),
                       f"'database' must contain only letters, digits and underscores, found {database!r}")
    features = reader.mapping(top, "features", "features")
    reader.check_keys(features, ("output", "window_days"), "features")
    gate = reader.mapping(top, "gate", "gate")
    reader.check_keys(gate, ("config",), "gate")
    lock_file = _optional_string(reader, top, "lock_file", "")

    values = dict(
        source_file=str(Path(path).resolve()),
        root=str(root),
        warehouse=_resolve(root, reader.string(top, "warehouse", "")),
        database=database,
        registry=_resolve(root, reader.string(top, "registry", "", default="conf/registry.yaml")),
        feeds=_read_feeds(reader, top, root),
        features_output=_resolve(root, reader.string(features, "output", "features")),
        feature_window_days=reader.integer(features, "window_days", "features", default=7, minimum=1),
        holdout_days=reader.integer(top, "holdout_days", "", minimum=1),
        gate_config=_resolve(root, reader.string(gate, "config", "gate")),
        lock_file=_resolve(root, lock_file) if lock_file else None,
        **_read_model(reader, top, root),
        **_read_spark_submit(reader, top, root),
    )
    reader.finish()
    return PipelineConfig(**values)
