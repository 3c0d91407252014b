"""Command-line command for the serving probe.

:func:`add_subcommands` adds ``probe`` to the ``streamrec-spark`` parser. It times single-user
requests against a saved model, prints p50, p99 and maximum latency and the model's size, and
writes them to the ``serving_probes`` Delta table. Exit codes: 0 measured, 2 invalid request,
3 the probe ERRORED (the row is still written) or the result store failed.
"""

from __future__ import annotations

import argparse
import os
import sys

from streamrec_spark.cli import add_spark_options, add_warehouse_options


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}: use a whole number of at least 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid number {value}: use a whole number of at least 1")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}: use a whole number of 0 or more") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid number {value}: use a whole number of 0 or more")
    return value


def _identifier(text: str) -> str:
    if not text or not all(char.isalnum() or char in "-_." for char in text):
        raise argparse.ArgumentTypeError(f"invalid id {text!r}: use letters, digits, '-', '_' and '.'")
    return text


def command_probe(args: argparse.Namespace) -> int:
    from streamrec_spark.serving.probe import ProbeRequest, ProbeSettings, format_probe, run_probe
    from streamrec_spark.session import build_session

    settings = ProbeSettings(
        requests=args.requests,
        warmup=args.warmup,
        k=args.k,
        seed=args.seed,
        history_events=args.history_events,
        history_days=args.history_days,
    )
    request = ProbeRequest(
        model_path=args.model,
        model_id=args.model_id,
        run_id=args.run_id,
        warehouse=args.warehouse,
        database=args.database,
        events_path=args.events,
        request_file=args.request_file,
        settings=settings,
        save_requests=args.save_requests,
    )
    request.validate()
    # Spark builds the sample in Python workers that import this package, so local mode starts
    # them with this interpreter unless the caller chose one.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = build_session(f"streamrec-probe-{args.model_id}", conf=dict(args.conf), master=args.master)
    result = run_probe(spark, request)
    print(format_probe(result))
    return result.exit_code


def add_subcommands(commands: argparse._SubParsersAction) -> None:
    """Add ``probe``, which sets ``handler`` to the function that runs it."""
    probe = commands.add_parser(
        "probe", help="time single-user requests against a saved model and record latency and size"
    )
    probe.add_argument("--model", required=True, help="saved model folder (model.json and arrays.npz)")
    probe.add_argument("--model-id", required=True, type=_identifier, help="id the gate looks the probe up by")
    probe.add_argument("--run-id", required=True, type=_identifier, help="id of this pipeline run")

    source = probe.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--events",
        help="click-stream Parquet or Delta root to sample users and their latest events from "
        "(request time: the end of the model's training window)",
    )
    source.add_argument("--request-file", help="JSON Lines file of requests, as --save-requests writes")

    probe.add_argument("--requests", type=_positive, default=1000, help="timed requests (default 1000)")
    probe.add_argument("--warmup", type=_non_negative, default=50, help="untimed warm-up requests (default 50)")
    probe.add_argument("--seed", type=int, default=17, help="seed of the user sample (default 17)")
    probe.add_argument("--k", type=_positive, default=20, help="items recommended per request (default 20)")
    probe.add_argument(
        "--history-events", type=_positive, default=50, help="latest events per request history (default 50)"
    )
    probe.add_argument(
        "--history-days",
        type=_positive,
        default=None,
        help="days before the request time that histories come from (default: the training window length)",
    )
    probe.add_argument("--save-requests", help="also write the sampled requests to this JSON Lines file")

    add_warehouse_options(probe)
    add_spark_options(probe)
    probe.set_defaults(handler=command_probe)
