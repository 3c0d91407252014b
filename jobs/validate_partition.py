"""spark-submit entry point: validate one daily partition against its data contract.

    spark-submit jobs/validate_partition.py --dataset click_stream --date 2024-05-01 \
        --input /data/click_stream --warehouse /data/streamrec

Takes the same options as ``streamrec-spark validate`` and exits with its code: 0 passed,
1 a blocking check failed, 2 invalid invocation or configuration, 3 input or Spark error.
"""

from __future__ import annotations

import sys

from streamrec_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["validate", *sys.argv[1:]]))
