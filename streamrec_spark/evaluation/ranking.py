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
repeated item twice. Rows with a null key, a null, NaN or infinite rank, or a null, NaN or
infinite score cannot be ordered and are dropped before ranking (``INVALID_SCORES``).
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
from streamrec_spark.evaluation.slices import slice_names, slice_predicates, top_active_predicate

logger = logging.getLogger(__name__)

_ID_TYPES = (T.LongType, T.IntegerType, T.ShortType)
_ORDER_TYPES = (T.LongType, T.IntegerType, T.ShortType, T.DoubleType, T.FloatType, T.DecimalType)

# Values of the ``kind`` column of the rows that one aggregation groups by user. A holdout
# event on the i-th configured platform has kind _HOLDOUT + i, and on none of them
# _HOLDOUT + len(platforms). One narrow integer column in place of several flags keeps the
# rows that the shuffle and its sort-based partial aggregation copy small.
_RECOMMENDATION = 0
_UNKNOWN_ITEM = 1  # a valid recommendation of an item absent from the catalog
_INVALID = 2  # a recommendation that cannot be ordered
_HISTORY = 3
_HOLDOUT = 4
_CHECK_CODES = (
    "INVALID_SCORES",
    "DUPLICATE_ITEMS",
    "DUPLICATE_RANKS",
    "UNKNOWN_ITEMS",
    "USERS_NOT_IN_HOLDOUT",
    "HOLDOUT_USERS_WITHOUT_RECOMMENDATIONS",
)


@dataclass(frozen=True)
class RankingAggregates:
    """The single row of aggregated numbers that one evaluation pass returns to the driver.

    ``slices`` lists the computed slices in report order. ``values`` maps ``(slice, metric
    column)`` to the mean over the slice's users, or None when the slice is empty.
    ``hit_users`` maps the same key to the number of users with at least one hit in the top
    K. ``user_counts`` maps each slice to its number of evaluated users, and ``checks`` maps
    each input-check code to its count of affected rows or users. ``users_below`` maps each
    requested ``(slice, metric column, floor)`` to the number of the slice's users whose own
    value is below the floor.
    """

    values: dict[tuple[str, str], float | None]
    hit_users: dict[tuple[str, str], int]
    user_counts: dict[str, int]
    checks: dict[str, int]
    users_below: dict[tuple[str, str, float], int]
    slices: tuple[str, ...] = ()


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


def _not_finite(value: Column) -> Column:
    """Return true where ``value`` (a double) is null, NaN, +inf or -inf."""
    return value.isNull() | F.isnan(value) | (F.abs(value) == F.lit(math.inf))


def recommendation_rows(recs: DataFrame, catalog: DataFrame | None = None) -> DataFrame:
    """Project recommendation rows to the columns that :func:`user_rows` groups.

    ``sort_key`` is a struct of ``rank`` (when present), ``negative_score`` (when ``score`` is
    present) and ``item_id``, so sorting it ascending gives the list order. A row that cannot
    be ordered has kind _INVALID and a null ``sort_key``. A valid row whose item is absent from
    ``catalog`` has kind _UNKNOWN_ITEM (never, without a catalog). ``item`` is always null.
    """
    has_rank, has_score = validate_recommendations(recs)
    invalid = F.col("item_id").isNull()
    key_fields = []
    if has_rank:
        invalid = invalid | _not_finite(F.col("rank").cast("double"))
        key_fields.append(F.col("rank").cast("double").alias("rank"))
    if has_score:
        invalid = invalid | _not_finite(F.col("score").cast("double"))
        key_fields.append((-F.col("score").cast("double")).alias("negative_score"))
    key_fields.append(F.col("item_id").cast("bigint").alias("item_id"))

    rows = recs.select(
        F.col("user_id").cast("bigint").alias("user_id"),
        F.col("item_id").cast("bigint").alias("item_id"),
        invalid.alias("invalid"),
        F.struct(*key_fields).alias("sort_key"),
    )
    kind = F.when(F.col("invalid"), F.lit(_INVALID))
    if catalog is not None:
        known = catalog.select(F.col("item_id").cast("bigint").alias("item_id")).distinct()
        rows = rows.join(F.broadcast(known.withColumn("known", F.lit(True))), "item_id", "left")
        kind = kind.when(F.col("known").isNull(), F.lit(_UNKNOWN_ITEM))
    return rows.select(
        "user_id",
        kind.otherwise(F.lit(_RECOMMENDATION)).alias("kind"),
        F.when(~F.col("invalid"), F.col("sort_key")).alias("sort_key"),
        F.lit(None).cast("bigint").alias("item"),
    )


