#!/usr/bin/env bash
# Set up the project, then validate the 14 days of the embedded KuaiRand sample in order and
# print what passed and failed each day. Results land in demo-output/warehouse (Delta tables).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/streamrec-spark --log-level WARNING demo --workdir demo-output "$@"
