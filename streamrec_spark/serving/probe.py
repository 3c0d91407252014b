"""The serving probe: time single-user requests against a saved model in one Python process.

A probe loads the candidate from its folder and builds a fixed sample of requests. The sample
is either a seeded sample of users and their latest events, built once with Spark and
collected to the driver, or a JSON Lines request file. The probe scores a few warm-up requests
untimed, then times each request with ``time.perf_counter``. It records p50, p99 and maximum latency in milliseconds, and the size
of the model folder in MB (1 MB = 1,000,000 bytes), as one row of the ``serving_probes``
Delta table. The gate compares those numbers with its limits. The probe itself judges nothing
and only reports ``OK`` (measured) or ``ERRORED`` (could not measure, with a reason code).

Latency here is the model's own scoring time (``Recommender.recommend_for_history``) in this
process. It excludes network, serialisation and feature fetching of a real serving stack.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from streamrec_spark.errors import (
    EXIT_INFRASTRUCTURE,
    EXIT_PASSED,
    InputDataError,
    InvalidRequestError,
)
from streamrec_spark.models import Recommender, load_model, model_size_bytes
from streamrec_spark.models.base import Interaction, UserContext, parse_history

logger = logging.getLogger(__name__)

STATUS_OK = "OK"
STATUS_ERRORED = "ERRORED"
BYTES_PER_MB = 1_000_000
SERVING_PROBES_TABLE = "serving_probes"

# Reason codes of an ERRORED probe that are not an InputDataError raised by a library call.
REASON_MODEL_NOT_FOUND = "MODEL_NOT_FOUND"
REASON_EMPTY_SAMPLE = "EMPTY_SAMPLE"
REASON_SAMPLING_FAILED = "SAMPLING_FAILED"
REASON_INVALID_REQUEST_FILE = "INVALID_REQUEST_FILE"
REASON_SCORING_FAILED = "SCORING_FAILED"


@dataclass(frozen=True)
class ServingRequest:
    """One single-user request: the user's context and history, oldest event first."""

    context: UserContext
    history: tuple[Interaction, ...]


@dataclass(frozen=True)
class ProbeSettings:
    """How many requests to time and how each one is built.

    ``requests`` timed requests cycle through the sampled users when there are fewer users than
    requests. ``warmup`` untimed requests come first. Each history contains the user's latest
    ``history_events`` events of the ``history_days`` days before the request time. When
    ``history_days`` is None, it is the length of the model's training window.
    """

    requests: int = 1000
    warmup: int = 50
    k: int = 20
    seed: int = 17
    history_events: int = 50
    history_days: int | None = None

    def validate(self) -> None:
        """Raise InvalidRequestError naming the first setting out of range."""
        positive = {"requests": self.requests, "k": self.k, "history_events": self.history_events}
        if self.history_days is not None:
            positive["history_days"] = self.history_days
        for name, value in positive.items():
            if value < 1:
                raise InvalidRequestError(f"invalid {name} {value}: use a whole number of at least 1")
        if self.warmup < 0:
            raise InvalidRequestError(f"invalid warmup {self.warmup}: use 0 or more")


@dataclass(frozen=True)
class ProbeRequest:
    """A request to probe one saved model and store the result.

    Exactly one of ``events_path`` (a click-stream Parquet or Delta root to sample users from)
    and ``request_file`` (JSON Lines written by :func:`write_request_file`) is set. With
    ``save_requests``, the requests are also written to that JSON Lines file before timing.
    """

    model_path: str
    model_id: str
    run_id: str
    warehouse: str
    database: str = "streamrec"
    events_path: str | None = None
    request_file: str | None = None
    settings: ProbeSettings = field(default_factory=ProbeSettings)
    save_requests: str | None = None

    def validate(self) -> None:
        if (self.events_path is None) == (self.request_file is None):
            raise InvalidRequestError("give exactly one of --events and --request-file")
        for name in ("model_id", "run_id"):
            if not getattr(self, name):
                raise InvalidRequestError(f"{name} is empty; give the id the gate looks the probe up by")
        self.settings.validate()


@dataclass(frozen=True)
class LatencySummary:
    """Nearest-rank percentiles and the maximum of the timed requests, in milliseconds."""

    requests: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float


