"""Data contracts: YAML parsed into frozen dataclasses, the registry and contract diffs."""
