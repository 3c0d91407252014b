"""Calibration profile of the synthetic click stream, measured once on the KuaiRand sample.

:func:`calibrate_from_kuairand` converts the KuaiRand log with the same rules as the converter
and reduces it to a few small tables. They give the event-type shares, per-type quantiles of
``duration_seconds``, how events concentrate on users and on items within a day, and session
sizes and start times. The result is committed as ``kuairand_profile.json`` next to this module,
so the generator never reads the sample at run time. Recreate it with::

    .venv/bin/python scripts/calibrate_kuairand_profile.py

The sample is biased: a third party kept only rows with an explicit like or hate and then
applied a 15-core filter, so the measured rates describe that subset, not all of Kuaishou.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from streamrec_spark.datasets.clickstream import EVENT_TYPES
from streamrec_spark.datasets.kuairand import read_kuairand_log, to_click_stream
from streamrec_spark.errors import ConfigError

logger = logging.getLogger(__name__)

# NOTE: setup.py lists only py.typed as package data, so a non-editable install lacks this file
# and load_profile() without a path fails until "datasets/*.json" is added there.
PROFILE_RESOURCE = "kuairand_profile.json"
# Every quantile table has this many points: the 0th to the 100th percentile.
QUANTILE_POINTS = 101
# Beijing time, the zone of KuaiRand's `date` column and of the users' daily rhythm.
SOURCE_UTC_OFFSET_SECONDS = 8 * 3600
# A JSON list of numbers spread over several lines, as json.dumps(indent=...) writes it.
_NUMBER_LIST = re.compile(r"\[\s*((?:-?[0-9.eE+-]+\s*,\s*)*-?[0-9.eE+-]+)\s*\]")


@dataclass(frozen=True)
class GeneratorProfile:
    """Distributions that the synthetic generator draws from.

    Quantile tables have :data:`QUANTILE_POINTS` ascending values at evenly spaced
    probabilities from 0 to 1. The generator interpolates linearly between neighbours.
    """

    # Share of each event type among all events; the shares sum to 1.
    event_type_shares: Mapping[str, float]
    # Quantiles of duration_seconds (watch time in seconds) per event type.
    duration_seconds_quantiles: Mapping[str, tuple[float, ...]]
    # Mean number of events of a user who has at least one event that day.
    events_per_active_user: float
    # Inverse Lorenz curve of users: entry j is the fraction of the most active users that
    # accounts for the share j / 100 of a day's events.
    user_lorenz_inverse: tuple[float, ...]
    # Mean number of events of an item that has at least one event that day.
    events_per_active_item: float
    # Inverse Lorenz curve of items, defined like user_lorenz_inverse.
    item_lorenz_inverse: tuple[float, ...]
    # Mean number of events in a session (30-minute inactivity rule).
    events_per_session: float
    # Quantiles of the time from the first to the last event of a session, in seconds.
    session_span_seconds_quantiles: tuple[float, ...]
    # Quantiles of the second of the day (0 to 86400) at which sessions start, in the source's
    # local time. The generator applies them to the UTC day.
    session_start_second_quantiles: tuple[float, ...]
    # Facts about the sample the profile was measured on (file, rows, dates).
    source: Mapping[str, Any]


def lorenz_inverse(counts: Sequence[int], points: int = QUANTILE_POINTS) -> list[float]:
    """Return the inverse Lorenz curve of ``counts`` at ``points`` evenly spaced event shares.

    Entry j is the fraction of the members (most active first) that accounts for the share
    ``j / (points - 1)`` of all events, interpolated linearly between members. Counts must be
    positive.
    """
    ordered = np.sort(np.asarray(counts, dtype=float))[::-1]
    if ordered.size == 0 or ordered[-1] <= 0:
        raise ValueError("lorenz_inverse needs at least one count and only positive counts")
    event_share = np.concatenate([[0.0], np.cumsum(ordered) / ordered.sum()])
    member_share = np.arange(ordered.size + 1) / ordered.size
    targets = np.linspace(0.0, 1.0, points)
    return [float(value) for value in np.interp(targets, event_share, member_share)]


def _mean_lorenz_inverse(counts_by_day: Mapping[Any, list[int]]) -> list[float]:
    """Average the inverse Lorenz curves of several days, point by point."""
    curves = np.array([lorenz_inverse(counts) for counts in counts_by_day.values()])
    return [round(float(value), 6) for value in curves.mean(axis=0)]


def _counts_by_day(spark_rows: list[Any]) -> dict[Any, list[int]]:
    """Group collected (event_date, count) rows into a list of counts per day."""
    grouped: dict[Any, list[int]] = defaultdict(list)
    for row in spark_rows:
        grouped[row["event_date"]].append(int(row["count"]))
    return grouped


def _rounded(values: Sequence[float]) -> list[float]:
    return [round(float(value), 3) for value in values]


def calibrate_from_kuairand(spark: SparkSession, log_path: str) -> dict[str, Any]:
    """Measure the generator's distributions on the KuaiRand log at ``log_path``.

    Returns a JSON-ready dict with the fields of :class:`GeneratorProfile` plus a ``notes``
    list. Every aggregation runs in Spark. Only the per-day counts of users and items (a few
    thousand rows for the embedded sample) are collected, to compute the Lorenz curves.
    """
    logger.info("calibrating the synthetic profile from %s", log_path)
    log_df = read_kuairand_log(spark, log_path)
    events = to_click_stream(log_df).cache()
    probabilities = [index / (QUANTILE_POINTS - 1) for index in range(QUANTILE_POINTS)]

    type_rows = (
        events.groupBy("event_type")
        .agg(
            F.count(F.lit(1)).alias("events"),
            F.percentile("duration_seconds", probabilities).alias("quantiles"),
        )
        .collect()
    )
    # Spark returns groups in no fixed order, so sort them to keep the JSON file stable.
    type_rows.sort(key=lambda row: EVENT_TYPES.index(row["event_type"]))
    total_events = sum(row["events"] for row in type_rows)
    event_type_shares = {
        row["event_type"]: round(row["events"] / total_events, 6) for row in type_rows
    }
    duration_quantiles = {row["event_type"]: _rounded(row["quantiles"]) for row in type_rows}

    user_days = _counts_by_day(events.groupBy("event_date", "user_id").count().collect())
    item_days = _counts_by_day(events.groupBy("event_date", "item_id").count().collect())
    user_day_count = sum(len(counts) for counts in user_days.values())
    item_day_count = sum(len(counts) for counts in item_days.values())

    sessions = events.groupBy("session_id").agg(
        F.count(F.lit(1)).alias("events"),
        (F.max("event_ts").cast("double") - F.min("event_ts").cast("double")).alias("span"),
        F.pmod(
            F.min("event_ts").cast("double") + F.lit(SOURCE_UTC_OFFSET_SECONDS), F.lit(86400)
        ).alias("start_second"),
    )
    session_row = sessions.agg(
        F.count(F.lit(1)).alias("sessions"),
        F.percentile("span", probabilities).alias("span_quantiles"),
        F.percentile("start_second", probabilities).alias("start_quantiles"),
    ).first()

    source_row = log_df.agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct("user_id").alias("users"),
        F.countDistinct("video_id").alias("items"),
        F.min("date").alias("first_date"),
        F.max("date").alias("last_date"),
        F.countDistinct("date").alias("dates"),
    ).first()
    events.unpersist()

    profile = {
        "event_type_shares": event_type_shares,
        "duration_seconds_quantiles": duration_quantiles,
        "events_per_active_user": round(total_events / user_day_count, 4),
        "user_lorenz_inverse": _mean_lorenz_inverse(user_days),
        "events_per_active_item": round(total_events / item_day_count, 4),
        "item_lorenz_inverse": _mean_lorenz_inverse(item_days),
        "events_per_session": round(total_events / session_row["sessions"], 4),
        "session_span_seconds_quantiles": _rounded(session_row["span_quantiles"]),
        "session_start_second_quantiles": _rounded(session_row["start_quantiles"]),
        "source": {
            "dataset": "KuaiRand-27K, standard-policy log, like/hate rows, 15-core "
            "(Gao et al., CIKM '22, doi:10.1145/3511808.3557624, CC BY-SA 4.0)",
            "file": Path(log_path).name,
            "log_rows": source_row["rows"],
            "click_stream_events": total_events,
            "users": source_row["users"],
            "items": source_row["items"],
            "dates": source_row["dates"],
            "first_date": str(source_row["first_date"]),
            "last_date": str(source_row["last_date"]),
            "user_days": user_day_count,
            "item_days": item_day_count,
            "sessions": session_row["sessions"],
        },
        "notes": [
            "Measured on the click stream converted from the log (one view per row plus "
            "click, complete and skip events), per event_date as the log gives it.",
            "Lorenz curves and per-active-user and per-active-item means are per day, "
            "averaged over the dates of the sample.",
            "Sessions follow the converter's 30-minute inactivity rule; start seconds are "
            "Beijing time (UTC+8).",
            "Platform is not measured: KuaiRand has no platform, and the generator uses the "
            "same synthetic per-user assignment as the converter.",
        ],
    }
    logger.info(
        "calibrated from %d events: %.2f events per active user-day, %.2f per active item-day",
        total_events,
        profile["events_per_active_user"],
        profile["events_per_active_item"],
    )
    return profile


def _join_number_list(match: re.Match[str]) -> str:
    return "[" + ", ".join(part.strip() for part in match.group(1).split(",")) + "]"


def write_profile(profile: Mapping[str, Any], path: str | Path) -> None:
    """Write ``profile`` as indented JSON to ``path``, each list of numbers on one line."""
    text = json.dumps(profile, indent=1)
    text = _NUMBER_LIST.sub(_join_number_list, text)
    Path(path).write_text(text + "\n", encoding="utf-8")
    logger.info("wrote the generator profile to %s", path)


def _check_quantiles(
    name: str, values: Any, problems: list[str], where: str
) -> tuple[float, ...]:
    """Return ``values`` as a tuple, appending to ``problems`` when it is not a quantile table."""
    if (
        not isinstance(values, list)
        or len(values) != QUANTILE_POINTS
        or not all(isinstance(value, (int, float)) for value in values)
    ):
        problems.append(f"{where}: '{name}' must be a list of {QUANTILE_POINTS} numbers")
        return ()
    if any(later < earlier for earlier, later in zip(values, values[1:])):
        problems.append(f"{where}: '{name}' must be in ascending order")
    return tuple(float(value) for value in values)


def parse_profile(data: Mapping[str, Any], where: str = "profile") -> GeneratorProfile:
    """Check a profile dict and build a :class:`GeneratorProfile` from it.

    Raises :class:`ConfigError` listing every problem, each prefixed with ``where``.
    """
    problems: list[str] = []
    required = [name for name in GeneratorProfile.__dataclass_fields__ if name not in data]
    if required:
        raise ConfigError([f"{where}: missing key '{name}'" for name in required])

    shares = data["event_type_shares"]
    if set(shares) != set(EVENT_TYPES) or abs(sum(shares.values()) - 1.0) > 1e-3:
        problems.append(
            f"{where}: 'event_type_shares' must give a share for each of {list(EVENT_TYPES)} "
            f"summing to 1, found {shares}"
        )
    durations = data["duration_seconds_quantiles"]
    duration_tables = {
        event_type: _check_quantiles(
            f"duration_seconds_quantiles.{event_type}", durations.get(event_type), problems, where
        )
        for event_type in EVENT_TYPES
    }
    tables = {
        name: _check_quantiles(name, data[name], problems, where)
        for name in (
            "user_lorenz_inverse",
            "item_lorenz_inverse",
            "session_span_seconds_quantiles",
            "session_start_second_quantiles",
        )
    }
    for name in ("events_per_active_user", "events_per_active_item", "events_per_session"):
        if not isinstance(data[name], (int, float)) or data[name] < 1:
            problems.append(f"{where}: '{name}' must be a number >= 1, found {data[name]!r}")
    if problems:
        raise ConfigError(problems)

    return GeneratorProfile(
        event_type_shares={event_type: float(shares[event_type]) for event_type in EVENT_TYPES},
        duration_seconds_quantiles=duration_tables,
        events_per_active_user=float(data["events_per_active_user"]),
        user_lorenz_inverse=tables["user_lorenz_inverse"],
        events_per_active_item=float(data["events_per_active_item"]),
        item_lorenz_inverse=tables["item_lorenz_inverse"],
        events_per_session=float(data["events_per_session"]),
        session_span_seconds_quantiles=tables["session_span_seconds_quantiles"],
        session_start_second_quantiles=tables["session_start_second_quantiles"],
        source=dict(data["source"]),
    )


def load_profile(path: str | Path | None = None) -> GeneratorProfile:
    """Load a generator profile from ``path``, or the committed KuaiRand profile by default.

    Raises :class:`ConfigError` when the file is missing, is not valid JSON or lacks a field.
    """
    if path is None:
        where = f"streamrec_spark/datasets/{PROFILE_RESOURCE}"
        text = resources.files("streamrec_spark.datasets").joinpath(PROFILE_RESOURCE).read_text(
            encoding="utf-8"
        )
    else:
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError as error:
            raise ConfigError(
                [
                    f"{where}: generator profile not found. Pass the path of a JSON file "
                    "written by scripts/calibrate_kuairand_profile.py"
                ]
            ) from error
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError([f"{where}:{error.lineno}: invalid JSON: {error.msg}"]) from error
    return parse_profile(data, where)
