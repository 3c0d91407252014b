#!/usr/bin/env python
"""Generate one synthetic click-stream day, optionally with injected faults.

Writes Parquet to OUTPUT/event_date=DATE/, replacing that folder. Examples, from the
repository root:

    .venv/bin/python scripts/generate_clickstream.py --rows 1000000 --date 2024-03-01 \\
        --output /tmp/click_stream
    .venv/bin/python scripts/generate_clickstream.py --rows 1000000 --date 2024-03-02 \\
        --output /tmp/click_stream --drop-platform android:0.6 --late-hours 6

Exit codes: 0 written, 2 invalid arguments or profile, 3 a Spark failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException

from streamrec_spark.datasets.cli_support import spark_error_summary
from streamrec_spark.datasets.profile import load_profile
from streamrec_spark.datasets.synthetic import (
    CODEGEN_HUGE_METHOD_LIMIT,
    DEFAULT_ROWS_PER_PARTITION,
    DEFAULT_SEED,
    LATE_MODES,
    FaultConfig,
    parse_drop_platform,
    write_synthetic_day,
)
from streamrec_spark.errors import EXIT_INFRASTRUCTURE, EXIT_PASSED, StreamrecError
from streamrec_spark.session import build_session

logger = logging.getLogger("generate_clickstream")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text!r}")
    return value


def _iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date as YYYY-MM-DD, found {text!r}"
        ) from None


def _platform_drop(text: str) -> tuple[str, float]:
    try:
        return parse_drop_platform(text)
    except StreamrecError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Generate one synthetic click-stream day calibrated on KuaiRand and write it "
        "to OUTPUT/event_date=DATE/ as Parquet. Shares are fractions of rows from 0 to 1."
    )
    parser.add_argument("--rows", type=_positive_int, required=True, help="rows to generate")
    parser.add_argument("--date", type=_iso_date, required=True, help="event date, YYYY-MM-DD")
    parser.add_argument("--output", required=True, help="root folder of the click stream")
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="seed of every draw (default %(default)s)"
    )
    parser.add_argument(
        "--events-per-user",
        type=float,
        default=None,
        help="mean events per active user, which sets distinct users to about ROWS divided by "
        "it (default: the profile's, 12.1 for KuaiRand)",
    )
    parser.add_argument(
        "--rows-per-file",
        type=_positive_int,
        default=DEFAULT_ROWS_PER_PARTITION,
        help="rows per Spark partition and Parquet file (default %(default)s)",
    )
    parser.add_argument(
        "--profile", default=None, help="generator profile JSON (default: the KuaiRand profile)"
    )
    parser.add_argument("--master", default=None, help="Spark master URL (default: local[*])")

    faults = parser.add_argument_group("faults")
    faults.add_argument(
        "--unknown-event-share",
        type=float,
        default=0.0,
        help="share of rows whose event_type becomes --unknown-event-type",
    )
    faults.add_argument(
        "--unknown-event-type",
        default="bookmark",
        help="event type outside view/click/complete/skip (default %(default)s)",
    )
    faults.add_argument(
        "--drop-platform",
        type=_platform_drop,
        action="append",
        default=[],
        metavar="PLATFORM:SHARE",
        help="drop this share of the platform's rows, e.g. android:0.6 (repeat the flag for "
        "several platforms)",
    )
    faults.add_argument(
        "--duration-factor",
        type=float,
        default=1.0,
        help="multiply every duration_seconds by this factor (default %(default)s)",
    )
    faults.add_argument(
        "--late-hours",
        type=float,
        default=0.0,
        help="hours before midnight UTC after which the day has no events, from 0 to below 24",
    )
    faults.add_argument(
        "--late-mode",
        choices=LATE_MODES,
        default="compress",
        help="compress fits every row before that point, cut drops the rows after it "
        "(default %(default)s)",
    )
    faults.add_argument(
        "--null-duration-share", type=float, default=0.0, help="share of null duration_seconds"
    )
    faults.add_argument(
        "--nan-duration-share", type=float, default=0.0, help="share of NaN duration_seconds"
    )
    faults.add_argument(
        "--duplicate-share",
        type=float,
        default=0.0,
        help="chance that a row repeats the row before it, event_id included",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        faults = FaultConfig(
            unknown_event_share=args.unknown_event_share,
            unknown_event_type=args.unknown_event_type,
            drop_platform=dict(args.drop_platform),
            duration_factor=args.duration_factor,
            late_hours=args.late_hours,
            late_mode=args.late_mode,
            null_duration_share=args.null_duration_share,
            nan_duration_share=args.nan_duration_share,
            duplicate_share=args.duplicate_share,
        )
        profile = load_profile(args.profile)
        spark = build_session(
            "generate-clickstream",
            conf={"spark.sql.codegen.hugeMethodLimit": str(CODEGEN_HUGE_METHOD_LIMIT)},
            master=args.master,
        )
        started = time.monotonic()
        partition_path = write_synthetic_day(
            spark,
            args.output,
            args.rows,
            args.date,
            seed=args.seed,
            faults=faults,
            profile=profile,
            events_per_user=args.events_per_user,
            rows_per_partition=args.rows_per_file,
        )
        elapsed = time.monotonic() - started
        # Parquet footers contain the row counts, so this count reads no data pages.
        written = spark.read.parquet(partition_path).count()
    except StreamrecError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except (PySparkException, Py4JJavaError) as error:
        logger.exception("Spark failed while generating %s", args.date)
        summary = spark_error_summary(error)
        print(f"error: Spark failed while generating {args.date}: {summary}", file=sys.stderr)
        return EXIT_INFRASTRUCTURE

    print(f"wrote {written} rows to {partition_path} in {elapsed:.1f} s")
    return EXIT_PASSED


if __name__ == "__main__":
    sys.exit(main())
