"""Parse contract YAML into frozen dataclasses, reporting every problem with file and line."""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streamrec_spark.contracts.model import (
    CATEGORIES,
    COLUMN_ORIGINS,
    COLUMN_TYPES,
    NUMERIC_TYPES,
    SEVERITIES,
    SLA_TIERS,
    ColumnSpec,
    Contract,
    Expectation,
    Grid,
    Reference,
)
from streamrec_spark.contracts.yaml_source import SourceList, SourceMap, load_yaml
from streamrec_spark.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _TypeSpec:
    category: str
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()


# Expectation types: the category each belongs to and the parameters it takes.
EXPECTATION_TYPES: dict[str, _TypeSpec] = {
    "columns_present": _TypeSpec("schema"),
    "column_types_match": _TypeSpec("schema"),
    "no_unexpected_columns": _TypeSpec("schema"),
    "primary_key_unique": _TypeSpec("schema"),
    "column_is_instant": _TypeSpec("schema", ("column",)),
    "not_null": _TypeSpec("completeness", ("column",), ("mostly",)),
    "in_set": _TypeSpec("value_range", ("column",), ("mostly",)),
    "between": _TypeSpec("value_range", ("column",), ("min", "max", "mostly")),
    "timestamp_matches_date": _TypeSpec(
        "value_range", ("column", "date_column"), ("time_zone", "mostly")
    ),
    "timestamp_not_after_as_of": _TypeSpec(
        "value_range", ("column",), ("tolerance_minutes", "mostly")
    ),
    "row_count_between": _TypeSpec("volume", (), ("min", "max")),
    "distinct_count_between": _TypeSpec("volume", ("column",), ("min", "max")),
    "category_volume_ratio": _TypeSpec("volume", ("column",), ("min", "max", "min_reference_rows")),
    "psi_below": _TypeSpec(
        "statistical", ("column", "distribution", "max_psi"), ("quantile_bins", "grid")
    ),
    "max_timestamp_lag": _TypeSpec("freshness", ("column",), ("max_lag_hours",)),
    "partition_date_matches": _TypeSpec("freshness", ("column",), ("mostly",)),
    "matches_regex": _TypeSpec("value_range", ("column", "pattern"), ("mostly",)),
    "date_not_after_partition": _TypeSpec("value_range", ("column",), ("mostly",)),
    "max_date_lag": _TypeSpec("freshness", ("column", "max_lag_days")),
}
_COMMON_KEYS = ("id", "category", "type", "severity", "description", "blocks_pipeline")
_DISTRIBUTIONS = ("categorical", "numeric", "null_rate")
_TOP_KEYS = (
    "contract",
    "version",
    "description",
    "producer",
    "consumer",
    "owner",
    "sla_tier",
    "freshness_hours",
    "blocks_pipeline",
    "expected_expectation_count",
    "schema",
    "reference",
    "psi_epsilon",
    "expectations",
    "extends",
    "expectation_overrides",
)
_SCHEMA_KEYS = (
    "columns",
    "primary_key",
    "partition_column",
    "partition_time_zone",
    "timestamp_time_zone",
)
_COLUMN_KEYS = ("name", "type", "nullable", "allowed_values", "description", "origin")
_REFERENCE_KEYS = ("window_days", "min_partitions", "when_missing")
_GRID_KEYS = ("lower", "upper", "bins", "scale")


