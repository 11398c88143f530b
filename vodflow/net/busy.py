"""A Prefect server on SQLite answers 503 when two writes meet (SQLITE_BUSY, gone in milliseconds), with no
`Retry-After`; Prefect's client then waits its first back-off, about 2 s. `BusyHintMiddleware`, in the stack's
server (`vodflow.stack.server`), adds a short `Retry-After` to such an answer, which Prefect's client honours
(with its jitter), so a busy moment costs every client a tenth of a second. `BusyHintTransport`, for a
client that allows Prefect's few retries (`vodflow api`), asks a busy server again itself first, and hints
what it gives up on, whatever the server. An answer that names a longer delay is left alone."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from vodflow.net.retry import backoff_delays, parse_retry_after

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

BUSY_RETRY_AFTER_SECONDS = 0.1


class BusyHintTransport(httpx.BaseTransport):
    """Wraps `inner`: a busy answer (503 without `Retry-After`, or the stack's server's own short hint) is
    asked again here up to `attempts - 1` times, after 0.05-0.075 s then 0.05-0.15 s (jittered); the
    last one comes back with `Retry-After: seconds`. Each resend meets the caller's `io_deadline`."""

    def __init__(
        self, inner: httpx.BaseTransport, seconds: float = BUSY_RETRY_AFTER_SECONDS, attempts: int = 3
    ) -> None:
        self.inner = inner
        self.seconds = seconds
        self.attempts = attempts

    def _busy(self, response: httpx.Response) -> bool:
        if response.status_code != 503:
            return False
        hint = parse_retry_after(response.headers.get("retry-after"))
        return hint is None or hint <= self.seconds

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        delays = backoff_delays(self.attempts, base=self.seconds / 2, cap=self.seconds * 2)
        while True:
            response = self.inner.handle_request(request)
            if not self._busy(response) or (delay := next(delays, None)) is None:
                break
            response.close()
            time.sleep(delay)
        if response.status_code == 503 and "retry-after" not in response.headers:
            response.headers["Retry-After"] = str(self.seconds)
        return response

    def close(self) -> None:
        self.inner.close()


class BusyHintMiddleware:
    """ASGI middleware, the server-side twin of `BusyHintTransport`: a 503 without `Retry-After` leaves with
    `Retry-After: seconds`, so every client of the server (workers, flow runs, the UI, `vodflow`) asks again
    after a tenth of a second instead of Prefect's client's 2 s."""

    def __init__(self, app: ASGIApp, seconds: float = BUSY_RETRY_AFTER_SECONDS) -> None:
        self.app = app
        self.hint = (b"retry-after", str(seconds).encode())

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def hinted(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] == 503:
                headers = list(message.get("headers", ()))
                if not any(name.lower() == b"retry-after" for name, _ in headers):
                    message = {**message, "headers": [*headers, self.hint]}
            await send(message)

        await self.app(scope, receive, hinted)
