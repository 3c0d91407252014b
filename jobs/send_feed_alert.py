"""spark-submit entry point: send the alert for a feed whose validation stopped the pipeline.

    spark-submit jobs/send_feed_alert.py --config conf/pipeline/daily.yaml \
        --dataset click_stream --date 2024-05-01

The daily pipeline's runner starts it after a feed's validation stops the run. It reads the
feed's latest validation run of that date from the warehouse, posts the webhook message named
by the gate file's ``alerts`` section, and records the outcome in the ``alerts`` table. Exit 0
once the alert is handled (also when no webhook URL is configured), 2 for invalid
configuration, 3 when the validation tables cannot be read.
"""

from __future__ import annotations

import sys

from streamrec_spark.pipeline.runner import main

if __name__ == "__main__":
    sys.exit(main(["alert-feed", *sys.argv[1:]]))
