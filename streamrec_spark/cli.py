"""The ``streamrec-spark`` command line. Jobs under ``jobs/`` call the same functions."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

from streamrec_spark.errors import (
    EXIT_INFRASTRUCTURE,
    EXIT_INVALID,
    ConfigError,
    InvalidRequestError,
    StreamrecError,
)
from streamrec_spark.pipeline.runner import LOG_LEVELS, log_level

logger = logging.getLogger("streamrec_spark")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REGISTRY = REPO_ROOT / "conf" / "registry.yaml"


class _ArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors exit with the product's code 2 and one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_INVALID, f"{self.prog}: error: {message} (see --help)\n")


# Spark rebases Parquet dates before 1582-10-15 and timestamps before 1900-01-01 between the
# Julian and the Proleptic Gregorian calendars, and fails on them by default, so a partition
# date must not be older than this.
EARLIEST_DATE = date(1900, 1, 1)


def _date(text: str) -> date:
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {text!r}; use YYYY-MM-DD") from None
    if not EARLIEST_DATE <= value < date.max:
        raise argparse.ArgumentTypeError(
            f"invalid date {text!r}; use a date from {EARLIEST_DATE} to {date.max - timedelta(days=1)}"
        )
    return value


def _conf_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"invalid --conf {text!r}; use KEY=VALUE")
    return key, value


def add_spark_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--conf", type=_conf_pair, action="append", default=[], metavar="KEY=VALUE",
                        help="Spark setting passed to the session (repeatable). Settings that the "
                             "driver JVM starts with, such as spark.driver.memory, apply only "
                             "outside spark-submit. Under spark-submit, give those to "
                             "spark-submit itself")
    parser.add_argument("--master", default=None,
                        help="Spark master; default: the one spark-submit set, else local[*]")


def add_warehouse_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--warehouse", default=os.environ.get("STREAMREC_WAREHOUSE", "warehouse"),
                        help="folder or URI of the Delta result tables (default: ./warehouse or "
                             "$STREAMREC_WAREHOUSE)")
    parser.add_argument("--database", default="streamrec",
                        help="catalog database the result tables are registered in")


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="streamrec-spark", description=__doc__)
    parser.add_argument("--log-level", type=log_level, default="INFO",
                        help=f"logging level: {', '.join(LOG_LEVELS)} (default INFO)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)

    validate = commands.add_parser("validate", help="validate one daily partition of a feed")
    validate.add_argument("--dataset", required=True, help="feed name from the contract registry")
    validate.add_argument("--date", required=True, type=_date, dest="partition_date",
                          help="partition date, YYYY-MM-DD")
    validate.add_argument("--input", required=True, dest="input_path",
                          help="the partition's folder, or a root holding <partition column>=<date> "
                               "folders")
    validate.add_argument("--as-of", default=None,
                          help="ISO 8601 instant that freshness is measured against; without a zone "
                               "it is UTC (default: now)")
    validate.add_argument("--registry", default=str(DEFAULT_REGISTRY),
                          help="contract registry YAML (default: conf/registry.yaml)")
    validate.add_argument("--reference-date", type=_date, default=None,
                          help="use this validated partition as the drift reference instead of the "
                               "trailing window")
    validate.add_argument("--input-format", choices=("parquet", "delta"), default="parquet")
    add_warehouse_options(validate)
    add_spark_options(validate)

    demo = commands.add_parser("demo", help="validate the 14 days of the embedded KuaiRand sample")
    demo.add_argument("--workdir", default="demo-output",
                      help="folder for the converted sample and the result tables")
    demo.add_argument("--database", default="streamrec_demo",
                      help="catalog database the demo's result tables are registered in")
    add_spark_options(demo)

    sql = commands.add_parser("sql", help="run a Spark SQL query over the result tables")
    sql.add_argument("query", help="the SQL text, e.g. SELECT * FROM streamrec.runs")
    sql.add_argument("--limit", type=int, default=50, help="rows to print (default 50)")
    add_warehouse_options(sql)
    add_spark_options(sql)

    try:
        from streamrec_spark import cli_evaluation
    except ImportError:  # NOTE: the evaluation commands ship in a later module.
        cli_evaluation = None
    if cli_evaluation is not None:
        cli_evaluation.add_subcommands(commands)
    from streamrec_spark import cli_contracts

    cli_contracts.add_subcommands(commands)
    from streamrec_spark import cli_ml_test_score

    cli_ml_test_score.add_subcommands(commands)
    from streamrec_spark import cli_gate

    cli_gate.add_subcommands(commands)
    from streamrec_spark import cli_serving

    cli_serving.add_subcommands(commands)
    return parser


def _session(args: argparse.Namespace, app_name: str):
    from streamrec_spark.session import build_session

    return build_session(app_name, conf=dict(args.conf), master=args.master)


def command_validate(args: argparse.Namespace) -> int:
    from streamrec_spark.contracts.registry import load_registry
    from streamrec_spark.validate_job import (
        ValidationRequest,
        format_report,
        parse_as_of,
        validate_partition,
    )

    try:
        as_of = parse_as_of(args.as_of)
    except ValueError:
        raise InvalidRequestError(
            f"invalid --as-of {args.as_of!r}; use an ISO 8601 instant such as 2024-05-01T02:00:00Z"
        ) from None
    # Built first: the request rejects a --reference-date on or after --date before the
    # registry is read or Spark starts.
    request = ValidationRequest(
        dataset=args.dataset, partition_date=args.partition_date, input_path=args.input_path,
        as_of=as_of, warehouse=args.warehouse, database=args.database,
        reference_date=args.reference_date, input_format=args.input_format,
    )
    contract = load_registry(args.registry, only=args.dataset).contract(args.dataset)
    spark = _session(args, f"streamrec-validate-{args.dataset}-{args.partition_date}")
    run = validate_partition(spark, contract, request)
    print(format_report(run))
    return run.exit_code


def command_demo(args: argparse.Namespace) -> int:
    from streamrec_spark.demo import format_day, run_kuairand_demo

    spark = _session(args, "streamrec-demo")
    workdir = Path(args.workdir).resolve()
    print("Validating each day of the KuaiRand sample (real data, CC BY-SA 4.0; platform is "
          "synthetic, session_id derived), each against the days before it:\n", flush=True)
    runs = run_kuairand_demo(spark, workdir, database=args.database,
                             on_day=lambda run: print(format_day(run), flush=True))
    print(f"\nValidated {len(runs)} days.")
    print(f"\nResults are in Delta tables under {workdir / 'warehouse'}, for example:")
    query = (f"SELECT partition_date, status, row_count, blocking_failures FROM {args.database}.runs "
             "ORDER BY partition_date")
    print(f"  {query}")
    spark.sql(query).show(20, truncate=False)
    return max((run.exit_code for run in runs if run.exit_code != 1), default=0)


def command_sql(args: argparse.Namespace) -> int:
    from pyspark.errors import AnalysisException

    from streamrec_spark.delta_tables import register_warehouse

    spark = _session(args, "streamrec-sql")
    # Registers what is there and creates nothing, so a mistyped --warehouse is an error
    # instead of a set of new empty tables.
    tables = register_warehouse(spark, args.warehouse, args.database)
    if not tables:
        raise InvalidRequestError(
            f"no Delta result tables under --warehouse {args.warehouse}; check the path (the "
            "folder that holds runs/, expectation_results/ and metrics/)"
        )
    logger.info("registered %s as %s.*", ", ".join(tables), args.database)
    try:
        result = spark.sql(args.query)
    except AnalysisException as exc:
        # ParseException is an AnalysisException too: the query text is the user's input, so
        # an unknown database, table or column, or a syntax error, is an invalid request.
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        registered = ", ".join(f"{args.database}.{name}" for name in tables)
        raise InvalidRequestError(
            f"invalid query: {first.strip()[:300]}; the tables are {registered}"
        ) from None
    result.show(args.limit, truncate=False)
    return 0


COMMANDS = {"validate": command_validate, "demo": command_demo, "sql": command_sql}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Py4J logs every gateway connection it closes at INFO, the last at exit, after the
    # command's own one-line error.
    logging.getLogger("py4j").setLevel(max(getattr(logging, args.log_level), logging.WARNING))
    handler = COMMANDS.get(args.command) or getattr(args, "handler", None)
    database = getattr(args, "database", None)
    if database is not None and not database.replace("_", "").isalnum():
        print(f"streamrec-spark: invalid --database {database!r}; use letters, digits and "
              "underscores", file=sys.stderr)
        return EXIT_INVALID
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"streamrec-spark: invalid configuration: {exc}", file=sys.stderr)
        return exc.exit_code
    except StreamrecError as exc:
        print(f"streamrec-spark: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # Spark, Py4J or the filesystem: an infrastructure error.
        logger.debug("unexpected error", exc_info=True)
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        print(f"streamrec-spark: {args.command} failed: {first.strip()[:400]} "
              "(run with --log-level DEBUG for the trace)", file=sys.stderr)
        return EXIT_INFRASTRUCTURE


if __name__ == "__main__":
    sys.exit(main())
