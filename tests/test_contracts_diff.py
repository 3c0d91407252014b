"""Unit tests of ``contracts diff`` and ``contracts list``: each kind of change, its impact,
and the exit code that a producer's CI gets. No Spark."""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

import pytest

from streamrec_spark import cli, cli_contracts
from streamrec_spark.contracts.diff import BREAKING, COMPATIBLE, RELAXED, diff_contracts
from streamrec_spark.contracts.loader import load_contract

REPO = Path(__file__).resolve().parent.parent

OLD = textwrap.dedent(
    """\
    contract: catalog
    version: "1.2.0"
    producer: content
    consumer: ml
    owner: content@example.invalid
    sla_tier: standard
    freshness_hours: 24
    expected_expectation_count: 5
    schema:
      partition_column: snapshot_date
      primary_key: [item_id]
      columns:
        - {name: item_id, type: bigint, nullable: false}
        - {name: kind, type: string, nullable: false, allowed_values: [NORMAL, AD]}
        - {name: length_ms, type: double, nullable: true}
        - {name: views, type: int, nullable: false}
        - {name: snapshot_date, type: date, nullable: false}
    expectations:
      - {id: key, category: schema, type: primary_key_unique, severity: error}
      - {id: kind_set, category: value_range, type: in_set, column: kind, severity: error}
      - {id: length_complete, category: completeness, type: not_null, column: length_ms, mostly: 0.95, severity: warn}
      - {id: length_range, category: value_range, type: between, column: length_ms, min: 1000, max: 7200000, severity: error}
      - {id: rows, category: volume, type: row_count_between, min: 100, max: 1000, severity: error}
    """
)


def _pair(tmp_path: Path, *edits: tuple[str, str]):
    new = OLD
    for old_text, new_text in edits:
        assert new.count(old_text) == 1, old_text
        new = new.replace(old_text, new_text)
    (tmp_path / "old.yaml").write_text(OLD, encoding="utf-8")
    (tmp_path / "new.yaml").write_text(new, encoding="utf-8")
    return tmp_path / "old.yaml", tmp_path / "new.yaml"


def _diff(tmp_path: Path, *edits: tuple[str, str]):
    old, new = _pair(tmp_path, *edits)
    return diff_contracts(load_contract(old), load_contract(new))


def test_identical_contracts_have_no_changes(tmp_path):
    diff = _diff(tmp_path)

    assert diff.changes == ()
    assert diff.exit_code() == 0
    assert "NOT BREAKING" in diff.format_text()


@pytest.mark.parametrize(
    ("edits", "code", "impact"),
    [
        pytest.param(
            [("    - {name: views, type: int, nullable: false}\n", "")],
            "COLUMN_REMOVED", BREAKING, id="column-removed",
        ),
        pytest.param(
            [("{name: length_ms, type: double", "{name: duration_ms, type: double"),
             ("column: length_ms, mostly", "column: duration_ms, mostly"),
             ("column: length_ms, min", "column: duration_ms, min")],
            "COLUMN_RENAMED", BREAKING, id="column-renamed",
        ),
        pytest.param([("{name: views, type: int", "{name: views, type: smallint")],
                     "TYPE_NARROWED", BREAKING, id="type-narrowed"),
        pytest.param([("{name: length_ms, type: double", "{name: length_ms, type: bigint")],
                     "TYPE_NARROWED", BREAKING, id="double-to-bigint"),
        pytest.param([("{name: views, type: int", "{name: views, type: string")],
                     "TYPE_CHANGED", BREAKING, id="type-changed"),
        pytest.param([("{name: views, type: int", "{name: views, type: bigint")],
                     "TYPE_WIDENED", RELAXED, id="type-widened"),
        pytest.param([("allowed_values: [NORMAL, AD]", "allowed_values: [NORMAL, AD, LIVE]")],
                     "VALUE_ADDED", BREAKING, id="new-closed-set-value"),
        pytest.param([("allowed_values: [NORMAL, AD]", "allowed_values: [NORMAL]")],
                     "VALUE_REMOVED", BREAKING, id="closed-set-value-removed"),
        pytest.param([("{name: views, type: int, nullable: false}", "{name: views, type: int, nullable: true}")],
                     "NULLABLE_LOOSENED", BREAKING, id="nullable-loosened"),
        pytest.param([("mostly: 0.95", "mostly: 0.99")], "THRESHOLD_TIGHTENED", BREAKING,
                     id="mostly-raised"),
        pytest.param([("max: 7200000", "max: 3600000")], "THRESHOLD_TIGHTENED", BREAKING,
                     id="max-lowered"),
        pytest.param([("min: 100, max: 1000", "min: 200, max: 1000")], "THRESHOLD_TIGHTENED",
                     BREAKING, id="row-count-floor-raised"),
        pytest.param([("mostly: 0.95", "mostly: 0.90")], "THRESHOLD_LOOSENED", RELAXED,
                     id="mostly-lowered"),
        pytest.param([("mostly: 0.95, severity: warn", "mostly: 0.95, severity: error")],
                     "SEVERITY_RAISED", BREAKING, id="warn-to-error"),
        pytest.param([("- {id: rows, category: volume, type: row_count_between, min: 100, max: 1000, severity: error}\n", ""),
                      ("expected_expectation_count: 5", "expected_expectation_count: 4")],
                     "CHECK_REMOVED", RELAXED, id="check-removed"),
        pytest.param([("sla_tier: standard", "sla_tier: critical")], "SLA_TIER_RAISED", BREAKING,
                     id="tier-raised"),
        pytest.param([("primary_key: [item_id]", "primary_key: [item_id, kind]")],
                     "PRIMARY_KEY_CHANGED", BREAKING, id="key-changed"),
        pytest.param([("freshness_hours: 24", "freshness_hours: 12")], "FRESHNESS_TIGHTENED",
                     BREAKING, id="freshness-tightened"),
        pytest.param([("owner: content@example.invalid", "owner: catalog@example.invalid")],
                     "OWNER_CHANGED", COMPATIBLE, id="owner-changed"),
    ],
)
def test_change_classified(tmp_path, edits, code, impact):
    diff = _diff(tmp_path, *edits)
    matching = [change for change in diff.changes if change.code == code]

    assert len(matching) == 1, diff.format_text()
    assert matching[0].impact == impact
    assert diff.exit_code() == (1 if diff.of_impact(BREAKING) else 0)


