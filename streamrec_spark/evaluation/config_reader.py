"""Typed reads from a line-aware YAML mapping that collect every problem before raising.

The evaluation, model and behavioral configurations all go through :class:`ConfigReader`, so
each problem in a file is reported with ``file:line``, the key, what was expected and what was
found, and all problems of a file are raised together as one :class:`ConfigError`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from streamrec_spark.contracts.yaml_source import SourceList, SourceMap, load_yaml
from streamrec_spark.errors import ConfigError

_MISSING = object()


def _qualified(parent: str, key: str) -> str:
    """Return the dotted name of ``key`` under ``parent``, without a prefix at the top level."""
    return f"{parent}.{key}" if parent else key


class ConfigReader:
    """Reads keys of one YAML file and records every problem it finds."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.problems: list[str] = []
        self.root = load_yaml(path)
        if not isinstance(self.root, SourceMap):
            raise ConfigError([f"{self.path}:1: expected a mapping at the top level"])

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def finish(self) -> None:
        """Raise ConfigError listing every recorded problem, if there is any."""
        if self.problems:
            raise ConfigError(self.problems)

    def check_keys(self, parent: SourceMap, allowed: Iterable[str], name: str) -> None:
        """Record a problem for each key of ``parent`` that is not in ``allowed`` (typos)."""
        allowed = tuple(allowed)
        for key in parent:
            if key not in allowed:
                self.problem(
                    parent.where(key),
                    f"unknown key '{_qualified(name, key)}'; expected one of {', '.join(allowed)}",
                )

    def _raw(self, parent: SourceMap, key: str, name: str, default: Any) -> Any:
        if key in parent and parent[key] is not None:
            return parent[key]
        if default is _MISSING:
            self.problem(parent.where(), f"missing key '{_qualified(name, key)}'")
        return default

    def mapping(self, parent: SourceMap, key: str, name: str, required: bool = True) -> SourceMap:
        """Return the mapping under ``key``, or an empty one (with a problem if required)."""
        value = self._raw(parent, key, name, _MISSING if required else None)
        if value is None or value is _MISSING:
            return SourceMap(parent.file, parent.line)
        if not isinstance(value, SourceMap):
            self.problem(parent.where(key), f"'{_qualified(name, key)}' must be a mapping, found {value!r}")
            return SourceMap(parent.file, parent.line)
        return value

    def sequence(self, parent: SourceMap, key: str, name: str, required: bool = True) -> SourceList:
        value = self._raw(parent, key, name, _MISSING if required else None)
        if value is None or value is _MISSING:
            return SourceList(parent.file, parent.line)
        if not isinstance(value, SourceList):
            self.problem(parent.where(key), f"'{_qualified(name, key)}' must be a list, found {value!r}")
            return SourceList(parent.file, parent.line)
        return value

    def string(
        self,
        parent: SourceMap,
        key: str,
        name: str,
        default: Any = _MISSING,
        choices: Iterable[str] | None = None,
    ) -> str:
        value = self._raw(parent, key, name, default)
        if value is _MISSING:
            return ""
        if not isinstance(value, str) or not value:
            self.problem(parent.where(key), f"'{_qualified(name, key)}' must be a non-empty string, found {value!r}")
            return ""
        if choices is not None:
            choices = tuple(choices)
            if value not in choices:
                self.problem(
                    parent.where(key),
                    f"'{_qualified(name, key)}' must be one of {', '.join(choices)}, found {value!r}",
                )
        return value

    def integer(
        self,
        parent: SourceMap,
        key: str,
        name: str,
        default: Any = _MISSING,
        minimum: int | None = None,
    ) -> int:
        value = self._raw(parent, key, name, default)
        if value is _MISSING:
            return 0
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(parent.where(key), f"'{_qualified(name, key)}' must be an integer, found {value!r}")
            return 0
        if minimum is not None and value < minimum:
            self.problem(parent.where(key), f"'{_qualified(name, key)}' must be at least {minimum}, found {value}")
        return value

    def number(
        self,
        parent: SourceMap,
        key: str,
        name: str,
        default: Any = _MISSING,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        """Read a finite number; ``minimum`` and ``maximum`` are inclusive bounds."""
        value = self._raw(parent, key, name, default)
        if value is _MISSING:
            return 0.0
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.problem(parent.where(key), f"'{_qualified(name, key)}' must be a finite number, found {value!r}")
            return 0.0
        if minimum is not None and value < minimum:
            self.problem(parent.where(key), f"'{_qualified(name, key)}' must be at least {minimum}, found {value}")
        if maximum is not None and value > maximum:
            self.problem(parent.where(key), f"'{_qualified(name, key)}' must be at most {maximum}, found {value}")
        return float(value)

    def string_list(
        self,
        parent: SourceMap,
        key: str,
        name: str,
        default: Any = _MISSING,
        choices: Iterable[str] | None = None,
    ) -> tuple[str, ...]:
        value = self._raw(parent, key, name, default)
        if value is _MISSING:
            return ()
        if isinstance(value, tuple):
            return value
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.problem(parent.where(key), f"'{_qualified(name, key)}' must be a list of strings, found {value!r}")
            return ()
        if choices is not None:
            choices = tuple(choices)
            for item in value:
                if item not in choices:
                    self.problem(
                        parent.where(key),
                        f"'{_qualified(name, key)}' contains {item!r}; allowed values are {', '.join(choices)}",
                    )
        return tuple(value)

    def int_list(
        self, parent: SourceMap, key: str, name: str, default: Any = _MISSING, minimum: int = 1
    ) -> tuple[int, ...]:
        value = self._raw(parent, key, name, default)
        if value is _MISSING:
            return ()
        if isinstance(value, tuple):
            return value
        valid = isinstance(value, list) and value and all(
            isinstance(item, int) and not isinstance(item, bool) and item >= minimum for item in value
        )
        if not valid:
            self.problem(
                parent.where(key),
                f"'{_qualified(name, key)}' must be a non-empty list of integers of at least {minimum}, "
                f"found {value!r}",
            )
            return ()
        return tuple(value)
