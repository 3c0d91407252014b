"""The ``streamrec-spark gate`` and ``evaluate-champion`` commands of the validation gate.

:func:`add_subcommands` adds both to the ``streamrec-spark`` parser. The ``gate`` handler returns
0 when the model passed (and was registered unless ``--no-register``), 1 when the gate blocked
it, 2 for an invalid request or configuration and 3 for an infrastructure error.
``evaluate-champion`` evaluates the gate's champion on the candidate's holdout window. It returns
0 when it wrote the metrics or when there is no champion, 1 when an input check of the
evaluation failed, and 3 when the champion's model folder cannot be downloaded or loaded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import replace
from datetime import timedelta
from typing import Any

from streamrec_spark.cli import REPO_ROOT, _date, add_spark_options
from streamrec_spark.errors import InvalidRequestError

DEFAULT_GATE_CONFIG = REPO_ROOT / "conf" / "gates" / "streamrec_v2_gate.yaml"


def _strict_json(value: Any) -> Any:
    """Return a copy of ``value`` with NaN and infinities as None, so the output is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(item) for item in value]
    return value


def command_gate(args: argparse.Namespace) -> int:
    from streamrec_spark.gate.config import load_gate_config
    from streamrec_spark.gate.driver import GateRequest, apply_gate, format_outcome
    from streamrec_spark.session import build_session

    # Configuration and request are checked before Spark starts, so exit 2 costs no session.
    config = load_gate_config(args.config)
    if args.database is not None:
        config = replace(config, tables=replace(config.tables, database=args.database))
    request = GateRequest(
        config=config,
        model_id=args.model_id,
        warehouse=args.warehouse,
        model_dir=args.model_dir,
        register=not args.no_register,
        data_date=args.data_date,
        tracking_uri=args.tracking_uri,
        registry_uri=args.registry_uri,
    )
    request.validate()
    spark = build_session(f"streamrec-gate-{args.model_id}", conf=dict(args.conf), master=args.master)
    outcome = apply_gate(spark, request)
    if args.format == "json":
        document = {
            **outcome.record,
            "exit_code": outcome.exit_code,
            "registered": outcome.registered,
            "registered_version": outcome.registered_version,
            "mlflow_run_id": outcome.mlflow_run_id,
            "tracking_error": outcome.tracking_error,
        }
        print(json.dumps(_strict_json(document), indent=2, default=str, allow_nan=False))
    else:
        print(format_outcome(outcome))
    if outcome.infrastructure_error is not None:
        # Schedulers often keep only stderr: repeat the reason for exit 3 there, on one line.
        print(f"streamrec-spark: {outcome.infrastructure_error}", file=sys.stderr)
    return outcome.exit_code


def command_evaluate_champion(args: argparse.Namespace) -> int:
    from streamrec_spark.evaluation.config import load_evaluation_config
    from streamrec_spark.gate.champion import (
        ChampionEvaluationRequest,
        evaluate_champion,
        format_champion_evaluation,
    )
    from streamrec_spark.gate.config import load_gate_config
    from streamrec_spark.session import build_session

    config = load_gate_config(args.config)
    if args.database is not None:
        config = replace(config, tables=replace(config.tables, database=args.database))
    evaluation = load_evaluation_config(args.evaluation_config)
    if args.holdout_days < 1:
        raise InvalidRequestError(f"invalid --holdout-days {args.holdout_days}; use 1 or more days")
    request = ChampionEvaluationRequest(
        gate=config,
        candidate_model_id=args.candidate_model_id,
        run_id=args.run_id,
        events_path=args.events,
        holdout_start=args.holdout_start,
        holdout_end=args.holdout_start + timedelta(days=args.holdout_days),
        warehouse=args.warehouse,
        catalog_path=args.catalog,
        tracking_uri=args.tracking_uri,
        registry_uri=args.registry_uri,
    )
    request.validate()
    spark = build_session(
        f"streamrec-evaluate-champion-{args.run_id}", conf=dict(args.conf), master=args.master
    )
    outcome = evaluate_champion(spark, request, evaluation)
    print(format_champion_evaluation(outcome, request))
    return outcome.exit_code


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=str(DEFAULT_GATE_CONFIG),
                        help="gate YAML file (default: conf/gates/streamrec_v2_gate.yaml)")
    parser.add_argument("--warehouse", default=os.environ.get("STREAMREC_WAREHOUSE", "warehouse"),
                        help="folder or URI of the Delta result tables (default: ./warehouse or "
                             "$STREAMREC_WAREHOUSE)")
    parser.add_argument("--database", default=None,
                        help="catalog database of the gate tables (default: the gate file's "
                             "tables.database)")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking URI (default: the gate file's, else a sqlite store "
                             "under <warehouse>/mlflow)")
    parser.add_argument("--registry-uri", default=None,
                        help="MLflow model registry URI (default: the gate file's, else the "
                             "tracking URI)")


def _add_evaluate_champion(commands: argparse._SubParsersAction) -> None:
    from streamrec_spark.cli_evaluation import DEFAULT_EVALUATION_CONFIG

    champion = commands.add_parser(
        "evaluate-champion",
        help="evaluate the gate's champion on the candidate's holdout window, for the gate to "
             "compare the two on one test set",
    )
    champion.add_argument("--candidate-model-id", required=True,
                          help="id of the model the gate judges next; nothing is evaluated when "
                               "it is the champion")
    champion.add_argument("--run-id", required=True,
                          help="run id of the champion's new metric rows, e.g. daily-2024-05-01-champion")
    champion.add_argument("--events", required=True, help="click-stream root with the holdout window")
    champion.add_argument("--holdout-start", required=True, type=_date,
                          help="first holdout day, YYYY-MM-DD (UTC)")
    champion.add_argument("--holdout-days", type=int, default=7,
                          help="holdout length in days (default: 7)")
    champion.add_argument("--catalog", default=None,
                          help="optional table with item_id, to count unknown items")
    champion.add_argument("--evaluation-config", default=str(DEFAULT_EVALUATION_CONFIG),
                          help="evaluation YAML file (default: conf/evaluation/metrics.yaml); "
                               "use the candidate's")
    _add_store_options(champion)
    add_spark_options(champion)
    champion.set_defaults(handler=command_evaluate_champion)


def add_subcommands(commands: argparse._SubParsersAction) -> None:
    """Add ``gate`` and ``evaluate-champion`` to the ``streamrec-spark`` subcommands."""
    gate = commands.add_parser(
        "gate",
        help="judge a candidate model from its aggregated results; register it if it passes",
    )
    gate.add_argument("--model-id", required=True, help="id of the candidate model in the result tables")
    gate.add_argument("--model-dir", default=None,
                      help="the candidate's saved model folder, registered in MLflow when it passes "
                           "(required unless --no-register)")
    gate.add_argument("--no-register", action="store_true",
                      help="decide and record, but do not register a model that passes (it then "
                           "does not become the champion)")
    gate.add_argument("--data-date", type=_date, default=None,
                      help="partition date, YYYY-MM-DD, whose data-validation runs the gate "
                           "requires and records (default: each dataset's latest partition)")
    _add_store_options(gate)
    gate.add_argument("--format", choices=("text", "json"), default="text",
                      help="print a table of comparisons (text) or the decision record (json)")
    add_spark_options(gate)
    gate.set_defaults(handler=command_gate)
    _add_evaluate_champion(commands)
