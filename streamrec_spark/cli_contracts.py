"""Command-line commands for contracts, snapshot feeds, features and incident replays.

:func:`add_subcommands` adds them to the ``streamrec-spark`` parser:

- ``contracts list`` and ``contracts diff OLD NEW``;
- ``convert-feed`` (a KuaiRand feature table into snapshot partitions);
- ``features`` (the engagement feature job for one date);
- ``replay-incidents`` (the incident replays on the embedded sample).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from streamrec_spark.cli import (
    DEFAULT_REGISTRY,
    REPO_ROOT,
    _date,
    add_spark_options,
    add_warehouse_options,
)
from streamrec_spark.errors import InvalidRequestError

FEED_DEFAULT_INPUTS = {
    "item_metadata": REPO_ROOT / "data" / "kuairand" / "video_features_basic_pure.csv.gz",
    "user_profiles": REPO_ROOT / "data" / "kuairand" / "user_features_pure.csv.gz",
}
FEATURES_DATASET = "engagement_features"


def _session(args: argparse.Namespace, app_name: str):
    from streamrec_spark.session import build_session

    return build_session(app_name, conf=dict(args.conf), master=args.master)


def _as_of(text: str | None):
    from streamrec_spark.validate_job import parse_as_of

    try:
        return parse_as_of(text)
    except ValueError:
        raise InvalidRequestError(
            f"invalid --as-of {text!r}; use an ISO 8601 instant such as 2024-05-01T02:00:00Z"
        ) from None


def format_registry(registry) -> str:
    """Render the registry as a table: one contract per line."""
    header = ("dataset", "version", "producer -> consumer", "tier", "freshness", "stops pipeline",
              "checks", "owner")
    rows = [header]
    for name, contract in registry.contracts.items():
        stopping = sum(1 for e in contract.expectations if e.blocks_pipeline)
        stops = "yes" if contract.blocks_pipeline else "no"
        if not contract.blocks_pipeline and stopping:
            stops = f"only {stopping} check{'s' if stopping > 1 else ''}"
        rows.append((name, contract.version, f"{contract.producer} -> {contract.consumer}",
                     contract.sla_tier, f"{contract.freshness_hours:g} h", stops,
                     str(len(contract.expectations)), contract.owner))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def command_contracts_list(args: argparse.Namespace) -> int:
    from streamrec_spark.contracts.registry import load_registry

    registry = load_registry(args.registry)
    if args.format == "json":
        print(json.dumps({
            name: {
                "version": c.version, "producer": c.producer, "consumer": c.consumer,
                "owner": c.owner, "sla_tier": c.sla_tier, "freshness_hours": c.freshness_hours,
                "blocks_pipeline": c.blocks_pipeline, "expectations": len(c.expectations),
                "file": c.source_file,
            }
            for name, c in registry.contracts.items()
        }, indent=2))
    else:
        print(f"{len(registry.contracts)} contracts in {registry.path}\n")
        print(format_registry(registry))
    return 0


def command_contracts_diff(args: argparse.Namespace) -> int:
    from streamrec_spark.contracts.diff import diff_contracts
    from streamrec_spark.contracts.loader import load_contract

    diff = diff_contracts(load_contract(args.old), load_contract(args.new))
    if args.format == "json":
        print(diff.to_json(args.strict))
    else:
        print(diff.format_text(args.strict))
    return diff.exit_code(args.strict)


def command_convert_feed(args: argparse.Namespace) -> int:
    from streamrec_spark.feeds.item_metadata import KUAIRAND_SNAPSHOT_DATE, convert_item_metadata
    from streamrec_spark.feeds.user_profiles import convert_user_profiles

    converters = {"item_metadata": convert_item_metadata, "user_profiles": convert_user_profiles}
    input_path = args.input_path or str(FEED_DEFAULT_INPUTS[args.feed])
    snapshot_date = args.snapshot_date or KUAIRAND_SNAPSHOT_DATE
    exported_at = _as_of(args.exported_at) if args.exported_at else None
    spark = _session(args, f"streamrec-convert-{args.feed}")
    written = converters[args.feed](spark, input_path, args.output, snapshot_date, exported_at)
    print(f"wrote {args.feed} snapshot {written} to {Path(args.output) / f'snapshot_date={written}'}")
    print(f"validate it with: streamrec-spark validate --dataset {args.feed} --date {written} "
          f"--input {args.output}")
    return 0


def command_features(args: argparse.Namespace) -> int:
    from streamrec_spark.contracts.loader import load_contract
    from streamrec_spark.contracts.registry import load_registry
    from streamrec_spark.features.job import FeatureRequest, run_feature_job

    if args.contract:
        contract = load_contract(args.contract)
    else:
        contract = load_registry(args.registry).contract(FEATURES_DATASET)
    if args.window_days < 1:
        raise InvalidRequestError(f"invalid --window-days {args.window_days}; use 1 or more")
    request = FeatureRequest(
        feature_date=args.feature_date, click_stream_path=args.input_path,
        features_path=args.output, warehouse=args.warehouse, as_of=_as_of(args.as_of),
        database=args.database, window_days=args.window_days,
    )
    spark = _session(args, f"streamrec-features-{args.feature_date}")
    run = run_feature_job(spark, contract, request)
    print(f"engagement features {args.feature_date}: {run.status.upper()} at stage "
          f"'{run.stage}' (exit {run.exit_code}, {run.user_count or 0:,} users)")
    if run.error is not None:
        print(f"  {run.error}")
    for result in run.results:
        if result.status != "passed":
            print(f"  {result.status:7} [{result.severity}] {result.expectation_id}: "
                  f"{result.reason_code}: {result.message}")
    return run.exit_code


def command_replay_incidents(args: argparse.Namespace) -> int:
    from streamrec_spark.incidents import INCIDENTS, format_summary

    names = args.incidents or list(INCIDENTS)
    unknown = [name for name in names if name not in INCIDENTS]
    if unknown:
        raise InvalidRequestError(
            f"unknown incident {', '.join(unknown)}; known: {', '.join(INCIDENTS)}"
        )
    spark = _session(args, "streamrec-replay-incidents")
    workdir = Path(args.workdir).resolve()
    outcomes = []
    for name in names:
        outcome = INCIDENTS[name](spark, workdir, database=args.database)
        print(outcome.describe())
        print()
        outcomes.append(outcome)
    print(format_summary(outcomes))
    print(f"\nResults are in Delta tables under {workdir / 'warehouse'} (the holiday model's "
          f"under {workdir / 'holiday' / 'warehouse'}).")
    return 0 if all(outcome.caught for outcome in outcomes) else 1


def add_subcommands(commands: argparse._SubParsersAction) -> None:
    """Add ``contracts``, ``convert-feed``, ``features`` and ``replay-incidents`` to the
    ``streamrec-spark`` subcommands; each sets ``handler`` to a function returning the exit
    code."""
    contracts = commands.add_parser("contracts", help="list the contract registry or diff two contracts")
    actions = contracts.add_subparsers(dest="contracts_command", required=True,
                                       parser_class=type(contracts))
    listing = actions.add_parser("list", help="show every contract of the registry")
    listing.add_argument("--registry", default=str(DEFAULT_REGISTRY),
                         help="contract registry YAML (default: conf/registry.yaml)")
    listing.add_argument("--format", choices=("text", "json"), default="text")
    listing.set_defaults(handler=command_contracts_list)

    diff = actions.add_parser(
        "diff", help="tell whether NEW breaks the consumers of OLD (exit 1 when it does)")
    diff.add_argument("old", help="the contract YAML consumers rely on today")
    diff.add_argument("new", help="the proposed contract YAML")
    diff.add_argument("--strict", action="store_true",
                      help="also fail on relaxed guarantees (loosened thresholds, removed checks)")
    diff.add_argument("--format", choices=("text", "json"), default="text")
    diff.set_defaults(handler=command_contracts_diff)

    convert = commands.add_parser("convert-feed",
                                  help="convert a KuaiRand feature table into a snapshot partition")
    convert.add_argument("feed", choices=sorted(FEED_DEFAULT_INPUTS))
    convert.add_argument("--input", dest="input_path", default=None,
                         help="the CSV export, plain or .gz (default: the table in data/kuairand/)")
    convert.add_argument("--output", required=True,
                         help="root folder that receives snapshot_date=YYYY-MM-DD/")
    convert.add_argument("--snapshot-date", type=_date, default=None,
                         help="the day the snapshot describes (default: 2022-04-21, the last day of "
                              "the embedded log)")
    convert.add_argument("--exported-at", default=None,
                         help="ISO 8601 export instant (default: the start of the next day, UTC)")
    add_spark_options(convert)
    convert.set_defaults(handler=command_convert_feed)

    features = commands.add_parser("features",
                                   help="compute and validate engagement features for one date")
    features.add_argument("--date", required=True, type=_date, dest="feature_date",
                          help="feature date: the last click-stream day of the window, YYYY-MM-DD")
    features.add_argument("--input", required=True, dest="input_path",
                          help="click-stream root holding event_date=YYYY-MM-DD folders")
    features.add_argument("--output", required=True,
                          help="path of the Delta features table (partitioned by feature_date)")
    features.add_argument("--window-days", type=int, default=7,
                          help="click-stream days per window, the feature date included (default 7)")
    features.add_argument("--as-of", default=None,
                          help="ISO 8601 instant recorded with the runs (default: now)")
    features.add_argument("--registry", default=str(DEFAULT_REGISTRY),
                          help="registry holding the engagement_features contract")
    features.add_argument("--contract", default=None,
                          help="features contract YAML to use instead of the registry's")
    add_warehouse_options(features)
    add_spark_options(features)
    features.set_defaults(handler=command_features)

    replay = commands.add_parser(
        "replay-incidents",
        help="replay the four incidents end to end and show where each was caught",
    )
    replay.add_argument("incidents", nargs="*",
                        help="incidents to replay (default: all): formula-change, new-event-type, "
                             "holiday-model, platform-drop")
    replay.add_argument("--workdir", default="replay-output",
                        help="folder for the converted sample, features and result tables")
    replay.add_argument("--database", default="streamrec_replay",
                        help="catalog database the replay's result tables are registered in")
    add_spark_options(replay)
    replay.set_defaults(handler=command_replay_incidents)
