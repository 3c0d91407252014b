"""Typed conversion of a CSV snapshot export into ``<root>/snapshot_date=YYYY-MM-DD/`` Parquet.

Both feature-table feeds are full snapshots: every delivery lists the whole table as it stood
at the end of one day. The converter reads the CSV with every column as text, casts each
column of its type map, matched by header name, to the type the source writes, and adds two
derived columns that the source does not have:

- ``snapshot_date``: the day the snapshot describes, written as the partition folder;
- ``exported_at``: when the snapshot was exported (default: the start of the next day, UTC).

Columns are matched by header name, not by position, so a column that the producer renamed
reaches the validator under its new name and the contract reports it as missing and
unexpected, instead of its values landing silently in another column.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, timezone

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from streamrec_spark.errors import InputDataError
from streamrec_spark.validation.metrics import col

logger = logging.getLogger(__name__)

SNAPSHOT_DATE_COLUMN = "snapshot_date"
EXPORTED_AT_COLUMN = "exported_at"
# How many values that cannot be cast are quoted per column in the error message.
CAST_FAILURE_SAMPLES = 3
INTEGER_TYPES = ("bigint", "int", "smallint")
# Text of a whole number. With spark.sql.ansi.enabled false (the Spark 3.5 default), casting the
# string "1.5" to int returns 1 instead of null, so the cast alone would hide it.
INTEGER_TEXT = r"^\s*[+-]?[0-9]+\s*$"


def default_exported_at(snapshot_date: date) -> datetime:
    """Return the start of the day after ``snapshot_date`` in UTC: the end of the day the
    snapshot describes."""
    return datetime.combine(snapshot_date + timedelta(days=1), time(0, 0), timezone.utc)


def read_text_csv(spark: SparkSession, path: str, feed: str) -> DataFrame:
    """Read a CSV with a header (plain or ``.gz``) with every column as a string.

    Empty fields become null. Raises InputDataError (``INPUT_NOT_FOUND``) when ``path`` does
    not exist.
    """
    try:
        return spark.read.csv(path, header=True, inferSchema=False, mode="FAILFAST")
    except AnalysisException as error:
        if error.getErrorClass() == "PATH_NOT_FOUND":
            raise InputDataError(
                f"{feed} export not found: {path}; pass the path of the CSV export or its .gz copy",
                error_code="INPUT_NOT_FOUND",
            ) from error
        raise


def cast_columns(
    text: DataFrame, types: Mapping[str, str], feed: str, path: str
) -> tuple[DataFrame, int]:
    """Cast the known columns of ``text`` to ``types`` (Spark type names), keeping the rest.

    Returns the typed DataFrame (lazy) and the row count, counted in the same pass over the
    file as the cast check. Known columns missing from the header and header columns that
    ``types`` does not know are logged and left to the contract's schema checks. Raises
    InputDataError (``INPUT_INVALID``) when a non-empty value cannot be cast, or is not a
    whole number for an integer column, naming each such column with its count and sample
    values: a cast would otherwise turn it into a silent null, or truncate "1.5" to 1.
    """
    header = text.columns
    missing = [name for name in types if name not in header]
    unknown = [name for name in header if name not in types]
    if missing:
        logger.warning("%s export %s lacks columns %s; the contract will report them", feed, path,
                       ", ".join(missing))
    if unknown:
        logger.warning("%s export %s has columns %s that the converter does not know; they are "
                       "kept as strings", feed, path, ", ".join(unknown))

    casts = {name: col(name).cast(types[name]) for name in header if name in types}
    failures = {}
    for name, cast in casts.items():
        if types[name] == "string":
            continue
        invalid = cast.isNull()
        if types[name] in INTEGER_TYPES:
            invalid = invalid | ~col(name).rlike(INTEGER_TEXT)
        failures[name] = col(name).isNotNull() & invalid
    aggregates = [F.count(F.lit(1)).alias("__rows")]
    # Aggregates are positional so that no header name can collide with the row count.
    aggregates += [F.count(F.when(condition, F.lit(1))) for condition in failures.values()]
    try:
        counts = text.agg(*aggregates).collect()[0]
    except Exception as error:  # FAILFAST parsing raises Spark's own exception classes.
        lines = str(error).strip().splitlines()
        first_line = lines[0][:300] if lines else type(error).__name__
        raise InputDataError(
            f"cannot parse the {feed} export {path}: {first_line}; check that it is a complete "
            "CSV file with a header and the same number of fields on every line",
            error_code="INPUT_UNREADABLE",
        ) from error
    bad = {name: counts[index + 1] for index, name in enumerate(failures) if counts[index + 1]}
    if bad:
        problems = []
        for name, count in bad.items():
            rows = text.where(failures[name]).select(col(name)).limit(CAST_FAILURE_SAMPLES).collect()
            problems.append(f"'{name}' ({types[name]}): {count:,} values such as {[r[0] for r in rows]}")
        raise InputDataError(
            f"{feed} export {path} has values that are not of their column's type: "
            f"{'; '.join(problems)}; fix the export or the converter's column types",
            error_code="INPUT_INVALID",
        )
    typed = text.select(*[casts[name].alias(name) if name in casts else col(name) for name in header])
    return typed, int(counts[0])


def write_snapshot(
    df: DataFrame,
    output_root: str,
    snapshot_date: date,
    exported_at: datetime,
) -> None:
    """Add the derived ``exported_at`` and ``snapshot_date`` columns and write one partition.

    Only the folder of ``snapshot_date`` is replaced (dynamic partition overwrite), as one
    file. ``exported_at`` must be timezone-aware.
    """
    if exported_at.tzinfo is None:
        raise ValueError("exported_at must be timezone-aware")
    micros = int(exported_at.timestamp()) * 1_000_000 + exported_at.microsecond
    out = df.withColumn(EXPORTED_AT_COLUMN, F.timestamp_micros(F.lit(micros))).withColumn(
        SNAPSHOT_DATE_COLUMN, F.lit(snapshot_date)
    )
    (
        out.coalesce(1)
        .write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy(SNAPSHOT_DATE_COLUMN)
        .parquet(output_root)
    )
    logger.info("wrote %s=%s to %s (exported at %s)", SNAPSHOT_DATE_COLUMN, snapshot_date,
                output_root, exported_at.isoformat())


def convert_snapshot(
    spark: SparkSession,
    csv_path: str,
    output_root: str,
    types: Mapping[str, str],
    feed: str,
    snapshot_date: date,
    exported_at: datetime | None = None,
) -> int:
    """Convert one CSV export into the ``snapshot_date`` partition under ``output_root``.

    Returns the number of rows written. Raises InputDataError for a missing file
    (``INPUT_NOT_FOUND``), an export without rows (``INPUT_EMPTY``) or values of the wrong type
    (``INPUT_INVALID``), before writing.
    """
    exported_at = exported_at or default_exported_at(snapshot_date)
    text = read_text_csv(spark, csv_path, feed)
    typed, rows = cast_columns(text, types, feed, csv_path)
    if rows == 0:
        raise InputDataError(f"{feed} export {csv_path} has no rows; nothing to convert",
                             error_code="INPUT_EMPTY")
    logger.info("converting %d rows of the %s export %s into %s for %s", rows, feed, csv_path,
                output_root, snapshot_date)
    write_snapshot(typed, output_root, snapshot_date, exported_at)
    return rows
