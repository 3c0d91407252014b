"""Unit tests of the contract registry with all feeds: metadata, counts, tiers, the new
expectation types and load-time errors with file, line and fix. No Spark."""

from __future__ import annotations

import shutil
import textwrap
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest

from streamrec_spark.contracts.loader import load_contract
from streamrec_spark.contracts.registry import load_registry
from streamrec_spark.errors import ConfigError, InvalidRequestError

REPO = Path(__file__).resolve().parent.parent
REGISTRY = REPO / "conf" / "registry.yaml"
CONTRACTS = REPO / "conf" / "contracts"


@pytest.fixture(scope="module")
def registry():
    return load_registry(REGISTRY)


def test_registry_lists_every_feed(registry):
    assert list(registry.contracts) == [
        "click_stream", "item_metadata", "user_profiles", "engagement_features",
    ]


@pytest.mark.parametrize(
    ("dataset", "producer", "tier", "freshness", "count", "blocks"),
    [
        ("click_stream", "client-engineering", "critical", 2.0, 23, True),
        ("item_metadata", "content-engineering", "standard", 24.0, 15, False),
        ("user_profiles", "user-engineering", "standard", 24.0, 12, False),
    ],
)
def test_feed_metadata(registry, dataset, producer, tier, freshness, count, blocks):
    contract = registry.contract(dataset)

    assert contract.producer == producer
    assert contract.consumer == "ml-recommendations"
    assert contract.owner.endswith("@streamrec.invalid")
    assert contract.sla_tier == tier
    assert contract.freshness_hours == freshness
    assert len(contract.expectations) == count
    assert contract.expected_expectation_count == count
    assert contract.blocks_pipeline is blocks
    assert contract.version == "1.0.0"


def test_item_metadata_categories(registry):
    contract = registry.contract("item_metadata")

    assert Counter(e.category for e in contract.expectations) == {
        "schema": 4, "completeness": 3, "value_range": 4, "volume": 1, "statistical": 1,
        "freshness": 2,
    }


def test_feature_table_quirks_declared(registry):
    items = registry.contract("item_metadata")
    users = registry.contract("user_profiles")

    # Missing durations and tags are allowed up to a stated share, not by accident.
    assert items.column("video_duration").nullable is True
    assert items.expectation("complete_video_duration").mostly == Fraction(96, 100)
    assert items.expectation("complete_tag").mostly == Fraction(98, 100)
    assert items.expectation("range_tag_format").pattern == "[0-9]+(,[0-9]+)*"
    # -124 is part of the closed set and named as the sentinel for unknown.
    assert users.column("is_live_streamer").allowed_values == (1, -124)
    assert "sentinel for unknown" in users.column("is_live_streamer").description
    # Floats in the source stay floats.
    assert users.column("onehot_feat12").type == "double"


@pytest.mark.parametrize("dataset", ["item_metadata", "user_profiles"])
def test_snapshot_columns_marked_derived(registry, dataset):
    contract = registry.contract(dataset)
    derived = [c.name for c in contract.columns if c.origin == "derived"]

    assert derived == ["exported_at", "snapshot_date"]
    assert contract.partition_column == "snapshot_date"
    assert contract.expectation("fresh_export").max_lag_hours == 24


@pytest.mark.parametrize("dataset", ["item_metadata", "user_profiles"])
def test_standard_feed_blocks_on_duplicate_keys(registry, dataset):
    contract = registry.contract(dataset)
    blocking = [e.id for e in contract.expectations if e.blocks_pipeline]

    assert blocking == ["schema_primary_key_unique"]


def test_new_expectation_types_parsed(registry):
    items = registry.contract("item_metadata")

    assert items.expectation("fresh_newest_upload").type == "max_date_lag"
    assert items.expectation("fresh_newest_upload").max_lag_days == 14
    assert items.expectation("range_upload_dt_not_after_snapshot").type == "date_not_after_partition"
    assert items.expectation("range_upload_dt_not_after_snapshot").category == "value_range"


def test_features_contract_drift_on_both_rates(registry):
    contract = registry.contract("engagement_features")
    drift = {e.column: e for e in contract.expectations if e.type == "psi_below"}

    assert set(drift) == {"engagement_rate", "click_rate"}
    assert all(e.max_psi == 0.2 and e.severity == "error" for e in drift.values())
    assert drift["engagement_rate"].grid.edges()[0] == 0.0
    assert drift["engagement_rate"].grid.edges()[-1] == 1.0


def _copy_registry(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "conf" / "contracts", tmp_path / "contracts")
    shutil.copy(REGISTRY, tmp_path / "registry.yaml")
    return tmp_path / "registry.yaml"


