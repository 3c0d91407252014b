#!/usr/bin/env python
"""Measure the synthetic generator's profile on the KuaiRand log and write it as JSON.

Run once from the repository root after the sample or the conversion rules change:

    .venv/bin/python scripts/calibrate_kuairand_profile.py

Exit codes: 0 written, 2 invalid arguments, 3 missing or unreadable input or a Spark failure.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException

from streamrec_spark.datasets.cli_support import spark_error_summary
from streamrec_spark.datasets.profile import (
    PROFILE_RESOURCE,
    calibrate_from_kuairand,
    write_profile,
)
from streamrec_spark.errors import EXIT_INFRASTRUCTURE, EXIT_PASSED, InputDataError, StreamrecError
from streamrec_spark.session import build_session

logger = logging.getLogger("calibrate_kuairand_profile")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LOG = REPO_ROOT / "data" / "kuairand" / "log_27k_standard_likehate_kcore15.tsv.gz"
DEFAULT_OUTPUT = REPO_ROOT / "streamrec_spark" / "datasets" / PROFILE_RESOURCE


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--log", default=str(DEFAULT_LOG), help="KuaiRand log, plain or .gz (default: %(default)s)"
    )
    parser.add_argument(
        "--output", default=str(DEFAULT_OUTPUT), help="JSON file to write (default: %(default)s)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if "://" not in args.log and not Path(args.log).exists():
            raise InputDataError(
                f"KuaiRand log not found: {args.log}. Pass --log with the path of "
                "log_27k_standard_likehate_kcore15.tsv or of its .gz copy",
                error_code="INPUT_NOT_FOUND",
            )
        spark = build_session("calibrate-kuairand-profile", conf={"spark.ui.enabled": "false"})
        profile = calibrate_from_kuairand(spark, args.log)
    except StreamrecError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except (PySparkException, Py4JJavaError) as error:
        logger.exception("Spark failed while calibrating from %s", args.log)
        summary = spark_error_summary(error)
        print(f"error: Spark failed while calibrating from {args.log}: {summary}", file=sys.stderr)
        return EXIT_INFRASTRUCTURE

    write_profile(profile, args.output)
    print(f"wrote {args.output}")
    return EXIT_PASSED


if __name__ == "__main__":
    sys.exit(main())
