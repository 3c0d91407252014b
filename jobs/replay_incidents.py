"""Entry point: replay the data incidents on the embedded KuaiRand sample.

    python jobs/replay_incidents.py --workdir replay-output
    python jobs/replay_incidents.py formula-change --workdir replay-output

Takes the same options as ``streamrec-spark replay-incidents`` and exits with 0 when the
product caught every replayed incident, 1 when it missed one.
"""

from __future__ import annotations

import sys

from streamrec_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["replay-incidents", *sys.argv[1:]]))
