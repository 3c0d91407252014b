"""spark-submit entry point: compute and validate the engagement features of one date.

    spark-submit jobs/compute_features.py --date 2024-05-07 --input /data/click_stream \
        --output /data/features/engagement --warehouse /data/streamrec

Takes the same options as ``streamrec-spark features`` and exits with its code. 0: the
features contract accepted the partition. 1: a click-stream day of the window is not
accepted, a declared schema was violated, or a blocking features check failed. 2: invalid
invocation or configuration. 3: input or Spark error.
"""

from __future__ import annotations

import sys

from streamrec_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["features", *sys.argv[1:]]))
