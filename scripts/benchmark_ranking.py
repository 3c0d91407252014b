"""Compare the wall time of this project's ranking metrics with Spark's RankingEvaluator.

Both start from the same Parquet tables: recommendations in long format (user_id, item_id,
rank) and holdout click events. This project's path computes Recall, NDCG, HitRate, Precision
and MAP for every slice in one job (``aggregate_rankings``). The RankingEvaluator path groups
the same rows into per-user arrays, caches them, and calls the evaluator once per metric
(precision, recall, NDCG and MAP at K; it has no hit rate and no slices).

Usage:
    .venv/bin/python scripts/benchmark_ranking.py --users 1000000 --k 20 --data /tmp/bench-ranking

Generated tables are kept under ``--data`` and reused when they exist with the same sizes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

HOLDOUT_START = datetime(2024, 3, 1)
ITEMS = 200_003  # a prime, so the generated ranks of one user never repeat an item


def _generate(spark, root: Path, users: int, k: int, relevant: int, history: int) -> None:
    from pyspark.sql import functions as F

    marker = root / "sizes.json"
    sizes = {"users": users, "k": k, "relevant": relevant, "history": history}
    if marker.exists() and json.loads(marker.read_text()) == sizes:
        return

    def item_at(user, rank):
        return F.pmod(user * F.lit(7919) + rank * F.lit(104_729), F.lit(ITEMS))

    recs = spark.range(users * k).select(
        (F.col("id") / k).cast("bigint").alias("user_id"), (F.pmod("id", F.lit(k)) + 1).cast("int").alias("rank")
    )
    recs.select("user_id", item_at(F.col("user_id"), F.col("rank")).alias("item_id"), "rank").write.mode(
        "overwrite"
    ).parquet(str(root / "recs"))

    hit = F.rand(1) < 0.3
    user = (F.col("id") / relevant).cast("bigint")
    platform_name = F.element_at(F.array(F.lit("ios"), F.lit("android"), F.lit("web")), (F.pmod(user, F.lit(3)) + 1).cast("int"))
    holdout = spark.range(users * relevant).select(
        user.alias("user_id"),
        F.when(hit, item_at(user, (F.floor(F.rand(2) * k) + 1).cast("bigint")))
        .otherwise(F.floor(F.rand(3) * ITEMS).cast("bigint"))
        .alias("item_id"),
        F.lit("click").alias("event_type"),
        platform_name.alias("platform"),
        F.lit(HOLDOUT_START + timedelta(hours=12)).alias("event_ts"),
    )
    holdout.write.mode("overwrite").parquet(str(root / "holdout"))

    past = spark.range(users * history).select(
        F.floor(F.rand(4) * users).cast("bigint").alias("user_id"),
        F.floor(F.rand(5) * ITEMS).cast("bigint").alias("item_id"),
        F.lit("view").alias("event_type"),
        F.lit("ios").alias("platform"),
        F.lit(HOLDOUT_START - timedelta(days=3)).alias("event_ts"),
    )
    past.write.mode("overwrite").parquet(str(root / "history"))
    marker.write_text(json.dumps(sizes))


def _time_project(spark, root: Path, k: int, with_history: bool = True) -> tuple[float, dict]:
    from streamrec_spark.evaluation.config import EvaluationConfig, MetricSpec
    from streamrec_spark.evaluation.ranking import aggregate_rankings

    config = EvaluationConfig(
        metrics=tuple(MetricSpec(name, k) for name in ("recall", "ndcg", "hit_rate", "precision", "map"))
    )
    history = spark.read.parquet(str(root / "history"))
    started = time.perf_counter()
    aggregates = aggregate_rankings(
        spark.read.parquet(str(root / "recs")),
        spark.read.parquet(str(root / "holdout")),
        history if with_history else history.limit(0),
        config,
    )
    elapsed = time.perf_counter() - started
    values = {spec.name: aggregates.values[("all", spec.column)] for spec in config.metrics}
    return elapsed, values


def _time_evaluator(spark, root: Path, k: int) -> tuple[float, dict]:
    from pyspark.ml.evaluation import RankingEvaluator
    from pyspark.sql import functions as F

    started = time.perf_counter()
    recs = spark.read.parquet(str(root / "recs"))
    holdout = spark.read.parquet(str(root / "holdout"))
    predictions = recs.groupBy("user_id").agg(
        F.sort_array(F.collect_list(F.struct("rank", F.col("item_id").cast("double").alias("item")))).alias("ranked")
    )
    labels = holdout.groupBy("user_id").agg(F.collect_set(F.col("item_id").cast("double")).alias("label"))
    frame = (
        labels.join(predictions, "user_id", "left")
        .select(F.coalesce(F.col("ranked.item"), F.array().cast("array<double>")).alias("prediction"), "label")
        .cache()
    )
    frame.count()
    values = {}
    for name, metric in (
        ("precision", "precisionAtK"),
        ("recall", "recallAtK"),
        ("ndcg", "ndcgAtK"),
        ("map", "meanAveragePrecisionAtK"),
    ):
        values[name] = RankingEvaluator(predictionCol="prediction", labelCol="label", metricName=metric, k=k).evaluate(
            frame
        )
    elapsed = time.perf_counter() - started
    frame.unpersist()
    return elapsed, values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=20, help="recommendations per user and metric cut-off")
    parser.add_argument("--relevant", type=int, default=5, help="holdout events per user")
    parser.add_argument("--history", type=int, default=3, help="history events per user, on average")
    parser.add_argument("--data", default="/tmp/bench-ranking", help="folder for the generated Parquet tables")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each path; the best is reported")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--shuffle-partitions", default="16")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from streamrec_spark.session import build_session

    spark = build_session(
        "streamrec-benchmark-ranking",
        master=args.master,
        conf={
            "spark.driver.memory": args.driver_memory,
            "spark.sql.shuffle.partitions": args.shuffle_partitions,
            "spark.ui.enabled": "false",
        },
    )
    spark.sparkContext.setLogLevel("ERROR")
    root = Path(args.data)
    root.mkdir(parents=True, exist_ok=True)
    generated = time.perf_counter()
    _generate(spark, root, args.users, args.k, args.relevant, args.history)
    print(f"data ready in {time.perf_counter() - generated:.1f} s under {root}")

    project_times, no_history_times, evaluator_times = [], [], []
    for _ in range(args.repeats):
        seconds, project_values = _time_project(spark, root, args.k)
        project_times.append(seconds)
        seconds, _ = _time_project(spark, root, args.k, with_history=False)
        no_history_times.append(seconds)
        seconds, evaluator_values = _time_evaluator(spark, root, args.k)
        evaluator_times.append(seconds)

    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, master {args.master}")
    print(f"users {args.users}, recommendations per user {args.k}, holdout events per user {args.relevant}")
    print(f"streamrec aggregate_rankings (5 metrics x 6 slices): best {min(project_times):.1f} s, runs {[round(t, 1) for t in project_times]}")
    print(f"streamrec without history events (no history scan):  best {min(no_history_times):.1f} s, runs {[round(t, 1) for t in no_history_times]}")
    print(f"RankingEvaluator (4 metrics, 'all' only):           best {min(evaluator_times):.1f} s, runs {[round(t, 1) for t in evaluator_times]}")
    for name, value in evaluator_values.items():
        print(f"  {name}@{args.k}: streamrec {project_values[name]:.6f}  RankingEvaluator {value:.6f}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
