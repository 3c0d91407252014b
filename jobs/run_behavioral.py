"""spark-submit entry point: run the behavioral suite on a saved model.

Takes the arguments of ``python -m streamrec_spark.cli_evaluation run-behavioral``.
"""

from __future__ import annotations

import sys

from streamrec_spark.cli_evaluation import main

if __name__ == "__main__":
    sys.exit(main(["run-behavioral", *sys.argv[1:]]))
