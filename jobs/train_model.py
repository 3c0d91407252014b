"""spark-submit entry point: fit a reference model on a training window and save it to a folder.

    spark-submit jobs/train_model.py --model-type recency_affinity --events /data/click_stream \
        --train-end 2024-04-25 --output /data/models/recency_affinity/2024-05-01 \
        --warehouse /data/warehouse

Takes the arguments of ``streamrec-spark train-model`` and exits with its code: 0 saved,
1 no click-stream day of the training window is accepted by its validation, 2 invalid
arguments or configuration, 3 unreadable input or a Spark failure.
"""

from __future__ import annotations

import sys

from streamrec_spark.cli_evaluation import main

if __name__ == "__main__":
    sys.exit(main(["train-model", *sys.argv[1:]]))