def _holdout_rows(
    events: DataFrame, sort_key_type: T.DataType, relevant_types: Sequence[str], platforms: Sequence[str]
) -> DataFrame:
    """Project holdout events to the columns of :func:`recommendation_rows`.

    Events without a user cannot be attributed, so they are left out. ``item`` is the item of
    an event of a relevant type, and null otherwise.
    """
    kind = F.lit(_HOLDOUT + len(platforms))
    for index in reversed(range(len(platforms))):
        kind = F.when(F.col("platform") == F.lit(platforms[index]), F.lit(_HOLDOUT + index)).otherwise(kind)
    relevant = F.col("event_type").isin(list(relevant_types))
    return events.where(F.col("user_id").isNotNull()).select(
        F.col("user_id").cast("bigint").alias("user_id"),
        kind.alias("kind"),
        F.lit(None).cast(sort_key_type).alias("sort_key"),
        F.when(relevant, F.col("item_id").cast("bigint")).alias("item"),
    )


def _history_rows(events: DataFrame, sort_key_type: T.DataType) -> DataFrame:
    """Project history events to the columns of :func:`recommendation_rows`, leaving out events without a user."""
    return events.where(F.col("user_id").isNotNull()).select(
        F.col("user_id").cast("bigint").alias("user_id"),
        F.lit(_HISTORY).alias("kind"),
        F.lit(None).cast(sort_key_type).alias("sort_key"),
        F.lit(None).cast("bigint").alias("item"),
    )


def _majority_platform(counts: Sequence[Column], platforms: Sequence[str]) -> Column:
    """Return the platform with the most events, the one listed first on a tie, or null for none."""
    platform = F.lit(None).cast("string")
    best = F.lit(0).cast("bigint")
    # Walk the platforms in reverse so that a tie keeps the platform listed first.
    for index in reversed(range(len(platforms))):
        count = counts[index]
        platform = F.when((count > 0) & (count >= best), F.lit(platforms[index])).otherwise(platform)
        best = F.greatest(best, count)
    return platform


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
    platform = _majority_platform([F.col(f"platform_{index}") for index in range(len(platforms))], platforms)
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
        # Lists hold at most max_k items, so at max_k every hit is within and no filter runs.
        if k >= max_k:
            return F.col("hit_positions")
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


def user_rows(rows: DataFrame, config: EvaluationConfig, has_rank: bool) -> DataFrame:
    """Group the union of recommendation, holdout and history rows by user, in one shuffle.

    Returns one row per user with ``items`` (the ordered, deduplicated list, at most ``max_k``
    items), ``relevant``, the holdout ``platform``, ``history_events``, ``in_recommendations``,
    ``in_holdout`` and the per-user input-check counts ``rec_rows``, ``invalid_rows``,
    ``unknown_items``, ``duplicate_items`` and ``duplicate_ranks``. Recommendation rows with a
    null ``user_id`` form one group with a null key, which only contributes to the counts.
    """
    platforms = config.slices.platforms
    kind = F.col("kind")
    grouped = rows.groupBy("user_id").agg(
        F.count(F.when(kind <= F.lit(_INVALID), 1)).alias("rec_rows"),
        F.count(F.when(kind == F.lit(_INVALID), 1)).alias("invalid_rows"),
        F.count(F.when(kind == F.lit(_UNKNOWN_ITEM), 1)).alias("unknown_items"),
        # collect_list skips nulls, so each list collects from its own rows only. A list with
        # array_distinct after the shuffle cost less than collect_set in a profile at 500,000 users.
        F.sort_array(F.collect_list("sort_key")).alias("sorted"),
        F.collect_list("item").alias("relevant_items"),
        F.count(F.when(kind >= F.lit(_HOLDOUT), 1)).alias("holdout_events"),
        F.count(F.when(kind == F.lit(_HISTORY), 1)).alias("history_events"),
        *[F.count(F.when(kind == F.lit(_HOLDOUT + index), 1)).alias(f"platform_{index}") for index in range(len(platforms))],
    )
    # Selecting a field of an array of structs runs as generated code; a lambda would not.
    all_items = F.col("sorted.item_id")
    distinct_items = F.array_distinct(all_items)
    if has_rank:
        ranks = F.col("sorted.rank")
        duplicate_ranks = (F.size(ranks) - F.size(F.array_distinct(ranks))).cast("bigint")
    else:
        duplicate_ranks = F.lit(0).cast("bigint")
    platform = _majority_platform([F.col(f"platform_{index}") for index in range(len(platforms))], platforms)
    return grouped.select(
        "user_id",
        F.slice(distinct_items, 1, config.max_k).alias("items"),
        F.array_distinct("relevant_items").alias("relevant"),
        platform.alias("platform"),
        "history_events",
        (F.col("rec_rows") > 0).alias("in_recommendations"),
        (F.col("holdout_events") > 0).alias("in_holdout"),
        "rec_rows",
        "invalid_rows",
        "unknown_items",
        (F.size(all_items) - F.size(distinct_items)).cast("bigint").alias("duplicate_items"),
        duplicate_ranks.alias("duplicate_ranks"),
    )


