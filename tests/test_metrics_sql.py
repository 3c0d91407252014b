"""Spark tests of the SQL text that the fused aggregation is built from: literals and quoting."""

from __future__ import annotations

import math
from datetime import date

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from streamrec_spark.contracts.model import ColumnSpec, Expectation
from streamrec_spark.validation import metrics as spark_metrics

LITERALS = [
    True,
    False,
    0,
    -5,
    2**31 - 1,
    2**31,
    -(2**31) - 1,
    0.1,
    -5.0,
    1e300,
    5e-324,
    math.inf,
    -math.inf,
    "view",
    "",
    "it's",
    "back\\slash",
    'double "quotes"',
    "ünïcode ☃",
    "line\nbreak",
    date(2024, 5, 1),
]


def read_back(spark, value):
    literal = spark_metrics.sql_literal(value)
    sql_row = spark.sql(f"SELECT {literal} AS v")
    lit_row = spark.range(1).select(F.lit(value).alias("v"))
    return sql_row.schema["v"].dataType, sql_row.first()["v"], lit_row.schema["v"].dataType, lit_row.first()["v"]


@pytest.mark.parametrize("value", LITERALS, ids=repr)
def test_sql_literal_reads_back_as_lit(spark, value):
    sql_type, sql_value, lit_type, lit_value = read_back(spark, value)

    assert sql_type == lit_type
    assert sql_value == lit_value


def test_sql_literal_nan(spark):
    sql_type, sql_value, lit_type, _ = read_back(spark, math.nan)

    assert sql_type == lit_type
    assert math.isnan(sql_value)


@pytest.mark.parametrize("value", ["it's", "back\\slash", "plain"])
def test_sql_literal_independent_of_escape_setting(spark, value):
    spark.conf.set("spark.sql.parser.escapedStringLiterals", "true")
    try:
        read = spark.sql(f"SELECT {spark_metrics.sql_literal(value)} AS v").first()["v"]
    finally:
        spark.conf.unset("spark.sql.parser.escapedStringLiterals")

    assert read == value


def test_sql_literal_rejects_other_types():
    with pytest.raises(TypeError, match="no SQL literal for list"):
        spark_metrics.sql_literal([1])


def test_quote_odd_column_name(spark):
    name = "odd `name`, with: punctuation"
    df = spark.createDataFrame([("a",), (None,)], StructType([StructField(name, StringType())]))

    counted = df.selectExpr(f"count(CASE WHEN {spark_metrics.quote(name)} IS NULL THEN 1 END) AS n")

    assert counted.first()["n"] == 1


def test_value_conditions_with_quotes_and_backslashes(spark):
    allowed = ("it's", "a\\b", "ü")
    spec = ColumnSpec("tag", "string", nullable=False, allowed_values=allowed)
    in_set = Expectation("tags_known", "value_range", "in_set", "error", column="tag")
    pattern = Expectation("tags_format", "value_range", "matches_regex", "error", column="tag", pattern=r"\d+'x")
    values = ["it's", "a\\b", "ü", "its", "a\\\\b", "12'x", " ", None]
    df = spark.createDataFrame([(v,) for v in values], StructType([StructField("tag", StringType())]))

    def rows_where(condition):
        return sorted(row["tag"] for row in df.where(F.expr(condition)).collect())

    valid, failing = spark_metrics.value_conditions(in_set, spec)
    assert rows_where(valid) == sorted(v for v in values if v is not None and v.strip())
    assert rows_where(failing) == sorted(["its", "a\\\\b", "12'x"])
    _, failing = spark_metrics.value_conditions(pattern, spec)
    assert rows_where(failing) == sorted(["it's", "a\\b", "ü", "its", "a\\\\b"])
