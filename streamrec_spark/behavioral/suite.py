"""Run the behavioral suite on a fitted model: MFT in Spark, INV and DIR on sampled users.

The minimum-functionality tests reuse the ranking metrics of ``streamrec_spark.evaluation``
on batch recommendations for the holdout users, in one Spark aggregation. The invariance and
directional tests call the model's single-user scorer, as serving would, on the histories of
``case_users`` sampled users.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from streamrec_spark.behavioral import perturbations as P
from streamrec_spark.behavioral.config import (
    DirectionalTest,
    InvarianceTest,
    MinimumFunctionalityTest,
    SuiteConfig,
)
from streamrec_spark.behavioral.verdicts import (
    ERRORED,
    TestResult,
    judge_directional,
    judge_invariance,
    judge_minimum,
    moved_up,
    unchanged_share,
)
from streamrec_spark.evaluation.config import EvaluationConfig, MetricSpec
from streamrec_spark.evaluation.inputs import describe_holdout
from streamrec_spark.evaluation.ranking import aggregate_rankings, relevant_sets
from streamrec_spark.evaluation.results import EvaluationResult, build_result
from streamrec_spark.models.base import Recommender, UserContext
from streamrec_spark.models.batch import history_from_rows, user_histories
from streamrec_spark.models.genres import item_genres

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SuiteInputs:
    """The data a suite run needs: events (click-stream schema), the catalog and the holdout.

    ``items`` (item_id, genre) is optional; items without a catalog genre get the hashed genre
    of ``streamrec_spark.models.genres``. The holdout window is ``[holdout_start, holdout_end)``.
    ``events_path``, when the events were read from files, is named in error messages.
    """

    events: DataFrame
    holdout_start: datetime
    holdout_end: datetime
    items: DataFrame | None = None
    events_path: str | None = None


def default_holdout(model: Recommender, config: SuiteConfig) -> tuple[datetime, datetime]:
    """Return the holdout window that starts where the model's training window ends."""
    start = model.window.end
    return start, start + timedelta(days=config.holdout_days)


def history_start(model: Recommender, inputs: SuiteInputs) -> datetime:
    """Return the start of the history that a request at the holdout start is scored with.

    The history is as long as the model's training window and ends at the holdout start, as in
    batch recommendations. With the default holdout it is the training window itself.
    """
    return inputs.holdout_start - timedelta(days=model.window.days)


@dataclass(frozen=True)
class SuiteRun:
    """Results of a suite run in test order, and the ranking metrics its MFT step computed."""

    results: tuple[TestResult, ...]
    metrics: EvaluationResult | None

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)

    def result(self, name: str) -> TestResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"no behavioral test named {name!r}")


def run_minimum_tests(
    model: Recommender,
    tests: Sequence[MinimumFunctionalityTest],
    inputs: SuiteInputs,
    evaluation: EvaluationConfig,
) -> tuple[list[TestResult], EvaluationResult | None]:
    """Recommend for every holdout user and judge each MFT against its slice mean.

    The aggregation computes the metrics of ``evaluation`` as well as those the tests need, and
    returns them as an EvaluationResult that can be stored in the model-metrics table.
    """
    if not tests:
        return [], None
    needed = {MetricSpec(test.metric, test.k) for test in tests} | set(evaluation.metrics)
    specs = tuple(sorted(needed, key=lambda spec: (spec.name, spec.k)))
    config = replace(evaluation, metrics=specs)
    events = inputs.events
    holdout = events.where(
        (F.col("event_ts") >= F.lit(inputs.holdout_start)) & (F.col("event_ts") < F.lit(inputs.holdout_end))
    )
    history = events.where(F.col("event_ts") < F.lit(inputs.holdout_start))
    users = relevant_sets(holdout, config.relevant_event_types, config.slices.platforms).select("user_id", "platform")
    recommendations = model.recommend(events, users, config.max_k, inputs.holdout_start)
    floors = [(test.slice, MetricSpec(test.metric, test.k), test.min_value) for test in tests]
    source = describe_holdout(inputs.holdout_start, inputs.holdout_end, inputs.events_path)
    aggregates = aggregate_rankings(recommendations, holdout, history, config, floors=floors, holdout_source=source)

    results = []
    for test, (slice_name, spec, floor) in zip(tests, floors):
        results.append(
            judge_minimum(
                test.name,
                aggregates.values[(slice_name, spec.column)],
                aggregates.user_counts[slice_name],
                aggregates.users_below[(slice_name, spec.column, floor)],
                test.min_value,
            )
        )
    return results, build_result(aggregates, config)