def _edit(path: Path, old: str, new: str) -> int:
    """Replace the only occurrence of ``old`` in ``path``; return its 1-based line number."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur once in {path.name}"
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new), encoding="utf-8")
    return line


def test_bad_contracts_all_reported_at_once(tmp_path):
    registry_path = _copy_registry(tmp_path)
    items = tmp_path / "contracts" / "item_metadata.yaml"
    users = tmp_path / "contracts" / "user_profiles.yaml"
    unknown = _edit(items, "max_lag_days: 14", "max_lag_day: 14")
    wrong_type = _edit(users, "max: 7300", "max: lots")
    dangling = _edit(users, "column: onehot_feat12", "column: onehot_feat99")

    with pytest.raises(ConfigError) as caught:
        load_registry(registry_path)

    problems = caught.value.problems
    assert (f"{items}:{unknown}: unknown key 'max_lag_day' in expectation 'fresh_newest_upload'; "
            "allowed keys: id, category, type, severity, description, blocks_pipeline, column, "
            "max_lag_days") in problems
    assert f"{users}:{wrong_type}: 'max' in expectation 'range_register_days' must be a number, found 'lots'" in problems
    assert any(p.startswith(f"{users}:{dangling}: expectation 'complete_onehot_feat12' refers to "
                            "column 'onehot_feat99', which is not in the schema; declared columns: user_id")
               for p in problems), problems
    # The missing max_lag_days is reported too, at the expectation's own line.
    assert any("'fresh_newest_upload' is missing required key 'max_lag_days'" in p for p in problems)


def test_expectation_count_mismatch(tmp_path):
    registry_path = _copy_registry(tmp_path)
    items = tmp_path / "contracts" / "item_metadata.yaml"
    line = _edit(items, "expected_expectation_count: 15", "expected_expectation_count: 16")

    with pytest.raises(ConfigError, match=r"declares 16 expectations but lists 15") as caught:
        load_registry(registry_path)

    assert caught.value.problems[0].startswith(f"{items}:{line}: ")


def test_registry_missing_contract_file(tmp_path):
    registry_path = _copy_registry(tmp_path)
    (tmp_path / "contracts" / "user_profiles.yaml").unlink()
    line = _edit(registry_path, "user_profiles: contracts/user_profiles.yaml",
                 "user_profiles: contracts/user_profiles.yaml")

    with pytest.raises(ConfigError) as caught:
        load_registry(registry_path)

    assert len(caught.value.problems) == 1
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{registry_path}:{line}: ")
    assert "dataset 'user_profiles'" in message
    assert "'contracts/user_profiles.yaml'" in message
    assert str(tmp_path / "contracts" / "user_profiles.yaml") in message
    assert f"correct the entry in {registry_path}" in message
    assert "or restore the file" in message


def test_registry_contract_path_is_folder(tmp_path):
    registry_path = _copy_registry(tmp_path)
    _edit(registry_path, "user_profiles: contracts/user_profiles.yaml", "user_profiles: contracts")

    with pytest.raises(ConfigError, match=r"the contract file 'contracts' of dataset 'user_profiles' "
                                          r"is a folder, not a file"):
        load_registry(registry_path)


def test_registry_requires_declared_count(tmp_path):
    registry_path = _copy_registry(tmp_path)
    users = tmp_path / "contracts" / "user_profiles.yaml"
    _edit(users, "expected_expectation_count: 12\n", "")

    with pytest.raises(ConfigError, match=r"add 'expected_expectation_count: 12'"):
        load_registry(registry_path)


BASE = textwrap.dedent(
    """\
    contract: catalog
    version: "1.0.0"
    producer: content
    consumer: ml
    owner: content@example.invalid
    sla_tier: standard
    freshness_hours: 24
    schema:
      partition_column: snapshot_date
      columns:
        - {name: item_id, type: bigint, nullable: false}
        - {name: tag, type: string, nullable: true}
        - {name: upload_dt, type: date, nullable: false}
        - {name: snapshot_date, type: date, nullable: false, origin: derived}
    expectations:
      - {id: tags, category: value_range, type: matches_regex, column: tag, pattern: "[0-9]+"}
    """
)


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("- {id: tags, category: value_range, type: matches_regex, column: tag, pattern: '[0-9'}",
         r"invalid regular expression '\[0-9'"),
        ("- {id: tags, category: value_range, type: matches_regex, column: item_id, pattern: x}",
         r"needs a string column, 'item_id' is bigint"),
        ("- {id: fresh, category: freshness, type: max_date_lag, column: tag, max_lag_days: 3}",
         r"needs a date column, 'tag' is string"),
        ("- {id: fresh, category: freshness, type: max_date_lag, column: upload_dt, max_lag_days: 1.5}",
         r"'max_lag_days' in expectation 'fresh' must be an integer"),
        ("- {id: late, category: value_range, type: date_not_after_partition, column: item_id}",
         r"needs a date column, 'item_id' is bigint"),
        ("- {id: tags, category: value_range, type: in_set, column: tag, blocks_pipeline: maybe}",
         r"'blocks_pipeline' in expectation 'tags' must be true or false"),
    ],
)
def test_new_keys_rejected_with_line(tmp_path, line, match):
    text = BASE.replace(
        '- {id: tags, category: value_range, type: matches_regex, column: tag, pattern: "[0-9]+"}', line
    )
    path = tmp_path / "catalog.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError, match=match) as caught:
        load_contract(path)

    assert any(p.startswith(f"{path}:16: ") for p in caught.value.problems), caught.value.problems


def test_column_origin_must_be_known(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(BASE.replace("origin: derived", "origin: guessed"), encoding="utf-8")

    with pytest.raises(ConfigError, match=r"'origin' in column 'snapshot_date' must be one of "
                                          r"source, derived, synthetic, found 'guessed'"):
        load_contract(path)


def test_only_loads_the_named_dataset(tmp_path):
    registry_path = _copy_registry(tmp_path)
    _edit(tmp_path / "contracts" / "item_metadata.yaml", "max_lag_days: 14", "max_lag_day: 14")

    registry = load_registry(registry_path, only="click_stream")

    assert registry.contract("click_stream").name == "click_stream"
    with pytest.raises(ConfigError):
        load_registry(registry_path, only="item_metadata")
    with pytest.raises(InvalidRequestError, match="lists: click_stream, engagement_features, item_metadata, user_profiles"):
        registry.contract("clicks")
