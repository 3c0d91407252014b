"""Spark ranking metrics: agreement with RankingEvaluator, ties, duplicates and bad input."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

import pytest
from pyspark.ml.evaluation import RankingEvaluator
from pyspark.sql import functions as F

from streamrec_spark.errors import InputDataError
from streamrec_spark.evaluation.config import EvaluationConfig, MetricSpec, SliceConfig
from streamrec_spark.evaluation.ranking import aggregate_rankings
from streamrec_spark.evaluation.results import build_result

EVENT_COLUMNS = "user_id bigint, item_id bigint, event_type string, platform string, event_ts timestamp"
HOLDOUT_START = datetime(2024, 3, 1)


def _events(spark, rows):
    return spark.createDataFrame(rows, EVENT_COLUMNS)


def _holdout_event(user, item, event_type="click", platform="ios"):
    return (user, item, event_type, platform, HOLDOUT_START + timedelta(hours=1))


def _history_event(user, item, days_before=3, platform="ios"):
    return (user, item, "view", platform, HOLDOUT_START - timedelta(days=days_before))


def _evaluate(spark, recs, holdout, history=(), config=None, catalog=None):
    config = config or EvaluationConfig()
    history_df = _events(spark, list(history))
    aggregates = aggregate_rankings(recs, _events(spark, holdout), history_df, config, catalog)
    return build_result(aggregates, config)


def _random_case(seed, users=60, items=40, k=10):
    rng = random.Random(seed)
    recs, holdout = [], []
    for user in range(1, users + 1):
        listed = rng.sample(range(items), rng.randint(1, k + 5))
        recs += [(user, item, rank + 1) for rank, item in enumerate(listed)]
        for item in rng.sample(range(items), rng.randint(1, 8)):
            holdout.append(_holdout_event(user, item))
    # Users with holdout items but no recommendation: both definitions score them 0.
    for user in range(users + 1, users + 6):
        holdout.append(_holdout_event(user, rng.randrange(items)))
    return recs, holdout


def test_metrics_match_ranking_evaluator(spark):
    recs_rows, holdout = _random_case(seed=7)
    recs = spark.createDataFrame(recs_rows, "user_id bigint, item_id bigint, rank int")
    config = EvaluationConfig(
        metrics=tuple(MetricSpec(name, k) for name in ("precision", "recall", "ndcg", "map") for k in (1, 5, 10))
    )
    result = _evaluate(spark, recs, holdout, config=config)

    predictions = recs.groupBy("user_id").agg(
        F.sort_array(F.collect_list(F.struct("rank", F.col("item_id").cast("double").alias("item")))).alias("r")
    ).select("user_id", F.col("r.item").alias("prediction"))
    labels = (
        _events(spark, holdout)
        .groupBy("user_id")
        .agg(F.collect_set(F.col("item_id").cast("double")).alias("label"))
    )
    frame = labels.join(predictions, "user_id", "left").select(
        F.coalesce("prediction", F.array().cast("array<double>")).alias("prediction"), "label"
    ).cache()
    names = {"precision": "precisionAtK", "recall": "recallAtK", "ndcg": "ndcgAtK", "map": "meanAveragePrecisionAtK"}
    for spec in config.metrics:
        evaluator = RankingEvaluator(
            predictionCol="prediction", labelCol="label", metricName=names[spec.name], k=spec.k
        )
        expected = evaluator.evaluate(frame)
        assert result.value(spec.name, spec.k) == pytest.approx(expected, abs=1e-12), spec
    frame.unpersist()


def test_metrics_by_hand(spark):
    # User 1: relevant {10, 20}; list 10, 30, 20 -> hits at positions 1 and 3.
    # User 2: relevant {40}; list 50, 60 -> no hit.
    recs = spark.createDataFrame(
        [(1, 10, 1), (1, 30, 2), (1, 20, 3), (2, 50, 1), (2, 60, 2)],
        "user_id bigint, item_id bigint, rank int",
    )
    holdout = [_holdout_event(1, 10), _holdout_event(1, 20), _holdout_event(2, 40)]
    config = EvaluationConfig(
        metrics=(MetricSpec("recall", 2), MetricSpec("recall", 3), MetricSpec("hit_rate", 1),
                 MetricSpec("precision", 3), MetricSpec("ndcg", 3), MetricSpec("map", 3))
    )
    result = _evaluate(spark, recs, holdout, config=config)

    assert result.value("recall", 2) == pytest.approx((0.5 + 0.0) / 2)
    assert result.value("recall", 3) == pytest.approx((1.0 + 0.0) / 2)
    assert result.value("hit_rate", 1) == pytest.approx(0.5)
    assert result.value("precision", 3) == pytest.approx((2 / 3) / 2)
    ndcg_user1 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert result.value("ndcg", 3) == pytest.approx(ndcg_user1 / 2)
    assert result.value("map", 3) == pytest.approx(((1 + 2 / 3) / 2) / 2)
    assert result.row("recall", 3).hit_users == 1
    assert result.row("recall", 3).user_count == 2


def test_ties_and_duplicates_are_resolved(spark):
    # Ranks tie for items 30 and 20: score breaks the tie (20 first), then item 30.
    # Item 10 appears twice; its best rank (1) is kept.
    recs = spark.createDataFrame(
        [(1, 10, 1, 0.9), (1, 30, 2, 0.5), (1, 20, 2, 0.7), (1, 10, 5, 0.1), (1, 40, 4, 0.2)],
        "user_id bigint, item_id bigint, rank int, score double",
    )
    holdout = [_holdout_event(1, 20)]
    config = EvaluationConfig(metrics=(MetricSpec("recall", 2), MetricSpec("ndcg", 3)))
    result = _evaluate(spark, recs, holdout, config=config)

    assert result.value("recall", 2) == pytest.approx(1.0)
    assert result.value("ndcg", 3) == pytest.approx(1 / math.log2(3))
    assert result.row("input.duplicate_items").affected == 1
    assert result.row("input.duplicate_items").status == "warning"
    assert result.row("input.duplicate_ranks").affected == 1


def test_score_only_ties_break_by_item_id(spark):
    recs = spark.createDataFrame(
        [(1, 30, 0.5), (1, 20, 0.5), (1, 10, 0.1)], "user_id bigint, item_id bigint, score double"
    )
    result = _evaluate(
        spark, recs, [_holdout_event(1, 20)], config=EvaluationConfig(metrics=(MetricSpec("hit_rate", 1),))
    )
    assert result.value("hit_rate", 1) == 1.0


def test_nan_scores_are_dropped_and_fail(spark):
    recs = spark.createDataFrame(
        [(1, 10, float("nan")), (1, 20, 0.4), (1, 30, None)], "user_id bigint, item_id bigint, score double"
    )
    result = _evaluate(
        spark, recs, [_holdout_event(1, 10)], config=EvaluationConfig(metrics=(MetricSpec("recall", 20),))
    )
    # NaN would otherwise sort above every number in Spark's descending order.
    assert result.value("recall", 20) == 0.0
    check = result.row("input.invalid_scores")
    assert check.affected == 2
    assert check.affected_unit == "rows"
    assert check.status == "failed"
    assert check.reason == "INVALID_SCORES"
    assert result.exit_code == 1


@pytest.mark.parametrize("bad_score", [math.inf, -math.inf])
def test_infinite_scores_are_invalid(spark, bad_score):
    recs = spark.createDataFrame(
        [(1, 10, bad_score), (1, 20, 0.4), (2, 30, 0.9)], "user_id bigint, item_id bigint, score double"
    )
    holdout = [_holdout_event(1, 10), _holdout_event(2, 30)]
    result = _evaluate(spark, recs, holdout, config=EvaluationConfig(metrics=(MetricSpec("hit_rate", 1),)))

    # Kept, +inf would rank item 10 first for user 1 and -inf would rank it last.
    assert result.value("hit_rate", 1) == pytest.approx(0.5)
    check = result.row("input.invalid_scores")
    assert check.affected == 1
    assert check.status == "failed"
    assert result.exit_code == 1


@pytest.mark.parametrize("bad_rank", [math.inf, -math.inf, math.nan])
def test_non_finite_ranks_are_invalid(spark, bad_rank):
    recs = spark.createDataFrame(
        [(1, 10, bad_rank), (1, 20, 1.0)], "user_id bigint, item_id bigint, rank double"
    )
    result = _evaluate(
        spark, recs, [_holdout_event(1, 10)], config=EvaluationConfig(metrics=(MetricSpec("recall", 20),))
    )
    assert result.value("recall", 20) == 0.0
    assert result.row("input.invalid_scores").affected == 1


def test_unknown_items_and_missing_users_are_recorded(spark):
    recs = spark.createDataFrame(
        [(1, 10, 1), (1, 999, 2), (2, 10, 1), (3, 10, 1)], "user_id bigint, item_id bigint, rank int"
    )
    holdout = [_holdout_event(1, 10), _holdout_event(4, 10), _holdout_event(2, 10, event_type="skip")]
    catalog = spark.createDataFrame([(10,), (20,)], "item_id bigint")
    result = _evaluate(spark, recs, holdout, config=EvaluationConfig(metrics=(MetricSpec("recall", 20),)),
                       catalog=catalog)

    # User 1 hits, user 4 has no recommendation (0); users 2 and 3 have no relevant item.
    assert result.value("recall", 20) == pytest.approx(0.5)
    assert result.row("recall", 20).user_count == 2
    assert result.row("input.unknown_items").affected == 1
    assert result.row("input.users_not_in_holdout").affected == 2
    assert result.row("input.users_not_in_holdout").status == "info"
    assert result.row("input.holdout_users_without_recommendations").affected == 1
    assert result.exit_code == 0


def test_empty_slice_is_missing_not_zero(spark):
    recs = spark.createDataFrame([(1, 10, 1)], "user_id bigint, item_id bigint, rank int")
    config = EvaluationConfig(metrics=(MetricSpec("recall", 20),))
    result = _evaluate(spark, recs, [_holdout_event(1, 10, platform="ios")], config=config)

    web = result.row("recall", 20, "platform=web")
    assert web.value is None
    assert web.status == "missing"
    assert web.reason == "EMPTY_SLICE"
    assert web.user_count == 0
    assert result.row("input.empty_slice").affected == 2  # android and web
    assert result.value("recall", 20, "platform=ios") == 1.0


def test_slices_new_users_and_most_active(spark):
    recs = spark.createDataFrame(
        [(user, 10, 1) for user in range(1, 11)], "user_id bigint, item_id bigint, rank int"
    )
    holdout = [_holdout_event(user, 10 if user % 2 else 20, platform="web" if user == 3 else "ios")
               for user in range(1, 11)]
    # User u has u - 1 history events: users 1 to 3 are new (fewer than 3 events).
    history = [_history_event(user, 99, days_before=n + 1) for user in range(1, 11) for n in range(user - 1)]
    config = EvaluationConfig(
        metrics=(MetricSpec("hit_rate", 1),),
        slices=SliceConfig(new_user_min_events=3, top_active_share=0.2),
    )
    result = _evaluate(spark, recs, holdout, history=history, config=config)

    assert result.row("hit_rate", 1, "new_users").user_count == 3
    assert result.value("hit_rate", 1, "new_users") == pytest.approx(2 / 3)
    assert result.row("hit_rate", 1, "top_active").user_count == 2  # users 9 and 10
    assert result.value("hit_rate", 1, "top_active") == pytest.approx(0.5)
    assert result.row("hit_rate", 1, "platform=web").user_count == 1
    assert result.row("hit_rate", 1, "platform=ios").user_count == 9


def test_empty_holdout_raises_empty_holdout(spark):
    # The holdout is empty and so are the recommendations, as a model gives for no user.
    recs = spark.createDataFrame([], "user_id bigint, item_id bigint, rank int")
    with pytest.raises(InputDataError, match="the holdout window contains no event") as raised:
        _evaluate(spark, recs, [])
    assert raised.value.error_code == "EMPTY_HOLDOUT"
    assert raised.value.exit_code == 3


def test_holdout_without_relevant_events_raises(spark):
    recs = spark.createDataFrame([(1, 10, 1)], "user_id bigint, item_id bigint, rank int")
    with pytest.raises(InputDataError, match="events of 1 users but none of a relevant type") as raised:
        _evaluate(spark, recs, [_holdout_event(1, 10, event_type="skip")])
    assert raised.value.error_code == "NO_RELEVANT_HOLDOUT_EVENTS"


def test_empty_recommendations_raise(spark):
    recs = spark.createDataFrame([], "user_id bigint, item_id bigint, rank int")
    with pytest.raises(InputDataError, match="recommendations table is empty"):
        _evaluate(spark, recs, [_holdout_event(1, 10)])


def test_missing_columns_raise(spark):
    recs = spark.createDataFrame([(1, 10)], "user_id bigint, item_id bigint")
    with pytest.raises(InputDataError, match="neither a 'rank' nor a 'score'") as raised:
        _evaluate(spark, recs, [_holdout_event(1, 10)])
    assert raised.value.error_code == "INVALID_RECOMMENDATIONS"


def test_without_slices_only_all(spark):
    recs_rows, holdout = _random_case(seed=3, users=30)
    recs = spark.createDataFrame(recs_rows, "user_id bigint, item_id bigint, rank int")
    config = EvaluationConfig(metrics=(MetricSpec("recall", 5), MetricSpec("map", 10)))
    sliced = _evaluate(spark, recs, holdout, config=config)
    aggregates = aggregate_rankings(recs, _events(spark, holdout), None, config, with_slices=False)
    result = build_result(aggregates, config)

    assert aggregates.slices == ("all",)
    assert {row.slice for row in result.rows} == {"all"}
    assert result.row("input.empty_slice").affected == 0
    for spec in config.metrics:
        assert result.value(spec.name, spec.k) == pytest.approx(sliced.value(spec.name, spec.k), abs=1e-12)
        assert result.row(spec.name, spec.k).hit_users == sliced.row(spec.name, spec.k).hit_users
