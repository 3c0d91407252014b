"""Declared schemas of DataFrames that cross a stage boundary, parsed from ``conf/schemas``.

A declared schema names the columns a DataFrame must have, with type, nullability, a closed
set of values and an inclusive range, plus an optional unique key. It is parsed with the
contract loader's strict rules: unknown keys, wrong types and dangling column references are
all reported at once, each with file and line.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from streamrec_spark.contracts.loader import _Problems, _Reader
from streamrec_spark.contracts.model import COLUMN_TYPES, NUMERIC_TYPES
from streamrec_spark.contracts.yaml_source import SourceList, SourceMap, load_yaml
from streamrec_spark.errors import ConfigError

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
SCHEMA_DIR = REPO_ROOT / "conf" / "schemas"

_TOP_KEYS = ("schema", "version", "description", "extra_columns", "unique_key", "columns")
_COLUMN_KEYS = ("name", "type", "nullable", "allowed_values", "min", "max", "description")


@dataclass(frozen=True)
class DeclaredColumn:
    """One column a boundary requires. ``min_value`` and ``max_value`` are inclusive."""

    name: str
    type: str
    nullable: bool
    allowed_values: tuple[str | int, ...] | None = None
    min_value: float | None = None
    max_value: float | None = None
    description: str = ""

    @property
    def is_floating(self) -> bool:
        return self.type in ("double", "float")


@dataclass(frozen=True)
class DeclaredSchema:
    """The columns, unique key and extra-column policy of a DataFrame at a stage boundary."""

    name: str
    version: str
    description: str
    columns: tuple[DeclaredColumn, ...]
    unique_key: tuple[str, ...] = ()
    # "allow" lets other columns through, for an input that carries more than the function
    # reads. "reject" makes each extra column a violation, for an output that must match exactly.
    extra_columns: str = "allow"
    source_file: str = ""

    def column(self, name: str) -> DeclaredColumn:
        for spec in self.columns:
            if spec.name == name:
                return spec
        raise KeyError(name)


def _parse_column(item: SourceMap, problems: _Problems) -> DeclaredColumn | None:
    reader = _Reader(item, problems, "column")
    reader.check_keys(_COLUMN_KEYS)
    name = reader.text("name")
    reader.context = f"column '{name}'"
    column_type = reader.choice("type", COLUMN_TYPES)
    nullable = reader.boolean("nullable", True)

    allowed = None
    if "allowed_values" in item:
        values = item["allowed_values"]
        if (
            not isinstance(values, SourceList)
            or not values
            or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values)
        ):
            reader._wrong("allowed_values", "a non-empty list of strings or integers")
        else:
            allowed = tuple(values)

    low = reader.number("min", required=False)
    high = reader.number("max", required=False)
    if (low is not None or high is not None) and column_type not in (None, *NUMERIC_TYPES):
        problems.add(item.where("min" if "min" in item else "max"),
                     f"column '{name}' of type {column_type} cannot have 'min' or 'max'; ranges "
                     "apply to numeric columns")
    if low is not None and high is not None and low > high:
        problems.add(item.where("min"), f"column '{name}' has min {low} > max {high}")

    if name is None or column_type is None:
        return None
    return DeclaredColumn(
        name=name,
        type=column_type,
        nullable=bool(nullable),
        allowed_values=allowed,
        min_value=None if low is None else float(low),
        max_value=None if high is None else float(high),
        description=reader.text("description", "", required=False) or "",
    )


def parse_declared_schema(document: object, path: Path) -> DeclaredSchema:
    """Build a DeclaredSchema from parsed YAML; raise ConfigError listing every problem."""
    problems = _Problems()
    if not isinstance(document, SourceMap):
        raise ConfigError([f"{path}: a declared schema file must be a YAML mapping"])
    top = _Reader(document, problems, "declared schema")
    top.check_keys(_TOP_KEYS)
    name = top.text("schema")
    version = top.text("version", "1", required=False)
    extra = top.choice("extra_columns", ("allow", "reject"), default="allow")

    columns: list[DeclaredColumn] = []
    items = top.list_of("columns")
    seen: set[str] = set()
    for index, item in enumerate(items or []):
        if not isinstance(item, SourceMap):
            problems.add(items.where(index), "each column must be a mapping with name and type")
            continue
        column = _parse_column(item, problems)
        if column is None:
            continue
        if column.name in seen:
            problems.add(item.where("name"), f"column '{column.name}' is declared twice")
            continue
        seen.add(column.name)
        columns.append(column)
    if items is not None and not items:
        problems.add(document.where("columns"), "a declared schema needs at least one column")

    key = top.list_of("unique_key", required=False) or []
    for index, key_column in enumerate(key):
        if key_column not in seen:
            problems.add(key.where(index),
                         f"unique key column '{key_column}' is not declared; declared columns: "
                         f"{', '.join(c.name for c in columns)}")
    problems.raise_if_any()
    return DeclaredSchema(
        name=str(name),
        version=str(version),
        description=top.text("description", "", required=False) or "",
        columns=tuple(columns),
        unique_key=tuple(str(k) for k in key),
        extra_columns=extra or "allow",
        source_file=str(path),
    )


def load_declared_schema(path: str | Path) -> DeclaredSchema:
    """Load one declared schema file; raise ConfigError with file and line on any problem."""
    path = Path(path)
    schema = parse_declared_schema(load_yaml(path), path)
    logger.debug("loaded declared schema %s from %s", schema.name, path)
    return schema


@functools.lru_cache(maxsize=None)
def named_schema(name: str) -> DeclaredSchema:
    """Load ``conf/schemas/<name>.yaml`` once per process."""
    return load_declared_schema(SCHEMA_DIR / f"{name}.yaml")
