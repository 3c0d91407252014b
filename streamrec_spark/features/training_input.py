"""The validated partition -> training boundary: a model trains on accepted click-stream days only.

A day of the training window is accepted when its latest completed validation run of the click
stream passed or only warned, the same rule :func:`~streamrec_spark.features.job.require_accepted`
applies to the feature window. Training skips every other day of the window (latest run failed,
or never validated) and logs each skipped day with its status, because one bad day should not
stop a 60-day window. A window without any accepted day raises PartitionNotAcceptedError.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from streamrec_spark.errors import PartitionNotAcceptedError
from streamrec_spark.features.job import CLICK_STREAM_PARTITION, latest_statuses
from streamrec_spark.validation.store import ResultStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingDays:
    """The days of a training window, split by their latest validation run.

    ``skipped`` maps each day that is not accepted to its latest run status, or None when the
    day was never validated.
    """

    dataset: str
    accepted: tuple[date, ...]
    skipped: dict[date, str | None]

    def describe_skipped(self) -> str:
        return ", ".join(
            f"{day} ({'never validated' if status is None else 'latest run ' + status})"
            for day, status in sorted(self.skipped.items())
        )


def window_dates(first: date, days: int) -> tuple[date, ...]:
    """Return the ``days`` consecutive dates that start with ``first``."""
    return tuple(first + timedelta(days=offset) for offset in range(days))


def training_days(store: ResultStore, dataset: str, dates: tuple[date, ...]) -> TrainingDays:
    """Split ``dates`` into the accepted days of ``dataset`` and the skipped ones.

    Raises PartitionNotAcceptedError (exit code 1) when no day is accepted.
    """
    accepted_runs = store.accepted_runs(dataset, min(dates), max(dates))
    accepted = tuple(day for day in dates if day in accepted_runs)
    rejected = [day for day in dates if day not in accepted_runs]
    days = TrainingDays(dataset, accepted, latest_statuses(store, dataset, rejected))
    if not accepted:
        raise PartitionNotAcceptedError(
            f"no {dataset} partition of the training window {dates[0]} .. {dates[-1]} is accepted "
            f"by its contract: {days.describe_skipped()}; validate them (or fix the upstream "
            "delivery and validate again) before training",
            dataset=dataset,
            statuses=days.skipped,
        )
    return days


def accepted_training_events(
    events: DataFrame,
    store: ResultStore,
    dates: tuple[date, ...],
    dataset: str = "click_stream",
) -> tuple[DataFrame, TrainingDays]:
    """Filter ``events`` to the rows whose ``event_date`` partition is an accepted day of ``dates``.

    ``events`` is the click stream read with its partition column, so the filter prunes the
    skipped days' folders. Logs a warning that lists every skipped day. Raises
    PartitionNotAcceptedError when no day of ``dates`` is accepted.
    """
    days = training_days(store, dataset, dates)
    if days.skipped:
        logger.warning(
            "training skips %d of %d %s days of the window %s .. %s, whose latest validation did "
            "not accept them: %s", len(days.skipped), len(dates), dataset, dates[0], dates[-1],
            days.describe_skipped(),
        )
    logger.info("training reads %d accepted %s days of %s .. %s", len(days.accepted), dataset,
                dates[0], dates[-1])
    accepted_events = events.where(F.col(CLICK_STREAM_PARTITION).isin(list(days.accepted)))
    return accepted_events, days
