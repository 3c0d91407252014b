#!/usr/bin/env python
"""Generate one synthetic click-stream day, optionally with injected faults.

Writes Parquet to OUTPUT/event_date=DATE/, replacing that folder. By default a clean day
passes the volume checks of the production contract (conf/contracts/click_stream.yaml) at
any size from 1M to 40M rows; see --users. Examples, from the repository root:

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
from pathlib import Path

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException

from streamrec_spark.contracts.loader import load_contract
from streamrec_spark.datasets.cli_support import spark_error_summary
from streamrec_spark.datasets.profile import load_profile
from streamrec_spark.datasets.synthetic import (
    CODEGEN_HUGE_METHOD_LIMIT,
    DEFAULT_ROWS_PER_PARTITION,
    DEFAULT_SEED,
    LATE_MODES,
    USER_BOUND_MARGIN,
    FaultConfig,
    contract_user_count,
    parse_drop_platform,
    write_synthetic_day,
)
from streamrec_spark.errors import EXIT_INFRASTRUCTURE, EXIT_PASSED, StreamrecError
from streamrec_spark.session import build_session

logger = logging.getLogger("generate_clickstream")

DEFAULT_CONTRACT = Path(__file__).resolve().parent.parent / "conf" / "contracts" / "click_stream.yaml"

USERS_HELP = f"""\
Distinct users: without --users or --events-per-user a day has ROWS / 12.1 users (12.1 is the
KuaiRand profile's events per active user), moved into the distinct-user bounds of --contract
with a {USER_BOUND_MARGIN:.0%} margin when ROWS is within its row-count bounds. So a clean day
passes the contract's row and user counts: with the production contract (1M to 40M rows,
500,000 to 10,000,000 users) a 1M-row day gets 525,000 users, about 1.9 events per user, and
from about 6.4M rows on the profile's rate applies unchanged. The sample keeps only users with
15 or more interactions. Pass --events-per-user 12.1 to keep its rate at every size. A 1M-row
day then has about 83,000 users and fails the production floor. Only the number of users
changes: the spread of activity over users, the event mix, the durations and the session
spans and start times come from the profile."""


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
        "to OUTPUT/event_date=DATE/ as Parquet. Shares are fractions of rows from 0 to 1.",
        epilog=USERS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=_positive_int, required=True, help="rows to generate")
    parser.add_argument("--date", type=_iso_date, required=True, help="event date, YYYY-MM-DD")
    parser.add_argument("--output", required=True, help="root folder of the click stream")
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="seed of every draw (default %(default)s)"
    )
    users = parser.add_mutually_exclusive_group()
    users.add_argument(
        "--users",
        type=_positive_int,
        default=None,
        help="distinct users of the day, below ROWS (default: see the end of this help)",
    )
    users.add_argument(
        "--events-per-user",
        type=float,
        default=None,
        help="mean events per active user, above 1, which sets distinct users to about ROWS "
        "divided by it (12.1 keeps the KuaiRand profile's rate)",
    )
    parser.add_argument(
        "--contract",
        default=str(DEFAULT_CONTRACT),
        help="contract whose volume bounds set the default number of users (default: "
        "conf/contracts/click_stream.yaml)",
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


def _default_users(rows: int, events_per_user: float, contract_path: str) -> int | None:
    """Return the user target that fits the contract's bounds, or None to keep the profile's rate."""
    contract = load_contract(contract_path)
    users = contract_user_count(rows, events_per_user, contract)
    if users is None:
        logger.info(
            "keeping %.1f events per user: %s rows are outside the row-count bounds of %s, or "
            "it has no volume checks on rows and users",
            events_per_user, f"{rows:,}", contract_path,
        )
    elif users != round(rows / events_per_user):
        logger.info(
            "aiming at about %s distinct users (%.2f events per user; the sampled count varies "
            "slightly) instead of the profile's %.1f events per user, so the day fits the "
            "distinct-user bounds of %s; pass --events-per-user %.1f to keep the profile's rate",
            f"{users:,}", rows / users, events_per_user, contract_path, events_per_user,
        )
    return users


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
        users = args.users
        if users is None and args.events_per_user is None:
            users = _default_users(args.rows, profile.events_per_active_user, args.contract)
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
            users=users,
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
