#!/usr/bin/env bash
# Run every stage of the daily pipeline for one date on generated data, through the cron wrapper.
#
# Usage: scripts/run_sample_pipeline.sh [WORKDIR [DATE]]
#   WORKDIR  empty or missing folder for the data, the result tables and the models
#            (default: sample-pipeline)
#   DATE     partition date, YYYY-MM-DD (default: 2023-12-16)
#
# First `python -m streamrec_spark.pipeline.sample` generates the data and validates the
# click-stream days before DATE. Then scripts/run_daily.sh runs every stage for DATE with
# --as-of 10:00 UTC of DATE, the instant the generated days are fresh at. It exits with the
# preparation's code when that fails, and otherwise with the pipeline's code: 0 when the gate
# passed and registered the model, 1 when a check or the gate blocked it.
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
workdir="${1:-sample-pipeline}"
day="${2:-2023-12-16}"

"$root/.venv/bin/python" -m streamrec_spark.pipeline.sample --workdir "$workdir" --date "$day" || exit $?
exec "$root/scripts/run_daily.sh" --config "$workdir/daily.yaml" --date "$day" --as-of "${day}T10:00:00Z"
