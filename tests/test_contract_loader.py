"""Unit tests for contract and registry loading: strict parsing, file:line errors, ``extends``."""

from __future__ import annotations

import re
import textwrap
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest

from streamrec_spark.contracts.loader import load_contract
from streamrec_spark.contracts.model import Grid
from streamrec_spark.contracts.registry import load_registry
from streamrec_spark.errors import EXIT_INVALID, ConfigError, InvalidRequestError

REPO = Path(__file__).resolve().parent.parent
CLICK_STREAM = REPO / "conf" / "contracts" / "click_stream.yaml"
DEMO_CLICK_STREAM = REPO / "conf" / "demo" / "click_stream.yaml"

# A small valid contract. Each error case below replaces one line of it, so every other line
# stays valid and the test can name the single line that the problem must point at.
BASE = textwrap.dedent(
    """\
    contract: orders
    version: "2.1.0"
    description: Orders placed in the shop.
    producer: shop-backend
    consumer: ml-recommendations
    owner: shop-oncall@example.invalid
    sla_tier: critical
    freshness_hours: 3
    expected_expectation_count: 6
    schema:
      partition_column: order_date
      partition_time_zone: UTC
      primary_key: [order_id]
      columns:
        - {name: order_id, type: string, nullable: false}
        - {name: status, type: string, nullable: false, allowed_values: [open, paid]}
        - {name: note, type: string, nullable: true}
        - {name: amount, type: double, nullable: true}
        - {name: order_ts, type: timestamp, nullable: false}
        - {name: order_date, type: date, nullable: false}
    reference:
      window_days: 14
      min_partitions: 2
      when_missing: fail
    expectations:
      - {id: present, category: schema, type: columns_present, severity: error}
      - {id: complete_status, category: completeness, type: not_null, column: status, mostly: 0.999}
      - {id: status_in_set, category: value_range, type: in_set, column: status, severity: warn}
      - {id: amount_range, category: value_range, type: between, column: amount, min: 0, max: 500}
      - {id: ts_matches_date, category: value_range, type: timestamp_matches_date, column: order_ts, date_column: order_date}
      - id: amount_drift
        category: statistical
        type: psi_below
        column: amount
        distribution: numeric
        max_psi: 0.25
        quantile_bins: 5
        grid: {lower: 0, upper: 500, bins: 50, scale: linear}
    """
)


