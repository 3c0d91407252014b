#!/usr/bin/env bash
# Set up a working copy: a virtualenv in .venv with the package and its test tools, and the
# Delta Lake jars in .cache/jars. Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

python_bin=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python_bin" -m venv .venv
fi
stamp=.venv/.installed-$(sha1sum setup.py | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test,airflow]'
  touch "$stamp"
fi

if ! ls .cache/jars/delta-spark_*.jar >/dev/null 2>&1; then
  mvn -q -f scripts/delta-jars/pom.xml dependency:copy-dependencies -Djars.dir="$PWD/.cache/jars"
fi
