"""Webhook alerts posted to a real HTTP server on 127.0.0.1, and their rows in Delta."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from streamrec_spark import alerts
from streamrec_spark.alerts import (
    INVALID_WEBHOOK_URL,
    KIND_FEED_FAILED,
    KIND_GATE_BLOCKED,
    MAX_LISTED,
    NO_WEBHOOK_URL,
    REJECTED,
    RETRIES_EXHAUSTED,
    SENT,
    build_feed_alert,
    build_gate_alert,
    send_alert,
    send_and_record,
    write_alert,
)
from streamrec_spark.gate.config import AlertConfig, DataValidationRequirement
from streamrec_spark.gate.rules import (
    BehavioralRow,
    BehavioralRun,
    Comparison,
    ValidationRun,
    ValidationSummary,
    compare_behavioral,
    compare_data_validation,
)
from streamrec_spark.validation.results import ExpectationResult

SECRET_PATH = "/services/T0TEST/B0TEST/s3cr3t-t0ken"
URL_ENV = "STREAMREC_TEST_ALERT_WEBHOOK_URL"
HANG_SECONDS = 1.5
DRIP_SECONDS = 0.2


class WebhookServer:
    """A loopback webhook that responds to each POST with the next scripted action.

    An action is an HTTP status, ``"hang"`` (200 only after HANG_SECONDS), ``"drip"`` (a 200
    response sent one byte every DRIP_SECONDS) or ``"redirect"`` (302 to another path). After
    the script runs out, every POST gets 200.
    """

    def __init__(self, script=()):
        self.script = list(script)
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                with owner._lock:
                    owner.bodies.append(json.loads(body))
                    owner.paths.append(self.path)
                    action = owner.script.pop(0) if owner.script else 200
                if action == "hang":
                    time.sleep(HANG_SECONDS)
                    action = 200
                if action == "drip":
                    try:
                        for byte in b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok":
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(DRIP_SECONDS)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the client gave up
                    return
                try:
                    if action == "redirect":
                        self.send_response(302)
                        self.send_header("Location", "/elsewhere")
                    else:
                        self.send_response(action)
                        if action == 429:
                            self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and closed the connection

            def log_message(self, format, *args):  # keep the server's access log out of caplog
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{SECRET_PATH}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def config(url: str | None, **changes) -> AlertConfig:
    settings = {"url_env": URL_ENV, "url": url, "timeout_seconds": 2.0, "max_attempts": 3, "backoff_seconds": 0.01}
    settings.update(changes)
    return AlertConfig(**settings)


def comparisons() -> list[Comparison]:
    return [
        Comparison("recall_at_20", "metric", 0.14, 0.18, 0.15, 0.02, -0.04, False, "BELOW_FLOOR"),
        Comparison("ndcg_at_20", "metric", 0.2, 0.19, 0.12, 0.015, 0.01, True, None),
        Comparison("hit_rate_at_10", "metric", 0.31, 0.36, 0.30, 0.03, -0.05, False, "REGRESSION"),
        Comparison(
            "p99_latency_ms", "serving", 52.5, 40.0, None, None, 7.5, False, "LATENCY_ABOVE_LIMIT", upper_limit=45.0
        ),
    ]


def gate_message():
    return build_gate_alert("streamrec_v2_gate", "candidate-7", comparisons(), run_id="2024-05-02")


@pytest.fixture
def no_env_url(monkeypatch):
    monkeypatch.delenv(URL_ENV, raising=False)


def test_gate_alert_payload_content(no_env_url):
    with WebhookServer() as server:
        result = send_alert(config(server.url), gate_message())

    assert result.sent
    assert result.attempts == 1
    assert result.status_code == 200
    assert result.reason == SENT
    assert server.paths == [SECRET_PATH]
    body = server.bodies[0]
    assert set(body) == {"text", "blocks"}
    text = body["text"]
    assert "streamrec_v2_gate" in text
    assert "candidate-7" in text
    assert "3 failed rules" in text
    assert "recall_at_20 BELOW_FLOOR: candidate 0.14, champion 0.18, floor 0.15, max regression 0.02" in text
    assert "hit_rate_at_10 REGRESSION: candidate 0.31, champion 0.36" in text
    assert "p99_latency_ms LATENCY_ABOVE_LIMIT: candidate 52.5, champion 40, limit 45" in text
    assert "ndcg_at_20" not in text
    assert body["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Gate streamrec_v2_gate blocked model candidate-7"},
    }
    field_texts = [field["text"] for field in body["blocks"][1]["fields"]]
    assert field_texts == ["*Gate*\nstreamrec_v2_gate", "*Model*\ncandidate-7", "*Run*\n2024-05-02", "*Failed rules*\n3"]
    rule_sections = [block["text"]["text"] for block in body["blocks"][2:]]
    assert len(rule_sections) == 3
    assert rule_sections[0].startswith("*recall_at_20* `BELOW_FLOOR`")
    assert "limit 45" in rule_sections[2]


def test_behavioral_and_data_rows_read_well(no_env_url):
    rows = (
        BehavioralRow("dir_recency", "DIR", False, "failed", "FAILURE_RATE_ABOVE_MAX", 0.6, 0.1, "max_failure_rate", 100, 60),
        BehavioralRow("mft_recall_web", "MFT", False, "errored", "EMPTY_SLICE", None, 0.1, "min_value", 0, 0),
        BehavioralRow("inv_display_name", "INV", True, "passed", None, 1.0, 0.95, "min_unchanged_share", 150, 0),
    )
    tests = ("dir_recency", "mft_recall_web", "inv_display_name", "dir_more_sessions")
    failed = compare_behavioral(tests, BehavioralRun("streamrec_recommendation_v2", "run-9", rows))
    summary = ValidationSummary(
        table="/warehouse/runs", table_found=True, partition_date=date(2024, 5, 1),
        runs=(ValidationRun("click_stream", date(2024, 5, 1), "cs-run", "failed", blocking_failures=1),),
    )
    failed += compare_data_validation(DataValidationRequirement(("click_stream",)), summary)
    message = build_gate_alert("streamrec_v2_gate", "candidate-7", failed)
    with WebhookServer() as server:
        result = send_alert(config(server.url), message)

    assert result.sent
    text = server.bodies[0]["text"]
    assert "4 failed rules" in text
    assert (
        "- behavioral:dir_recency BEHAVIORAL_TEST_FAILED: DIR test dir_recency failed: failure rate "
        "0.6 is above the allowed maximum 0.1; 60 of 100 cases failed (rate 0.6)"
    ) in text
    assert (
        "- behavioral:mft_recall_web BEHAVIORAL_TEST_FAILED: MFT test mft_recall_web errored "
        "(EMPTY_SLICE): no cases; a required test must pass"
    ) in text
    assert (
        "- behavioral:dir_more_sessions INCOMPLETE_BEHAVIORAL_RESULT: required test "
        "dir_more_sessions has no result in run run-9"
    ) in text
    assert (
        "- data_validation:click_stream DATA_VALIDATION_FAILED: validation run cs-run of "
        "click_stream for 2024-05-01 failed with 1 blocking check failures"
    ) in text
    assert "inv_display_name" not in text
    assert "candidate 1" not in text
    assert "champion n/a" not in text
    sections = [block["text"]["text"] for block in server.bodies[0]["blocks"] if block["type"] == "section" and "text" in block]
    assert sections[0] == (
        "*behavioral:dir_recency* `BEHAVIORAL_TEST_FAILED`\nDIR test dir_recency failed: failure rate 0.6 "
        "is above the allowed maximum 0.1; 60 of 100 cases failed (rate 0.6)"
    )


def test_feed_alert_payload_content(no_env_url):
    failed = [
        ExpectationResult(
            expectation_id="volume_row_count_vs_reference",
            category="volume",
            type="row_count_ratio",
            column=None,
            severity="critical",
            status="failed",
            reason_code="BELOW_MIN",
            message="row count is 40% of the trailing mean",
            observed_value=0.4,
            threshold_low=0.7,
            threshold_high=1.5,
        )
    ]
    message = build_feed_alert("click_stream", date(2024, 5, 2), failed, run_id="run-1")
    with WebhookServer() as server:
        result = send_alert(config(server.url), message)

    assert result.sent
    assert message.kind == KIND_FEED_FAILED
    body = server.bodies[0]
    assert "Feed click_stream failed validation for 2024-05-02" in body["text"]
    assert "volume_row_count_vs_reference BELOW_MIN: observed 0.4, min 0.7, max 1.5" in body["text"]
    assert "stopped before training" in body["text"]
    sections = [block["text"]["text"] for block in body["blocks"] if block["type"] == "section" and "text" in block]
    assert any("row count is 40% of the trailing mean" in section for section in sections)


def test_feed_alert_for_errored_run():
    message = build_feed_alert("click_stream", date(2024, 5, 2), [], run_error="INPUT_MISSING: no files")
    assert "Run errored: INPUT_MISSING: no files" in message.text
    assert message.blocks[2]["text"]["text"] == "*Run errored*\nINPUT_MISSING: no files"


def test_retries_500_then_sends(no_env_url, caplog):
    caplog.set_level(logging.DEBUG)
    with WebhookServer([500, 500, 200]) as server:
        result = send_alert(config(server.url), gate_message())

    assert result.sent
    assert result.attempts == 3
    assert result.status_code == 200
    assert len(server.bodies) == 3
    assert server.bodies[0] == server.bodies[2]
    assert "127.0.0.1" in caplog.text
    assert server.url not in caplog.text
    assert SECRET_PATH not in caplog.text


def test_500_exhausts_attempts(no_env_url, caplog):
    caplog.set_level(logging.DEBUG)
    with WebhookServer([500] * 5) as server:
        result = send_alert(config(server.url), gate_message())

    assert not result.sent
    assert result.attempts == 3
    assert result.status_code == 500
    assert result.reason == RETRIES_EXHAUSTED
    assert result.error == "HTTP 500 Internal Server Error"
    assert len(server.bodies) == 3
    assert SECRET_PATH not in caplog.text


def test_429_is_retried(no_env_url):
    with WebhookServer([429, 200]) as server:
        result = send_alert(config(server.url), gate_message())

    assert result.sent
    assert result.attempts == 2


@pytest.mark.parametrize("status", [400, 404])
def test_client_error_not_retried(no_env_url, status, caplog):
    caplog.set_level(logging.DEBUG)
    with WebhookServer([status, 200]) as server:
        result = send_alert(config(server.url), gate_message())

    assert not result.sent
    assert result.attempts == 1
    assert result.status_code == status
    assert result.reason == REJECTED
    assert len(server.bodies) == 1
    assert SECRET_PATH not in caplog.text


def test_redirect_not_followed(no_env_url):
    with WebhookServer(["redirect"]) as server:
        result = send_alert(config(server.url), gate_message())

    assert not result.sent
    assert result.status_code == 302
    assert result.reason == REJECTED
    assert server.paths == [SECRET_PATH]


def test_hanging_server_times_out(no_env_url, caplog):
    caplog.set_level(logging.DEBUG)
    with WebhookServer(["hang", "hang", "hang"]) as server:
        started = time.monotonic()
        result = send_alert(config(server.url, timeout_seconds=0.3, max_attempts=2), gate_message())
        elapsed = time.monotonic() - started

    assert not result.sent
    assert result.attempts == 2
    assert result.status_code is None
    assert result.reason == RETRIES_EXHAUSTED
    assert "timed out" in result.error
    assert elapsed < HANG_SECONDS * 2
    assert SECRET_PATH not in caplog.text


def test_slow_drip_server_times_out(no_env_url):
    # Each byte arrives within the socket timeout, so only a deadline per attempt ends it.
    with WebhookServer(["drip", "drip"]) as server:
        started = time.monotonic()
        result = send_alert(config(server.url, timeout_seconds=0.5, max_attempts=2), gate_message())
        elapsed = time.monotonic() - started

    assert not result.sent
    assert result.attempts == 2
    assert result.reason == RETRIES_EXHAUSTED
    assert "no complete response within 0.5 s" in result.error
    assert elapsed < 3


def test_connection_refused_is_retried(no_env_url, caplog):
    caplog.set_level(logging.DEBUG)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}{SECRET_PATH}"

    result = send_alert(config(url, max_attempts=2), gate_message())

    assert not result.sent
    assert result.attempts == 2
    assert result.status_code is None
    assert result.reason == RETRIES_EXHAUSTED
    assert "refused" in result.error.lower()
    assert SECRET_PATH not in result.error
    assert SECRET_PATH not in caplog.text


def test_no_url_is_not_sent(no_env_url, caplog):
    caplog.set_level(logging.DEBUG)
    result = send_alert(config(None), gate_message())

    assert not result.sent
    assert result.attempts == 0
    assert result.error is None
    assert result.reason == NO_WEBHOOK_URL
    assert URL_ENV in caplog.text


def test_url_from_environment(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    with WebhookServer() as server:
        monkeypatch.setenv(URL_ENV, server.url)
        result = send_alert(config(None), gate_message())

    assert result.sent
    assert server.paths == [SECRET_PATH]
    assert SECRET_PATH not in caplog.text


def test_invalid_url_not_sent(no_env_url, caplog):
    caplog.set_level(logging.DEBUG)
    result = send_alert(config("ftp://127.0.0.1/secret-ftp-path"), gate_message())

    assert not result.sent
    assert result.attempts == 0
    assert result.reason == INVALID_WEBHOOK_URL
    assert "secret-ftp-path" not in caplog.text


def test_redact_removes_url_and_path():
    url = "http://127.0.0.1:9/services/T/B/token"
    assert alerts._redact(f"failed {url} and /services/T/B/token", url) == "failed <webhook URL> and <path>"


def test_many_failed_rules_are_capped():
    failed = [
        Comparison(f"rule_{index}", "metric", 0.1, 0.2, 0.15, 0.02, -0.1, False, "BELOW_FLOOR")
        for index in range(MAX_LISTED + 7)
    ]
    message = build_gate_alert("streamrec_v2_gate", "candidate-7", failed, no_baseline=True)

    assert len(message.blocks) <= 50
    assert "7 more failed rules" in message.text
    assert f"rule_{MAX_LISTED - 1} " in message.text
    assert f"rule_{MAX_LISTED} " not in message.text
    assert "No champion existed" in message.text


def test_markdown_characters_are_escaped():
    failed = [Comparison("recall_at_20", "metric", 0.1, None, 0.15, 0.02, -0.05, False, "BELOW_FLOOR", detail="a<b & c>d")]
    message = build_gate_alert("gate", "model", failed)

    assert "a&lt;b &amp; c&gt;d" in message.blocks[2]["text"]["text"]


def test_recorded_alert_has_no_url(spark, tmp_path, no_env_url, caplog):
    caplog.set_level(logging.DEBUG)
    warehouse = str(tmp_path / "warehouse")
    message = gate_message()
    with WebhookServer([500, 500, 500]) as server:
        result = send_and_record(
            spark, config(server.url), message, warehouse=warehouse, database="alerts_test"
        )
    feed = build_feed_alert("click_stream", date(2024, 5, 2), [])
    feed_id = write_alert(spark, feed, send_alert(config(None), feed), warehouse=warehouse, database="alerts_test")

    assert not result.sent
    rows = spark.sql("SELECT * FROM alerts_test.alerts ORDER BY kind").collect()
    assert len(rows) == 2
    feed_row, gate_row = rows
    assert gate_row["kind"] == KIND_GATE_BLOCKED
    assert gate_row["gate"] == "streamrec_v2_gate"
    assert gate_row["model_id"] == "candidate-7"
    assert gate_row["sent"] is False
    assert gate_row["attempts"] == 3
    assert gate_row["status_code"] == 500
    assert gate_row["reason"] == RETRIES_EXHAUSTED
    assert gate_row["text"] == message.text
    assert json.loads(gate_row["payload"]) == message.payload()
    assert feed_row["alert_id"] == feed_id
    assert feed_row["kind"] == KIND_FEED_FAILED
    assert feed_row["dataset"] == "click_stream"
    assert feed_row["partition_date"] == date(2024, 5, 2)
    assert feed_row["reason"] == NO_WEBHOOK_URL
    assert feed_row["attempts"] == 0
    for row in rows:
        for value in row.asDict().values():
            assert SECRET_PATH not in str(value)
    assert SECRET_PATH not in caplog.text
    types = {field.name: field.dataType.simpleString() for field in spark.table("alerts_test.alerts").schema}
    assert types["attempts"] == "bigint"
    assert types["status_code"] == "int"
    assert types["created_at"] == "timestamp"


def test_send_and_record_survives_store_failure(no_env_url, tmp_path, caplog, spark):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the warehouse folder should be")
    with WebhookServer() as server:
        result = send_and_record(
            spark, config(server.url), gate_message(), warehouse=str(blocked), database="alerts_test"
        )

    assert result.sent
    assert "not recorded" in caplog.text


def test_feed_alert_from_validation_tables(spark, tmp_path):
    from datetime import datetime

    from streamrec_spark.alerts import load_feed_alert
    from streamrec_spark.validation.store import ResultStore, RunRecord

    warehouse = str(tmp_path / "warehouse")
    store = ResultStore(spark, warehouse, "alerts_feed_test")
    moment = datetime(2024, 5, 3, 2, 0)

    def record(run_id: str, day: date, status: str, **changes) -> RunRecord:
        return RunRecord(
            run_id=run_id, dataset="click_stream", partition_date=day, contract_version="1", status=status,
            exit_code=1, as_of=moment, started_at=moment, finished_at=moment, input_path="/data/x",
            code_version=None, spark_app_id=None, **changes,
        )

    def result(expectation_id: str, severity: str, status: str) -> ExpectationResult:
        return ExpectationResult(
            expectation_id=expectation_id, category="volume", type="row_count", column=None, severity=severity,
            status=status, reason_code="ROW_COUNT_OUT_OF_RANGE" if status != "passed" else "OK",
            message=f"{expectation_id} is {status}", observed_value=400.0, threshold_low=1000.0,
        )

    store.write_run(
        record("failed-run", date(2024, 5, 2), "failed"),
        [result("volume_rows", "error", "failed"), result("drift_platform", "warn", "failed"),
         result("schema_columns", "error", "passed")],
        [],
    )
    store.append_run(record("errored-run", date(2024, 5, 1), "errored", error_code="INPUT_MISSING",
                            error_message="no Parquet files under /data/x"))

    failed = load_feed_alert(spark, warehouse, "click_stream", date(2024, 5, 2))
    errored = load_feed_alert(spark, warehouse, "click_stream", date(2024, 5, 1))
    missing = load_feed_alert(spark, warehouse, "click_stream", date(2024, 4, 30))

    assert failed.run_id == "failed-run"
    assert "1 failed checks" in failed.text
    assert "volume_rows ROW_COUNT_OUT_OF_RANGE: observed 400, min 1000" in failed.text
    assert "drift_platform" not in failed.text
    assert "schema_columns" not in failed.text
    assert errored.run_id == "errored-run"
    assert "Run errored: INPUT_MISSING: no Parquet files under /data/x" in errored.text
    assert "no validation run is recorded for click_stream on 2024-04-30" in missing.text


@pytest.mark.parametrize(
    ("header", "expected"),
    [("2", 2.0), ("120", alerts.MAX_RETRY_AFTER_SECONDS), ("nan", None), ("-1", None),
     ("Wed, 21 Oct 2015 07:28:00 GMT", None), (None, None)],
)
def test_retry_after_header(header, expected):
    from email.message import Message
    from urllib.error import HTTPError

    headers = Message()
    if header is not None:
        headers["Retry-After"] = header
    error = HTTPError("http://127.0.0.1/hook", 429, "Too Many Requests", headers, None)
    assert alerts._retry_after(error) == expected
