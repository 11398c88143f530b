"""A Prefect server on SQLite answers 503 when two writes meet (SQLITE_BUSY, gone in milliseconds), with no
`Retry-After`; Prefect's client then waits its first back-off, about 2 s. `BusyHintTransport` adds a short
`Retry-After` to such an answer, which Prefect's client honours (with its jitter), so a busy moment costs a
tenth of a second; `BusyHintMiddleware` does the same in the stack's server (`vodflow.stack.server`), for
every client. An answer that names its own delay is left alone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

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
