"""Command-line entry points for model training, evaluation and the behavioral suite.

``add_subcommands(subparsers)`` adds ``train-model``, ``evaluate-model``, ``run-behavioral``,
``replay-holiday`` and ``generate-scenario`` to an argparse sub-parser group. Each sets
``handler``, a function that takes the parsed arguments and returns the exit code (0 passed,
1 a check failed, 2 invalid request or configuration, 3 input or infrastructure error).
``python -m streamrec_spark.cli_evaluation`` runs the same commands on its own.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from streamrec_spark.errors import EXIT_FAILED, EXIT_PASSED, StreamrecError

logger = logging.getLogger(__name__)

_REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EVALUATION_CONFIG = _REPO_ROOT / "conf" / "evaluation" / "metrics.yaml"
DEFAULT_MODELS_CONFIG = _REPO_ROOT / "conf" / "evaluation" / "models.yaml"
DEFAULT_SUITE_CONFIG = _REPO_ROOT / "conf" / "behavioral" / "suite.yaml"
DEFAULT_REPLAY_CONFIG = _REPO_ROOT / "conf" / "behavioral" / "holiday_replay.yaml"


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {text!r}: use YYYY-MM-DD") from None


def _identifier(text: str) -> str:
    if not text or not all(char.isalnum() or char in "-_." for char in text):
        raise argparse.ArgumentTypeError(f"invalid id {text!r}: use letters, digits, '-', '_' and '.'")
    return text


def _session(args: argparse.Namespace, app_name: str):
    from streamrec_spark.session import build_session

    # Python workers must import numpy and this package, so they run the interpreter that runs
    # this command unless the caller chose one.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return build_session(app_name, conf=dict(args.conf), master=args.master)


def _setting(text: str) -> tuple[str, str]:
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"invalid Spark setting {text!r}: use KEY=VALUE")
    return key, value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--master", help="Spark master URL (default: spark-submit's, else local[*])")
    parser.add_argument(
        "--conf",
        type=_setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Spark setting for this run; may be repeated",
    )


def _train(args: argparse.Namespace) -> int:
    from streamrec_spark.evaluation.inputs import midnight, read_events, read_table
    from streamrec_spark.models import TrainingWindow, build_model, model_size_bytes
    from streamrec_spark.models.config import load_models_config

    config = load_models_config(args.config)
    spark = _session(args, f"streamrec-train-{args.model_type}")
    model = build_model(args.model_type, config)
    days = args.training_days or model.params.training_days
    if args.skip_acceptance_check:
        logger.warning("training on every day of the window without checking their validation "
                       "runs (--skip-acceptance-check)")
        events = read_events(spark, args.events)
    else:
        events = _accepted_events(spark, args, days)
    items = read_table(spark, args.items, "item catalog") if args.items else None
    model.fit(events, TrainingWindow(end=midnight(args.train_end), days=days), items)
    folder = model.save(args.output)
    print(f"saved {args.model_type} model to {folder} ({model_size_bytes(folder)} bytes, {len(model.item_ids)} items)")
    return EXIT_PASSED


def _accepted_events(spark, args: argparse.Namespace, days: int):
    """Read the click-stream days of the training window that their validation accepted."""
    from streamrec_spark.evaluation.inputs import read_events
    from streamrec_spark.features.job import CLICK_STREAM_PARTITION
    from streamrec_spark.features.training_input import accepted_training_events, window_dates
    from streamrec_spark.validation.store import ResultStore

    store = ResultStore(spark, args.warehouse, args.database)
    dates = window_dates(args.train_end - timedelta(days=days), days)
    events = read_events(spark, args.events, extra_columns=(CLICK_STREAM_PARTITION,))
    accepted_events, _ = accepted_training_events(events, store, dates, args.dataset)
    return accepted_events.drop(CLICK_STREAM_PARTITION)


def _evaluate(args: argparse.Namespace) -> int:
    from streamrec_spark.evaluation.config import load_evaluation_config
    from streamrec_spark.evaluation.job import EvaluationRequest, format_metrics, run_evaluation

    config = load_evaluation_config(args.config)
    if args.database is not None:
        config = replace(config, database=args.database)
    end = args.holdout_end or args.holdout_start + timedelta(days=args.holdout_days)
    request = EvaluationRequest(
        model_id=args.model_id,
        run_id=args.run_id,
        events_path=args.events,
        holdout_start=args.holdout_start,
        holdout_end=end,
        warehouse=args.warehouse,
        recommendations_path=args.recommendations,
        model_path=args.model,
        catalog_path=args.catalog,
    )
    request.validate()
    spark = _session(args, "streamrec-evaluate-model")
    result = run_evaluation(spark, request, config)
    print(format_metrics(result))
    for row in result.failed_checks:
        print(f"input check failed: {row.reason} ({row.affected} {row.affected_unit} affected)")
    return result.exit_code


def _behavioral(args: argparse.Namespace) -> int:
    from streamrec_spark.behavioral.config import load_suite_config
    from streamrec_spark.behavioral.job import BehavioralRequest, run_behavioral
    from streamrec_spark.behavioral.store import format_results
    from streamrec_spark.evaluation.config import load_evaluation_config

    suite = load_suite_config(args.config)
    evaluation = load_evaluation_config(args.evaluation_config)
    if args.database is not None:
        suite = replace(suite, database=args.database)
        evaluation = replace(evaluation, database=args.database)
    request = BehavioralRequest(
        model_path=args.model,
        model_id=args.model_id,
        run_id=args.run_id,
        events_path=args.events,
        warehouse=args.warehouse,
        items_path=args.items,
        holdout_start=args.holdout_start,
    )
    spark = _session(args, "streamrec-run-behavioral")
    run = run_behavioral(spark, request, suite, evaluation)
    print(format_results(run.results))
    return EXIT_PASSED if run.passed else EXIT_FAILED


def _replay(args: argparse.Namespace) -> int:
    from streamrec_spark.behavioral.config import load_suite_config
    from streamrec_spark.behavioral.incident import format_replay, load_replay_config, replay_holiday
    from streamrec_spark.evaluation.config import load_evaluation_config
    from streamrec_spark.models.config import load_models_config

    config = load_replay_config(args.config)
    suite = load_suite_config(args.suite_config)
    evaluation = load_evaluation_config(args.evaluation_config)
    models = load_models_config(args.models_config)
    spark = _session(args, "streamrec-replay-holiday")
    outcome = replay_holiday(spark, config, suite, evaluation, models, args.work_dir, args.warehouse, args.run_id)
    print(format_replay(outcome, config))
    if outcome.reproduced:
        return EXIT_PASSED
    return EXIT_FAILED


def _generate(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from streamrec_spark.behavioral.scenario import ScenarioConfig, generate_scenario, write_scenario

    config = replace(ScenarioConfig(), seed=args.seed, users=args.users)
    if args.no_holiday:
        config = replace(config, holiday_start_day=None, holiday_end_day=None)
    spark = _session(args, "streamrec-generate-scenario")
    events_path, items_path = write_scenario(generate_scenario(spark, config), args.output)
    print(f"events: {events_path}\nitems: {items_path}\nday 0: {config.start_date}, {config.days} days")
    return EXIT_PASSED


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Add the evaluation and behavioral commands; each sets ``handler`` to its function."""
    train = subparsers.add_parser("train-model", help="fit a reference model and save it to a folder")
    _common(train)
    train.add_argument("--model-type", required=True, choices=("popularity", "recency_affinity"))
    train.add_argument("--events", required=True, help="click-stream Parquet root (event_date=YYYY-MM-DD folders)")
    train.add_argument("--items", help="optional catalog (Parquet or Delta) with item_id and genre")
    train.add_argument("--train-end", required=True, type=_day, help="first day after the window (UTC)")
    train.add_argument("--training-days", type=int, help="window length in days (default: from --config)")
    train.add_argument("--output", required=True, help="folder to save the model to")
    train.add_argument("--config", default=str(DEFAULT_MODELS_CONFIG), help="models YAML file")
    accepted = train.add_mutually_exclusive_group(required=True)
    accepted.add_argument("--warehouse",
                          help="folder of the validation result tables; only window days whose "
                               "latest validation passed or warned are read")
    accepted.add_argument("--skip-acceptance-check", action="store_true",
                          help="train on every day of the window, validated or not (generated data)")
    train.add_argument("--database", type=_identifier, default="streamrec",
                       help="catalog database of the validation tables (default: streamrec)")
    train.add_argument("--dataset", default="click_stream",
                       help="dataset name of the click stream's validation runs (default: click_stream)")
    train.set_defaults(handler=_train)

    evaluate = subparsers.add_parser(
        "evaluate-model", help="compute ranking metrics per slice and write them to the model-metrics table"
    )
    _common(evaluate)
    evaluate.add_argument("--model-id", required=True, type=_identifier)
    evaluate.add_argument("--run-id", required=True, type=_identifier)
    evaluate.add_argument("--events", required=True, help="click-stream Parquet root with the holdout window")
    evaluate.add_argument("--holdout-start", required=True, type=_day, help="first holdout day (UTC)")
    evaluate.add_argument("--holdout-end", type=_day, help="first day after the holdout (default: start + --holdout-days)")
    evaluate.add_argument("--holdout-days", type=int, default=7, help="holdout length in days (default: 7)")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--recommendations", help="table (Delta or Parquet) of user_id, item_id and rank or score")
    source.add_argument("--model", help="saved model folder; it recommends to the holdout users")
    evaluate.add_argument("--catalog", help="optional table with item_id, to count unknown items")
    evaluate.add_argument("--warehouse", required=True, help="folder of the Delta result tables")
    evaluate.add_argument("--database", type=_identifier,
                          help="catalog database of the result tables (default: from --config)")
    evaluate.add_argument("--config", default=str(DEFAULT_EVALUATION_CONFIG), help="evaluation YAML file")
    evaluate.set_defaults(handler=_evaluate)

    behavioral = subparsers.add_parser(
        "run-behavioral", help="run the behavioral suite on a saved model and print the results"
    )
    _common(behavioral)
    behavioral.add_argument("--model", required=True, help="saved model folder")
    behavioral.add_argument("--model-id", required=True, type=_identifier)
    behavioral.add_argument("--run-id", required=True, type=_identifier)
    behavioral.add_argument("--events", required=True, help="click-stream Parquet root")
    behavioral.add_argument("--items", help="optional catalog (Parquet or Delta) with item_id and genre")
    behavioral.add_argument(
        "--holdout-start", type=_day, help="first MFT holdout day (default: the model's training window end)"
    )
    behavioral.add_argument("--warehouse", required=True, help="folder of the Delta result tables")
    behavioral.add_argument("--database", type=_identifier,
                            help="catalog database of the result tables (default: from --config)")
    behavioral.add_argument("--config", default=str(DEFAULT_SUITE_CONFIG), help="suite YAML file")
    behavioral.add_argument("--evaluation-config", default=str(DEFAULT_EVALUATION_CONFIG), help="evaluation YAML file")
    behavioral.set_defaults(handler=_behavioral)

    replay = subparsers.add_parser(
        "replay-holiday", help="replay the holiday incident on generated data (exit 0 when reproduced)"
    )
    _common(replay)
    replay.add_argument("--work-dir", required=True, help="folder for the two trained models")
    replay.add_argument("--warehouse", help="folder of the Delta result tables (default: results are not stored)")
    replay.add_argument("--run-id", default="holiday-replay", type=_identifier)
    replay.add_argument("--config", default=str(DEFAULT_REPLAY_CONFIG), help="replay YAML file")
    replay.add_argument("--suite-config", default=str(DEFAULT_SUITE_CONFIG), help="suite YAML file")
    replay.add_argument("--evaluation-config", default=str(DEFAULT_EVALUATION_CONFIG), help="evaluation YAML file")
    replay.add_argument("--models-config", default=str(DEFAULT_MODELS_CONFIG), help="models YAML file")
    replay.set_defaults(handler=_replay)

    generate = subparsers.add_parser(
        "generate-scenario", help="write the behavioral scenario's events and items as Parquet"
    )
    _common(generate)
    generate.add_argument("--output", required=True, help="folder for events/ and items/")
    generate.add_argument("--users", type=int, default=300)
    generate.add_argument("--seed", type=int, default=7)
    generate.add_argument("--no-holiday", action="store_true", help="generate without the holiday period")
    generate.set_defaults(handler=_generate)


def run_handler(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Call ``handler`` and turn a StreamrecError into its exit code, logging the message."""
    try:
        return handler(args)
    except StreamrecError as exc:
        logger.error("%s: %s", exc.error_code, exc)
        print(f"error [{exc.error_code}]: {exc}", file=sys.stderr)
        return exc.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(prog="python -m streamrec_spark.cli_evaluation", description=__doc__.splitlines()[0])
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits with 2 on invalid arguments and 0 on --help
        return int(exc.code or 0)
    return run_handler(args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
