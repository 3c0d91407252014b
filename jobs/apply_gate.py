"""spark-submit entry point: judge a candidate model with the validation gate.

    spark-submit jobs/apply_gate.py --model-id als-2024-05-02 --model-dir /models/als-2024-05-02 \
        --warehouse /data/streamrec

Takes the same options as ``streamrec-spark gate`` and exits with its code: 0 passed (and
registered), 1 blocked, 2 invalid request or configuration, 3 infrastructure error.
"""

from __future__ import annotations

import sys

from streamrec_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["gate", *sys.argv[1:]]))
