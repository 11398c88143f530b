"""Webhook delivery: Standard Webhooks signing, stable ids, bounded retries, the address guard, reports."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tests.httpserver import serve
from vodflow.errors import ConfigError
from vodflow.net import guard as netguard
from vodflow.net import webhook
from vodflow.net.guard import NetPolicy
from vodflow.net.retry import parse_retry_after
from vodflow.net.webhook import WebhookConfig, check_secret, deliver_webhook, new_secret, redact_url

LOOPBACK = NetPolicy.from_entries(["127.0.0.1"])
DOC = {"id": "j1", "status": "completed", "files": []}


def config(**changes) -> WebhookConfig:
    return WebhookConfig(**{"policy": LOOPBACK, "base_delay": 0.01, "window": 5.0, **changes})


def test_posts_the_document_signed_per_standard_webhooks(tmp_path):
    secret = new_secret()
    with serve(tmp_path) as server:
        report = deliver_webhook(server.url("/hook?token=s3cret"), DOC, config=config(secret=secret))
    assert report.delivered and report.signed and len(report.attempts) == 1
    request = server.requests[0]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["webhook-id"] == "msg_j1_completed" and headers["content-type"] == "application/json"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(request["body"], headers) == DOC
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(request["body"], headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request["body"].replace(b"completed", b"failed"), headers)
    assert "s3cret" not in report.url and secret not in repr(report) + repr(config(secret=secret))


def test_the_id_is_stable_per_job_and_event(tmp_path):
    with serve(tmp_path) as server:
        server.plan("/hook", 503)
        deliver_webhook(server.url("/hook"), DOC, config=config())
        deliver_webhook(server.url("/hook"), DOC, config=config())
        deliver_webhook(server.url("/hook"), {**DOC, "status": "failed"}, config=config())
    ids = [r["headers"]["webhook-id"] for r in server.requests]
    assert ids == ["msg_j1_completed"] * 3 + ["msg_j1_failed"]


def test_without_a_secret_it_is_sent_unsigned_and_says_so(tmp_path):
    with serve(tmp_path) as server:
        report = deliver_webhook(server.url("/hook"), DOC, config=config())
    headers = {k.lower() for k in server.requests[0]["headers"]}
    assert report.delivered and not report.signed
    assert {"webhook-id", "webhook-timestamp"} <= headers and "webhook-signature" not in headers
    assert "unsigned" in report.summary()


def test_retries_5xx_and_429_honouring_retry_after(tmp_path):
    slept: list[float] = []
    with serve(tmp_path) as server:
        server.plan("/hook", 503)
        server.plan("/hook", 429, retry_after="3")
        report = deliver_webhook(server.url("/hook"), DOC, config=config(window=60), sleep=slept.append)
    assert report.delivered
    assert [a.status_code for a in report.attempts] == [503, 429, 200]
    assert slept[1] == 3.0 and slept[0] < 1
    assert all(a.at.endswith("Z") and a.latency_ms >= 0 for a in report.attempts)


def test_a_retry_after_beyond_the_window_stops_delivery(tmp_path):
    with serve(tmp_path) as server:
        server.plan("/hook", 429, retry_after="120")
        report = deliver_webhook(server.url("/hook"), DOC, config=config(window=10), sleep=pytest.fail)
    assert not report.delivered and len(report.attempts) == 1
    assert "retry window of 10 s exhausted: HTTP 429" in report.reason


def test_4xx_is_not_retried_and_never_raises(tmp_path):
    with serve(tmp_path) as server:
        server.plan("/hook", 410)
        report = deliver_webhook(server.url("/hook"), DOC, config=config())
    assert not report.delivered and report.reason == "not retried: HTTP 410"
    assert [a.status_code for a in report.attempts] == [410]


def test_a_receiver_down_is_retried_within_the_window_and_reported(tmp_path):
    with serve(tmp_path) as server:
        url = server.url("/hook")
    started = time.monotonic()
    report = deliver_webhook(url, DOC, config=config(window=1.0, base_delay=0.05, max_attempts=50))
    assert time.monotonic() - started < 3
    assert not report.delivered and len(report.attempts) >= 2
    assert all(a.error == "ConnectError" and a.status_code is None for a in report.attempts)
    assert "window" in report.reason
    rows = report.table()
    assert [r["attempt"] for r in rows] == list(range(1, len(report.attempts) + 1))
    assert set(rows[0]) == {"attempt", "at", "status", "latency_ms", "error"}


def test_an_endless_answer_is_read_a_little_then_dropped(tmp_path, monkeypatch):
    read: list[int] = []
    real = webhook.read_at_most
    monkeypatch.setattr(webhook, "read_at_most", lambda r, limit: read.append(len(real(r, limit))) or b"")
    with serve(tmp_path) as server:
        server.behave("/hook", "endless")
        report = deliver_webhook(server.url("/hook"), DOC, config=config(timeout=5.0))
    assert report.delivered and [a.status_code for a in report.attempts] == [200]
    assert read == [4 * 1024]  # the documented 4 KiB (docs/security.md), not the constant itself


def test_a_receiver_trickling_its_answer_ends_each_attempt_at_the_timeout(tmp_path):
    """Each read gets a byte well within the timeout; only the attempt's wall-clock deadline ends it."""
    with serve(tmp_path) as server:
        server.behave("/hook", "trickle_headers", interval=0.1)
        started = time.monotonic()
        report = deliver_webhook(server.url("/hook"), DOC, config=config(timeout=0.8, max_attempts=2))
    assert not report.delivered and [a.error for a in report.attempts] == ["ReadTimeout"] * 2
    assert all(a.latency_ms < 2000 for a in report.attempts)
    assert time.monotonic() - started < 5