def test_rename_reported_once(tmp_path):
    diff = _diff(
        tmp_path,
        ("{name: length_ms, type: double", "{name: duration_ms, type: double"),
        ("column: length_ms, mostly", "column: duration_ms, mostly"),
        ("column: length_ms, min", "column: duration_ms, min"),
    )

    assert "COLUMN_REMOVED" not in diff.codes()
    assert "COLUMN_ADDED" not in diff.codes()
    renamed = next(c for c in diff.changes if c.code == "COLUMN_RENAMED")
    assert (renamed.old, renamed.new) == ("length_ms", "duration_ms")


def test_new_blocking_check_breaks(tmp_path):
    diff = _diff(
        tmp_path,
        ("expected_expectation_count: 5", "expected_expectation_count: 6"),
        ("  - {id: rows,", "  - {id: views_positive, category: value_range, type: between, column: views, min: 0, severity: error}\n  - {id: rows,"),
    )
    added = next(c for c in diff.changes if c.code == "CHECK_ADDED")

    assert added.impact == BREAKING
    assert diff.exit_code() == 1


def test_relaxed_change_fails_only_when_strict(tmp_path):
    diff = _diff(tmp_path, ("mostly: 0.95", "mostly: 0.90"))

    assert diff.exit_code() == 0
    assert diff.exit_code(strict=True) == 1


def test_breaking_change_without_major_version(tmp_path):
    diff = _diff(tmp_path, ("allowed_values: [NORMAL, AD]", "allowed_values: [NORMAL, AD, LIVE]"))
    note = next(c for c in diff.changes if c.code == "MAJOR_VERSION_NOT_RAISED")

    assert note.impact == COMPATIBLE
    assert diff.changes[0].impact == BREAKING

    bumped = _diff(tmp_path, ("allowed_values: [NORMAL, AD]", "allowed_values: [NORMAL, AD, LIVE]"),
                   ('version: "1.2.0"', 'version: "2.0.0"'))
    assert "MAJOR_VERSION_NOT_RAISED" not in bumped.codes()


def test_real_contract_against_itself():
    path = REPO / "conf" / "contracts" / "item_metadata.yaml"

    assert diff_contracts(load_contract(path), load_contract(path)).changes == ()


# --- command line ----------------------------------------------------------------------------


def _run(argv: list[str], monkeypatch) -> int:
    """Run ``streamrec-spark argv`` through cli.main with the contract commands added."""
    build = cli.build_parser

    def build_with_contracts() -> argparse.ArgumentParser:
        parser = build()
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "contracts" not in commands.choices:
            cli_contracts.add_subcommands(commands)
        return parser

    monkeypatch.setattr(cli, "build_parser", build_with_contracts)
    return cli.main(argv)


def test_cli_diff_breaking_exit_code(tmp_path, monkeypatch, capsys):
    old, new = _pair(tmp_path, ("allowed_values: [NORMAL, AD]", "allowed_values: [NORMAL, AD, LIVE]"))

    code = _run(["contracts", "diff", str(old), str(new)], monkeypatch)

    output = capsys.readouterr().out
    assert code == 1
    assert "catalog 1.2.0 -> catalog 1.2.0: BREAKING" in output
    assert "VALUE_ADDED" in output
    assert "'LIVE'" in output


def test_cli_diff_json(tmp_path, monkeypatch, capsys):
    old, new = _pair(tmp_path, ("mostly: 0.95", "mostly: 0.90"))

    code = _run(["contracts", "diff", "--format", "json", str(old), str(new)], monkeypatch)

    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["breaking"] is False
    assert [c["code"] for c in document["changes"]] == ["THRESHOLD_LOOSENED"]


def test_cli_diff_invalid_contract(tmp_path, monkeypatch, capsys):
    old, new = _pair(tmp_path, ("sla_tier: standard", "sla_tier: gold"))

    code = _run(["contracts", "diff", str(old), str(new)], monkeypatch)

    assert code == 2
    assert f"{new}:6: 'sla_tier' in contract must be one of critical, standard" in capsys.readouterr().err


def test_cli_list_shows_registry(monkeypatch, capsys):
    code = _run(["contracts", "list"], monkeypatch)

    output = capsys.readouterr().out
    lines = {line.split()[0]: line for line in output.splitlines()[3:] if line.strip()}
    assert code == 0
    assert "4 contracts in" in output
    assert "client-engineering -> ml-recommendations" in lines["click_stream"]
    assert "critical" in lines["click_stream"]
    assert "2 h" in lines["click_stream"]
    assert "standard" in lines["item_metadata"]
    assert "only 1 check" in lines["user_profiles"]
    assert lines["user_profiles"].split()[-2] == "12"
