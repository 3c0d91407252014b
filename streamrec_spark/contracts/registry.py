"""The contract registry: which feeds exist and where each contract file is."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from streamrec_spark.contracts.loader import _Problems, parse_contract
from streamrec_spark.contracts.model import Contract
from streamrec_spark.contracts.yaml_source import SourceMap, load_yaml
from streamrec_spark.errors import ConfigError, InvalidRequestError


@dataclass(frozen=True)
class Registry:
    """The loaded contracts of the registry file, by dataset name, in the order the file lists
    them, and the names of every dataset it lists."""

    path: str
    contracts: dict[str, Contract]
    datasets: tuple[str, ...] = ()

    def contract(self, dataset: str) -> Contract:
        try:
            return self.contracts[dataset]
        except KeyError:
            raise InvalidRequestError(
                f"unknown dataset '{dataset}'; the registry {self.path} lists: "
                f"{', '.join(sorted(self.datasets or self.contracts))}"
            ) from None


def load_registry(path: str | Path, only: str | None = None) -> Registry:
    """Load the registry and every contract it lists, reporting all problems at once.

    Each contract must parse, carry the same name as its registry entry, and declare
    ``expected_expectation_count``, which must match the expectations it lists. Raises
    ConfigError with every problem, each with file and line. With ``only``, the contract of
    that one dataset is loaded, so a broken contract of another feed does not stop it.
    """
    path = Path(path)
    document = load_yaml(path)
    problems = _Problems()
    if not isinstance(document, SourceMap) or not isinstance(document.get("contracts"), SourceMap):
        raise ConfigError([f"{path}: a registry needs a 'contracts' mapping of dataset name to file"])
    for key in document:
        if key != "contracts":
            problems.add(document.where(key), f"unknown key '{key}' in registry; allowed keys: contracts")
    entries: SourceMap = document["contracts"]
    contracts: dict[str, Contract] = {}
    for dataset, relative in entries.items():
        if only is not None and dataset != only:
            continue
        if not isinstance(relative, str):
            problems.add(entries.where(dataset), f"contract path for '{dataset}' must be a string")
            continue
        contract_path = path.parent / relative
        if not contract_path.is_file():
            # Reported at the registry entry, because the fix is either that line or the file.
            problem = "is a folder, not a file" if contract_path.is_dir() else "does not exist"
            problems.add(
                entries.where(dataset),
                f"the contract file '{relative}' of dataset '{dataset}' {problem} "
                f"({os.path.abspath(contract_path)}); correct the entry in {path}, whose paths are "
                "relative to its own folder, or restore the file",
            )
            continue
        # Each contract gets its own problem list, so one bad file does not hide the next.
        entry_problems = _Problems()
        try:
            contract = parse_contract(load_yaml(contract_path), contract_path, entry_problems)
        except ConfigError as exc:
            entry_problems.items.extend(exc.problems)
            contract = None
        problems.items.extend(entry_problems.items)
        if contract is None:
            continue
        if contract.name != dataset:
            problems.add(
                entries.where(dataset),
                f"registry entry '{dataset}' points to a contract named '{contract.name}'; use the "
                "same name in both places",
            )
            continue
        if contract.expected_expectation_count is None:
            problems.add(
                f"{contract_path}:1",
                f"contract '{dataset}' is in the registry but does not declare "
                f"'expected_expectation_count'; add 'expected_expectation_count: "
                f"{len(contract.expectations)}' so that a dropped expectation fails the load",
            )
            continue
        contracts[dataset] = contract
    problems.raise_if_any()
    return Registry(str(path), contracts, tuple(entries))
