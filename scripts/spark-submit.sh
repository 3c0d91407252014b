#!/usr/bin/env bash
# spark-submit from the project's virtualenv with the jars that scripts/setup.sh cached: Delta
# and the histogram and key-set accumulators built from jvm/.
# Usage: scripts/spark-submit.sh [spark-submit options] jobs/validate_partition.py [job options]
# On a cluster, use the cluster's spark-submit with --packages io.delta:delta-spark_2.12:3.3.2
# (or --jars with the same two jars) and install this package on the driver. Add
# .cache/jars/streamrec-spark-jvm-1.jar to --jars (executors need it too), or histograms and exact
# key counts fall back to plain aggregates and a shuffle pass.
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

# The driver JVM logs at WARN through conf/log4j2.properties. $STREAMREC_LOG4J2_CONF names
# another file, and an empty value keeps Spark's default (INFO). The option goes in front of
# a spark.driver.extraJavaOptions or --driver-java-options the caller gives, so the caller's
# own options, a -Dlog4j.configurationFile included, still apply.
# NOTE: a spark.driver.extraJavaOptions set only in spark-defaults.conf is replaced, not kept.
args=("$@")
log4j_conf="${STREAMREC_LOG4J2_CONF-$root/conf/log4j2.properties}"
if [ -n "$log4j_conf" ]; then
  log4j_option="-Dlog4j.configurationFile=\"$log4j_conf\""
  key="spark.driver.extraJavaOptions"
  merged=false
  for ((i = 0; i < ${#args[@]}; i++)); do
    next=$((i + 1))
    case "${args[i]}" in
      --conf)
        if [[ "${args[next]:-}" == "$key="* ]]; then
          args[next]="$key=$log4j_option ${args[next]#"$key="}"; merged=true
        fi
        i=$next ;;
      --conf="$key="*) args[i]="--conf=$key=$log4j_option ${args[i]#"--conf=$key="}"; merged=true ;;
      --driver-java-options) args[next]="$log4j_option ${args[next]:-}"; merged=true; i=$next ;;
      --driver-java-options=*) args[i]="--driver-java-options=$log4j_option ${args[i]#*=}"; merged=true ;;
      --py-files | --files | --archives | --jars) i=$next ;;
      *.py) break ;;  # the job file, after which the job's own arguments follow
    esac
  done
  if [ "$merged" = false ]; then
    args=(--conf "$key=$log4j_option" "${args[@]}")
  fi
fi
exec "$root/.venv/bin/spark-submit" --jars "$jars" "${args[@]}"
