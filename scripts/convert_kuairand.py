#!/usr/bin/env python
"""Convert the KuaiRand interaction log into click-stream Parquet partitions.

Example, from the repository root:

    .venv/bin/python scripts/convert_kuairand.py --output /tmp/click_stream

Exit codes: 0 converted, 2 invalid arguments, 3 missing or unreadable input or a Spark failure.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException

from streamrec_spark.datasets.cli_support import spark_error_summary
from streamrec_spark.datasets.kuairand import convert_kuairand
from streamrec_spark.errors import EXIT_INFRASTRUCTURE, EXIT_PASSED, InputDataError, StreamrecError
from streamrec_spark.session import build_session

logger = logging.getLogger("convert_kuairand")

DEFAULT_LOG = (
    Path(__file__).resolve().parent.parent
    / "data"
    / "kuairand"
    / "log_27k_standard_likehate_kcore15.tsv.gz"
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Convert the KuaiRand log into click-stream Parquet folders "
        "OUTPUT/event_date=YYYY-MM-DD/, one per date of the log (existing folders of those "
        "dates are replaced)."
    )
    parser.add_argument(
        "--log",
        default=str(DEFAULT_LOG),
        help="tab-separated KuaiRand log, plain or .gz (default: the sample embedded in "
        "data/kuairand/)",
    )
    parser.add_argument("--output", required=True, help="root folder of the click stream")
    parser.add_argument(
        "--master", default=None, help="Spark master URL (default: spark-submit's, or local[*])"
    )
    parser.add_argument("--verbose", action="store_true", help="log at DEBUG level")
    return parser.parse_args(argv)


def check_local_input(path: str) -> None:
    """Raise InputDataError when ``path`` is a local path that does not exist."""
    if "://" in path or Path(path).exists():
        return
    raise InputDataError(
        f"KuaiRand log not found: {path}. Pass --log with the path of "
        f"log_27k_standard_likehate_kcore15.tsv or of its .gz copy (default {DEFAULT_LOG})",
        error_code="INPUT_NOT_FOUND",
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        check_local_input(args.log)
        spark = build_session("convert-kuairand", master=args.master)
        dates = convert_kuairand(spark, args.log, args.output)
    except StreamrecError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except (PySparkException, Py4JJavaError) as error:
        logger.exception("Spark failed while converting %s", args.log)
        summary = spark_error_summary(error)
        print(f"error: Spark failed while converting {args.log}: {summary}", file=sys.stderr)
        return EXIT_INFRASTRUCTURE

    print(f"wrote {len(dates)} date partitions ({dates[0]} to {dates[-1]}) to {args.output}")
    return EXIT_PASSED


if __name__ == "__main__":
    sys.exit(main())
