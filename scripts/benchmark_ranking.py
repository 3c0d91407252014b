"""Compare the wall time of this project's ranking metrics with Spark's RankingEvaluator.

Both start from the same Parquet tables: recommendations in long format (user_id, item_id,
rank), holdout click events and history events. Every path computes precision, recall, NDCG
and MAP at K. This project's ``aggregate_rankings`` runs twice: for all users only, which is
the evaluator's scope, and with its 6 slices (new users, 3 platforms, 10% most active), which
also reads the history events. The RankingEvaluator path groups the same rows into per-user
arrays, caches them, and calls the evaluator once per metric; it has no slices.

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


def _jvm_cpu_seconds(spark) -> float | None:
    """Return the user + system CPU seconds of the Spark JVM (local mode: driver and executors).

    Unlike wall time, it does not grow when other processes share the cores. Linux only.
    """
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# The metrics that RankingEvaluator also computes; both paths compute exactly these.
SHARED_METRICS = ("precision", "recall", "ndcg", "map")


def _time_project(spark, root: Path, k: int, with_slices: bool) -> tuple[float, dict]:
    from streamrec_spark.evaluation.config import EvaluationConfig, MetricSpec
    from streamrec_spark.evaluation.ranking import aggregate_rankings

    config = EvaluationConfig(metrics=tuple(MetricSpec(name, k) for name in SHARED_METRICS))
    started = time.perf_counter()
    aggregates = aggregate_rankings(
        spark.read.parquet(str(root / "recs")),
        spark.read.parquet(str(root / "holdout")),
        spark.read.parquet(str(root / "history")) if with_slices else None,
        config,
        with_slices=with_slices,
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
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each path; the best is reported")
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

    paths = {
        "streamrec, 4 metrics, all users only": lambda: _time_project(spark, root, args.k, with_slices=False),
        "streamrec, 4 metrics x 6 slices": lambda: _time_project(spark, root, args.k, with_slices=True),
        "RankingEvaluator, 4 metrics, all users only": lambda: _time_evaluator(spark, root, args.k),
    }
    times: dict[str, list[float]] = {name: [] for name in paths}
    cpu_times: dict[str, list[float]] = {name: [] for name in paths}
    values: dict[str, dict] = {}
    loads = [os.getloadavg()[0]]
    # The paths alternate within each repeat, so a burst of load from other processes hits
    # all of them rather than one.
    for _ in range(args.repeats):
        for name, run in paths.items():
            cpu_before = _jvm_cpu_seconds(spark)
            seconds, values[name] = run()
            cpu_after = _jvm_cpu_seconds(spark)
            times[name].append(seconds)
            if cpu_before is not None and cpu_after is not None:
                cpu_times[name].append(cpu_after - cpu_before)
            loads.append(os.getloadavg()[0])

    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, master {args.master}")
    print(f"users {args.users}, recommendations per user {args.k}, holdout events per user {args.relevant}")
    print(f"1-minute load average during the runs: min {min(loads):.2f}, max {max(loads):.2f}")
    for name, runs in times.items():
        cpu = cpu_times[name]
        cpu_text = f", JVM CPU best {min(cpu):.1f} s, runs {[round(t, 1) for t in cpu]}" if cpu else ""
        print(f"{name:45s} wall best {min(runs):6.1f} s, runs {[round(t, 1) for t in runs]}{cpu_text}")
    overhead = min(times["streamrec, 4 metrics x 6 slices"]) - min(times["streamrec, 4 metrics, all users only"])
    print(f"slices overhead (best with slices - best without): {overhead:.1f} s")
    evaluator = values["RankingEvaluator, 4 metrics, all users only"]
    for name in SHARED_METRICS:
        ours = values["streamrec, 4 metrics, all users only"][name]
        sliced = values["streamrec, 4 metrics x 6 slices"][name]
        print(f"  {name}@{args.k}: streamrec {ours:.6f} (with slices {sliced:.6f})  RankingEvaluator {evaluator[name]:.6f}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