def _write(directory: Path, text: str, name: str = "contract.yaml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def _variant(old: str, new: str) -> str:
    """Return BASE with the one line containing ``old`` replaced by ``new`` (same indentation)."""
    lines = BASE.splitlines(keepends=True)
    matches = [index for index, line in enumerate(lines) if old in line]
    assert len(matches) == 1, f"{old!r} must occur on exactly one line of BASE"
    index = matches[0]
    indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
    lines[index] = indent + new + "\n"
    return "".join(lines)


def _line_of(text: str, needle: str) -> int:
    """Return the 1-based number of the only line of ``text`` that contains ``needle``."""
    numbers = [number for number, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(numbers) == 1, f"{needle!r} must occur on exactly one line"
    return numbers[0]


def _load_problems(path: Path, match: str) -> list[str]:
    with pytest.raises(ConfigError, match=match) as caught:
        load_contract(path)
    return caught.value.problems


def test_base_contract_loads(tmp_path):
    contract = load_contract(_write(tmp_path, BASE))

    assert contract.name == "orders"
    assert contract.version == "2.1.0"
    assert contract.sla_tier == "critical"
    assert contract.blocks_pipeline is True
    assert contract.freshness_hours == 3.0
    assert contract.primary_key == ("order_id",)
    assert contract.column_names == ("order_id", "status", "note", "amount", "order_ts", "order_date")
    assert contract.column("status").allowed_values == ("open", "paid")
    assert contract.column("note").nullable is True
    assert contract.reference.window_days == 14
    assert contract.reference.min_partitions == 2
    assert contract.reference.when_missing == "fail"
    assert contract.psi_epsilon == 1e-4
    assert [e.id for e in contract.expectations] == [
        "present", "complete_status", "status_in_set", "amount_range", "ts_matches_date", "amount_drift",
    ]


def test_expectation_fields_parsed(tmp_path):
    contract = load_contract(_write(tmp_path, BASE))

    complete = contract.expectation("complete_status")
    assert complete.mostly == Fraction(999, 1000)
    assert complete.severity == "error"  # the default when 'severity' is absent
    assert contract.expectation("status_in_set").severity == "warn"
    assert contract.expectation("status_in_set").mostly == Fraction(1)
    amount = contract.expectation("amount_range")
    assert (amount.min_value, amount.max_value) == (0, 500)
    # The time zone of a timestamp/date check defaults to the partition's zone.
    assert contract.expectation("ts_matches_date").time_zone == "UTC"
    drift = contract.expectation("amount_drift")
    assert drift.grid == Grid(0.0, 500.0, 50, "linear")
    assert drift.quantile_bins == 5
    assert drift.max_psi == 0.25


def test_contract_objects_are_frozen(tmp_path):
    contract = load_contract(_write(tmp_path, BASE))

    with pytest.raises(AttributeError):
        contract.name = "other"
    with pytest.raises(AttributeError):
        contract.expectations[0].severity = "warn"


@pytest.mark.parametrize(
    "mostly_text, expected",
    [
        ("1.0", Fraction(1)),
        ("1", Fraction(1)),
        ("0.999", Fraction(999, 1000)),
        ("0.95", Fraction(19, 20)),
        ("0", Fraction(0)),
    ],
)
def test_mostly_kept_as_exact_fraction(tmp_path, mostly_text, expected):
    text = _variant(
        "id: complete_status",
        "- {id: complete_status, category: completeness, type: not_null, column: status, "
        f"mostly: {mostly_text}}}",
    )

    contract = load_contract(_write(tmp_path, text))

    assert contract.expectation("complete_status").mostly == expected


def test_real_click_stream_contract():
    contract = load_contract(CLICK_STREAM)

    assert contract.name == "click_stream"
    assert len(contract.expectations) == 23
    assert Counter(e.category for e in contract.expectations) == {
        "schema": 5,
        "completeness": 4,
        "value_range": 5,
        "volume": 3,
        "statistical": 4,
        "freshness": 2,
    }
    assert len({e.id for e in contract.expectations}) == 23
    assert contract.expectation("range_event_ts_matches_event_date").mostly == Fraction(999, 1000)
    assert contract.expectation("drift_duration_seconds").grid == Grid(0.0, 14400.0, 64, "log")


def test_demo_contract_extends_production():
    production = load_contract(CLICK_STREAM)
    demo = load_contract(DEMO_CLICK_STREAM)

    # Nested schema keys are merged one by one: the zones change, the columns are inherited.
    assert demo.partition_time_zone == "Asia/Shanghai"
    assert demo.timestamp_time_zone == "Asia/Shanghai"
    assert demo.columns == production.columns
    assert demo.primary_key == production.primary_key
    # The zone default of the date check follows the overridden partition zone.
    assert demo.expectation("range_event_ts_matches_event_date").time_zone == "Asia/Shanghai"
    # expectation_overrides replace single parameters and keep the rest.
    volume = demo.expectation("volume_row_count")
    assert (volume.min_value, volume.max_value) == (1000, 50000)
    assert volume.severity == "error"
    users = demo.expectation("volume_distinct_users")
    assert (users.min_value, users.max_value) == (100, 5000)
    assert users.column == "user_id"
    assert demo.expectation("schema_primary_key_unique").severity == "warn"
    untouched = [e for e in demo.expectations if e.id not in (
        "volume_row_count", "volume_distinct_users", "schema_primary_key_unique",
        "range_event_ts_matches_event_date", "volume_by_platform",
    )]
    assert demo.expectation("volume_by_platform").min_reference_rows == 200
    assert untouched == [production.expectation(e.id) for e in untouched]


# (line of BASE to replace, replacement, regex the message must match, needle of the line the
# problem must point at). Each case introduces exactly one problem.
SINGLE_PROBLEMS = [
    pytest.param(
        "sla_tier: critical", "sla_tier: critical\ncolour: blue",
        r"unknown key 'colour' in contract; allowed keys: contract, version", "colour: blue",
        id="unknown-top-level-key",
    ),
    pytest.param(
        "window_days: 14", "window_days: 14\n  max_age: 3",
        r"unknown key 'max_age' in reference", "max_age: 3",
        id="unknown-nested-key",
    ),
    pytest.param(
        "id: status_in_set",
        "- {id: status_in_set, category: value_range, type: in_set, column: status, treshold: 3}",
        r"unknown key 'treshold' in expectation 'status_in_set'", "treshold",
        id="unknown-expectation-key",
    ),
    pytest.param(
        "id: complete_status",
        "- {id: complete_status, category: completeness, type: not_null, column: status, mostly: high}",
        r"'mostly' in expectation 'complete_status' must be a number, found 'high'", "mostly: high",
        id="mostly-not-a-number",
    ),
    pytest.param(
        "id: complete_status",
        '- {id: complete_status, category: completeness, type: not_null, column: status, mostly: "0.9"}',
        r"'mostly' in expectation 'complete_status' must be a number, found '0\.9'", 'mostly: "0.9"',
        id="mostly-quoted-number",
    ),
    pytest.param(
        "id: complete_status",
        "- {id: complete_status, category: completeness, type: not_null, column: status, mostly: 1.5}",
        r"'mostly' in expectation 'complete_status' must be a share between 0 and 1, found 1\.5",
        "mostly: 1.5",
        id="mostly-above-one",
    ),
    pytest.param(
        "id: complete_status",
        "- {id: complete_status, category: completeness, type: not_null, column: status, mostly: -0.1}",
        r"'mostly' in expectation 'complete_status' must be a number of at least 0, found -0\.1",
        "mostly: -0.1",
        id="mostly-negative",
    ),
    pytest.param(
        "id: complete_status",
        "- {id: complete_status, category: completeness, type: not_null, column: status, mostly: true}",
        r"'mostly' in expectation 'complete_status' must be a number, found True", "mostly: true",
        id="mostly-boolean",
    ),
    pytest.param(
        "freshness_hours: 3", "freshness_hours: three",
        r"'freshness_hours' in contract must be a number, found 'three'", "freshness_hours: three",
        id="freshness-not-a-number",
    ),
    pytest.param(
        "name: note,", "- {name: note, type: string, nullable: maybe}",
        r"'nullable' in column 'note' must be true or false, found 'maybe'", "nullable: maybe",
        id="nullable-not-boolean",
    ),
    pytest.param(
        "name: note,", "- {name: note, type: varchar, nullable: true}",
        r"'type' in column 'note' must be one of string, bigint, .*found 'varchar'", "type: varchar",
        id="unknown-column-type",
    ),
    pytest.param(
        "id: amount_range",
        "- {id: amount_range, category: value_range, type: between, column: amonut, min: 0, max: 500}",
        r"expectation 'amount_range' refers to column 'amonut', which is not in the schema; "
        r"declared columns: order_id, status, note, amount, order_ts, order_date",
        "column: amonut",
        id="dangling-column",
    ),
    pytest.param(
        "primary_key: [order_id]", "primary_key: [order_no]",
        r"primary key column 'order_no' is not in the schema", "primary_key: [order_no]",
        id="dangling-primary-key",
    ),
    pytest.param(
        "partition_column: order_date", "partition_column: day",
        r"partition column 'day' is not in the schema", "partition_column: day",
        id="dangling-partition-column",
    ),
    pytest.param(
        "id: status_in_set",
        "- {id: status_in_set, category: value_range, type: one_of, column: status}",
        r"'type' in expectation 'status_in_set' must be one of columns_present, .*found 'one_of'",
        "type: one_of",
        id="unknown-expectation-type",
    ),
    pytest.param(
        "id: complete_status",
        "- {id: complete_status, category: volume, type: not_null, column: status}",
        r"expectation 'complete_status' of type 'not_null' belongs to category 'completeness', "
        r"found 'volume'",
        "category: volume",
        id="category-does-not-match-type",
    ),
    pytest.param(
        "id: status_in_set",
        "- {id: status_in_set, category: value_range, type: in_set, column: note}",
        r"expectation 'status_in_set' checks a closed set, but column 'note' declares no "
        r"allowed_values",
        "column: note",
        id="in-set-without-allowed-values",
    ),
    pytest.param(
        "expected_expectation_count: 6", "expected_expectation_count: 7",
        r"contract 'orders' declares 7 expectations but lists 6; update 'expected_expectation_count'",
        "expected_expectation_count: 7",
        id="expectation-count-mismatch",
    ),
    pytest.param(
        "partition_time_zone: UTC", "partition_time_zone: Mars/Olympus_Mons",
        r"'partition_time_zone' is not a known IANA time zone: 'Mars/Olympus_Mons'",
        "Mars/Olympus_Mons",
        id="invalid-partition-time-zone",
    ),
    pytest.param(
        "id: ts_matches_date",
        "- {id: ts_matches_date, category: value_range, type: timestamp_matches_date, "
        "column: order_ts, date_column: order_date, time_zone: UTC+8}",
        r"'time_zone' is not a known IANA time zone: 'UTC\+8'", "time_zone: UTC+8",
        id="invalid-expectation-time-zone",
    ),
    pytest.param(
        "id: amount_range",
        "- {id: amount_range, category: value_range, type: between, column: amount, min: 9, max: 1}",
        r"expectation 'amount_range' has min 9 > max 1", "min: 9",
        id="between-min-above-max",
    ),
    pytest.param(
        "id: amount_range",
        "- {id: amount_range, category: value_range, type: between, column: status, min: 0}",
        r"expectation 'amount_range' checks a numeric range on column 'status' of type string",
        "column: status, min: 0",
        id="between-on-string-column",
    ),
    pytest.param(
        "quantile_bins: 5", "quantile_bins: 51",
        r"quantile_bins \(51\) cannot exceed the grid's bins \(50\)", "quantile_bins: 51",
        id="quantile-bins-above-grid",
    ),
    pytest.param(
        "grid: {", "grid: {lower: 5, upper: 5, bins: 50, scale: linear}",
        r"grid 'upper' \(5\) must be above 'lower' \(5\)", "grid: {lower: 5",
        id="grid-upper-not-above-lower",
    ),
    pytest.param(
        "grid: {", "grid: {lower: -1.0e+308, upper: 1.0e+308, bins: 50, scale: linear}",
        r"grid from -1e\+308 to 1e\+308 is wider than a double can hold", "grid: {lower: -1.0e",
        id="grid-wider-than-double",
    ),
    pytest.param(
        "grid: {", "grid: {lower: 0, upper: 1" + "0" * 400 + ", bins: 50, scale: linear}",
        r"'upper' in grid must be a number within the 64-bit range", "grid: {lower: 0, upper: 1",
        id="grid-integer-beyond-64-bit",
    ),
    pytest.param(
        "grid: {", "grid: {lower: 0, upper: 500, bins: 50000000, scale: linear}",
        r"'bins' in grid must be an integer of at most 10000, found 50000000", "bins: 50000000",
        id="grid-too-many-bins",
    ),
    pytest.param(
        "id: amount_range",
        "- {id: amount_range, category: value_range, type: between, column: amount, min: 0, max: 100000000000000000000000}",
        r"'max' in expectation 'amount_range' must be a number within the 64-bit range \(write a larger",
        "max: 100000000000000000000000",
        id="bound-beyond-64-bit",
    ),
    pytest.param(
        "id: ts_matches_date",
        "- {id: late, category: value_range, type: timestamp_not_after_as_of, column: order_ts, tolerance_minutes: 1.0e+308}",
        r"'tolerance_minutes' in expectation 'late' must be a number of at most", "tolerance_minutes: 1.0e+308",
        id="tolerance-too-large",
    ),
    pytest.param(
        "name: note,", "- {name: note, type: string, nullable: true, allowed_values: [1, '1', paid]}",
        r"'allowed_values' in column 'note' must be a list without repeated values", "allowed_values: [1,",
        id="allowed-values-repeated-as-strings",
    ),
    pytest.param(
        "name: note,", "- {name: note, type: bigint, nullable: true, allowed_values: [a, b]}",
        r"'allowed_values' in column 'note' must be a list of integers for a bigint column",
        "allowed_values: [a, b]",
        id="allowed-values-strings-on-bigint",
    ),
    pytest.param(
        "name: amount,", "- {name: amount, type: double, nullable: true, allowed_values: [1, 2]}",
        r"column 'amount' is double; allowed_values apply only to string and integer columns",
        "allowed_values: [1, 2]",
        id="allowed-values-on-double",
    ),
    pytest.param(
        "when_missing: fail", "when_missing: ignore",
        r"'when_missing' in reference must be one of warn, fail, found 'ignore'", "when_missing: ignore",
        id="unknown-when-missing",
    ),
    pytest.param(
        "sla_tier: critical", "sla_tier: critical\npsi_epsilon: 0.5",
        r"'psi_epsilon' must be above 0 and below 0\.01, found 0\.5", "psi_epsilon: 0.5",
        id="psi-epsilon-too-large",
    ),
    pytest.param(
        "owner: shop-oncall", "owner: shop-oncall@example.invalid\nowner: someone-else",
        r"duplicate key 'owner'; keep one of them", "owner: someone-else",
        id="duplicate-yaml-key",
    ),
]


@pytest.mark.parametrize("old, new, match, needle", SINGLE_PROBLEMS)
def test_single_problem_reported_with_line(tmp_path, old, new, match, needle):
    text = _variant(old, new)
    path = _write(tmp_path, text)

    problems = _load_problems(path, match)

    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}:{_line_of(text, needle)}: "), problems[0]


def test_missing_required_key_points_at_mapping(tmp_path):
    text = BASE.replace("producer: shop-backend\n", "")
    path = _write(tmp_path, text)

    problems = _load_problems(path, r"contract is missing required key 'producer'")

    assert problems == [f"{path}:1: contract is missing required key 'producer'"]


def test_duplicate_expectation_id(tmp_path):
    text = _variant(
        "id: status_in_set",
        "- {id: complete_status, category: value_range, type: in_set, column: status}",
    )
    path = _write(tmp_path, text)
    first = _line_of(text, "type: not_null")
    second = _line_of(text, "type: in_set")

    problems = _load_problems(path, r"expectation id 'complete_status' is already used at")

    assert problems == [
        f"{path}:{second}: expectation id 'complete_status' is already used at {path}:{first}"
    ]


def test_every_problem_reported_at_once(tmp_path):
    text = BASE
    for old, new in [
        ("sla_tier: critical", "sla_tier: gold"),
        ("name: note,", "- {name: note, type: text, nullable: true}"),
        ("id: complete_status",
         "- {id: complete_status, category: completeness, type: not_null, column: status, mostly: high}"),
        ("id: status_in_set",
         "- {id: status_in_set, category: value_range, type: in_set, column: order_id}"),
        ("id: amount_range",
         "- {id: amount_range, category: value_range, type: between, column: price, min: 0}"),
    ]:
        lines = text.splitlines(keepends=True)
        index = next(i for i, line in enumerate(lines) if old in line)
        indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
        lines[index] = indent + new + "\n"
        text = "".join(lines)
    path = _write(tmp_path, text)

    with pytest.raises(ConfigError, match=r"^5 configuration problems:\n") as caught:
        load_contract(path)

    problems = caught.value.problems
    assert len(problems) == 5, problems
    expected_lines = {
        "'sla_tier' in contract must be one of critical, standard, found 'gold'": "sla_tier: gold",
        "'type' in column 'note' must be one of": "type: text",
        "'mostly' in expectation 'complete_status' must be a number": "mostly: high",
        "column 'order_id' declares no allowed_values": "type: in_set",
        "refers to column 'price', which is not in the schema": "column: price",
    }
    for fragment, needle in expected_lines.items():
        matching = [p for p in problems if fragment in p]
        assert len(matching) == 1, (fragment, problems)
        assert matching[0].startswith(f"{path}:{_line_of(text, needle)}: "), matching[0]
    assert all(problem in str(caught.value) for problem in problems)


def test_yaml_syntax_error_has_line(tmp_path):
    text = BASE.replace("owner: shop-oncall@example.invalid", "owner: [unclosed")
    path = _write(tmp_path, text)

    problems = _load_problems(path, r"invalid YAML")

    assert len(problems) == 1
    assert re.match(rf"{re.escape(str(path))}:\d+: invalid YAML \(", problems[0]), problems[0]
    line = int(problems[0][len(str(path)) + 1:].split(":", 1)[0])
    assert line >= _line_of(text, "owner: [unclosed")


def test_missing_file(tmp_path):
    path = tmp_path / "absent.yaml"

    problems = _load_problems(path, r"file not found")

    assert problems == [f"{path}: file not found; check the path"]


def test_empty_file(tmp_path):
    path = _write(tmp_path, "# nothing but a comment\n")

    assert _load_problems(path, r"file is empty") == [f"{path}: file is empty"]


def test_config_error_is_invalid_request():
    error = ConfigError(["a.yaml:1: first", "a.yaml:2: second"])

    assert isinstance(error, InvalidRequestError)
    assert error.exit_code == EXIT_INVALID
    assert error.error_code == "INVALID_CONFIG"
    assert str(error) == "2 configuration problems:\n  a.yaml:1: first\n  a.yaml:2: second"


# --- extends and expectation_overrides -------------------------------------------------------


def _write_child(directory: Path, text: str) -> Path:
    _write(directory, BASE, "base.yaml")
    return _write(directory, textwrap.dedent(text), "child.yaml")


def test_extends_merges_nested_schema_keys(tmp_path):
    child = _write_child(
        tmp_path,
        """\
        extends: base.yaml
        sla_tier: standard
        schema:
          partition_time_zone: Europe/Berlin
        reference:
          when_missing: warn
        expectation_overrides:
          amount_range: {max: 900, mostly: 0.99}
          status_in_set: {severity: error}
        """,
    )

    contract = load_contract(child)
    base = load_contract(tmp_path / "base.yaml")

    assert contract.sla_tier == "standard"
    assert contract.blocks_pipeline is False  # the default follows the overridden tier
    assert contract.partition_time_zone == "Europe/Berlin"
    assert contract.columns == base.columns
    assert contract.partition_column == "order_date"
    assert contract.primary_key == ("order_id",)
    assert contract.reference.when_missing == "warn"
    assert contract.reference.window_days == 14
    amount = contract.expectation("amount_range")
    assert (amount.min_value, amount.max_value) == (0, 900)
    assert amount.mostly == Fraction(99, 100)
    assert contract.expectation("status_in_set").severity == "error"
    assert contract.expectation("ts_matches_date").time_zone == "Europe/Berlin"
    assert contract.source_file == str(child)


def test_extends_replaces_lists_whole(tmp_path):
    child = _write_child(
        tmp_path,
        """\
        extends: base.yaml
        expected_expectation_count: 1
        expectations:
          - {id: only_present, category: schema, type: columns_present}
        """,
    )

    contract = load_contract(child)

    assert [e.id for e in contract.expectations] == ["only_present"]


def test_override_of_unknown_expectation(tmp_path):
    child = _write_child(
        tmp_path,
        """\
        extends: base.yaml
        expectation_overrides:
          amount_rnage: {max: 900}
        """,
    )

    problems = _load_problems(child, r"override for unknown expectation 'amount_rnage'")

    assert len(problems) == 1
    assert problems[0].startswith(f"{child}:3: override for unknown expectation 'amount_rnage'; ids in "
                                  "base.yaml: present, complete_status, status_in_set, amount_range")


def test_override_problem_points_at_child(tmp_path):
    child = _write_child(
        tmp_path,
        """\
        extends: base.yaml
        expectation_overrides:
          amount_range:
            max: lots
        """,
    )

    problems = _load_problems(child, r"'max' in expectation 'amount_range' must be a number")

    assert problems == [f"{child}:4: 'max' in expectation 'amount_range' must be a number, found 'lots'"]


def test_override_cannot_change_type(tmp_path):
    child = _write_child(
        tmp_path,
        """\
        extends: base.yaml
        expectation_overrides:
          amount_range: {type: in_set}
        """,
    )

    problems = _load_problems(child, r"an override cannot change 'type'")

    assert problems == [f"{child}:3: an override cannot change 'type'"]


def test_extends_missing_parent(tmp_path):
    child = _write(tmp_path, "extends: nowhere.yaml\ncontract: orders\n", "child.yaml")

    problems = _load_problems(child, r"file not found")

    assert problems == [f"{(tmp_path / 'nowhere.yaml').resolve()}: file not found; check the path"]


def test_parent_problem_points_at_parent(tmp_path):
    _write(tmp_path, _variant("freshness_hours: 3", "freshness_hours: soon"), "base.yaml")
    child = _write(tmp_path, "extends: base.yaml\n", "child.yaml")
    parent = (tmp_path / "base.yaml").resolve()

    problems = _load_problems(child, r"'freshness_hours' in contract must be a number")

    assert problems == [f"{parent}:8: 'freshness_hours' in contract must be a number, found 'soon'"]


# --- registry --------------------------------------------------------------------------------


def test_real_registry_loads():
    registry = load_registry(REPO / "conf" / "registry.yaml")

    assert list(registry.contracts) == [
        "click_stream", "item_metadata", "user_profiles", "engagement_features"
    ]
    assert registry.contract("click_stream").name == "click_stream"


def test_registry_unknown_dataset(tmp_path):
    _write(tmp_path, BASE, "orders.yaml")
    registry_path = _write(tmp_path, "contracts:\n  orders: orders.yaml\n", "registry.yaml")
    registry = load_registry(registry_path)

    with pytest.raises(InvalidRequestError, match=r"unknown dataset 'payments'.* lists: orders$"):
        registry.contract("payments")


def test_registry_name_mismatch(tmp_path):
    _write(tmp_path, BASE, "orders.yaml")
    registry_path = _write(
        tmp_path, "# feeds\ncontracts:\n  purchases: orders.yaml\n", "registry.yaml"
    )

    with pytest.raises(ConfigError, match=r"registry entry 'purchases' points to a contract named "
                                          r"'orders'") as caught:
        load_registry(registry_path)

    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"{registry_path}:3: ")