def test_attempts_are_bounded(tmp_path):
    with serve(tmp_path) as server:
        server.plan("/hook", 500, 500, 500, 500)
        report = deliver_webhook(server.url("/hook"), DOC, config=config(max_attempts=3))
    assert len(report.attempts) == 3 and report.reason.startswith("gave up after 3 attempts")


def test_redirects_are_not_followed(tmp_path):
    with serve(tmp_path) as server:
        server.plan("/hook", 307, headers={"Location": "/elsewhere"})
        report = deliver_webhook(server.url("/hook"), DOC, config=config())
    assert not report.delivered and [r["path"] for r in server.requests] == ["/hook"]


def test_loopback_is_refused_by_default_without_a_request(tmp_path):
    with serve(tmp_path) as server:
        report = deliver_webhook(server.url("/hook"), DOC, config=WebhookConfig())
    assert server.requests == []
    assert not report.delivered
    assert report.reason.startswith("not retried: refused: host 127.0.0.1 is a loopback address")


@pytest.mark.parametrize("address", ["10.0.0.7", "169.254.169.254", "fd00:ec2::254", "192.168.1.20"])
def test_internal_names_are_refused_before_connecting(monkeypatch, address):
    monkeypatch.setattr(netguard, "resolve_host", lambda host, port: [address])
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", lambda *a: pytest.fail("connected"))
    report = deliver_webhook("https://hooks.internal.test/h", DOC, config=WebhookConfig())
    assert not report.delivered and len(report.attempts) == 1
    assert "refused: host hooks.internal.test is a" in report.attempts[0].error
    assert address not in report.summary()


def test_bad_secret_sends_nothing_and_does_not_quote_it(tmp_path):
    bad = "whsec_not-base64!!"
    with serve(tmp_path) as server:
        report = deliver_webhook(server.url("/hook"), DOC, config=config(secret=bad))
    assert server.requests == [] and not report.delivered
    assert "base64" in report.reason and bad not in report.reason


def test_settings_from_the_environment(environment):
    secret = new_secret()
    env = {"VODFLOW_WEBHOOK_WINDOW": "42", "VODFLOW_ALLOWED_HOSTS": "hooks.corp, 10.1.0.0/16"}
    loaded = environment({**env, "VODFLOW_WEBHOOK_SECRET": secret}).webhook_config()
    assert loaded.secret == secret and loaded.window == 42
    assert loaded.policy.allowed_hosts == {"hooks.corp"} and len(loaded.policy.allowed_networks) == 1
    with pytest.raises(
        ConfigError, match="VODFLOW_WEBHOOK_SECRET: webhook signing secret must start"
    ) as caught:
        environment({"VODFLOW_WEBHOOK_SECRET": "plain-secret-value"}).webhook_config()
    assert "plain-secret-value" not in str(caught.value)


@pytest.mark.parametrize(
    ("secret", "problem"),
    [("abc", "whsec_"), ("whsec_%%%", "base64"), ("whsec_" + "QUFB", "24 to 64 bytes")],
)
def test_check_secret(secret, problem):
    with pytest.raises(ValueError, match=problem) as caught:
        check_secret(secret)
    assert secret not in str(caught.value)
    assert check_secret(new_secret()).startswith("whsec_")


def test_report_artifact_key_is_valid_for_any_job_id():
    report = deliver_webhook("ftp://x/y", DOC, config=config())
    assert report.artifact_key("Job_1.A") == "vodflow-webhook-job-1-a"
    assert not report.delivered and "scheme 'ftp' is not allowed" in report.reason


def test_retry_after_as_seconds_or_http_date():
    later = datetime.now(UTC) + timedelta(seconds=30)
    assert parse_retry_after("7") == 7.0 and parse_retry_after("-3") == 0.0
    assert 25 < parse_retry_after(format_datetime(later, usegmt=True)) <= 30
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_redact_url_drops_credentials_and_query():
    assert redact_url("https://user:pw@hooks.test/p?sig=abc") == "https://hooks.test/p"


def test_a_named_event_has_its_own_stable_id(tmp_path):
    with serve(tmp_path) as server:
        report = deliver_webhook(
            server.url("/hook"), {**DOC, "status": "processing"}, config=config(), event="playable"
        )
    assert report.delivered and report.event == "job.playable"
    assert server.requests[0]["headers"]["webhook-id"] == "msg_j1_playable"
