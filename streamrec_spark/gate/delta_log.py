"""Checks of a Delta table's transaction log for damage that Delta's reader does not report.

Delta 3.3 replays an empty commit file (``_delta_log/<version>.json``) as a commit without
actions, so emptying the latest commit hides its rows without an error. It also replays a
commit file that was cut at a line break, so the actions after the cut are lost without an
error. :func:`find_log_damage` detects both before the gate reads a table.
"""

from __future__ import annotations

import json
import logging
import re

from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

_COMMIT_FILE = re.compile(r"^(\d{20})\.json$")
# Classic (<v>.checkpoint.parquet), multi-part (<v>.checkpoint.<part>.<parts>.parquet) and
# V2 (<v>.checkpoint.<uuid>.json or .parquet) checkpoint files.
_CHECKPOINT_FILE = re.compile(r"^(\d{20})\.checkpoint(\.[^.]+)*\.(parquet|json)$")


def _hadoop_file_system(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path, hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def _list_log(spark: SparkSession, log_path: str) -> tuple[dict[int, int], int]:
    """Return {commit version: file size in bytes} and the latest checkpoint version (-1 if none)."""
    folder, file_system = _hadoop_file_system(spark, log_path)
    commits: dict[int, int] = {}
    checkpoint = -1
    for status in file_system.listStatus(folder):
        name = status.getPath().getName()
        commit = _COMMIT_FILE.match(name)
        if commit is not None:
            commits[int(commit.group(1))] = int(status.getLen())
            continue
        checkpoint_match = _CHECKPOINT_FILE.match(name)
        if checkpoint_match is not None:
            checkpoint = max(checkpoint, int(checkpoint_match.group(1)))
    return commits, checkpoint


def _read_version_checksum(spark: SparkSession, log_path: str, version: int) -> dict | None:
    """Return the parsed ``<version>.crc`` file that Delta writes after a commit, or None."""
    crc_path, file_system = _hadoop_file_system(spark, f"{log_path}/{version:020d}.crc")
    if not file_system.exists(crc_path):
        return None
    stream = file_system.open(crc_path)
    try:
        text = spark.sparkContext._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()
    try:
        checksum = json.loads(text)
    except ValueError:
        return {"unparsable": True}
    return checksum if isinstance(checksum, dict) else {"unparsable": True}


def _snapshot_size(spark: SparkSession, path: str) -> tuple[int, int]:
    """Return the number of data files and their total bytes in the table's current snapshot."""
    from delta.tables import DeltaTable

    row = DeltaTable.forPath(spark, path).detail().select("numFiles", "sizeInBytes").first()
    return int(row["numFiles"]), int(row["sizeInBytes"])


def find_log_damage(spark: SparkSession, path: str) -> str | None:
    """Describe, in one phrase, damage to the Delta log of the table at ``path``, or return None.

    Two checks, on the commits that a read of the latest version replays (those after the
    latest checkpoint):

    - a commit file of 0 bytes is damage, because Delta always writes at least one action;
    - the data-file count and byte total of the current snapshot must equal those in the
      latest version's checksum file (``<version>.crc``), which Delta writes after each
      commit. A commit file cut at a line break replays fewer files than that.

    The checksum check is skipped when the latest version has no checksum file (a writer that
    does not write them, or a commit whose writer stopped before it). When another writer
    commits between the listing and the snapshot, the check is repeated once on the new latest
    version. Errors of Hadoop or Delta propagate to the caller.
    """
    log_path = path.rstrip("/") + "/_delta_log"
    for attempt in range(2):
        commits, checkpoint = _list_log(spark, log_path)
        replayed = sorted(version for version in commits if version > checkpoint)
        empty = [version for version in replayed if commits[version] == 0]
        if empty:
            return f"the Delta log commit file {empty[0]:020d}.json is empty"
        if not commits:
            return None
        latest = max(commits)
        checksum = _read_version_checksum(spark, log_path, latest)
        if checksum is None:
            logger.debug("no checksum file for version %d of %s; skipping its check", latest, path)
            return None
        if checksum.get("unparsable") or "numFiles" not in checksum:
            return f"the Delta log checksum file {latest:020d}.crc is not valid JSON with numFiles"
        files, size = _snapshot_size(spark, path)
        expected_files = int(checksum["numFiles"])
        expected_size = int(checksum.get("tableSizeBytes", size))
        if (files, size) == (expected_files, expected_size):
            return None
        if attempt == 0 and max(_list_log(spark, log_path)[0], default=latest) != latest:
            continue  # another writer committed meanwhile: compare again on its version
        return (
            f"the Delta log replays to {files} data files ({size} bytes) but its checksum file "
            f"{latest:020d}.crc records {expected_files} files ({expected_size} bytes), so a "
            "commit file is truncated or was edited"
        )
    return None