def load_catalog(model: Recommender, inputs: SuiteInputs, engagement_quantile: float) -> P.Catalog:
    """Collect item genres and per-item completion rates (aggregates, one row per item).

    Engagement-type items are those with at least 5 events in the history window before the
    holdout start (see :func:`history_start`) and a completion rate at or above the
    ``engagement_quantile`` of those items' rates.
    """
    window = inputs.events.where(
        (F.col("event_ts") >= F.lit(history_start(model, inputs)))
        & (F.col("event_ts") < F.lit(inputs.holdout_start))
    )
    genres = {int(row["item_id"]): row["genre"] for row in item_genres(window, inputs.items).collect()}
    rates = (
        window.groupBy(F.col("item_id").cast("bigint").alias("item_id"))
        .agg(
            F.count(F.lit(1)).alias("events"),
            F.avg((F.col("event_type") == F.lit("complete")).cast("double")).alias("completion_rate"),
        )
        .where(F.col("events") >= 5)
        .collect()
    )
    engagement: frozenset[int] = frozenset()
    if rates:
        threshold = float(np.quantile([row["completion_rate"] for row in rates], engagement_quantile))
        engagement = frozenset(int(row["item_id"]) for row in rates if row["completion_rate"] >= threshold)
    return P.Catalog.build(genres, engagement)


def sample_cases(model: Recommender, inputs: SuiteInputs, config: SuiteConfig) -> list[P.Case]:
    """Draw up to ``case_users`` users by a seeded hash and collect their histories.

    NOTE: the histories of the sampled users are collected to the driver, because the INV and
    DIR tests call the single-user scorer. Their size grows with ``case_users`` and with the
    length of a user's history in the training window.
    """
    start, end = history_start(model, inputs), inputs.holdout_start
    histories = user_histories(inputs.events, start, end).where(F.size("history") >= config.min_history_events)
    order = F.xxhash64(F.lit(config.seed), F.col("user_id"))
    rows = histories.orderBy(order, "user_id").limit(config.case_users).collect()
    now = end.replace(tzinfo=timezone.utc).timestamp()
    cases = []
    for row in sorted(rows, key=lambda row: row["user_id"]):
        history = tuple(history_from_rows(row["history"]))
        context = UserContext(
            user_id=int(row["user_id"]),
            now=now,
            platform=history[-1].platform,
            display_name=f"user-{row['user_id']}",
        )
        cases.append(P.Case(history=history, context=context))
    logger.info("sampled %d behavioral cases (seed %d)", len(cases), config.seed)
    return cases


def _top_items(model: Recommender, case: P.Case, k: int) -> list[int]:
    return [item for item, _ in model.recommend_for_history(case.history, case.context, k)]


def _case_rng(seed: int, test_name: str, user_id: int) -> random.Random:
    return random.Random(f"{seed}:{test_name}:{user_id}")


def run_invariance_test(
    model: Recommender, test: InvarianceTest, cases: Sequence[P.Case], config: SuiteConfig
) -> TestResult:
    perturb: dict[str, Callable[[P.Case, random.Random], P.Case]] = {
        "display_name": P.change_display_name,
        "timestamp_jitter": lambda case, rng: P.jitter_timestamps(case, rng, test.settings["max_shift_minutes"]),
        "platform_switch": P.switch_platform,
        "session_ids": P.relabel_sessions,
    }
    shares = []
    for case in cases:
        rng = _case_rng(config.seed, test.name, case.context.user_id)
        before = _top_items(model, case, config.k)
        after = _top_items(model, perturb[test.perturbation](case, rng), config.k)
        shares.append(unchanged_share(before, after))
    return judge_invariance(test.name, shares, test.min_unchanged_share)


