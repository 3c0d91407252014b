"""Benchmark: the click-stream suite on a generated partition against one bare scan.

    .venv/bin/python scripts/benchmark_validation.py --rows 10000000
    .venv/bin/python scripts/benchmark_validation.py --rows 10000000 --rows 40000000

For each size it generates a calibrated synthetic day once, kept under --workdir, and warms
the file cache with one scan. Then it times three things in this order. The first is a bare
scan of the columns the suite reads, written to Spark's no-op sink. The second is the suite:
the fused aggregation with its taps (histograms, exact key counts) and the verdicts, with the
partition's own profile as the drift reference, so no store is read. The third is the whole job with its Delta writes. It prints
the suite / scan ratio and the number of Spark jobs.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from streamrec_spark.contracts.loader import load_contract
from streamrec_spark.datasets.synthetic import CODEGEN_HUGE_METHOD_LIMIT, write_synthetic_day
from streamrec_spark.session import build_session
from streamrec_spark.validate_job import ValidationRequest, validate_partition
from streamrec_spark.validation.profiles import Profile
from streamrec_spark.validation.suite import run_suite

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2024, 5, 1)
logger = logging.getLogger("benchmark_validation")


def jobs_in(spark, group: str) -> int:
    return len(spark.sparkContext.statusTracker().getJobIdsForGroup(group))


def timed(spark, group: str, action):
    spark.sparkContext.setJobGroup(group, group)
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, jobs_in(spark, group), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, action="append", help="partition size (repeatable); default 10M")
    parser.add_argument("--workdir", default="/tmp/streamrec-benchmark", help="generated data and tables")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="12g")
    parser.add_argument("--repeat", type=int, default=2, help="timed repetitions; the minimum is reported")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sizes = args.rows or [10_000_000]
    spark = build_session(
        "streamrec-benchmark", master=args.master,
        conf={"spark.driver.memory": args.driver_memory, "spark.ui.enabled": "false"},
    )
    spark.sparkContext.setLogLevel("ERROR")
    contract = load_contract(ROOT / "conf" / "contracts" / "click_stream.yaml")
    columns = list(contract.column_names)
    as_of = datetime.combine(DAY + timedelta(days=1), datetime.min.time(), timezone.utc) + timedelta(minutes=30)
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores; master {args.master}, "
          f"driver memory {args.driver_memory}; Spark {spark.version}")
    measured = {}
    for rows in sizes:
        root = Path(args.workdir) / f"rows-{rows}"
        partition = root / f"event_date={DAY}"
        if not partition.exists():
            start = time.perf_counter()
            # The generator's plan is too wide for the JIT; see CODEGEN_HUGE_METHOD_LIMIT.
            spark.conf.set("spark.sql.codegen.hugeMethodLimit", str(CODEGEN_HUGE_METHOD_LIMIT))
            write_synthetic_day(spark, str(root), rows, DAY)
            spark.conf.unset("spark.sql.codegen.hugeMethodLimit")
            print(f"generated {rows:,} rows in {time.perf_counter() - start:.1f} s")
        df = spark.read.option("basePath", str(root)).parquet(str(partition))
        df.select(*columns).write.format("noop").mode("overwrite").save()  # warm the file cache

        def scan():
            df.select(*columns).write.format("noop").mode("overwrite").save()

        captured: dict[str, Profile] = {}

        def references(current):
            captured.update(current)
            return {key: Profile(p.bins, (DAY - timedelta(days=1),)) for key, p in current.items()}

        def suite():
            return run_suite(df, contract, DAY, as_of, references)

        scans, suites = [], []
        for attempt in range(args.repeat):
            scans.append(timed(spark, f"scan-{rows}-{attempt}", scan))
            suites.append(timed(spark, f"suite-{rows}-{attempt}", suite))
        scan_seconds = min(t for t, _, _ in scans)
        suite_seconds, suite_jobs, outcome = min(suites, key=lambda item: item[0])
        job_seconds, _, run = timed(spark, f"job-{rows}", lambda: validate_partition(
            spark, contract, ValidationRequest("click_stream", DAY, str(root), as_of,
                                               str(root / "warehouse"), "benchmark")))
        measured[rows] = suite_seconds
        failed = [r.expectation_id for r in outcome.results if r.status != "passed"]
        print(f"{rows:>11,} rows: bare scan {scan_seconds:6.1f} s | suite {suite_seconds:6.1f} s, "
              f"{suite_jobs} Spark jobs | ratio {suite_seconds / scan_seconds:.2f} | whole job with "
              f"Delta writes {job_seconds:.1f} s ({run.record.spark_job_count} jobs) | not passed: "
              f"{', '.join(failed) or 'none'}")
    if len(measured) > 1:
        smallest = min(measured)
        for rows, seconds in measured.items():
            if rows != smallest:
                print(f"suite time {rows:,} / {smallest:,} rows: {seconds / measured[smallest]:.2f}")
    spark.stop()


if __name__ == "__main__":
    main()
