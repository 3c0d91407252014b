#!/usr/bin/env bash
# Run the daily pipeline for yesterday's partition (UTC), one run at a time. For cron.
#
# Usage: scripts/run_daily.sh [--config FILE] [runner options such as --date YYYY-MM-DD]
#   --config FILE   pipeline YAML (default: $STREAMREC_PIPELINE_CONF, else conf/pipeline/daily.yaml)
#   other options   passed to `python -m streamrec_spark.pipeline.runner run` (--date, --as-of,
#                   --from-stage, --to-stage, --dry-run)
#
# The run holds an exclusive flock(1) on a lock file: the config's lock_file, else
# <warehouse>/daily-pipeline.lock, or $STREAMREC_PIPELINE_LOCK when set. A run that finds the
# lock taken does not wait: it prints which lock is held and exits 75 (EX_TEMPFAIL in
# sysexits.h), so cron never stacks runs. The lock is released when the run and every process
# it started have exited.
#
# Exit codes: the code of the stage that stopped the run (0 passed, 1 a check or the gate
# blocked, 2 invalid invocation or configuration, 3 input or infrastructure error), or 75 when
# another run holds the lock.
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
python="$root/.venv/bin/python"
config="${STREAMREC_PIPELINE_CONF:-$root/conf/pipeline/daily.yaml}"
EXIT_LOCKED=75

runner_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="${2:?run_daily.sh: --config needs a file}"; shift 2 ;;
    --config=*) config="${1#--config=}"; shift ;;
    *) runner_args+=("$1"); shift ;;
  esac
done

if [ ! -x "$python" ]; then
  echo "run_daily.sh: $python not found; run scripts/setup.sh first" >&2
  exit 2
fi
if ! command -v flock >/dev/null 2>&1; then
  echo "run_daily.sh: flock(1) not found; install util-linux" >&2
  exit 2
fi

lock="${STREAMREC_PIPELINE_LOCK:-}"
if [ -z "$lock" ]; then
  # Also checks the configuration: a config error exits 2 here, before anything runs.
  lock="$("$python" -m streamrec_spark.pipeline.runner lock-path --config "$config" --root "$root")" || exit $?
fi
mkdir -p "$(dirname "$lock")" || exit 3

exec 9>>"$lock"
if ! flock --nonblock 9; then
  echo "run_daily.sh: lock $lock is taken by another daily run; nothing was run (exit $EXIT_LOCKED), retry after it ends" >&2
  exit "$EXIT_LOCKED"
fi
echo "run_daily.sh: holding the lock $lock (pid $$)" >&2

"$python" -m streamrec_spark.pipeline.runner run --config "$config" --root "$root" "${runner_args[@]}"
exit $?
