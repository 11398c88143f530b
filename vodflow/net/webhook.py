"""The one place that sends job webhooks: the job document, signed per Standard Webhooks, retried in a window.

Every delivery carries `webhook-id` (`msg_<job id>_<status>`, or `msg_<job id>_playable`: the same on every
attempt and re-delivery of an event, so a receiver can deduplicate), `webhook-timestamp` (Unix seconds of the
attempt) and, with a signing secret, `webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`).
Receivers verify with `standardwebhooks.Webhook(secret).verify(body, headers)`.

Transient failures (connection errors, timeouts, 408/425/429/5xx) are retried with jittered exponential
backoff until the retry window runs out; a `Retry-After` sets the next delay. The URL goes through the
address guard (`vodflow.net.guard`); redirects are not followed. Each attempt ends within its timeout however
slowly the receiver answers, and at most 4 KiB of its answer is read. Every attempt is recorded in the
returned `DeliveryReport`; delivery never raises, so a failed delivery is reported, never fatal to the job.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from vodflow.jobs.document import iso_now, job_artifact_key
from vodflow.net.deadline import io_deadline, read_at_most
from vodflow.net.guard import AddressRefused, NetPolicy, guarded_client
from vodflow.net.retry import backoff_delays, is_transient, is_transient_status, parse_retry_after

SECRET_PREFIX = "whsec_"
MAX_ANSWER_BYTES = 4096


def new_secret() -> str:
    """A fresh signing secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def check_secret(secret: str) -> str:
    """`secret` when it is `whsec_` + base64 of 24 to 64 bytes; ValueError (never quoting it) otherwise."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("webhook signing secret must start with 'whsec_'")
    try:
        raw = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("webhook signing secret: the part after 'whsec_' must be base64") from None
    if not 24 <= len(raw) <= 64:
        raise ValueError("webhook signing secret must hold 24 to 64 bytes")
    return secret


@dataclass(frozen=True)
class WebhookConfig:
    """How webhooks are sent: signing secret, attempt timeout, retry window and attempts, address policy."""

    secret: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    window: float = 300.0
    max_attempts: int = 8
    base_delay: float = 1.0
    policy: NetPolicy = field(default_factory=NetPolicy)


@dataclass
class DeliveryAttempt:
    """One POST: when (ISO-8601 UTC), the status answered (None without an answer), latency, error."""

    at: str
    status_code: int | None
    latency_ms: float
    error: str | None = None


@dataclass
class DeliveryReport:
    """What happened to one webhook event; `url` is redacted, `reason` says why it was not delivered."""

    url: str
    webhook_id: str
    event: str
    delivered: bool = False
    signed: bool = False
    attempts: list[DeliveryAttempt] = field(default_factory=list)
    reason: str | None = None

    def summary(self) -> str:
        signed = "signed" if self.signed else "unsigned"
        what = f"webhook {self.event} ({self.webhook_id}, {signed})"
        tries = f"{len(self.attempts)} attempt(s)"
        if self.delivered:
            return f"{what} delivered to {self.url} after {tries}"
        return f"{what} not delivered to {self.url} after {tries}: {self.reason}"

    def table(self) -> list[dict[str, Any]]:
        """One row per attempt, for a Prefect table artifact."""
        rows = [
            {
                "attempt": number,
                "at": a.at,
                "status": a.status_code if a.status_code is not None else "",
                "latency_ms": a.latency_ms,
                "error": a.error or "",
            }
            for number, a in enumerate(self.attempts, 1)
        ]
        return rows or [{"attempt": 0, "at": "", "status": "", "latency_ms": 0, "error": self.reason or ""}]

    def artifact_key(self, job_id: str) -> str:
        """`vodflow-webhook-<job id>` in the characters artifact keys allow."""
        return job_artifact_key("webhook", job_id)


def redact_url(url: str) -> str:
    """The URL without query or credentials, for logs and reports."""
    try:
        parsed = httpx.URL(url)
        return str(parsed.copy_with(query=None, fragment=None, userinfo=b""))
    except Exception:
        return "<invalid URL>"


def _post_once(
    client: httpx.Client,
    url: str,
    body: str,
    webhook_id: str,
    signer: Webhook | None,
    timeout: float,
) -> tuple[DeliveryAttempt, bool, float | None]:
    """One signed POST: the attempt, whether a failure is worth retrying, and any Retry-After (s)."""
    attempt = DeliveryAttempt(at=iso_now(), status_code=None, latency_ms=0.0)
    now = datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "user-agent": "vodflow-webhook",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
    }
    if signer is not None:
        headers["webhook-signature"] = signer.sign(webhook_id, now, body)
    started = time.monotonic()
    try:
        with io_deadline(timeout):  # connect, send, headers and what is read of the answer, in all
            request = client.build_request(
                "POST", url, content=body.encode(), headers=headers, timeout=timeout
            )
            response = client.send(request, stream=True)
            try:
                read_at_most(
                    response, MAX_ANSWER_BYTES
                )  # the answer is not used: a little is read, then dropped
            finally:
                response.close()
    except AddressRefused as exc:
        attempt.error = f"refused: {exc.reason}"
        return attempt, False, None
    except httpx.HTTPError as exc:
        attempt.error = type(exc).__name__
        return attempt, is_transient(exc), None
    finally:
        attempt.latency_ms = round((time.monotonic() - started) * 1000, 1)
    attempt.status_code = response.status_code
    if response.status_code < 300:
        return attempt, False, None
    attempt.error = f"HTTP {response.status_code}"
    return (
        attempt,
        is_transient_status(response.status_code),
        parse_retry_after(response.headers.get("retry-after")),
    )


def deliver_webhook(
    url: str,
    document: dict[str, Any],
    *,
    config: WebhookConfig | None = None,
    sleep: Callable[[float], Any] = time.sleep,
    event: str | None = None,
) -> DeliveryReport:
    """POST `document` to `url` (see the module docstring); never raises. `config` defaults to
    `WebhookConfig()` (unsigned, public hosts only). `event` names the delivery (`playable`); by default it
    is the document's status."""
    event = event or str(document.get("status") or "unknown")
    report = DeliveryReport(
        url=redact_url(url), webhook_id=f"msg_{document.get('id', '')}_{event}", event=f"job.{event}"
    )
    try:
        config = config or WebhookConfig()
        signer = Webhook(check_secret(config.secret)) if config.secret else None
    except Exception as exc:  # a bad secret or missing block: reported, and nothing is sent unsigned
        shown = exc if type(exc) is ValueError else type(exc).__name__  # pydantic errors quote input
        report.reason = f"webhook settings unusable: {shown}"
        return report
    report.signed = signer is not None
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    deadline = time.monotonic() + config.window
    delays = backoff_delays(config.max_attempts, config.base_delay, cap=60.0)
    try:
        with guarded_client(config.policy, follow_redirects=False) as client:
            while True:
                remaining = max(0.5, deadline - time.monotonic())
                attempt, transient, retry_after = _post_once(
                    client, url, body, report.webhook_id, signer, min(config.timeout, remaining)
                )
                report.attempts.append(attempt)
                if attempt.error is None:
                    report.delivered = True
                    return report
                delay = next(delays, None)
                if not transient:
                    report.reason = f"not retried: {attempt.error}"
                elif delay is None:
                    report.reason = f"gave up after {len(report.attempts)} attempts: {attempt.error}"
                elif time.monotonic() + (retry_after if retry_after is not None else delay) > deadline:
                    report.reason = f"retry window of {config.window:g} s exhausted: {attempt.error}"
                else:
                    sleep(retry_after if retry_after is not None else delay)
                    continue
                return report
    except Exception as exc:  # never let a webhook fail a job
        report.reason = f"unexpected {type(exc).__name__}"
    return report