@dataclass(frozen=True)
class ProbeResult:
    """One probe: the row written to ``serving_probes``.

    The latency fields are None when the probe ERRORED before timing finished, and the size
    fields are None when the model folder does not exist.
    """

    model_id: str
    run_id: str
    status: str
    reason: str | None
    message: str | None
    model_path: str
    size_bytes: int | None
    latency: LatencySummary | None
    k: int
    sample_seed: int | None
    warmup_requests: int
    distinct_users: int
    empty_responses: int
    probed_at: datetime

    @property
    def size_mb(self) -> float | None:
        return None if self.size_bytes is None else self.size_bytes / BYTES_PER_MB

    @property
    def exit_code(self) -> int:
        return EXIT_PASSED if self.status == STATUS_OK else EXIT_INFRASTRUCTURE


def nearest_rank_percentile(values: Sequence[float], percentile: float) -> float:
    """Return the nearest-rank percentile of ``values``.

    That is the value at 1-based rank ``ceil(percentile / 100 * n)`` of the sorted values (rank
    1 for tiny percentiles): the smallest value with at least ``percentile`` % of the values at
    or below it. It is always one of the observed values, never an interpolation. The rank is
    computed on the exact decimal of ``percentile``, so 7 % of 100 values is rank 7, not 8.
    Raises ValueError for no values or a percentile outside (0, 100].
    """
    if not values:
        raise ValueError("nearest_rank_percentile needs at least one value")
    if not 0 < percentile <= 100:
        raise ValueError(f"invalid percentile {percentile}: use a number in (0, 100]")
    ordered = sorted(values)
    rank = math.ceil(Fraction(str(percentile)) * len(ordered) / 100)
    return float(ordered[max(rank, 1) - 1])


def summarize_latencies(latencies_ms: Sequence[float]) -> LatencySummary:
    """Summarise request latencies (ms) by nearest-rank p50 and p99, maximum and mean."""
    if not latencies_ms:
        raise ValueError("summarize_latencies needs at least one latency")
    return LatencySummary(
        requests=len(latencies_ms),
        p50_ms=nearest_rank_percentile(latencies_ms, 50),
        p99_ms=nearest_rank_percentile(latencies_ms, 99),
        max_ms=float(max(latencies_ms)),
        mean_ms=float(sum(latencies_ms) / len(latencies_ms)),
    )


def sample_requests(
    spark: SparkSession,
    events_path: str,
    *,
    now: datetime,
    users: int,
    seed: int,
    history_days: int,
    history_events: int,
) -> list[ServingRequest]:
    """Sample up to ``users`` users by a seeded hash and build one request for each.

    A user qualifies with at least one event in ``[now - history_days, now)`` (``now`` is a
    naive UTC datetime). The request's history is the user's latest ``history_events`` events
    of that window and its platform is the platform of the latest one. One Spark job groups
    the window by user, and only the sampled users' histories reach the driver. Requests come
    back in sample order. Raises InputDataError when the events are unreadable or lack columns.
    """
    from streamrec_spark.evaluation.inputs import read_events
    from streamrec_spark.models.batch import history_from_rows, user_histories

    events = read_events(spark, events_path)
    histories = user_histories(events, now - timedelta(days=history_days), now)
    # The structs start with the timestamp, so array_sort orders each history by time, then item.
    ordered = F.array_sort("history")
    latest = F.when(
        F.size(ordered) > history_events,
        F.slice(ordered, F.size(ordered) - history_events + 1, F.lit(history_events)),
    ).otherwise(ordered)
    order = F.xxhash64(F.lit(seed), F.col("user_id"))
    rows = (
        histories.select("user_id", latest.alias("history"), order.alias("sample_order"))
        .orderBy("sample_order", "user_id")
        .limit(users)
        .collect()
    )

    now_epoch = now.replace(tzinfo=timezone.utc).timestamp()
    requests = []
    for row in rows:
        history = tuple(history_from_rows(row["history"]))
        context = UserContext(user_id=int(row["user_id"]), now=now_epoch, platform=history[-1].platform)
        requests.append(ServingRequest(context=context, history=history))
    logger.info("sampled %d serving requests from %s (seed %d, as of %s)", len(requests), events_path, seed, now)
    return requests


