"""The one retry policy: transient faults are retried with capped exponential backoff and jitter.

Transient: connection errors, timeouts, HTTP 429 and 5xx, storage unavailable. Never retried: 4xx,
validation errors, corrupt sources. Both the HTTP clients (`call_with_retry`) and the Prefect tasks
(`vodflow.orchestration.retries`) use `is_transient` so the two can never disagree.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx

from vodflow.errors import ServiceError, StepError

T = TypeVar("T")


@dataclass(frozen=True)
class RetrySettings:
    """Parameters of `call_with_retry` for HTTP calls (`VODFLOW_HTTP_RETRY_*`)."""

    attempts: int = 4
    base: float = 0.5
    cap: float = 30.0


TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def is_transient_status(status_code: int) -> bool:
    """True for HTTP statuses worth retrying (429, 5xx and a few timeouts)."""
    return status_code in TRANSIENT_STATUS or status_code >= 500


def is_transient(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) is a fault that may pass if tried again."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (StepError, ServiceError)):
            return exc.transient
        if isinstance(exc, httpx.HTTPStatusError):
            return is_transient_status(exc.response.status_code)
        if isinstance(exc, (httpx.TransportError, ConnectionError, TimeoutError)):
            return True
        if _is_transient_storage_error(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _is_transient_storage_error(exc: BaseException) -> bool:
    """S3 faults seen through the minio client: server errors and connection failures (urllib3)."""
    try:
        from minio.error import S3Error, ServerError
        from urllib3.exceptions import HTTPError as Urllib3Error
    except ImportError:  # pragma: no cover
        return False
    if isinstance(exc, ServerError):
        return True
    if isinstance(exc, S3Error):
        return exc.code in {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"}
    return isinstance(exc, Urllib3Error)


def backoff_delays(attempts: int, base: float = 0.5, cap: float = 30.0) -> Iterator[float]:
    """Delays before retries 1..attempts-1: full-jitter exponential backoff, capped."""
    for attempt in range(attempts - 1):
        yield random.uniform(base, min(cap, base * 2**attempt) * 1.5)


def call_with_retry(
    call: Callable[[], T],
    *,
    attempts: int = 4,
    base: float = 0.5,
    cap: float = 30.0,
    sleep: Callable[[float], Any] = time.sleep,
) -> T:
    """Run `call`, retrying transient faults; a `ServiceError.retry_after` overrides the backoff delay."""
    delays = backoff_delays(attempts, base, cap)
    while True:
        try:
            return call()
        except Exception as exc:
            delay = next(delays, None)
            if delay is None or not is_transient(exc):
                raise
            retry_after = getattr(exc, "retry_after", None)
            sleep(min(cap, retry_after) if retry_after is not None else delay)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or HTTP-date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