def _compared_score(model: Recommender, case: P.Case, directional: P.DirectionalCase) -> float:
    scores = model.score(case.history, directional.candidates, case.context)
    value = float(np.nanmean(scores)) if np.isfinite(scores).any() else float("nan")
    if directional.baseline:
        baseline = model.score(case.history, directional.baseline, case.context)
        value -= float(np.nanmean(baseline)) if np.isfinite(baseline).any() else float("nan")
    return value


def run_directional_test(
    model: Recommender, test: DirectionalTest, cases: Sequence[P.Case], catalog: P.Catalog, config: SuiteConfig
) -> TestResult:
    settings = test.settings
    build: dict[str, Callable[[P.Case, random.Random], P.DirectionalCase | None]] = {
        "genre_completions": lambda case, rng: P.add_genre_completions(
            case, rng, catalog, int(settings["completions"])
        ),
        "recency": lambda case, rng: P.add_recent_versus_old(
            case, rng, catalog, settings["recent_age_hours"], settings["old_age_days"]
        ),
        "completion_vs_skip": lambda case, rng: P.add_completion_versus_skip(
            case, rng, catalog, settings["age_hours"]
        ),
        "more_sessions": lambda case, rng: P.add_sessions(
            case, rng, catalog, int(settings["sessions"]), int(settings["events_per_session"])
        ),
    }
    outcomes = []
    for case in cases:
        rng = _case_rng(config.seed, test.name, case.context.user_id)
        directional = build[test.perturbation](case, rng)
        if directional is None:
            continue
        higher = _compared_score(model, directional.higher, directional)
        lower = _compared_score(model, directional.lower, directional)
        outcomes.append(moved_up(lower, higher))
    if len(outcomes) < len(cases):
        logger.warning(
            "%s: %d of %d cases could not be built (catalog too small) and were left out",
            test.name,
            len(cases) - len(outcomes),
            len(cases),
        )
    return judge_directional(test.name, outcomes, test.max_failure_rate)


def errored_results(config: SuiteConfig, error_code: str) -> tuple[TestResult, ...]:
    """Build one errored result per test of ``config``, for a run that stopped on an error.

    Each has no case, ``passed`` False, ``status = 'errored'`` and ``reason = error_code``, so
    a gate that reads the run finds errored tests rather than a missing run.
    """
    results = []
    for test in config.tests:
        if isinstance(test, MinimumFunctionalityTest):
            threshold, kind = test.min_value, "min_value"
        elif isinstance(test, InvarianceTest):
            threshold, kind = test.min_unchanged_share, "min_unchanged_share"
        else:
            threshold, kind = test.max_failure_rate, "max_failure_rate"
        results.append(
            TestResult(test.name, test.test_type, 0, 0, None, None, threshold, kind, False, ERRORED, error_code)
        )
    return tuple(results)


def run_suite(
    model: Recommender, inputs: SuiteInputs, config: SuiteConfig, evaluation: EvaluationConfig
) -> SuiteRun:
    """Run every test of ``config`` and return one result per test, in the config's order."""
    minimum = [test for test in config.tests if isinstance(test, MinimumFunctionalityTest)]
    minimum_results, metrics = run_minimum_tests(model, minimum, inputs, evaluation)
    results = {result.name: result for result in minimum_results}

    others = [test for test in config.tests if not isinstance(test, MinimumFunctionalityTest)]
    if others:
        quantile = next(
            (test.settings["engagement_quantile"] for test in others if test.perturbation == "more_sessions"),
            0.75,
        )
        catalog = load_catalog(model, inputs, quantile)
        cases = sample_cases(model, inputs, config)
        for test in others:
            if isinstance(test, InvarianceTest):
                results[test.name] = run_invariance_test(model, test, cases, config)
            else:
                results[test.name] = run_directional_test(model, test, cases, catalog, config)
    ordered = [results[test.name] for test in config.tests]
    failed = [result.name for result in ordered if not result.passed]
    logger.info(
        "behavioral suite: %d of %d tests passed; failed: %s",
        len(ordered) - len(failed),
        len(ordered),
        ", ".join(failed) or "none",
    )
    return SuiteRun(results=tuple(ordered), metrics=metrics)