def test_registry_unknown_key_and_missing_file(tmp_path):
    registry_path = _write(
        tmp_path, "contracts:\n  orders: absent.yaml\nowner: me\n", "registry.yaml"
    )

    with pytest.raises(ConfigError, match=r"^2 configuration problems") as caught:
        load_registry(registry_path)

    problems = caught.value.problems
    assert f"{registry_path}:3: unknown key 'owner' in registry; allowed keys: contracts" in problems
    assert any(
        problem.startswith(f"{registry_path}:2: the contract file 'absent.yaml' of dataset "
                           f"'orders' does not exist ({tmp_path / 'absent.yaml'})")
        for problem in problems
    ), problems


def test_registry_reports_problems_of_every_entry(tmp_path):
    _write(tmp_path, _variant("freshness_hours: 3", "freshness_hours: soon"), "broken.yaml")
    _write(tmp_path, BASE, "orders.yaml")
    registry_path = _write(
        tmp_path, "contracts:\n  broken: broken.yaml\n  purchases: orders.yaml\n", "registry.yaml"
    )

    with pytest.raises(ConfigError) as caught:
        load_registry(registry_path)

    problems = caught.value.problems
    assert any("'freshness_hours' in contract must be a number" in p for p in problems), problems
    assert any(p.startswith(f"{registry_path}:3: registry entry 'purchases'") for p in problems), problems
