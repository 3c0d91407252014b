"""Delta Lake table helpers shared by every job that records results.

Every result table lives at ``<warehouse>/<table name>``, is partitioned by the columns its
schema declares, and is registered as ``<database>.<table name>`` in the session's catalog so
that Spark SQL can query it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

logger = logging.getLogger(__name__)


def table_path(warehouse: str | Path, table: str) -> str:
    """Join by string, because Path would collapse the ``//`` of URIs such as s3a://bucket."""
    return str(warehouse).rstrip("/") + "/" + table


def table_exists(spark: SparkSession, path: str) -> bool:
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(spark, path)


def ensure_table(
    spark: SparkSession,
    path: str,
    schema: StructType,
    partition_by: Sequence[str] = (),
) -> None:
    """Create an empty Delta table with ``schema`` at ``path`` unless one exists already."""
    if table_exists(spark, path):
        return
    empty = spark.createDataFrame([], schema)
    writer = empty.write.format("delta").mode("append")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(path)
    logger.info("created Delta table %s", path)


def register_table(spark: SparkSession, database: str, table: str, path: str) -> None:
    """Register the Delta table at ``path`` as ``database.table`` unless the name is taken.

    Database and table names are checked as identifiers because they are part of a DDL
    statement, which has no placeholder syntax.
    """
    for name in (database, table):
        if not name.replace("_", "").isalnum():
            raise ValueError(f"invalid identifier {name!r}: use letters, digits and underscores")
    spark.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    escaped = path.replace("\\", "\\\\").replace("'", "\\'")
    spark.sql(f"CREATE TABLE IF NOT EXISTS `{database}`.`{table}` USING DELTA LOCATION '{escaped}'")


def register_warehouse(spark: SparkSession, warehouse: str, database: str) -> list[str]:
    """Register every Delta table directly under ``warehouse`` as ``database.<folder>``.

    Lists the folder through Hadoop's file system, so any URI Spark can read works. Returns
    the registered table names, sorted; an empty list when the folder has no Delta table.
    """
    jvm = spark.sparkContext._jvm
    root = jvm.org.apache.hadoop.fs.Path(warehouse)
    fs = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(root):
        return []
    names = sorted(status.getPath().getName() for status in fs.listStatus(root) if status.isDirectory())
    tables = [name for name in names
              if name.replace("_", "").isalnum() and table_exists(spark, table_path(warehouse, name))]
    for name in tables:
        register_table(spark, database, name, table_path(warehouse, name))
    return tables


def partition_predicate(values: Mapping[str, object]) -> Column:
    """Build ``col1 = v1 AND col2 = v2 ...`` through the Column API."""
    condition: Column | None = None
    for name, value in values.items():
        term = F.col(name) == F.lit(value)
        condition = term if condition is None else condition & term
    if condition is None:
        raise ValueError("partition_predicate needs at least one column")
    return condition


def _sql_literal(value: object) -> str:
    if isinstance(value, date):
        return f"DATE'{value.isoformat()}'"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def replace_partition(
    df: DataFrame,
    path: str,
    partition_values: Mapping[str, object],
    partition_by: Sequence[str],
) -> None:
    """Replace the rows of one partition with ``df`` in a single Delta commit.

    Delta's ``replaceWhere`` removes the old files and adds the new ones in one transaction,
    so a reader sees either the previous run's rows or this run's, and the previous rows stay
    readable through time travel. ``df`` must only contain rows of that partition.
    """
    # replaceWhere takes a SQL predicate string. The values are rendered as typed literals,
    # and the column names come from the table's own schema, never from user input.
    predicate = " AND ".join(
        f"`{name}` = {_sql_literal(value)}" for name, value in partition_values.items()
    )
    (
        df.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", predicate)
        .partitionBy(*partition_by)
        .save(path)
    )


def current_version(spark: SparkSession, path: str) -> int:
    """Return the table's latest committed version."""
    from delta.tables import DeltaTable

    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])


def restore_partition(
    spark: SparkSession,
    path: str,
    partition_values: Mapping[str, object],
    partition_by: Sequence[str],
    version: int,
) -> None:
    """Put back one partition's rows as they were at ``version``, in one new commit.

    Unlike Delta's RESTORE, which rolls back the whole table, this touches only the partition,
    so concurrent writers of other partitions keep their commits. The rows being undone stay
    readable through time travel.
    """
    before = (
        spark.read.format("delta").option("versionAsOf", version).load(path)
        .where(partition_predicate(partition_values))
    )
    replace_partition(before, path, partition_values, partition_by)


def append(df: DataFrame, path: str, partition_by: Sequence[str] = ()) -> None:
    writer = df.write.format("delta").mode("append")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(path)