def per_user_metrics(users: DataFrame, config: EvaluationConfig) -> DataFrame:
    """Add ``evaluated``, ``is_new`` and the metric columns to :func:`user_rows`.

    Keeps ``user_id``, ``platform`` and ``history_events`` for the slices and the per-user
    input-check counts, and drops the arrays. Metric columns are only meaningful where
    ``evaluated`` (the user has a relevant item) is true.
    """
    with_hits = users.select(
        "*",
        hit_positions().alias("hit_positions"),
        F.size("relevant").alias("n_relevant"),
    )
    return with_hits.select(
        "user_id",
        "in_recommendations",
        "in_holdout",
        (F.col("n_relevant") > 0).alias("evaluated"),
        "platform",
        "history_events",
        (F.col("history_events") < F.lit(config.slices.new_user_min_events)).alias("is_new"),
        "rec_rows",
        "invalid_rows",
        "unknown_items",
        "duplicate_items",
        "duplicate_ranks",
        *metric_columns(config.metrics, config.max_k),
    )


def aggregate_rankings(
    recs: DataFrame,
    holdout_events: DataFrame,
    history_events: DataFrame | None,
    config: EvaluationConfig,
    catalog: DataFrame | None = None,
    floors: Sequence[tuple[str, MetricSpec, float]] = (),
    holdout_source: str = "the holdout window",
    with_slices: bool = True,
) -> RankingAggregates:
    """Compute every metric of ``config`` for every slice and the input-check counts.

    ``holdout_events`` are the click-stream events inside the holdout window and
    ``history_events`` those before it (used for the new-user and most-active slices).
    ``floors`` lists ``(slice, metric, floor)`` triples whose number of users below the floor
    is also counted; each metric must be one of ``config.metrics``. With ``with_slices``
    False only the ``all`` slice is computed and ``history_events`` is not read, so it may be
    None.

    Recommendation, holdout and history rows are grouped by user in a single shuffle, with no
    join, and the metrics of every slice come back as one aggregated row. With slices, the
    per-user numbers are cached, and two small jobs over the cache find the most-active cut-off
    before the final aggregation. Only aggregates reach the driver.

    Raises InputDataError with code ``EMPTY_HOLDOUT`` when ``holdout_events`` is empty,
    ``NO_RELEVANT_HOLDOUT_EVENTS`` when no holdout user has a relevant event, and
    ``EMPTY_RECOMMENDATIONS`` when ``recs`` is empty, checked in that order. The messages
    name the holdout by ``holdout_source``, a noun phrase such as "the holdout window A to B
    of the events at PATH".
    """
    has_rank, _ = validate_recommendations(recs)
    recommendations = recommendation_rows(recs, catalog)
    key_type = recommendations.schema["sort_key"].dataType
    holdout = _holdout_rows(holdout_events, key_type, config.relevant_event_types, config.slices.platforms)
    rows = recommendations.unionByName(holdout)
    slices = tuple(slice_names(config.slices, with_slices))
    if not with_slices:
        per_user = per_user_metrics(user_rows(rows, config, has_rank), config)
        row = _aggregate(per_user.withColumn("is_top_active", F.lit(False)), config, slices, floors)
        return _collect_aggregates(row, config, slices, floors, holdout_source)

    if history_events is None:
        raise ValueError("history_events is required to compute slices")
    rows = rows.unionByName(_history_rows(history_events, key_type))
    # The per-user rows hold numbers only, no arrays, so the cache stays small. The first job
    # fills it, and the most-active cut-off and the final aggregation read it.
    per_user = per_user_metrics(user_rows(rows, config, has_rank), config).persist()
    try:
        evaluated = per_user.where(F.col("evaluated")).select("user_id", "history_events")
        top_active = F.col("evaluated") & top_active_predicate(evaluated, config.slices)
        row = _aggregate(per_user.withColumn("is_top_active", top_active), config, slices, floors)
    finally:
        per_user.unpersist()
    return _collect_aggregates(row, config, slices, floors, holdout_source)


