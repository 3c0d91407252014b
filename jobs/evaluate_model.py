"""spark-submit entry point: evaluate a model's recommendations against a holdout window.

Takes the arguments of ``python -m streamrec_spark.cli_evaluation evaluate-model``.
"""

from __future__ import annotations

import sys

from streamrec_spark.cli_evaluation import main

if __name__ == "__main__":
    sys.exit(main(["evaluate-model", *sys.argv[1:]]))
