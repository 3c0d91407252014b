"""Ranking metrics of a recommendations table against holdout interactions, computed in Spark.

All metrics use binary relevance. For a user ``u``, ``R_u`` is the set of distinct items that
``u`` interacted with in the holdout window through a relevant event type (``click`` and
``complete`` by default). ``L_u`` is u's recommendation list in rank order after duplicates are
removed, and ``hits_u@K`` is the number of items of ``L_u[1..K]`` that are in ``R_u``.

Each metric is the mean over users of a per-user value defined in :func:`metric_columns`.

Users with no relevant item are excluded from every average and counted under the input check
``USERS_NOT_IN_HOLDOUT``. Spark's ``RankingMetrics`` instead scores such users 0 and keeps them
in the mean, so the two agree only when every evaluated user has a relevant item. Users with
relevant items but no recommendation stay in the averages with 0 on every metric and are counted
under ``HOLDOUT_USERS_WITHOUT_RECOMMENDATIONS``.

Ordering and duplicates: rows are ordered by ``rank`` ascending when the table has a ``rank``
column, then by ``score`` descending when it has a ``score`` column, then by ``item_id``
ascending, so ties always break the same way. A repeated (user, item) pair keeps its best
position and the other rows are removed before scoring, whereas ``RankingMetrics`` scores a
repeated item twice. Rows with a null key, a null rank, or a
null or NaN score cannot be ordered and are dropped before ranking (``INVALID_SCORES``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from streamrec_spark.errors import InputDataError
from streamrec_spark.evaluation.config import EvaluationConfig, MetricSpec
from streamrec_spark.evaluation.slices import (
    add_top_active,
    holdout_user_activity,
    slice_names,
    slice_predicates,
)

logger = logging.getLogger(__name__)

_ID_TYPES = (T.LongType, T.IntegerType, T.ShortType)
_ORDER_TYPES = (T.LongType, T.IntegerType, T.ShortType, T.DoubleType, T.FloatType, T.DecimalType)


@dataclass(frozen=True)
class RankingAggregates:
    """The single row of aggregated numbers that one evaluation pass returns to the driver.

    ``values`` maps ``(slice, metric column)`` to the mean over the slice's users, or None when
    the slice is empty. ``hit_users`` maps the same key to the number of users with at least
    one hit in the top K. ``user_counts`` maps each slice to its number of evaluated users, and
    ``checks`` maps each input-check code to its count of affected rows or users.
    ``users_below`` maps each requested ``(slice, metric column, floor)`` to the number of the
    slice's users whose own value is below the floor.
    """

    values: dict[tuple[str, str], float | None]
    hit_users: dict[tuple[str, str], int]
    user_counts: dict[str, int]
    checks: dict[str, int]
    users_below: dict[tuple[str, str, float], int]


def validate_recommendations(recs: DataFrame) -> tuple[bool, bool]:
    """Check the recommendations schema and return whether it has ``rank`` and ``score``.

    Raises InputDataError (code ``INVALID_RECOMMENDATIONS``) when ``user_id`` or ``item_id``
    is missing or not an integer type, or when neither a numeric ``rank`` nor ``score`` exists.
    """
    fields = {field.name: field.dataType for field in recs.schema.fields}
    problems = []
    for name in ("user_id", "item_id"):
        if name not in fields:
            problems.append(f"column '{name}' is missing")
        elif not isinstance(fields[name], _ID_TYPES):
            problems.append(f"column '{name}' must be an integer type, found {fields[name].simpleString()}")
    order_columns = [name for name in ("rank", "score") if name in fields]
    if not order_columns:
        problems.append("neither a 'rank' nor a 'score' column is present")
    for name in order_columns:
        if not isinstance(fields[name], _ORDER_TYPES):
            problems.append(f"column '{name}' must be numeric, found {fields[name].simpleString()}")
    if problems:
        raise InputDataError(
            "invalid recommendations table: " + "; ".join(problems)
            + ". Expected user_id BIGINT, item_id BIGINT and rank (1 = best) or score (higher is better).",
            error_code="INVALID_RECOMMENDATIONS",
        )
    return "rank" in fields, "score" in fields


def ranked_lists(recs: DataFrame, max_k: int, catalog: DataFrame | None = None) -> DataFrame:
    """Turn recommendation rows into one ordered, deduplicated list of items per user.

    Returns ``user_id``, ``items`` (array<bigint>, best first, at most ``max_k``) and per-user
    counts ``rec_rows``, ``invalid_rows``, ``duplicate_items``, ``duplicate_ranks`` and
    ``unknown_items`` (items absent from ``catalog``; 0 when no catalog is given). Rows with a
    null ``user_id`` form one group with a null key, which only contributes to the counts.
    """
    has_rank, has_score = validate_recommendations(recs)
    invalid = F.col("item_id").isNull()
    key_fields = []
    if has_rank:
        invalid = invalid | F.col("rank").isNull()
        key_fields.append(F.col("rank").cast("double").alias("rank"))
    if has_score:
        invalid = invalid | F.col("score").isNull() | F.isnan(F.col("score").cast("double"))
        key_fields.append((-F.col("score").cast("double")).alias("negative_score"))
    key_fields.append(F.col("item_id").cast("bigint").alias("item_id"))

    rows = recs.select(
        F.col("user_id").cast("bigint").alias("user_id"),
        F.col("item_id").cast("bigint").alias("item_id"),
        invalid.alias("invalid"),
        F.struct(*key_fields).alias("sort_key"),
    )
    if catalog is not None:
        known = catalog.select(F.col("item_id").cast("bigint").alias("item_id")).distinct()
        rows = rows.join(F.broadcast(known.withColumn("known", F.lit(True))), "item_id", "left")
        unknown = F.col("known").isNull() & ~F.col("invalid")
    else:
        unknown = F.lit(False)

    valid = ~F.col("invalid")
    grouped = rows.groupBy("user_id").agg(
        F.count(F.lit(1)).alias("rec_rows"),
        F.sum(F.col("invalid").cast("bigint")).alias("invalid_rows"),
        F.sum(unknown.cast("bigint")).alias("unknown_items"),
        F.sort_array(F.collect_list(F.when(valid, F.col("sort_key")))).alias("sorted"),
    )
    # Selecting a field of an array of structs runs as generated code; a lambda would not.
    all_items = F.col("sorted.item_id")
    distinct_items = F.array_distinct(all_items)
    if has_rank:
        ranks = F.col("sorted.rank")
        duplicate_ranks = (F.size(ranks) - F.size(F.array_distinct(ranks))).cast("bigint")
    else:
        duplicate_ranks = F.lit(0).cast("bigint")
    return grouped.select(
        "user_id",
        F.slice(distinct_items, 1, max_k).alias("items"),
        "rec_rows",
        "invalid_rows",
        "unknown_items",
        (F.size(all_items) - F.size(distinct_items)).cast("bigint").alias("duplicate_items"),
        duplicate_ranks.alias("duplicate_ranks"),
    )


def relevant_sets(
    holdout_events: DataFrame, relevant_types: Sequence[str], platforms: Sequence[str]
) -> DataFrame:
    """Return ``user_id``, ``relevant`` (distinct items) and the user's holdout ``platform``.

    Every user with a holdout event is returned, including users whose ``relevant`` array is
    empty. Events with a null ``user_id`` are ignored. The platform is the one of
    ``platforms`` with the most holdout events for the user. Ties go to the platform listed
    first, and a user with none of them gets a null platform.
    """
    is_relevant = F.col("event_type").isin(list(relevant_types))
    counts = [
        F.sum((F.col("platform") == F.lit(name)).cast("bigint")).alias(f"platform_{index}")
        for index, name in enumerate(platforms)
    ]
    # An event without a user cannot be attributed, so it never creates an evaluated user.
    attributed = holdout_events.where(F.col("user_id").isNotNull())
    grouped = attributed.groupBy(F.col("user_id").cast("bigint").alias("user_id")).agg(
        F.array_sort(F.collect_set(F.when(is_relevant, F.col("item_id").cast("bigint")))).alias(
            "relevant"
        ),
        *counts,
    )
    platform = F.lit(None).cast("string")
    best = F.lit(0).cast("bigint")
    # Walk the platforms in reverse so that a tie keeps the platform listed first.
    for index in reversed(range(len(platforms))):
        count = F.col(f"platform_{index}")
        platform = F.when((count > 0) & (count >= best), F.lit(platforms[index])).otherwise(platform)
        best = F.greatest(best, count)
    return grouped.select("user_id", "relevant", platform.alias("platform"))


def _gain_array(max_k: int) -> Column:
    return F.array(*[F.lit(1.0 / math.log2(position + 1)) for position in range(1, max_k + 1)])


def _ideal_dcg_array(max_k: int) -> Column:
    total = 0.0
    values = []
    for position in range(1, max_k + 1):
        total += 1.0 / math.log2(position + 1)
        values.append(F.lit(total))
    return F.array(*values)


def hit_positions() -> Column:
    """Return the 1-based positions of ``items`` that are in ``relevant``, ascending.

    ``array_intersect`` keeps the order of its first array and runs as generated code, so the
    per-item work needs no lambda. The metrics then only walk these few hit positions, which
    is several times cheaper than a lambda over every recommended item, because Spark
    interprets lambdas row by row.
    """
    items = F.col("items")
    # F.array_position takes only a literal value in PySpark 3.5, so the SQL function is
    # called by name to pass a column.
    return F.transform(
        F.array_intersect(items, F.col("relevant")),
        lambda item: F.call_function("array_position", items, item).cast("int"),
    )


def metric_columns(specs: Sequence[MetricSpec], max_k: int) -> list[Column]:
    """Build one per-user metric column per spec and one ``hits_at_K`` column per cut-off.

    Expects ``hit_positions`` (from :func:`hit_positions`) and ``n_relevant`` = |R_u| (at
    least 1 for evaluated users; rows with 0 give null recall, NDCG and MAP). The definitions
    follow Spark's ``RankingMetrics`` (pyspark 3.5) with binary relevance:

    * precision@K = hits_u@K / K. The divisor stays K when fewer than K items were
      recommended, as in ``RankingMetrics.precisionAt``.
    * recall@K = hits_u@K / |R_u|.
    * hit_rate@K = 1 if hits_u@K > 0, else 0 (``RankingMetrics`` has no hit rate).
    * ndcg@K = DCG / IDCG, with DCG = sum over hit positions i <= K of 1 / log2(i + 1) and
      IDCG = sum over i = 1 .. min(|R_u|, K) of 1 / log2(i + 1).
    * map@K = (sum over hit positions i <= K of hits_u@i / i) / min(|R_u|, K), the average
      precision of ``RankingMetrics.meanAveragePrecisionAt``.
    """
    gains = _gain_array(max_k)
    ideal = _ideal_dcg_array(max_k)
    n_relevant = F.col("n_relevant")
    valid = n_relevant > 0

    def within(k: int) -> Column:
        return F.filter(F.col("hit_positions"), lambda position: position <= F.lit(k))

    columns: list[Column] = [F.size(within(k)).cast("bigint").alias(f"hits_at_{k}") for k in sorted({spec.k for spec in specs})]
    for spec in specs:
        k = spec.k
        hits_k = F.size(within(k))
        if spec.name == "precision":
            value = hits_k / F.lit(float(k))
        elif spec.name == "recall":
            value = F.when(valid, hits_k / n_relevant)
        elif spec.name == "hit_rate":
            value = F.when(hits_k > 0, F.lit(1.0)).otherwise(F.lit(0.0))
        elif spec.name == "ndcg":
            dcg = F.aggregate(within(k), F.lit(0.0), lambda total, position: total + F.element_at(gains, position))
            value = F.when(valid, dcg / F.element_at(ideal, F.least(n_relevant, F.lit(k)).cast("int")))
        elif spec.name == "map":
            # The j-th hit (0-based) at position p contributes precision (j + 1) / p.
            precisions = F.transform(within(k), lambda position, index: (index + 1) / position)
            total = F.aggregate(precisions, F.lit(0.0), lambda acc, value: acc + value)
            value = F.when(valid, total / F.least(n_relevant, F.lit(k)))
        else:
            raise ValueError(f"unknown metric {spec.name!r}")
        columns.append(value.cast("double").alias(spec.column))
    return columns


def per_user_metrics(
    lists: DataFrame, holdout_users: DataFrame, specs: Sequence[MetricSpec], max_k: int
) -> DataFrame:
    """Join ranked lists with holdout users (full outer) and compute each user's metrics.

    ``holdout_users`` is the output of ``add_top_active``. Returns ``user_id``,
    ``in_recommendations``, ``evaluated`` (the user has a relevant item), the slice columns,
    the input-check counts of ``ranked_lists`` and the columns of :func:`metric_columns`.
    Metric columns are only meaningful where ``evaluated`` is true.
    """
    joined = lists.withColumn("in_recommendations", F.lit(True)).join(
        holdout_users, on="user_id", how="full_outer"
    )
    empty_items = F.array().cast("array<bigint>")
    empty_relevant = F.array().cast("array<bigint>")
    prepared = joined.select(
        "user_id",
        F.coalesce(F.col("in_recommendations"), F.lit(False)).alias("in_recommendations"),
        F.coalesce(F.col("relevant"), empty_relevant).alias("relevant"),
        F.coalesce(F.col("items"), empty_items).alias("items"),
        "platform",
        "is_new",
        "is_top_active",
        *[
            F.coalesce(F.col(name), F.lit(0).cast("bigint")).alias(name)
            for name in ("rec_rows", "invalid_rows", "unknown_items", "duplicate_items", "duplicate_ranks")
        ],
    )
    with_hits = prepared.select(
        "*",
        hit_positions().alias("hit_positions"),
        F.size("relevant").alias("n_relevant"),
    )
    return with_hits.select(
        "user_id",
        "in_recommendations",
        (F.col("n_relevant") > 0).alias("evaluated"),
        "platform",
        "is_new",
        "is_top_active",
        "n_relevant",
        "rec_rows",
        "invalid_rows",
        "unknown_items",
        "duplicate_items",
        "duplicate_ranks",
        *metric_columns(specs, max_k),
    )


def aggregate_rankings(
    recs: DataFrame,
    holdout_events: DataFrame,
    history_events: DataFrame,
    config: EvaluationConfig,
    catalog: DataFrame | None = None,
    floors: Sequence[tuple[str, MetricSpec, float]] = (),
) -> RankingAggregates:
    """Compute every metric of ``config`` for every slice and the input-check counts.

    ``floors`` lists ``(slice, metric, floor)`` triples whose number of users below the floor
    is also counted; each metric must be one of ``config.metrics``.

    ``holdout_events`` are the click-stream events inside the holdout window and
    ``history_events`` those before it (used for the new-user and most-active slices). The
    metrics come back from one Spark job that ends in a single-row aggregation. Only that row
    and the small aggregates of ``add_top_active`` reach the driver.
    """
    specs = config.metrics
    lists = ranked_lists(recs, config.max_k, catalog)
    relevant = relevant_sets(holdout_events, config.relevant_event_types, config.slices.platforms)
    # One row per holdout user, read by the two small jobs of add_top_active and the final one.
    activity = holdout_user_activity(relevant, history_events, config.slices).persist()
    try:
        holdout_users = add_top_active(activity, config.slices)
        row = _aggregate(per_user_metrics(lists, holdout_users, specs, config.max_k), config, floors)
    finally:
        activity.unpersist()
    return _collect_aggregates(row, config, floors)


def _aggregate(
    per_user: DataFrame, config: EvaluationConfig, floors: Sequence[tuple[str, MetricSpec, float]]
) -> dict:
    specs = config.metrics

    evaluated = F.col("evaluated")
    names = slice_names(config.slices)
    predicates = slice_predicates(config.slices)
    expressions: list[Column] = []
    for index, name in enumerate(names):
        member = evaluated & predicates[name]
        expressions.append(F.count(F.when(member, 1)).alias(f"s{index}_users"))
        for spec in specs:
            expressions.append(F.avg(F.when(member, F.col(spec.column))).alias(f"s{index}_{spec.column}"))
            expressions.append(
                F.count(F.when(member & (F.col(f"hits_at_{spec.k}") > 0), 1)).alias(
                    f"s{index}_{spec.column}_hit_users"
                )
            )
    has_user = F.col("user_id").isNotNull()
    expressions += [
        F.sum("invalid_rows").alias("INVALID_SCORES"),
        F.sum("duplicate_items").alias("DUPLICATE_ITEMS"),
        F.sum("duplicate_ranks").alias("DUPLICATE_RANKS"),
        F.sum("unknown_items").alias("UNKNOWN_ITEMS"),
        F.count(F.when(has_user & F.col("in_recommendations") & ~evaluated, 1)).alias(
            "USERS_NOT_IN_HOLDOUT"
        ),
        F.count(F.when(evaluated & ~F.col("in_recommendations"), 1)).alias(
            "HOLDOUT_USERS_WITHOUT_RECOMMENDATIONS"
        ),
        F.sum("rec_rows").alias("rec_rows"),
    ]
    for index, (name, spec, floor) in enumerate(floors):
        if name not in predicates:
            raise ValueError(f"unknown slice {name!r}; expected one of {', '.join(names)}")
        member = evaluated & predicates[name]
        expressions.append(
            F.count(F.when(member & (F.col(spec.column) < F.lit(floor)), 1)).alias(f"below_{index}")
        )
    return per_user.agg(*expressions).collect()[0].asDict()


def _collect_aggregates(
    row: dict, config: EvaluationConfig, floors: Sequence[tuple[str, MetricSpec, float]]
) -> RankingAggregates:
    specs = config.metrics
    names = slice_names(config.slices)

    values: dict[tuple[str, str], float | None] = {}
    hit_users: dict[tuple[str, str], int] = {}
    user_counts: dict[str, int] = {}
    for index, name in enumerate(names):
        user_counts[name] = int(row[f"s{index}_users"])
        for spec in specs:
            values[(name, spec.column)] = row[f"s{index}_{spec.column}"]
            hit_users[(name, spec.column)] = int(row[f"s{index}_{spec.column}_hit_users"])

    checks = {
        code: int(row[code] or 0)
        for code in (
            "INVALID_SCORES",
            "DUPLICATE_ITEMS",
            "DUPLICATE_RANKS",
            "UNKNOWN_ITEMS",
            "USERS_NOT_IN_HOLDOUT",
            "HOLDOUT_USERS_WITHOUT_RECOMMENDATIONS",
        )
    }

    if not row["rec_rows"]:
        raise InputDataError(
            "the recommendations table is empty; nothing can be evaluated",
            error_code="EMPTY_RECOMMENDATIONS",
        )
    if user_counts["all"] == 0:
        raise InputDataError(
            "no user has a relevant holdout interaction (event types "
            f"{', '.join(config.relevant_event_types)}); check the holdout window and the events path",
            error_code="EMPTY_HOLDOUT",
        )
    logger.info(
        "ranking metrics computed for %d users (%d recommendation rows)",
        user_counts["all"],
        row["rec_rows"],
    )
    users_below = {
        (name, spec.column, floor): int(row[f"below_{index}"]) for index, (name, spec, floor) in enumerate(floors)
    }
    return RankingAggregates(
        values=values, hit_users=hit_users, user_counts=user_counts, checks=checks, users_below=users_below
    )
