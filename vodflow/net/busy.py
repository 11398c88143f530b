"""A Prefect server on SQLite answers 503 when two writes meet (SQLITE_BUSY, gone in milliseconds), with no
`Retry-After`; Prefect's client then waits its first back-off, about 2 s. `BusyHintTransport` adds a short
`Retry-After` to such an answer, which Prefect's client honours (with its jitter), so a busy moment costs a
tenth of a second. An answer that names its own delay is left alone."""

from __future__ import annotations

import httpx

BUSY_RETRY_AFTER_SECONDS = 0.1


class BusyHintTransport(httpx.BaseTransport):
    """Wraps `inner`; a 503 without `Retry-After` comes back with `Retry-After: seconds`."""

    def __init__(self, inner: httpx.BaseTransport, seconds: float = BUSY_RETRY_AFTER_SECONDS) -> None:
        self.inner = inner
        self.seconds = seconds

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if response.status_code == 503 and "retry-after" not in response.headers:
            response.headers["Retry-After"] = str(self.seconds)
        return response

    def close(self) -> None:
        self.inner.close()
