"""Wall-clock deadlines over whole HTTP exchanges: connect, headers and body together.

httpx's timeouts apply to each socket operation, so a server that trickles one byte every few seconds keeps a
request alive for ever. `DeadlineTransport` gives the connection pool a network backend whose every connect,
read and write is bounded by the innermost `io_deadline()` block of the calling context: once it passes,
the operation fails at once as a timeout (`httpx.ConnectTimeout`, `ReadTimeout` or `WriteTimeout`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

_deadline: ContextVar[float | None] = ContextVar("vodflow_io_deadline", default=None)


@dataclass(frozen=True)
class Deadline:
    """When the block's I/O must be over (`time.monotonic()` seconds)."""

    at: float

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at


@contextmanager
def io_deadline(seconds: float) -> Iterator[Deadline]:
    """Bound every socket operation of `DeadlineTransport` clients in the block to end within `seconds`
    (nested blocks: the earliest deadline wins)."""
    when = time.monotonic() + seconds
    outer = _deadline.get()
    token = _deadline.set(when if outer is None else min(outer, when))
    try:
        yield Deadline(when)
    finally:
        _deadline.reset(token)


def _budget(timeout: float | None, error: type[Exception]) -> float | None:
    """`timeout` shortened to what is left of the current deadline; `error` when nothing is left."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise error("the exchange's wall-clock deadline passed")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _budget(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _budget(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None):
        budget = _budget(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, budget))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        budget = _budget(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_tcp(host, port, budget, local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None):
        budget = _budget(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_unix_socket(path, budget, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def read_at_most(response: httpx.Response, limit: int, *, decode: bool = False) -> bytes:
    """Up to `limit` bytes of a streamed response's body, as sent or (`decode`) decompressed chunk by chunk;
    the rest is never read."""
    data = bytearray()
    for chunk in response.iter_bytes() if decode else response.iter_raw():
        data += chunk[: limit - len(data)]
        if len(data) >= limit:
            break
    return bytes(data)


class DeadlineTransport(httpx.HTTPTransport):
    """`httpx.HTTPTransport` whose connections honour `io_deadline()` (same arguments)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # httpx builds the httpcore pool itself and offers no way to pass a network backend in
        pool = self._pool
        pool._network_backend = _DeadlineBackend(pool._network_backend)  # type: ignore[union-attr]
