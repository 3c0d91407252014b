"""Webhook alerts for a blocked model and a failed critical feed, and the Delta ``alerts`` table.

Messages follow the Slack incoming-webhook format: a JSON object with a plain ``text`` (the
notification and the fallback for clients without blocks) and ``blocks`` (Block Kit header,
section and context blocks). Any endpoint that accepts that JSON works.

:func:`send_alert` never raises. It keeps the webhook URL, which is the credential, out of logs
and results: logs name the host only, and error texts have the URL and its path removed. It posts with the standard library (``urllib``),
with a timeout per attempt and bounded retries with exponential backoff on connection
errors, timeouts, 429 and 5xx. Other statuses are not retried. The outcome is an
:class:`AlertResult` that :func:`write_alert` records, so a failed alert is visible in SQL but
never changes the decision that caused it.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from streamrec_spark.gate.config import AlertConfig

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

KIND_GATE_BLOCKED = "gate_blocked"
KIND_FEED_FAILED = "feed_failed"
ALERTS_TABLE = "alerts"

# Outcome codes of AlertResult.reason, stored in the alerts table.
SENT = "SENT"
NO_WEBHOOK_URL = "NO_WEBHOOK_URL"
INVALID_WEBHOOK_URL = "INVALID_WEBHOOK_URL"
REJECTED = "REJECTED"
RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"
SEND_FAILED = "SEND_FAILED"

# Slack Block Kit limits: 50 blocks per message, 150 characters in a header, 3000 in a
# section's text and 2000 in each of its fields. Failed rules past MAX_LISTED are summarised
# in one line.
MAX_LISTED = 20
_HEADER_LIMIT = 150
_SECTION_LIMIT = 3000
_FIELD_LIMIT = 2000
# A 429's Retry-After is honoured up to this many seconds, so one alert cannot stall a run.
MAX_RETRY_AFTER_SECONDS = 30.0
# Bytes of a response body read before the connection is closed (Slack's webhook returns "ok").
_RESPONSE_READ_LIMIT = 4096


class FailedCheck(Protocol):
    """A failed data-validation check: an ``ExpectationResult`` or an ``expectation_results`` row."""

    expectation_id: str
    status: str
    reason_code: str
    observed_value: float | None
    threshold_low: float | None
    threshold_high: float | None
    message: str


class FailedRule(Protocol):
    """A gate comparison, as ``streamrec_spark.gate.rules.Comparison`` defines it."""

    rule: str
    kind: str
    candidate_value: float | None
    champion_value: float | None
    floor: float | None
    max_regression: float | None
    upper_limit: float | None
    passed: bool
    reason_code: str | None
    detail: str | None


@dataclass(frozen=True)
class AlertMessage:
    """One webhook message and the ids it is about, for the ``alerts`` table."""

    kind: str
    text: str
    blocks: tuple[dict[str, Any], ...]
    gate: str | None = None
    model_id: str | None = None
    run_id: str | None = None
    dataset: str | None = None
    partition_date: date | None = None

    def payload(self) -> dict[str, Any]:
        """Return the JSON body that the webhook receives."""
        return {"text": self.text, "blocks": list(self.blocks)}


@dataclass(frozen=True)
class AlertResult:
    """The outcome of :func:`send_alert`.

    ``attempts`` counts HTTP attempts (0 when nothing was posted), ``status_code`` is the last
    HTTP status received (None after a connection error or timeout), ``error`` describes the
    last failure without the URL, and ``reason`` is one of the module's outcome codes.
    """

    sent: bool
    attempts: int
    status_code: int | None
    error: str | None
    reason: str = field(default=SENT)


def _escape(text: str) -> str:
    # Slack's formatting reference: &, < and > are control characters in text objects and
    # must be sent as HTML entities unless they are meant as markup.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.6g}"


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": _clip(_escape(text), _HEADER_LIMIT)}}


def _section(markdown: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(markdown, _SECTION_LIMIT)}}


def _fields(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": _clip(f"*{name}*\n{_escape(value)}", _FIELD_LIMIT)} for name, value in pairs
        ],
    }


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(_escape(text), _SECTION_LIMIT)}]}


# Comparison kinds (streamrec_spark.gate.rules) whose numbers have no champion side: the alert
# shows the rule's own description, for example "DIR test dir_recency failed: failure rate 0.6
# ... is above the allowed maximum 0.1", instead of candidate and champion values.
_DESCRIBED_KINDS = frozenset({"behavioral", "data_validation"})


def _rule_values(rule: FailedRule) -> list[str]:
    if rule.kind in _DESCRIBED_KINDS and rule.detail:
        return [rule.detail]
    values = [f"candidate {_number(rule.candidate_value)}", f"champion {_number(rule.champion_value)}"]
    if rule.floor is not None:
        values.append(f"floor {_number(rule.floor)}")
    if rule.max_regression is not None:
        values.append(f"max regression {_number(rule.max_regression)}")
    if rule.upper_limit is not None:
        values.append(f"limit {_number(rule.upper_limit)}")
    return values


def build_gate_alert(
    gate: str,
    model_id: str,
    comparisons: Sequence[FailedRule],
    *,
    run_id: str | None = None,
    no_baseline: bool = False,
) -> AlertMessage:
    """Build the message for a blocked model from the gate's comparisons.

    Only the comparisons that did not pass are listed, each with its reason code. Metric, slice
    and serving rules show the candidate value, champion value, floor, allowed regression or
    limit. Behavioral and data-validation rules show their description instead: which test or
    dataset failed, what was measured and the threshold. The first ``MAX_LISTED`` get a block
    each and the rest are counted.
    """
    failed = [comparison for comparison in comparisons if not comparison.passed]
    title = f"Gate {gate} blocked model {model_id}"
    fields = [("Gate", gate), ("Model", model_id), ("Failed rules", str(len(failed)))]
    if run_id is not None:
        fields.insert(2, ("Run", run_id))
    blocks: list[dict[str, Any]] = [_header(title), _fields(fields)]
    lines = []
    for rule in failed[:MAX_LISTED]:
        code = rule.reason_code or "FAILED"
        values = _rule_values(rule)
        markdown = f"*{_escape(rule.rule)}* `{_escape(code)}`\n{_escape(', '.join(values))}"
        if rule.detail and values != [rule.detail]:
            markdown += f"\n{_escape(rule.detail)}"
        blocks.append(_section(markdown))
        lines.append(f"- {rule.rule} {code}: {', '.join(values)}")
    if len(failed) > MAX_LISTED:
        more = f"{len(failed) - MAX_LISTED} more failed rules are in the gate's comparisons table."
        blocks.append(_context(more))
        lines.append(more)
    if no_baseline:
        note = "No champion existed, so only the floors and limits applied."
        blocks.append(_context(note))
        lines.append(note)
    text = "\n".join([f"{title}: {len(failed)} failed rule{'' if len(failed) == 1 else 's'}.", *lines])
    return AlertMessage(
        kind=KIND_GATE_BLOCKED, text=_escape(text), blocks=tuple(blocks), gate=gate, model_id=model_id, run_id=run_id
    )


def _check_values(check: FailedCheck) -> str:
    values = [f"observed {_number(check.observed_value)}"]
    if check.threshold_low is not None:
        values.append(f"min {_number(check.threshold_low)}")
    if check.threshold_high is not None:
        values.append(f"max {_number(check.threshold_high)}")
    return ", ".join(values)


def build_feed_alert(
    dataset: str,
    partition_date: date,
    failed_checks: Sequence[FailedCheck],
    *,
    run_id: str | None = None,
    run_error: str | None = None,
) -> AlertMessage:
    """Build the message for a critical feed whose partition failed validation.

    ``failed_checks`` are the checks that stopped the pipeline, each listed with its reason
    code, observed value, thresholds and message. ``run_error`` describes a run that errored
    before any check could run (for example unreadable input).
    """
    title = f"Feed {dataset} failed validation for {partition_date.isoformat()}"
    fields = [("Dataset", dataset), ("Partition date", partition_date.isoformat()),
              ("Failed checks", str(len(failed_checks)))]
    if run_id is not None:
        fields.insert(2, ("Run", run_id))
    blocks: list[dict[str, Any]] = [_header(title), _fields(fields)]
    lines = []
    if run_error:
        blocks.append(_section(f"*Run errored*\n{_escape(run_error)}"))
        lines.append(f"Run errored: {run_error}")
    for check in failed_checks[:MAX_LISTED]:
        values = _check_values(check)
        markdown = (
            f"*{_escape(check.expectation_id)}* `{_escape(check.reason_code)}` ({_escape(check.status)})\n"
            f"{_escape(values)}\n{_escape(check.message)}"
        )
        blocks.append(_section(markdown))
        lines.append(f"- {check.expectation_id} {check.reason_code}: {values}")
    if len(failed_checks) > MAX_LISTED:
        more = f"{len(failed_checks) - MAX_LISTED} more failed checks are in the expectation_results table."
        blocks.append(_context(more))
        lines.append(more)
    blocks.append(_context("The pipeline stopped before training."))
    text = "\n".join([f"{title}: {len(failed_checks)} failed checks; the pipeline stopped before training.", *lines])
    return AlertMessage(
        kind=KIND_FEED_FAILED,
        text=_escape(text),
        blocks=tuple(blocks),
        run_id=run_id,
        dataset=dataset,
        partition_date=partition_date,
    )


def load_feed_alert(spark: SparkSession, warehouse: str | Path, dataset: str, partition_date: date) -> AlertMessage:
    """Build the feed alert from the validation tables under ``warehouse``.

    It lists the blocking checks that failed or errored in the latest run (by ``started_at``)
    of ``dataset`` for ``partition_date``, and the run's error code and message when the run
    errored. With no recorded run, the message states that no run was found. Raises ComputationError when a table
    exists but cannot be read.
    """
    from pyspark.sql import functions as F

    from streamrec_spark import delta_tables
    from streamrec_spark.errors import ComputationError
    from streamrec_spark.validation.results import ERRORED, FAILED
    from streamrec_spark.validation.store import EXPECTATION_RESULTS, RUNS

    runs_path = delta_tables.table_path(warehouse, RUNS)
    results_path = delta_tables.table_path(warehouse, EXPECTATION_RESULTS)
    partition = (F.col("dataset") == F.lit(dataset)) & (F.col("partition_date") == F.lit(partition_date))
    try:
        latest = []
        if delta_tables.table_exists(spark, runs_path):
            runs = spark.read.format("delta").load(runs_path)
            latest = runs.where(partition).orderBy(F.col("started_at").desc()).limit(1).collect()
        if not latest:
            missing = f"no validation run is recorded for {dataset} on {partition_date.isoformat()}"
            return build_feed_alert(dataset, partition_date, [], run_error=missing)
        run = latest[0]
        checks = []
        if delta_tables.table_exists(spark, results_path):
            checks = (
                spark.read.format("delta")
                .load(results_path)
                .where(partition & (F.col("run_id") == F.lit(run["run_id"])) & F.col("blocking"))
                .where(F.col("status").isin(FAILED, ERRORED))
                .orderBy("expectation_id")
                .collect()
            )
    except Exception as exc:  # py4j and Delta raise several unrelated types here
        raise ComputationError(f"reading the validation results of {dataset} under {warehouse} failed: {exc}") from exc

    run_error = f"{run['error_code']}: {run['error_message']}" if run["error_code"] else None
    return build_feed_alert(dataset, partition_date, checks, run_id=run["run_id"], run_error=run_error)


class _RejectRedirect(urllib.request.HTTPRedirectHandler):
    """Turn a redirect into an HTTPError: a webhook that redirects is misconfigured, and
    following it would resend the message to another address."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        return None


