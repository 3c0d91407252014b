#!/usr/bin/env bash
# spark-submit from the project's virtualenv with the Delta jars that scripts/setup.sh cached.
# Usage: scripts/spark-submit.sh [spark-submit options] jobs/validate_partition.py [job options]
# On a cluster, use the cluster's spark-submit with --packages io.delta:delta-spark_2.12:3.3.2
# (or --jars with the same two jars) and install this package on the driver.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
jars=$(ls "$root"/.cache/jars/*.jar 2>/dev/null | paste -sd, -)
if [ -z "$jars" ]; then
  echo "spark-submit.sh: no Delta jars in $root/.cache/jars; run scripts/setup.sh first" >&2
  exit 2
fi
# spark-submit's helpers run the first python3 on PATH, which must be the venv's (it has
# pyspark), and the Python workers must use the same interpreter.
export PATH="$root/.venv/bin:$PATH"
export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$root/.venv/bin/python}"
exec "$root/.venv/bin/spark-submit" --jars "$jars" "$@"
