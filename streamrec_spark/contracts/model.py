"""Typed, immutable form of a data contract, built once from YAML by ``loader``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

SEVERITIES = ("error", "warn")
SLA_TIERS = ("critical", "standard")
CATEGORIES = ("schema", "completeness", "value_range", "volume", "statistical", "freshness")
# Origins of a column's values: delivered by the producer as they are, computed or added by our
# converter, or invented by the converter (not observed at all).
COLUMN_ORIGINS = ("source", "derived", "synthetic")

# Spark SQL type names (DataType.simpleString) that a contract may declare.
COLUMN_TYPES = (
    "string",
    "bigint",
    "int",
    "smallint",
    "double",
    "float",
    "boolean",
    "timestamp",
    "date",
)
NUMERIC_TYPES = ("bigint", "int", "smallint", "double", "float")
FLOATING_TYPES = ("double", "float")


@dataclass(frozen=True)
class ColumnSpec:
    """One declared column: Spark type, nullability and, for a closed set, its allowed values."""

    name: str
    type: str
    nullable: bool
    allowed_values: tuple[str, ...] | None = None
    description: str = ""
    origin: str = "source"

    @property
    def is_floating(self) -> bool:
        return self.type in FLOATING_TYPES

    @property
    def is_string(self) -> bool:
        return self.type == "string"


@dataclass(frozen=True)
class Grid:
    """Fine fixed bins that every partition's numeric profile is counted into.

    Quantile bins for PSI are chosen among these edges, so both sides of a comparison are
    exact counts over the same edges. ``scale`` is ``linear`` or ``log`` (log1p spacing from
    ``lower``); values below ``lower`` fall in the first bin and above ``upper`` in the last.
    """

    lower: float
    upper: float
    bins: int
    scale: str

    def edges(self) -> list[float]:
        """Return the ``bins + 1`` edges from ``lower`` to ``upper``."""
        span = self.upper - self.lower
        if self.scale == "log":
            top = math.log1p(span)
            return [self.lower + math.expm1(top * i / self.bins) for i in range(self.bins + 1)]
        return [self.lower + span * i / self.bins for i in range(self.bins + 1)]


@dataclass(frozen=True)
class Expectation:
    """One check of a contract. Which optional fields apply depends on ``type``."""

    id: str
    category: str
    type: str
    severity: str
    description: str = ""
    column: str | None = None
    # Share of evaluated rows that must satisfy the condition, kept as an exact fraction so that
    # one bad row in ten million fails a ``mostly`` of 1.0.
    mostly: Fraction = Fraction(1)
    min_value: float | None = None
    max_value: float | None = None
    date_column: str | None = None
    time_zone: str | None = None
    tolerance_minutes: float | None = None
    max_lag_hours: float | None = None
    # statistical (psi_below): "categorical", "numeric" or "null_rate"
    distribution: str | None = None
    max_psi: float | None = None
    quantile_bins: int | None = None
    grid: Grid | None = None
    # matches_regex: a Java regular expression that the whole value must match.
    pattern: str | None = None
    # max_date_lag: the newest date may be at most this many days before the partition date.
    max_lag_days: int | None = None
    # category_volume_ratio: categories whose reference mean is below this many rows per
    # partition are reported but not judged, since their ratio is noise.
    min_reference_rows: int | None = None
    # Whether a blocking failure of this check stops the pipeline; None follows the contract.
    blocks_pipeline: bool | None = None

    @property
    def blocking(self) -> bool:
        return self.severity == "error"


@dataclass(frozen=True)
class Reference:
    """Settings that build a partition's reference distribution for the statistical checks."""

    window_days: int
    min_partitions: int
    when_missing: str  # "warn" or "fail"


@dataclass(frozen=True)
class Contract:
    """A feed's data contract: who produces it, its SLA, schema and expectations."""

    name: str
    version: str
    description: str
    producer: str
    consumer: str
    owner: str
    sla_tier: str
    freshness_hours: float
    columns: tuple[ColumnSpec, ...]
    primary_key: tuple[str, ...]
    partition_column: str
    partition_time_zone: str
    timestamp_time_zone: str | None
    reference: Reference
    psi_epsilon: float
    expectations: tuple[Expectation, ...]
    source_file: str = ""
    # Whether a blocking failure on this feed stops the pipeline (exit 1). Defaults by SLA tier:
    # critical feeds stop it, standard feeds are recorded and alerted unless the contract sets it.
    blocks_pipeline: bool = True
    # The number of expectations the file declares it lists, checked at load time; None when
    # the file does not declare it (the registry requires it).
    expected_expectation_count: int | None = None

    def column(self, name: str) -> ColumnSpec:
        for spec in self.columns:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.columns)

    def expectation(self, expectation_id: str) -> Expectation:
        for expectation in self.expectations:
            if expectation.id == expectation_id:
                return expectation
        raise KeyError(expectation_id)