def _resolve_url(config: AlertConfig) -> str | None:
    if config.url:
        return config.url
    if config.url_env:
        return os.environ.get(config.url_env) or None
    return None


def _redact(text: str, url: str) -> str:
    """Remove the URL, and its path, which carries the webhook's token, from ``text``."""
    text = text.replace(url, "<webhook URL>")
    path = urlsplit(url).path
    return text.replace(path, "<path>") if len(path) > 1 else text


def _retry_after(error: urllib.error.HTTPError) -> float | None:
    value = error.headers.get("Retry-After") if error.headers else None
    try:
        seconds = float(value) if value is not None else None
    except ValueError:  # an HTTP date is valid too, and falls back to the backoff
        return None
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER_SECONDS)


def _post(opener: urllib.request.OpenerDirector, url: str, body: bytes, timeout: float) -> int:
    """Post ``body`` and return the status, giving up after ``timeout`` seconds in all.

    The socket timeout bounds each read only, so a server that sends a byte every few seconds
    would hold a plain request open indefinitely. The request therefore runs in a thread, and an
    attempt that outlives ``timeout`` raises TimeoutError here. The thread is a daemon, so it
    cannot keep the process alive, and it ends when its request ends.
    """
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json; charset=utf-8"}
    )
    outcome: dict[str, Any] = {}

    def attempt() -> None:
        try:
            with opener.open(request, timeout=timeout) as response:
                response.read(_RESPONSE_READ_LIMIT)
                outcome["status"] = int(response.status)
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    worker = threading.Thread(target=attempt, name="alert-post", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"timed out: no complete response within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["status"]


def send_alert(config: AlertConfig, message: AlertMessage | Mapping[str, Any]) -> AlertResult:
    """Post ``message`` to the webhook of ``config`` and return the outcome without raising.

    The URL is ``config.url``, else the environment variable named by ``config.url_env``. With
    neither, nothing is sent and the result has reason ``NO_WEBHOOK_URL``. Each attempt waits at
    most ``timeout_seconds``. A connection error, a timeout, 429 or 5xx is retried up to
    ``max_attempts`` attempts in all, waiting ``backoff_seconds * 2 ** (attempt - 1)`` before
    the next one (longer when a 429 response carries a Retry-After header, up to MAX_RETRY_AFTER_SECONDS). Any other status
    outside 2xx stops at once with reason ``REJECTED``.
    """
    try:
        return _send(config, message)
    except Exception as exc:  # an alert must never break the caller's decision or exit code
        logger.error("alert not sent: unexpected %s", type(exc).__name__)
        return AlertResult(sent=False, attempts=0, status_code=None, error=type(exc).__name__, reason=SEND_FAILED)


def _send(config: AlertConfig, message: AlertMessage | Mapping[str, Any]) -> AlertResult:
    url = _resolve_url(config)
    if url is None:
        logger.warning(
            "alert not sent: no webhook URL configured (set alerts.url or the environment variable %s)",
            config.url_env,
        )
        return AlertResult(sent=False, attempts=0, status_code=None, error=None, reason=NO_WEBHOOK_URL)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        logger.warning("alert not sent: the webhook URL is not an http or https URL")
        return AlertResult(
            sent=False,
            attempts=0,
            status_code=None,
            error="the webhook URL is not an http or https URL",
            reason=INVALID_WEBHOOK_URL,
        )

    host = parts.hostname
    payload = message.payload() if isinstance(message, AlertMessage) else dict(message)
    body = json.dumps(payload).encode("utf-8")
    opener = urllib.request.build_opener(_RejectRedirect)
    attempts = max(1, int(config.max_attempts))
    status: int | None = None
    error: str | None = None
    for attempt in range(1, attempts + 1):
        wait = config.backoff_seconds * 2 ** (attempt - 1)
        try:
            status = _post(opener, url, body, config.timeout_seconds)
            logger.info("alert sent to %s (HTTP %d, attempt %d of %d)", host, status, attempt, attempts)
            return AlertResult(sent=True, attempts=attempt, status_code=status, error=None, reason=SENT)
        except urllib.error.HTTPError as exc:
            status = exc.code
            error = f"HTTP {exc.code} {exc.reason}"
            retry_after = _retry_after(exc) if exc.code == 429 else None
            exc.close()
            if exc.code != 429 and exc.code < 500:
                logger.warning("alert to %s rejected with HTTP %d; not retried", host, exc.code)
                return AlertResult(sent=False, attempts=attempt, status_code=status, error=error, reason=REJECTED)
            if retry_after is not None:
                wait = max(wait, retry_after)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            # URLError wraps connection failures. A timeout while reading the response arrives
            # as a bare TimeoutError, and a dropped connection as an HTTPException.
            status = None
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            error = f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
        error = _redact(error, url)
        if attempt < attempts:
            logger.warning(
                "alert to %s failed on attempt %d of %d (%s); retrying in %.2f s", host, attempt, attempts, error, wait
            )
            time.sleep(wait)
    logger.warning("alert to %s not sent after %d attempts: %s", host, attempts, error)
    return AlertResult(sent=False, attempts=attempts, status_code=status, error=error, reason=RETRIES_EXHAUSTED)


def _alerts_schema():
    from pyspark.sql import types as T

    def column(name: str, data_type: T.DataType, nullable: bool, comment: str) -> T.StructField:
        return T.StructField(name, data_type, nullable=nullable, metadata={"comment": comment})

    return T.StructType(
        [
            column("alert_id", T.StringType(), False, "random id of this alert"),
            column("kind", T.StringType(), False, "gate_blocked or feed_failed"),
            column("gate", T.StringType(), True, "gate name of a gate_blocked alert"),
            column("dataset", T.StringType(), True, "feed of a feed_failed alert"),
            column("model_id", T.StringType(), True, "blocked model of a gate_blocked alert"),
            column("partition_date", T.DateType(), True, "failed partition of a feed_failed alert"),
            column("sent", T.BooleanType(), False, "true when the webhook accepted the message (2xx)"),
            column("attempts", T.LongType(), False, "HTTP attempts made; 0 when nothing was posted"),
            column("status_code", T.IntegerType(), True, "last HTTP status; NULL after a connection error or timeout"),
            column("error", T.StringType(), True, "last failure, without the webhook URL"),
            column("created_at", T.TimestampType(), False, "when the alert was recorded, UTC"),
            column("text", T.StringType(), False, "the message text as sent"),
            column("reason", T.StringType(), False, "outcome code: SENT, NO_WEBHOOK_URL, REJECTED, ..."),
            column("run_id", T.StringType(), True, "pipeline or validation run the alert is about"),
            column("payload", T.StringType(), False, "the JSON body as sent (text and blocks)"),
        ]
    )


def write_alert(
    spark: SparkSession,
    message: AlertMessage,
    result: AlertResult,
    *,
    warehouse: str | Path,
    database: str = "streamrec",
    table: str = ALERTS_TABLE,
) -> str:
    """Append one row for ``message`` and its ``result`` to ``database.table`` and return its id.

    Every alert is a separate event, so a re-run that alerts again adds a row instead of
    replacing one. Creates the table at ``<warehouse>/<table>`` and registers it when needed.
    Raises ComputationError when the Delta write fails.
    """
    from streamrec_spark import delta_tables
    from streamrec_spark.errors import ComputationError

    schema = _alerts_schema()
    alert_id = uuid.uuid4().hex
    created_at = datetime.now(timezone.utc).replace(tzinfo=None)
    record = (
        alert_id,
        message.kind,
        message.gate,
        message.dataset,
        message.model_id,
        message.partition_date,
        bool(result.sent),
        int(result.attempts),
        result.status_code,
        result.error,
        created_at,
        message.text,
        result.reason,
        message.run_id,
        json.dumps(message.payload(), sort_keys=True),
    )
    path = delta_tables.table_path(warehouse, table)
    try:
        delta_tables.ensure_table(spark, path, schema)
        delta_tables.register_table(spark, database, table, path)
        delta_tables.append(spark.createDataFrame([record], schema), path)
    except Exception as exc:  # py4j and Delta raise several unrelated types here
        raise ComputationError(f"recording the alert in {path} failed: {exc}") from exc
    logger.info("recorded %s alert %s (%s) in %s", message.kind, alert_id, result.reason, path)
    return alert_id


def send_and_record(
    spark: SparkSession,
    config: AlertConfig,
    message: AlertMessage,
    *,
    warehouse: str | Path,
    database: str = "streamrec",
    table: str = ALERTS_TABLE,
) -> AlertResult:
    """Send ``message`` and record the outcome without raising.

    A failure to record is logged as an error and the send result is still returned, because
    neither the alert nor its record may change the decision that caused it.
    """
    result = send_alert(config, message)
    try:
        write_alert(spark, message, result, warehouse=warehouse, database=database, table=table)
    except Exception as exc:  # the record is best effort, so the caller's exit code must not change
        logger.error("alert sent=%s but not recorded: %s", result.sent, exc)
    return result
