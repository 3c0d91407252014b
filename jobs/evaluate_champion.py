"""spark-submit entry point: evaluate the gate's champion on the candidate's holdout window.

    spark-submit jobs/evaluate_champion.py --candidate-model-id als-2024-05-02 \
        --run-id daily-2024-05-02-champion --events /data/click_stream \
        --holdout-start 2024-04-26 --holdout-days 7 --warehouse /data/streamrec

Takes the same options as ``streamrec-spark evaluate-champion`` and exits with its code: 0
evaluated or no champion, 1 an input check of the evaluation failed, 2 invalid request or
configuration, 3 the champion's model folder is unavailable or an infrastructure error.
"""

from __future__ import annotations

import sys

from streamrec_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate-champion", *sys.argv[1:]]))
