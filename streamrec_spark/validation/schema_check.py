"""Compare a DataFrame's schema with the contract before any Spark job runs."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql.types import StructType

from streamrec_spark.contracts.model import ColumnSpec, Contract


@dataclass(frozen=True)
class ColumnState:
    """The arrival state of a declared column: present or not, its actual type, and whether
    the checks on it can run."""

    spec: ColumnSpec
    actual_type: str | None  # Spark simpleString, or None when the column is missing
    # Set when a timestamp arrived without a zone and is read as wall-clock time in this zone.
    interpreted_zone: str | None = None

    @property
    def present(self) -> bool:
        return self.actual_type is not None

    @property
    def type_matches(self) -> bool:
        return self.actual_type == self.spec.type or self.interpreted_zone is not None

    @property
    def usable(self) -> bool:
        return self.present and self.type_matches


@dataclass(frozen=True)
class SchemaReport:
    columns: dict[str, ColumnState]
    unexpected: tuple[str, ...]

    def state(self, name: str | None) -> ColumnState | None:
        return None if name is None else self.columns.get(name)

    def usable(self, name: str | None) -> bool:
        state = self.state(name)
        return state is not None and state.usable


def check_schema(contract: Contract, schema: StructType) -> SchemaReport:
    """Match each declared column to the DataFrame's field of the same name (case-sensitive)."""
    actual = {field.name: field.dataType.simpleString() for field in schema.fields}
    states: dict[str, ColumnState] = {}
    for spec in contract.columns:
        actual_type = actual.get(spec.name)
        zone = None
        if (
            spec.type == "timestamp"
            and actual_type == "timestamp_ntz"
            and contract.timestamp_time_zone is not None
        ):
            zone = contract.timestamp_time_zone
        states[spec.name] = ColumnState(spec=spec, actual_type=actual_type, interpreted_zone=zone)
    unexpected = tuple(name for name in actual if name not in states)
    return SchemaReport(columns=states, unexpected=unexpected)
