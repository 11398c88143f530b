"""The one place that sends job webhooks: a POST of the job document, retried on transient faults."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from vodflow.errors import ServiceError
from vodflow.retry import call_with_retry, is_transient_status, parse_retry_after


@dataclass
class DeliveryAttempt:
    at: float
    status_code: int | None
    latency_ms: float
    error: str | None = None


@dataclass
class DeliveryReport:
    url: str
    delivered: bool
    attempts: list[DeliveryAttempt] = field(default_factory=list)


def redact_url(url: str) -> str:
    """The URL without query or credentials, for logs and reports."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(query=None, fragment=None, userinfo=b""))


def deliver_webhook(
    url: str, document: dict[str, Any], *, attempts: int = 4, base_delay: float = 1.0, timeout: float = 10.0
) -> DeliveryReport:
    """POST `document` to `url`; never raises: a failed delivery is reported, not fatal to the job."""
    report = DeliveryReport(url=redact_url(url), delivered=False)

    def post_once(client: httpx.Client) -> None:
        started = time.monotonic()
        attempt = DeliveryAttempt(at=time.time(), status_code=None, latency_ms=0.0)
        report.attempts.append(attempt)
        try:
            response = client.post(url, json=document)
        except httpx.TransportError as exc:
            attempt.error = type(exc).__name__
            raise
        finally:
            attempt.latency_ms = round((time.monotonic() - started) * 1000, 1)
        attempt.status_code = response.status_code
        if response.status_code >= 300:
            raise ServiceError(
                "webhook",
                "deliver",
                f"receiver answered HTTP {response.status_code}",
                object_id=str(document.get("id", "")),
                status_code=response.status_code,
                transient=is_transient_status(response.status_code),
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )

    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        try:
            call_with_retry(lambda: post_once(client), attempts=attempts, base=base_delay, cap=60.0)
            report.delivered = True
        except Exception as exc:  # reported through the DeliveryReport, never raised
            if report.attempts and report.attempts[-1].error is None and not isinstance(exc, ServiceError):
                report.attempts[-1].error = type(exc).__name__
    return report
