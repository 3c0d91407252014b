"""spark-submit entry point: time single-user requests against a saved model.

Takes the arguments of ``streamrec-spark probe``.
"""

from __future__ import annotations

import sys

from streamrec_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["probe", *sys.argv[1:]]))
