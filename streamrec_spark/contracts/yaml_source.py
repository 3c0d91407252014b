"""YAML loading that remembers the file and line of every value, for error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from streamrec_spark.errors import ConfigError


class SourceMap(dict):
    """A YAML mapping that also records where each of its keys was written."""

    def __init__(self, file: str, line: int):
        super().__init__()
        self.file = file
        self.line = line
        self.key_lines: dict[str, tuple[str, int]] = {}

    def where(self, key: str | None = None) -> str:
        """Return ``file:line`` of ``key``, or of the mapping itself when the key is absent."""
        if key is not None and key in self.key_lines:
            file, line = self.key_lines[key]
            return f"{file}:{line}"
        return f"{self.file}:{self.line}"


class SourceList(list):
    """A YAML sequence that records the line of each item."""

    def __init__(self, file: str, line: int):
        super().__init__()
        self.file = file
        self.line = line
        self.item_lines: list[int] = []

    def where(self, index: int | None = None) -> str:
        if index is not None and index < len(self.item_lines):
            return f"{self.file}:{self.item_lines[index]}"
        return f"{self.file}:{self.line}"


def _convert(node: yaml.Node, file: str) -> Any:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        mapping = SourceMap(file, line)
        for key_node, value_node in node.value:
            key = _convert(key_node, file)
            if not isinstance(key, str):
                raise ConfigError([f"{file}:{key_node.start_mark.line + 1}: key {key!r} is not a string"])
            if key in mapping:
                raise ConfigError(
                    [f"{file}:{key_node.start_mark.line + 1}: duplicate key '{key}'; keep one of them"]
                )
            mapping[key] = _convert(value_node, file)
            mapping.key_lines[key] = (file, key_node.start_mark.line + 1)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        sequence = SourceList(file, line)
        for item in node.value:
            sequence.append(_convert(item, file))
            sequence.item_lines.append(item.start_mark.line + 1)
        return sequence
    # Scalars go through the safe loader's resolver so that 1, 1.0, true and null get their types.
    return yaml.SafeLoader(yaml.dump(None)).construct_object(node, deep=True)


def load_yaml(path: str | Path) -> Any:
    """Parse one YAML document, raising ConfigError with the file and line on a syntax error."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found; check the path"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read file ({exc.strerror})"]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}: invalid YAML ({problem})"]) from None
    if node is None:
        raise ConfigError([f"{path}: file is empty"])
    return _convert(node, str(path))