def _aggregate(
    per_user: DataFrame,
    config: EvaluationConfig,
    slices: Sequence[str],
    floors: Sequence[tuple[str, MetricSpec, float]],
) -> dict:
    """Aggregate per-user rows into one row: per-slice users, metric sums and hit users.

    Sums, not averages, keep one aggregation buffer per metric, and the driver divides them by
    the slice's user count. NOTE: whole-stage code generation stops above ``spark.sql.codegen.maxFields``
    (100 in Spark 3.5) aggregated fields, so a configuration with many cut-offs runs this
    aggregation interpreted, which is correct but slower.
    """
    evaluated = F.col("evaluated")
    predicates = slice_predicates(config.slices)
    cutoffs = sorted({spec.k for spec in config.metrics})
    expressions: list[Column] = []
    for index, name in enumerate(slices):
        member = evaluated & predicates[name]
        expressions.append(F.count(F.when(member, 1)).alias(f"s{index}_users"))
        for spec in config.metrics:
            expressions.append(F.sum(F.when(member, F.col(spec.column))).alias(f"s{index}_{spec.column}"))
        for k in cutoffs:
            expressions.append(F.count(F.when(member & (F.col(f"hits_at_{k}") > 0), 1)).alias(f"s{index}_hit_users_{k}"))
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
        F.count(F.when(F.col("in_holdout"), 1)).alias("holdout_users"),
    ]
    for index, (name, spec, floor) in enumerate(floors):
        if name not in slices:
            raise ValueError(f"unknown slice {name!r}; expected one of {', '.join(slices)}")
        member = evaluated & predicates[name]
        expressions.append(
            F.count(F.when(member & (F.col(spec.column) < F.lit(floor)), 1)).alias(f"below_{index}")
        )
    return per_user.agg(*expressions).collect()[0].asDict()


def _collect_aggregates(
    row: dict,
    config: EvaluationConfig,
    slices: Sequence[str],
    floors: Sequence[tuple[str, MetricSpec, float]],
    holdout_source: str,
) -> RankingAggregates:
    values: dict[tuple[str, str], float | None] = {}
    hit_users: dict[tuple[str, str], int] = {}
    user_counts: dict[str, int] = {}
    for index, name in enumerate(slices):
        users = int(row[f"s{index}_users"])
        user_counts[name] = users
        for spec in config.metrics:
            total = row[f"s{index}_{spec.column}"]
            values[(name, spec.column)] = None if users == 0 or total is None else total / users
            hit_users[(name, spec.column)] = int(row[f"s{index}_hit_users_{spec.k}"])
    checks = {code: int(row[code] or 0) for code in _CHECK_CODES}

    if not row["holdout_users"]:
        raise InputDataError(
            f"{holdout_source} contains no event, so no user can be evaluated; check the holdout "
            "dates and the events path",
            error_code="EMPTY_HOLDOUT",
        )
    if user_counts["all"] == 0:
        raise InputDataError(
            f"{holdout_source} has events of {row['holdout_users']} users but none of a relevant "
            f"type ({', '.join(config.relevant_event_types)}); check the holdout window and "
            "relevant_event_types",
            error_code="NO_RELEVANT_HOLDOUT_EVENTS",
        )
    if not row["rec_rows"]:
        raise InputDataError(
            "the recommendations table is empty; nothing can be evaluated",
            error_code="EMPTY_RECOMMENDATIONS",
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
        values=values,
        hit_users=hit_users,
        user_counts=user_counts,
        checks=checks,
        users_below=users_below,
        slices=tuple(slices),
    )
