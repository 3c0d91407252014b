"""The ``streamrec-spark ml-test-score`` command: print this deployment's ML Test Score.

:func:`add_subcommands` adds ``ml-test-score`` to the ``streamrec-spark`` parser. It reads
``conf/ml_test_score.yaml``, checks each test's evidence against the repository, and prints a
table per section, the section sums, the total and the final score (the minimum of the
sums). Exit code 0, or 1 when ``--fail-under`` is given and the final score is below it;
2 for an invalid rubric file.
"""

from __future__ import annotations

import argparse

from streamrec_spark.errors import EXIT_FAILED, EXIT_PASSED
from streamrec_spark.ml_test_score import DEFAULT_RUBRIC, REPO_ROOT


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid score {text!r}; use a number such as 1.5") from None
    if not 0 <= value <= 7:
        raise argparse.ArgumentTypeError(f"invalid score {text}; a final score is between 0 and 7")
    return value


def command_ml_test_score(args: argparse.Namespace) -> int:
    from streamrec_spark.ml_test_score import format_report, load_rubric, report_json, score_rubric

    report = score_rubric(load_rubric(args.rubric), args.root)
    print(report_json(report) if args.format == "json" else format_report(report))
    if args.fail_under is not None and report.final < args.fail_under:
        return EXIT_FAILED
    return EXIT_PASSED


def add_subcommands(commands: argparse._SubParsersAction) -> None:
    """Add ``ml-test-score`` to the ``streamrec-spark`` subcommands; it sets ``handler``."""
    score = commands.add_parser(
        "ml-test-score",
        help="print the ML Test Score (Breck et al., 2017) of this deployment, with evidence",
    )
    score.add_argument("--rubric", default=str(DEFAULT_RUBRIC),
                       help="rubric YAML with each test's status and evidence "
                            "(default: conf/ml_test_score.yaml)")
    score.add_argument("--root", default=str(REPO_ROOT),
                       help="repository root that evidence paths are relative to "
                            "(default: the one holding this package)")
    score.add_argument("--format", choices=("text", "json"), default="text")
    score.add_argument("--fail-under", type=_non_negative, default=None, metavar="SCORE",
                       help="exit 1 when the final score is below SCORE (for CI)")
    score.set_defaults(handler=command_ml_test_score)
