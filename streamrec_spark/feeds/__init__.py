"""Converters that turn the upstream snapshot feeds into Parquet partitions for validation."""
