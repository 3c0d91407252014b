"""Binned distributions of one partition, stored as metrics and summed into references."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from streamrec_spark.contracts.model import Contract, Expectation

OTHER_LABEL = "__other__"
# Expectation types judged against a reference profile of their column: the drift checks and
# the per-category volume check, whose profile is the categorical one.
PROFILE_COUNT_TYPES = ("category_volume_ratio",)
PROFILED_TYPES = ("psi_below", *PROFILE_COUNT_TYPES)
MISSING_LABEL = "missing"
PRESENT_LABEL = "present"


@dataclass(frozen=True)
class Bin:
    label: str
    lower: float | None
    upper: float | None
    count: int


@dataclass(frozen=True)
class Profile:
    """The bins of one PSI expectation; a reference profile also names its partitions."""

    bins: tuple[Bin, ...]
    partitions: tuple[date, ...] = ()
    # True when the user named the reference partition, so the window's minimum does not apply.
    named: bool = False

    @property
    def total(self) -> int:
        return sum(b.count for b in self.bins)

    @property
    def counts(self) -> list[int]:
        return [b.count for b in self.bins]

    def signature(self) -> tuple[tuple[str, float | None, float | None], ...]:
        """Bin labels and edges: two profiles can be compared only when these are equal."""
        return tuple((b.label, b.lower, b.upper) for b in self.bins)


def _count(metrics: dict[str, Any], key: str) -> int:
    value = metrics.get(key)
    return int(value) if value is not None else 0


def missing_count(metrics: dict[str, Any], contract: Contract, column: str) -> int:
    """Null plus NaN rows, plus blank strings when the column is required."""
    spec = contract.column(column)
    missing = _count(metrics, f"null:{column}") + _count(metrics, f"nan:{column}")
    if spec.is_string and not spec.nullable:
        missing += _count(metrics, f"blank:{column}")
    return missing


def current_profile(expectation: Expectation, contract: Contract, metrics: dict[str, Any]) -> Profile:
    """Build the partition's profile for a ``psi_below`` expectation from the fused metrics."""
    column = expectation.column
    rows = _count(metrics, "rows")
    if expectation.distribution == "null_rate":
        missing = missing_count(metrics, contract, column)
        return Profile(
            (Bin(MISSING_LABEL, None, None, missing), Bin(PRESENT_LABEL, None, None, rows - missing))
        )
    if expectation.distribution == "categorical" or expectation.type in PROFILE_COUNT_TYPES:
        spec = contract.column(column)
        bins = [
            Bin(str(value), None, None, _count(metrics, f"value:{column}:{value}"))
            for value in spec.allowed_values
        ]
        present = rows - missing_count(metrics, contract, column)
        other = present - sum(b.count for b in bins)
        return Profile((*bins, Bin(OTHER_LABEL, None, None, other)))
    edges = expectation.grid.edges()
    bins = []
    for index in range(expectation.grid.bins):
        # The first and last grid bins also hold values below lower and above upper.
        lower = None if index == 0 else edges[index]
        upper = None if index == expectation.grid.bins - 1 else edges[index + 1]
        bins.append(Bin(f"g{index}", lower, upper, _count(metrics, f"grid:{expectation.id}:{index}")))
    return Profile(tuple(bins))


def sum_profiles(profiles: list[tuple[date, Profile]], named: bool = False) -> Profile | None:
    """Add up profiles with identical bins into one reference; None when the list is empty."""
    if not profiles:
        return None
    first = profiles[0][1]
    counts = [0] * len(first.bins)
    for _, profile in profiles:
        if profile.signature() != first.signature():
            raise ValueError("profiles with different bins cannot be summed")
        counts = [a + b for a, b in zip(counts, profile.counts)]
    bins = tuple(Bin(b.label, b.lower, b.upper, c) for b, c in zip(first.bins, counts))
    return Profile(bins, tuple(sorted(d for d, _ in profiles)), named)
