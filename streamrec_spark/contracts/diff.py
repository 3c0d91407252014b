"""Compare two versions of a contract and classify every change by its effect on consumers.

Each change has an impact:

- ``breaking``: a consumer's code or pipeline can fail after the change. The data may now hold
  something consumers never had to handle: a removed or renamed column, a narrowed or changed
  type, a column that became nullable, a new value in a closed set. Or a check got stricter
  (a tightened threshold, a new blocking check, a raised severity or tier), so a delivery that
  passes today may be rejected and stop the pipeline.
- ``relaxed``: the contract promises less, but every delivery that passes today still
  passes and every consumer schema still holds (a loosened threshold, a removed check, a
  widened type). Consumers should review these; ``--strict`` counts them as breaking.
- ``compatible``: nothing a consumer relies on changes (a new column, descriptions, owner).

The comparison is pure: it reads two parsed contracts and never touches Spark.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from streamrec_spark.contracts.model import ColumnSpec, Contract, Expectation, NUMERIC_TYPES
from streamrec_spark.errors import EXIT_FAILED, EXIT_PASSED

BREAKING = "breaking"
RELAXED = "relaxed"
COMPATIBLE = "compatible"
IMPACTS = (BREAKING, RELAXED, COMPATIBLE)

# Type changes that keep every old value exactly representable.
WIDENINGS = {
    ("smallint", "int"),
    ("smallint", "bigint"),
    ("int", "bigint"),
    ("smallint", "float"),
    ("smallint", "double"),
    ("int", "double"),
    ("float", "double"),
}
SLA_ORDER = {"standard": 0, "critical": 1}
SEVERITY_ORDER = {"warn": 0, "error": 1}


@dataclass(frozen=True)
class Change:
    """One difference between the old and the new contract. ``code`` is stable."""

    code: str
    impact: str
    subject: str
    message: str
    old: Any = None
    new: Any = None


@dataclass(frozen=True)
class ContractDiff:
    """Every change between two versions of one contract, breaking ones first."""

    old: Contract
    new: Contract
    changes: tuple[Change, ...]

    def of_impact(self, impact: str) -> tuple[Change, ...]:
        return tuple(change for change in self.changes if change.impact == impact)

    def is_breaking(self, strict: bool = False) -> bool:
        """True when a change breaks consumers; with ``strict``, relaxed changes count too."""
        return bool(self.of_impact(BREAKING)) or (strict and bool(self.of_impact(RELAXED)))

    def exit_code(self, strict: bool = False) -> int:
        return EXIT_FAILED if self.is_breaking(strict) else EXIT_PASSED

    def codes(self) -> list[str]:
        return [change.code for change in self.changes]

    def format_text(self, strict: bool = False) -> str:
        """Render the diff for people: a verdict line, then one line per change."""
        counts = ", ".join(f"{len(self.of_impact(i))} {i}" for i in IMPACTS)
        verdict = "BREAKING" if self.is_breaking(strict) else "NOT BREAKING"
        lines = [f"{self.old.name} {self.old.version} -> {self.new.name} {self.new.version}: "
                 f"{verdict} ({counts})"]
        if not self.changes:
            lines.append("  no differences")
        for change in self.changes:
            lines.append(f"  {change.impact:<10} {change.code:<26} {change.subject}: {change.message}")
        return "\n".join(lines)

    def to_json(self, strict: bool = False) -> str:
        return json.dumps(
            {
                "contract": self.new.name,
                "old_version": self.old.version,
                "new_version": self.new.version,
                "breaking": self.is_breaking(strict),
                "changes": [asdict(change) for change in self.changes],
            },
            indent=2,
            default=str,
        )


class _Collector:
    def __init__(self) -> None:
        self.changes: list[Change] = []

    def add(self, code: str, impact: str, subject: str, message: str, old: Any = None,
            new: Any = None) -> None:
        self.changes.append(Change(code, impact, subject, message, old, new))


def _type_change(old: str, new: str) -> tuple[str, str]:
    if (old, new) in WIDENINGS:
        return "TYPE_WIDENED", RELAXED
    if old in NUMERIC_TYPES and new in NUMERIC_TYPES:
        return "TYPE_NARROWED", BREAKING
    return "TYPE_CHANGED", BREAKING


def _renames(old: Contract, new: Contract, removed: list[str], added: list[str]) -> dict[str, str]:
    """Pair removed and added columns that look like one renamed column.

    A pair must have the same type and either the same position in the column list or an
    expectation id that pointed at the old name and now points at the new one.
    """
    old_checks = {e.id: e.column for e in old.expectations}
    new_checks = {e.id: e.column for e in new.expectations}
    pairs: dict[str, str] = {}
    for old_name in removed:
        old_spec = old.column(old_name)
        old_index = old.column_names.index(old_name)
        for new_name in added:
            if new_name in pairs.values() or new.column(new_name).type != old_spec.type:
                continue
            same_place = new.column_names.index(new_name) == old_index
            same_checks = any(old_checks.get(i) == old_name and column == new_name
                              for i, column in new_checks.items())
            if same_place or same_checks:
                pairs[old_name] = new_name
                break
    return pairs


def _compare_columns(old: Contract, new: Contract, out: _Collector) -> None:
    old_names, new_names = set(old.column_names), set(new.column_names)
    removed = [name for name in old.column_names if name not in new_names]
    added = [name for name in new.column_names if name not in old_names]
    renames = _renames(old, new, removed, added)
    for old_name, new_name in renames.items():
        out.add("COLUMN_RENAMED", BREAKING, f"column '{old_name}'",
                f"renamed to '{new_name}' (same type, {old.column(old_name).type}); consumers "
                "that read the old name fail", old_name, new_name)
    for name in removed:
        if name not in renames:
            out.add("COLUMN_REMOVED", BREAKING, f"column '{name}'",
                    "removed; consumers that read it fail", name, None)
    for name in added:
        if name not in renames.values():
            out.add("COLUMN_ADDED", COMPATIBLE, f"column '{name}'",
                    f"added ({new.column(name).type})", None, name)
    for name in old.column_names:
        if name in new_names:
            _compare_column(old.column(name), new.column(name), out)
        elif name in renames:
            _compare_column(old.column(name), new.column(renames[name]), out)


def _compare_column(old: ColumnSpec, new: ColumnSpec, out: _Collector) -> None:
    subject = f"column '{new.name}'"
    if old.type != new.type:
        code, impact = _type_change(old.type, new.type)
        out.add(code, impact, subject, f"type {old.type} -> {new.type}", old.type, new.type)
    if old.nullable and not new.nullable:
        out.add("NULLABLE_TIGHTENED", COMPATIBLE, subject,
                "no longer nullable (completeness checks enforce it, not this flag)", True, False)
    if not old.nullable and new.nullable:
        out.add("NULLABLE_LOOSENED", BREAKING, subject,
                "may now be null; consumers that assume a value fail", False, True)
    _compare_value_set(old, new, subject, out)
    if old.origin != new.origin:
        out.add("ORIGIN_CHANGED", COMPATIBLE, subject, f"origin {old.origin} -> {new.origin}",
                old.origin, new.origin)
    if old.description != new.description:
        out.add("DESCRIPTION_CHANGED", COMPATIBLE, subject, "description changed")


def _compare_value_set(old: ColumnSpec, new: ColumnSpec, subject: str, out: _Collector) -> None:
    if old.allowed_values is None and new.allowed_values is None:
        return
    if old.allowed_values is None:
        out.add("VALUE_SET_CLOSED", COMPATIBLE, subject,
                f"now a closed set {{{', '.join(map(str, new.allowed_values))}}}", None,
                list(new.allowed_values))
        return
    if new.allowed_values is None:
        out.add("VALUE_SET_OPENED", BREAKING, subject,
                "no longer a closed set; consumers may receive any value", list(old.allowed_values),
                None)
        return
    gained = [v for v in new.allowed_values if v not in old.allowed_values]
    lost = [v for v in old.allowed_values if v not in new.allowed_values]
    if gained:
        out.add("VALUE_ADDED", BREAKING, subject,
                f"closed set gains {', '.join(repr(v) for v in gained)}; consumers that "
                "enumerate the values (encoders, input schemas) must handle it first", None, gained)
    if lost:
        out.add("VALUE_REMOVED", BREAKING, subject,
                f"closed set loses {', '.join(repr(v) for v in lost)}; a delivery that still "
                "contains it is now rejected", lost, None)


def _tighter(old: float | None, new: float | None, higher_is_tighter: bool) -> bool | None:
    """True when the limit got stricter, False when looser, None when unchanged.

    ``None`` as a limit means unbounded, so adding a limit tightens and removing one loosens.
    """
    if old == new:
        return None
    if old is None:
        return True
    if new is None:
        return False
    return new > old if higher_is_tighter else new < old


# Expectation fields compared as thresholds: field -> (label, a higher value is stricter).
_THRESHOLDS = (
    ("mostly", "mostly", True),
    ("min_value", "min", True),
    ("max_value", "max", False),
    ("max_psi", "max_psi", False),
    ("max_lag_hours", "max_lag_hours", False),
    ("max_lag_days", "max_lag_days", False),
    ("tolerance_minutes", "tolerance_minutes", False),
    ("min_reference_rows", "min_reference_rows", False),
)


def _effective_blocks(contract: Contract, expectation: Expectation) -> bool:
    if expectation.blocks_pipeline is not None:
        return expectation.blocks_pipeline
    return contract.blocks_pipeline


def _compare_expectations(old: Contract, new: Contract, out: _Collector) -> None:
    old_by_id = {e.id: e for e in old.expectations}
    new_by_id = {e.id: e for e in new.expectations}
    for expectation_id, expectation in old_by_id.items():
        if expectation_id not in new_by_id:
            out.add("CHECK_REMOVED", RELAXED, f"expectation '{expectation_id}'",
                    f"removed ({expectation.type}"
                    f"{' on ' + expectation.column if expectation.column else ''}); its guarantee "
                    "is gone")
    for expectation_id, expectation in new_by_id.items():
        if expectation_id not in old_by_id:
            blocking = expectation.severity == "error"
            out.add("CHECK_ADDED", BREAKING if blocking else COMPATIBLE,
                    f"expectation '{expectation_id}'",
                    f"added ({expectation.type}, severity {expectation.severity})"
                    + ("; deliveries that pass today may be rejected" if blocking else ""))
            continue
        _compare_expectation(old, new, old_by_id[expectation_id], expectation, out)


def _compare_expectation(old_contract: Contract, new_contract: Contract, old: Expectation,
                         new: Expectation, out: _Collector) -> None:
    subject = f"expectation '{new.id}'"
    if (old.type, old.column, old.date_column) != (new.type, new.column, new.date_column):
        out.add("CHECK_REPLACED", BREAKING, subject,
                f"now checks {new.type} on {new.column} instead of {old.type} on {old.column}")
        return
    if old.severity != new.severity:
        raised = SEVERITY_ORDER[new.severity] > SEVERITY_ORDER[old.severity]
        out.add("SEVERITY_RAISED" if raised else "SEVERITY_LOWERED", BREAKING if raised else RELAXED,
                subject, f"severity {old.severity} -> {new.severity}", old.severity, new.severity)
    old_blocks = _effective_blocks(old_contract, old)
    new_blocks = _effective_blocks(new_contract, new)
    if old_blocks != new_blocks:
        out.add("BLOCKS_PIPELINE_ON" if new_blocks else "BLOCKS_PIPELINE_OFF",
                BREAKING if new_blocks else RELAXED, subject,
                f"a failure {'now stops' if new_blocks else 'no longer stops'} the pipeline",
                old_blocks, new_blocks)
    for name, label, higher_is_tighter in _THRESHOLDS:
        old_value, new_value = getattr(old, name), getattr(new, name)
        tighter = _tighter(
            None if old_value is None else float(old_value),
            None if new_value is None else float(new_value),
            higher_is_tighter,
        )
        if tighter is None:
            continue
        out.add("THRESHOLD_TIGHTENED" if tighter else "THRESHOLD_LOOSENED",
                BREAKING if tighter else RELAXED, subject,
                f"{label} {_show(old_value)} -> {_show(new_value)}", _show(old_value), _show(new_value))
    if old.pattern != new.pattern:
        out.add("PATTERN_CHANGED", BREAKING, subject,
                f"pattern '{old.pattern}' -> '{new.pattern}'; values that matched may no longer",
                old.pattern, new.pattern)
    if old.time_zone != new.time_zone:
        out.add("TIME_ZONE_CHANGED", BREAKING, subject, f"time zone {old.time_zone} -> {new.time_zone}",
                old.time_zone, new.time_zone)
    if (old.distribution, old.grid, old.quantile_bins) != (new.distribution, new.grid, new.quantile_bins):
        fails = new_contract.reference.when_missing == "fail"
        out.add("DRIFT_BINS_CHANGED", BREAKING if fails else COMPATIBLE, subject,
                "drift bins changed, so stored reference profiles no longer match and the "
                "reference rebuilds from new partitions"
                + (" (reference when_missing is fail, so the check errors meanwhile)" if fails else ""))


def _show(value: Any) -> str:
    if value is None:
        return "none"
    return f"{float(value):g}"


def _compare_contract(old: Contract, new: Contract, out: _Collector) -> None:
    if old.name != new.name:
        out.add("CONTRACT_RENAMED", BREAKING, "contract",
                f"dataset name {old.name} -> {new.name}; every consumer looks it up by name",
                old.name, new.name)
    if old.primary_key != new.primary_key:
        out.add("PRIMARY_KEY_CHANGED", BREAKING, "schema",
                f"primary key ({', '.join(old.primary_key)}) -> ({', '.join(new.primary_key)})",
                list(old.primary_key), list(new.primary_key))
    for field, label in (("partition_column", "partition column"),
                         ("partition_time_zone", "partition time zone"),
                         ("timestamp_time_zone", "time zone of zone-less timestamps")):
        if getattr(old, field) != getattr(new, field):
            out.add(f"{field.upper()}_CHANGED", BREAKING, "schema",
                    f"{label} {getattr(old, field)} -> {getattr(new, field)}",
                    getattr(old, field), getattr(new, field))
    if old.sla_tier != new.sla_tier:
        raised = SLA_ORDER[new.sla_tier] > SLA_ORDER[old.sla_tier]
        out.add("SLA_TIER_RAISED" if raised else "SLA_TIER_LOWERED", BREAKING if raised else RELAXED,
                "contract", f"SLA tier {old.sla_tier} -> {new.sla_tier}", old.sla_tier, new.sla_tier)
    if old.blocks_pipeline != new.blocks_pipeline:
        out.add("CONTRACT_BLOCKS_PIPELINE_CHANGED", BREAKING if new.blocks_pipeline else RELAXED,
                "contract", f"blocks_pipeline {old.blocks_pipeline} -> {new.blocks_pipeline}",
                old.blocks_pipeline, new.blocks_pipeline)
    tighter = _tighter(old.freshness_hours, new.freshness_hours, higher_is_tighter=False)
    if tighter is not None:
        out.add("FRESHNESS_TIGHTENED" if tighter else "FRESHNESS_LOOSENED",
                BREAKING if tighter else RELAXED, "contract",
                f"freshness {old.freshness_hours:g} h -> {new.freshness_hours:g} h",
                old.freshness_hours, new.freshness_hours)
    if old.reference != new.reference:
        stricter = (new.reference.when_missing == "fail" and old.reference.when_missing == "warn") or (
            new.reference.min_partitions > old.reference.min_partitions)
        out.add("REFERENCE_CHANGED", BREAKING if stricter else COMPATIBLE, "reference",
                f"{asdict(old.reference)} -> {asdict(new.reference)}")
    for field in ("producer", "consumer", "owner", "description"):
        if getattr(old, field) != getattr(new, field):
            out.add(f"{field.upper()}_CHANGED", COMPATIBLE, "contract",
                    f"{field} {getattr(old, field)!r} -> {getattr(new, field)!r}",
                    getattr(old, field), getattr(new, field))


def _major(version: str) -> int | None:
    match = re.match(r"\s*v?(\d+)", version)
    return int(match.group(1)) if match else None


def diff_contracts(old: Contract, new: Contract) -> ContractDiff:
    """Compare ``old`` with ``new`` and return every change, breaking ones first."""
    out = _Collector()
    _compare_contract(old, new, out)
    _compare_columns(old, new, out)
    _compare_expectations(old, new, out)
    has_breaking = any(change.impact == BREAKING for change in out.changes)
    old_major, new_major = _major(old.version), _major(new.version)
    if has_breaking and old_major is not None and new_major is not None and new_major <= old_major:
        out.add("MAJOR_VERSION_NOT_RAISED", COMPATIBLE, "version",
                f"{old.version} -> {new.version}: a breaking change should raise the major version",
                old.version, new.version)
    order = {impact: index for index, impact in enumerate(IMPACTS)}
    changes = sorted(out.changes, key=lambda change: order[change.impact])
    return ContractDiff(old, new, tuple(changes))