def write_request_file(path: str | Path, requests: Sequence[ServingRequest]) -> Path:
    """Write ``requests`` as JSON Lines, one request per line, readable by :func:`read_request_file`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8") as out:
        for request in requests:
            context = request.context
            record = {
                "user_id": context.user_id,
                "now": context.now,
                "platform": context.platform,
                "history": [
                    {
                        "item_id": event.item_id,
                        "event_type": event.event_type,
                        "timestamp": event.timestamp,
                        "session_id": event.session_id,
                        "platform": event.platform,
                    }
                    for event in request.history
                ],
            }
            out.write(json.dumps(record, sort_keys=True) + "\n")
    logger.info("wrote %d serving requests to %s", len(requests), target)
    return target


def _parse_request(record: object) -> ServingRequest:
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, found {type(record).__name__}")
    history = parse_history(record.get("history") or ())
    context = UserContext(user_id=int(record["user_id"]), now=float(record["now"]), platform=record.get("platform"))
    return ServingRequest(context=context, history=tuple(sorted(history, key=lambda e: (e.timestamp, e.item_id))))


def read_request_file(path: str | Path) -> list[ServingRequest]:
    """Read JSON Lines requests: ``user_id``, ``now`` (epoch seconds, UTC), ``platform``, ``history``.

    Each history entry has ``item_id``, ``event_type``, ``timestamp`` (epoch seconds) and
    optionally ``session_id`` and ``platform``. Blank lines are skipped. Raises InputDataError
    (``INVALID_REQUEST_FILE``) naming the file and line of the first invalid request.
    """
    source = Path(path)
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputDataError(
            f"cannot read the request file {source}: {exc}; check the --request-file path",
            error_code=REASON_INVALID_REQUEST_FILE,
        ) from exc
    requests = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            requests.append(_parse_request(json.loads(line)))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputDataError(
                f"{source}:{number}: invalid serving request: {type(exc).__name__}: {exc}",
                error_code=REASON_INVALID_REQUEST_FILE,
            ) from exc
    return requests


@dataclass(frozen=True)
class RequestTiming:
    """Latencies of the timed requests (ms, in order) and how many returned no item."""

    latencies_ms: list[float]
    empty_responses: int


def time_requests(model: Recommender, requests: Sequence[ServingRequest], settings: ProbeSettings) -> RequestTiming:
    """Score ``settings.warmup`` requests untimed, then time ``settings.requests`` requests.

    Both passes cycle through ``requests`` in order. Each timed call is one
    ``recommend_for_history`` of ``settings.k`` items, measured with ``time.perf_counter``.
    Raises InputDataError (``SCORING_FAILED``) when the model raises on a request.
    """
    if not requests:
        raise ValueError("time_requests needs at least one request")

    def score(index: int) -> list[tuple[int, float]]:
        request = requests[index % len(requests)]
        try:
            return model.recommend_for_history(request.history, request.context, settings.k)
        except Exception as exc:  # any failure of the model's own code is the model's fault
            raise InputDataError(
                f"the model raised on the request of user {request.context.user_id}: "
                f"{type(exc).__name__}: {exc}",
                error_code=REASON_SCORING_FAILED,
            ) from exc

    for index in range(settings.warmup):
        score(index)

    latencies_ms = []
    empty = 0
    for index in range(settings.requests):
        started = time.perf_counter()
        ranked = score(index)
        latencies_ms.append((time.perf_counter() - started) * 1000.0)
        if not ranked:
            empty += 1
    return RequestTiming(latencies_ms=latencies_ms, empty_responses=empty)


def _folder_size(path: Path) -> int | None:
    return model_size_bytes(path) if path.is_dir() else None


def _build_requests(spark: SparkSession, request: ProbeRequest, model: Recommender) -> list[ServingRequest]:
    settings = request.settings
    if request.request_file is not None:
        requests = read_request_file(request.request_file)
        source = request.request_file
    else:
        days = settings.history_days or model.window.days
        try:
            requests = sample_requests(
                spark,
                request.events_path,
                now=model.window.end,
                users=settings.requests,
                seed=settings.seed,
                history_days=days,
                history_events=settings.history_events,
            )
        except InputDataError:
            raise
        except Exception as exc:  # Py4J and Spark raise many unrelated types on a corrupt input
            first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise InputDataError(
                f"sampling requests from {request.events_path} failed: {first.strip()[:300]}",
                error_code=REASON_SAMPLING_FAILED,
            ) from exc
        source = f"{request.events_path} between {model.window.end - timedelta(days=days)} and {model.window.end}"
    if not requests:
        raise InputDataError(
            f"no serving request could be built from {source}; give an events root that covers the "
            "days before the model's training window end, or a non-empty --request-file",
            error_code=REASON_EMPTY_SAMPLE,
        )
    if len(requests) < settings.requests:
        logger.warning(
            "only %d distinct users for %d timed requests; the probe cycles through them",
            len(requests),
            settings.requests,
        )
    return requests


def measure_model(spark: SparkSession, request: ProbeRequest) -> ProbeResult:
    """Load the model, build the requests, time them and return an OK or ERRORED result.

    Nothing is written. A missing or damaged model folder, unreadable events, an empty sample
    or a request the model raises on becomes an ERRORED result with a reason code. Raises
    InvalidRequestError for an invalid request.
    """
    request.validate()
    settings = request.settings
    folder = Path(request.model_path)
    size_bytes = _folder_size(folder)
    sample_seed = settings.seed if request.events_path is not None else None

    def errored(reason: str, message: str, distinct_users: int = 0) -> ProbeResult:
        logger.error("probe of model %s run %s errored: %s: %s", request.model_id, request.run_id, reason, message)
        return ProbeResult(
            model_id=request.model_id, run_id=request.run_id, status=STATUS_ERRORED, reason=reason,
            message=message, model_path=str(folder), size_bytes=size_bytes, latency=None, k=settings.k,
            sample_seed=sample_seed, warmup_requests=settings.warmup, distinct_users=distinct_users,
            empty_responses=0, probed_at=_utc_now(),
        )

    if not folder.is_dir():
        return errored(REASON_MODEL_NOT_FOUND, f"no model folder at {folder}; check the --model path")
    try:
        model = load_model(folder)
        requests = _build_requests(spark, request, model)
    except InputDataError as exc:
        return errored(exc.error_code, str(exc))

    if request.save_requests is not None:
        write_request_file(request.save_requests, requests)
    logger.info(
        "probing model %s: %d warm-up and %d timed requests over %d users, k=%d",
        request.model_id, settings.warmup, settings.requests, len(requests), settings.k,
    )
    try:
        timing = time_requests(model, requests, settings)
    except InputDataError as exc:
        return errored(exc.error_code, str(exc), distinct_users=len(requests))

    latency = summarize_latencies(timing.latencies_ms)
    logger.info(
        "probed model %s: p50 %.3f ms, p99 %.3f ms, max %.3f ms, %s bytes",
        request.model_id, latency.p50_ms, latency.p99_ms, latency.max_ms, size_bytes,
    )
    return ProbeResult(
        model_id=request.model_id, run_id=request.run_id, status=STATUS_OK, reason=None, message=None,
        model_path=str(folder), size_bytes=size_bytes, latency=latency, k=settings.k,
        sample_seed=sample_seed, warmup_requests=settings.warmup, distinct_users=len(requests),
        empty_responses=timing.empty_responses, probed_at=_utc_now(),
    )


def run_probe(spark: SparkSession, request: ProbeRequest) -> ProbeResult:
    """Probe the model of ``request`` and replace its (model_id, run_id) row in ``serving_probes``.

    Returns the result whether it is OK or ERRORED (see :func:`measure_model`). Raises
    InvalidRequestError for an invalid request and ComputationError when the Delta write fails.
    """
    from streamrec_spark.serving.store import write_probe_result

    result = measure_model(spark, request)
    write_probe_result(spark, result, warehouse=request.warehouse, database=request.database)
    return result


def _utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def format_probe(result: ProbeResult) -> str:
    """Render one probe result as ``name: value`` lines for people."""

    def number(value: float | None, unit: str) -> str:
        return "NULL" if value is None else f"{value:.3f} {unit}"

    latency = result.latency
    lines = [
        ("model", f"{result.model_id} (run {result.run_id}) at {result.model_path}"),
        ("status", result.status if result.reason is None else f"{result.status} ({result.reason})"),
        ("requests", "0" if latency is None else f"{latency.requests} timed, {result.warmup_requests} warm-up, "
                                                 f"{result.distinct_users} distinct users, k={result.k}"),
        ("p50", number(None if latency is None else latency.p50_ms, "ms")),
        ("p99", number(None if latency is None else latency.p99_ms, "ms")),
        ("max", number(None if latency is None else latency.max_ms, "ms")),
        ("size", number(result.size_mb, "MB (1 MB = 1,000,000 bytes)")),
    ]
    if result.empty_responses:
        lines.append(("empty responses", str(result.empty_responses)))
    if result.message:
        lines.append(("message", result.message))
    width = max(len(name) for name, _ in lines)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in lines)