class _Problems:
    """Collects every problem of one load, so that all are reported at once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)


_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
# Grid bins per histogram: each is a metric row per partition and a counter in every task.
MAX_GRID_BINS = 10_000
# tolerance_minutes: 100 years, so that the as-of time plus the tolerance stays a valid instant.
MAX_TOLERANCE_MINUTES = 100 * 366 * 24 * 60
_INTEGER_TYPES = ("bigint", "int", "smallint")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Reader:
    """Typed accessors over a SourceMap that record a problem instead of raising."""

    def __init__(self, mapping: SourceMap, problems: _Problems, context: str):
        self.mapping = mapping
        self.problems = problems
        self.context = context

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        for key in self.mapping:
            if key not in allowed:
                self.problems.add(
                    self.mapping.where(key),
                    f"unknown key '{key}' in {self.context}; allowed keys: {', '.join(allowed)}",
                )

    def _missing(self, key: str) -> None:
        self.problems.add(self.mapping.where(), f"{self.context} is missing required key '{key}'")

    def _wrong(self, key: str, expected: str) -> None:
        value = self.mapping[key]
        self.problems.add(
            self.mapping.where(key),
            f"'{key}' in {self.context} must be {expected}, found {value!r}",
        )

    def text(self, key: str, default: str | None = None, required: bool = True) -> str | None:
        if key not in self.mapping:
            if required and default is None:
                self._missing(key)
            return default
        value = self.mapping[key]
        if not isinstance(value, str) or not value.strip():
            self._wrong(key, "a non-empty string")
            return default
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str | None:
        value = self.text(key, default)
        if value is not None and value not in choices:
            self.problems.add(
                self.mapping.where(key),
                f"'{key}' in {self.context} must be one of {', '.join(choices)}, found {value!r}",
            )
            return default
        return value

    def number(
        self,
        key: str,
        default: float | None = None,
        required: bool = True,
        minimum: float | None = None,
        integer: bool = False,
        maximum: float | None = None,
    ) -> float | None:
        if key not in self.mapping:
            if required and default is None:
                self._missing(key)
            return default
        value = self.mapping[key]
        kind = "an integer" if integer else "a number"
        if not _is_number(value) or (integer and not isinstance(value, int)):
            self._wrong(key, kind)
            return default
        if isinstance(value, float) and not math.isfinite(value):
            self._wrong(key, f"{kind} (not NaN or infinite)")
            return default
        if isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX:
            # Spark has no integer literal beyond BIGINT; such a bound can be written as a float.
            self._wrong(key, f"{kind} within the 64-bit range (write a larger bound as a float, for example 1.0e+23)")
            return default
        if minimum is not None and value < minimum:
            self._wrong(key, f"{kind} of at least {minimum:g}")
            return default
        if maximum is not None and value > maximum:
            self._wrong(key, f"{kind} of at most {maximum:g}")
            return default
        return value

    def boolean(self, key: str, default: bool | None) -> bool | None:
        if key not in self.mapping:
            return default
        value = self.mapping[key]
        if not isinstance(value, bool):
            self._wrong(key, "true or false")
            return default
        return value

    def mapping_of(self, key: str, required: bool = True) -> SourceMap | None:
        if key not in self.mapping:
            if required:
                self._missing(key)
            return None
        value = self.mapping[key]
        if not isinstance(value, SourceMap):
            self._wrong(key, "a mapping")
            return None
        return value

    def list_of(self, key: str, required: bool = True) -> SourceList | None:
        if key not in self.mapping:
            if required:
                self._missing(key)
            return None
        value = self.mapping[key]
        if not isinstance(value, SourceList):
            self._wrong(key, "a list")
            return None
        return value


def _check_zone(reader: _Reader, key: str, default: str | None) -> str | None:
    zone = reader.text(key, default, required=False)
    if zone is None:
        return None
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        reader.problems.add(
            reader.mapping.where(key),
            f"'{key}' is not a known IANA time zone: {zone!r}; use a name such as UTC or "
            "Asia/Shanghai",
        )
        return default
    return zone


def _parse_columns(schema: _Reader) -> tuple[ColumnSpec, ...]:
    items = schema.list_of("columns")
    columns: list[ColumnSpec] = []
    seen: set[str] = set()
    for index, item in enumerate(items or []):
        if not isinstance(item, SourceMap):
            schema.problems.add(items.where(index), "each column must be a mapping with name and type")
            continue
        reader = _Reader(item, schema.problems, "column")
        reader.check_keys(_COLUMN_KEYS)
        name = reader.text("name")
        reader.context = f"column '{name}'"
        column_type = reader.choice("type", COLUMN_TYPES)
        nullable = reader.boolean("nullable", True)
        origin = reader.choice("origin", COLUMN_ORIGINS, default="source")
        allowed = None
        if "allowed_values" in item:
            values = item["allowed_values"]
            if (
                not isinstance(values, SourceList)
                or not values
                or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values)
            ):
                reader._wrong("allowed_values", "a non-empty list of strings or integers")
            elif column_type in _INTEGER_TYPES and not all(
                isinstance(v, int) and _INT64_MIN <= v <= _INT64_MAX for v in values
            ):
                reader._wrong("allowed_values", f"a list of integers for a {column_type} column")
            elif column_type is not None and column_type != "string" and column_type not in _INTEGER_TYPES:
                schema.problems.add(
                    item.where("allowed_values"),
                    f"column '{name}' is {column_type}; allowed_values apply only to string and "
                    "integer columns, so remove them or change the column's type",
                )
            else:
                # YAML reads [1, 2] as integers; a string column compares them as "1" and "2".
                if column_type == "string":
                    values = [str(v) for v in values]
                if len(set(values)) != len(values):
                    reader._wrong("allowed_values", "a list without repeated values")
                else:
                    allowed = tuple(values)
        if name is None or column_type is None:
            continue
        if name in seen:
            schema.problems.add(item.where("name"), f"column '{name}' is declared twice")
            continue
        seen.add(name)
        columns.append(
            ColumnSpec(
                name=name,
                type=column_type,
                nullable=nullable,
                allowed_values=allowed,
                description=reader.text("description", "", required=False) or "",
                origin=origin or "source",
            )
        )
    return tuple(columns)


def _parse_grid(value: Any, where: str, problems: _Problems) -> Grid | None:
    if not isinstance(value, SourceMap):
        problems.add(where, "'grid' must be a mapping with lower, upper, bins and scale")
        return None
    reader = _Reader(value, problems, "grid")
    reader.check_keys(_GRID_KEYS)
    lower = reader.number("lower")
    upper = reader.number("upper")
    bins = reader.number("bins", integer=True, minimum=2, maximum=MAX_GRID_BINS)
    scale = reader.choice("scale", ("linear", "log"), default="linear")
    if lower is None or upper is None or bins is None or scale is None:
        return None
    if upper <= lower:
        problems.add(value.where("upper"), f"grid 'upper' ({upper}) must be above 'lower' ({lower})")
        return None
    if not math.isfinite(float(upper) - float(lower)):
        problems.add(
            value.where("upper"),
            f"grid from {lower} to {upper} is wider than a double can hold; narrow 'lower' and 'upper'",
        )
        return None
    return Grid(float(lower), float(upper), int(bins), scale)


def _parse_expectation(
    item: SourceMap,
    columns: dict[str, ColumnSpec],
    partition_time_zone: str,
    freshness_hours: float | None,
    problems: _Problems,
) -> Expectation | None:
    reader = _Reader(item, problems, "expectation")
    expectation_id = reader.text("id")
    reader.context = f"expectation '{expectation_id}'"
    kind = reader.choice("type", tuple(EXPECTATION_TYPES))
    category = reader.choice("category", CATEGORIES)
    severity = reader.choice("severity", SEVERITIES, default="error")
    if expectation_id is None or kind is None or category is None:
        return None
    spec = EXPECTATION_TYPES[kind]
    reader.check_keys(_COMMON_KEYS + spec.required + spec.optional)
    for key in spec.required:
        if key not in item:
            reader._missing(key)
    if category != spec.category:
        problems.add(
            item.where("category"),
            f"expectation '{expectation_id}' of type '{kind}' belongs to category "
            f"'{spec.category}', found '{category}'",
        )

    fields: dict[str, Any] = {}
    column_name = reader.text("column", required=False)
    column = None
    if column_name is not None:
        column = columns.get(column_name)
        if column is None:
            problems.add(
                item.where("column"),
                f"expectation '{expectation_id}' refers to column '{column_name}', which is not "
                f"in the schema; declared columns: {', '.join(columns)}",
            )
        fields["column"] = column_name

    if "mostly" in item:
        mostly = reader.number("mostly", minimum=0)
        if mostly is not None and mostly > 1:
            reader._wrong("mostly", "a share between 0 and 1")
        elif mostly is not None:
            # From the decimal text, so 0.99 is exactly 99/100 and not the nearest binary float.
            fields["mostly"] = Fraction(str(mostly))

    for key, target in (("min", "min_value"), ("max", "max_value")):
        if key in item:
            fields[target] = reader.number(key)
    if kind in ("between", "row_count_between", "distinct_count_between", "category_volume_ratio"):
        low, high = fields.get("min_value"), fields.get("max_value")
        if low is None and high is None and "min" not in item and "max" not in item:
            problems.add(item.where(), f"expectation '{expectation_id}' needs 'min', 'max' or both")
        if low is not None and high is not None and low > high:
            problems.add(item.where("min"), f"expectation '{expectation_id}' has min {low} > max {high}")

    if kind == "category_volume_ratio":
        for key in ("min_value", "max_value"):
            if fields.get(key) is not None and fields[key] < 0:
                problems.add(item.where(key[:3]), f"expectation '{expectation_id}': a volume ratio "
                             f"cannot be negative, found {fields[key]}")
        floor = reader.number("min_reference_rows", 100, integer=True, minimum=0)
        fields["min_reference_rows"] = None if floor is None else int(floor)
    if kind in ("in_set", "category_volume_ratio") and column is not None and column.allowed_values is None:
        problems.add(
            item.where("column"),
            f"expectation '{expectation_id}' checks a closed set, but column '{column.name}' "
            "declares no allowed_values in the schema",
        )
    if kind == "between" and column is not None and column.type not in NUMERIC_TYPES:
        problems.add(
            item.where("column"),
            f"expectation '{expectation_id}' checks a numeric range on column '{column.name}' "
            f"of type {column.type}",
        )
    if kind in ("timestamp_matches_date", "timestamp_not_after_as_of", "max_timestamp_lag",
                "column_is_instant"):
        if column is not None and column.type != "timestamp":
            problems.add(
                item.where("column"),
                f"expectation '{expectation_id}' needs a timestamp column, '{column.name}' is "
                f"{column.type}",
            )
    if kind == "timestamp_matches_date":
        date_name = reader.text("date_column")
        if date_name is not None:
            fields["date_column"] = date_name
            date_spec = columns.get(date_name)
            if date_spec is None or date_spec.type != "date":
                problems.add(
                    item.where("date_column"),
                    f"expectation '{expectation_id}': 'date_column' must name a date column of "
                    f"the schema, found '{date_name}'",
                )
        fields["time_zone"] = _check_zone(reader, "time_zone", partition_time_zone)
    if kind in ("partition_date_matches", "date_not_after_partition", "max_date_lag"):
        if column is not None and column.type != "date":
            problems.add(
                item.where("column"),
                f"expectation '{expectation_id}' needs a date column, '{column.name}' is "
                f"{column.type}",
            )
    if kind == "max_date_lag":
        lag_days = reader.number("max_lag_days", required=False, integer=True, minimum=0)
        fields["max_lag_days"] = None if lag_days is None else int(lag_days)
    if kind == "matches_regex":
        if column is not None and not column.is_string:
            problems.add(
                item.where("column"),
                f"expectation '{expectation_id}' matches a pattern, so it needs a string column, "
                f"'{column.name}' is {column.type}",
            )
        fields["pattern"] = _parse_pattern(reader, expectation_id)
    fields["blocks_pipeline"] = reader.boolean("blocks_pipeline", None)
    if kind == "timestamp_not_after_as_of":
        fields["tolerance_minutes"] = reader.number(
            "tolerance_minutes", 0.0, minimum=0, maximum=MAX_TOLERANCE_MINUTES
        )
    if kind == "max_timestamp_lag":
        fields["max_lag_hours"] = reader.number(
            "max_lag_hours", freshness_hours, minimum=0
        )
    if kind == "psi_below":
        distribution = reader.choice("distribution", _DISTRIBUTIONS)
        fields["distribution"] = distribution
        fields["max_psi"] = reader.number("max_psi", minimum=0)
        if distribution == "categorical" and column is not None and column.allowed_values is None:
            problems.add(
                item.where("distribution"),
                f"expectation '{expectation_id}': a categorical PSI needs allowed_values on "
                f"column '{column.name}'",
            )
        if distribution == "numeric":
            if column is not None and column.type not in NUMERIC_TYPES:
                problems.add(
                    item.where("column"),
                    f"expectation '{expectation_id}': a numeric PSI needs a numeric column, "
                    f"'{column.name}' is {column.type}",
                )
            if "grid" not in item:
                reader._missing("grid")
            else:
                fields["grid"] = _parse_grid(item["grid"], item.where("grid"), problems)
            fields["quantile_bins"] = int(reader.number("quantile_bins", 10, integer=True, minimum=2))
            grid = fields.get("grid")
            if grid is not None and fields["quantile_bins"] > grid.bins:
                problems.add(
                    item.where("quantile_bins"),
                    f"expectation '{expectation_id}': quantile_bins ({fields['quantile_bins']}) "
                    f"cannot exceed the grid's bins ({grid.bins})",
                )
    return Expectation(
        id=expectation_id,
        category=category,
        type=kind,
        severity=severity or "error",
        description=reader.text("description", "", required=False) or "",
        **{key: value for key, value in fields.items() if value is not None},
    )


def _parse_pattern(reader: _Reader, expectation_id: str) -> str | None:
    """Read ``pattern`` and reject one that Python's ``re`` cannot compile.

    Spark evaluates the pattern with Java's regex engine. The two dialects agree on the common
    syntax (classes, groups, quantifiers, anchors) but not on every construct.
    """
    # A missing pattern is already reported as a missing required key.
    pattern = reader.text("pattern", required=False)
    if pattern is None:
        return None
    try:
        re.compile(pattern)
    except re.error as exc:
        reader.problems.add(
            reader.mapping.where("pattern"),
            f"expectation '{expectation_id}' has an invalid regular expression {pattern!r} "
            f"({exc}); write a pattern such as '[0-9]+(,[0-9]+)*'",
        )
        return None
    return pattern


def _merge_maps(base: SourceMap, update: SourceMap, skip: tuple[str, ...] = ()) -> SourceMap:
    """Merge ``update`` over ``base``: nested mappings merge key by key, other values replace."""
    merged = SourceMap(update.file, update.line)
    for source in (base, update):
        for key, value in source.items():
            if key in skip:
                continue
            previous = merged.get(key)
            if isinstance(previous, SourceMap) and isinstance(value, SourceMap):
                value = _merge_maps(previous, value)
            merged[key] = value
            merged.key_lines[key] = source.key_lines[key]
    return merged


def _apply_extends(document: SourceMap, path: Path, problems: _Problems, depth: int = 0) -> SourceMap:
    """Merge a contract that ``extends`` another over its parent (mappings key by key, lists
    and scalars whole), then apply ``expectation_overrides``: parameters replaced by id."""
    if "extends" not in document:
        return document
    if depth > 4:
        raise ConfigError([f"{document.where('extends')}: 'extends' chain is deeper than 5 files"])
    parent_path = (path.parent / str(document["extends"])).resolve()
    parent = _apply_extends(load_yaml(parent_path), parent_path, problems, depth + 1)
    merged = _merge_maps(parent, document, skip=("extends", "expectation_overrides"))
    overrides = document.get("expectation_overrides")
    if overrides is None:
        return merged
    if not isinstance(overrides, SourceMap):
        problems.add(document.where("expectation_overrides"), "'expectation_overrides' must be a mapping of id to parameters")
        return merged
    expectations = merged.get("expectations")
    by_id = {
        item.get("id"): item
        for item in (expectations if isinstance(expectations, SourceList) else [])
        if isinstance(item, SourceMap)
    }
    for expectation_id, params in overrides.items():
        target = by_id.get(expectation_id)
        if target is None:
            problems.add(
                overrides.where(expectation_id),
                f"override for unknown expectation '{expectation_id}'; ids in {parent_path.name}: "
                f"{', '.join(str(k) for k in by_id)}",
            )
            continue
        if not isinstance(params, SourceMap):
            problems.add(overrides.where(expectation_id), f"override for '{expectation_id}' must be a mapping")
            continue
        for key, value in params.items():
            if key in ("id", "type", "category"):
                problems.add(params.where(key), f"an override cannot change '{key}'")
                continue
            target[key] = value
            target.key_lines[key] = params.key_lines[key]
    return merged


def parse_contract(document: Any, path: Path, problems: _Problems) -> Contract | None:
    if not isinstance(document, SourceMap):
        problems.add(str(path), "a contract file must be a YAML mapping")
        return None
    document = _apply_extends(document, path, problems)
    top = _Reader(document, problems, "contract")
    top.check_keys(_TOP_KEYS)
    name = top.text("contract")
    sla_tier = top.choice("sla_tier", SLA_TIERS)
    freshness_hours = top.number("freshness_hours", minimum=0)

    schema_map = top.mapping_of("schema")
    columns: tuple[ColumnSpec, ...] = ()
    primary_key: tuple[str, ...] = ()
    partition_column = None
    partition_zone = "UTC"
    timestamp_zone = None
    if schema_map is not None:
        schema = _Reader(schema_map, problems, "schema")
        schema.check_keys(_SCHEMA_KEYS)
        columns = _parse_columns(schema)
        by_name = {column.name: column for column in columns}
        key_list = schema.list_of("primary_key", required=False) or []
        for index, key in enumerate(key_list):
            if key not in by_name:
                problems.add(key_list.where(index), f"primary key column '{key}' is not in the schema")
        primary_key = tuple(str(key) for key in key_list)
        partition_column = schema.text("partition_column")
        if partition_column is not None and partition_column not in by_name:
            problems.add(
                schema_map.where("partition_column"),
                f"partition column '{partition_column}' is not in the schema",
            )
        partition_zone = _check_zone(schema, "partition_time_zone", "UTC") or "UTC"
        timestamp_zone = _check_zone(schema, "timestamp_time_zone", None)

    reference_map = top.mapping_of("reference", required=False)
    reference = Reference(window_days=7, min_partitions=1, when_missing="warn")
    if reference_map is not None:
        ref = _Reader(reference_map, problems, "reference")
        ref.check_keys(_REFERENCE_KEYS)
        reference = Reference(
            window_days=int(ref.number("window_days", 7, integer=True, minimum=1)),
            min_partitions=int(ref.number("min_partitions", 1, integer=True, minimum=1)),
            when_missing=ref.choice("when_missing", ("warn", "fail"), default="warn") or "warn",
        )

    by_name = {column.name: column for column in columns}
    expectations: list[Expectation] = []
    items = top.list_of("expectations")
    seen: dict[str, str] = {}
    for index, item in enumerate(items or []):
        if not isinstance(item, SourceMap):
            problems.add(items.where(index), "each expectation must be a mapping")
            continue
        expectation = _parse_expectation(item, by_name, partition_zone, freshness_hours, problems)
        if expectation is None:
            continue
        if expectation.id in seen:
            problems.add(
                item.where("id"),
                f"expectation id '{expectation.id}' is already used at {seen[expectation.id]}",
            )
            continue
        seen[expectation.id] = item.where("id")
        expectations.append(expectation)
    epsilon = top.number("psi_epsilon", 1e-4, required=False, minimum=0)
    if epsilon is not None and not 0 < epsilon < 0.01:
        problems.add(document.where("psi_epsilon"), f"'psi_epsilon' must be above 0 and below 0.01, found {epsilon}")

    if items is not None and not items:
        problems.add(document.where("expectations"), "a contract needs at least one expectation")
    declared = top.number("expected_expectation_count", required=False, integer=True, minimum=0)
    if declared is not None and items is not None and declared != len(items):
        problems.add(
            document.where("expected_expectation_count"),
            f"contract '{name}' declares {declared} "
            f"{'expectation' if declared == 1 else 'expectations'} but lists {len(items)}; update "
            "'expected_expectation_count' or the list",
        )
    default_blocks = sla_tier == "critical"
    blocks_pipeline = top.boolean("blocks_pipeline", default_blocks)
    version = document.get("version")
    if version is None or isinstance(version, (bool, SourceMap, SourceList)):
        problems.add(document.where("version"), "contract needs a 'version' such as \"1.0.0\"")
    producer = top.text("producer")
    consumer = top.text("consumer")
    owner = top.text("owner")
    if problems.items or name is None or sla_tier is None or partition_column is None:
        return None
    return Contract(
        name=name,
        version=str(version),
        description=top.text("description", "", required=False) or "",
        producer=producer or "",
        consumer=consumer or "",
        owner=owner or "",
        sla_tier=sla_tier,
        freshness_hours=float(freshness_hours or 0),
        columns=columns,
        primary_key=primary_key,
        partition_column=partition_column,
        partition_time_zone=partition_zone,
        timestamp_time_zone=timestamp_zone,
        reference=reference,
        psi_epsilon=float(epsilon or 1e-4),
        expectations=tuple(expectations),
        source_file=str(path),
        blocks_pipeline=blocks_pipeline,
        expected_expectation_count=None if declared is None else int(declared),
    )


def load_contract(path: str | Path) -> Contract:
    """Load one contract file; raise ConfigError listing every problem with file and line."""
    path = Path(path)
    problems = _Problems()
    contract = parse_contract(load_yaml(path), path, problems)
    problems.raise_if_any()
    assert contract is not None
    logger.debug("loaded contract %s %s from %s", contract.name, contract.version, path)
    return contract
