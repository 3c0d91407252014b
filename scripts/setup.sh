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

# The histogram and key-set accumulators (jvm/), rebuilt when a file under jvm/ is newer than
# the cached jar.
# Without them, validation counts histogram bins with one aggregate each and exact keys with a
# slower shuffle pass.
jvm_jar=.cache/jars/streamrec-spark-jvm-1.jar
if [ ! -f "$jvm_jar" ] || [ -n "$(find jvm -path jvm/target -prune -o -type f -newer "$jvm_jar" -print)" ]; then
  mvn -q -f jvm/pom.xml package
  mkdir -p .cache/jars
  # A rename gives the new jar a new inode, so Spark processes still reading the old one are
  # not affected.
  cp jvm/target/streamrec-spark-jvm-1.jar "$jvm_jar.tmp"
  mv "$jvm_jar.tmp" "$jvm_jar"
fi
