"""The one HTTP sender of the remote-service clients: timeouts, error mapping, the shared retry policy.

A provider builds `ApiRequest`s with pure functions; its `ServiceClient` subclass adds authentication and
reads the service's error bodies. Every failure becomes a `ServiceError` naming the service, the call and
the object id, with known secrets masked; transient ones go through `vodflow.net.retry.call_with_retry`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx

from vodflow.errors import ServiceError
from vodflow.net.deadline import DeadlineTransport, io_deadline, read_at_most
from vodflow.net.retry import RetrySettings, call_with_retry, is_transient_status, parse_retry_after

log = logging.getLogger("vodflow.providers")

MAX_MESSAGE = 300
MAX_ANSWER_BYTES = 8 << 20  # a page of jobs or tasks is far smaller; anything bigger is refused


@dataclass(frozen=True)
class ApiRequest:
    """One call to a service, as data: built by pure functions, sent by `ServiceClient.send`."""

    call: str
    method: str
    path: str
    query: tuple[tuple[str, Any], ...] = ()
    body: Any = None
    object_id: str | None = None

    def content(self) -> bytes:
        """The exact body bytes sent (compact JSON), or b"" when there is no body."""
        if self.body is None:
            return b""
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class ErrorDetail:
    """What a service said about a failed call: a message, its own error code, whether the id is unknown."""

    message: str
    code: str | None = None
    not_found: bool | None = None


class ServiceClient:
    """One httpx.Client per service with explicit timeouts; `send` runs an ApiRequest under the retry policy.

    Subclasses set `service`, and override `_authorize` (headers per attempt), `_query_string`,
    `_error_detail` and `_check_payload` as their contract requires.
    """

    service: ClassVar[str] = "service"

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
        retry: RetrySettings | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            headers=dict(headers or {}),
            transport=transport or DeadlineTransport(),
            follow_redirects=False,
        )
        self._timeout = timeout
        self._secrets = tuple(sorted((s for s in secrets if s), key=len, reverse=True))
        self._retry = retry or RetrySettings()
        self._sleep = sleep

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def send(self, request: ApiRequest) -> Any:
        """The decoded JSON answer (None for an empty one); ServiceError once retries are spent."""
        return call_with_retry(
            lambda: self._send_once(request),
            attempts=self._retry.attempts,
            base=self._retry.base,
            cap=self._retry.cap,
            sleep=self._sleep,
        )

    # Hooks for the services.

    def _query_string(self, request: ApiRequest) -> str:
        return urlencode([(key, str(value)) for key, value in request.query])

    def _authorize(self, http_request: httpx.Request, content: bytes) -> None:
        """Add authentication headers to `http_request` (called on every attempt)."""

    def _error_detail(self, response: httpx.Response) -> ErrorDetail:
        try:
            data = response.json()
        except ValueError:
            return ErrorDetail(response.text.strip() or response.reason_phrase)
        if isinstance(data, dict) and data.get("message"):
            return ErrorDetail(str(data["message"]))
        return ErrorDetail(response.reason_phrase or "error")

    def _check_payload(self, request: ApiRequest, data: Any) -> Any:
        """Validate a 2xx answer's body; raise `self._error(...)` for an error hidden in a 2xx."""
        return data

    # Machinery.

    def _error(self, request: ApiRequest, message: str, **kwargs: Any) -> ServiceError:
        return ServiceError(
            self.service, request.call, self.mask(message), object_id=request.object_id, **kwargs
        )

    def mask(self, text: str) -> str:
        """`text` shortened, with every known secret replaced by `***`."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "..."

    def _send_once(self, request: ApiRequest) -> Any:
        content = request.content()
        query = self._query_string(request)
        url = request.path + (f"?{query}" if query else "")
        http_request = self._http.build_request(request.method, url, content=content or None)
        self._authorize(http_request, content)
        try:
            with io_deadline(self._timeout):  # the whole attempt: connect, headers, body
                response = self._http.send(http_request, stream=True)
                try:
                    body = read_at_most(response, MAX_ANSWER_BYTES + 1, decode=True)
                finally:
                    response.close()
        except httpx.TimeoutException as exc:
            raise self._transient(
                request, f"no answer within {self._timeout:g}s ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            raise self._transient(request, f"connection failed ({type(exc).__name__})") from exc
        if len(body) > MAX_ANSWER_BYTES:
            raise self._error(request, f"answer larger than {MAX_ANSWER_BYTES} bytes", transient=False)
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "content-encoding"]
        response = httpx.Response(response.status_code, headers=headers, content=body)
        if response.status_code >= 400:
            raise self._status_error(request, response)
        if response.status_code == 204 or not response.content:
            return self._check_payload(request, None)
        try:
            data = response.json()
        except ValueError:
            raise self._transient(
                request, "malformed response body (not JSON)", status_code=response.status_code
            ) from None
        return self._check_payload(request, data)

    def _transient(self, request: ApiRequest, message: str, **kwargs: Any) -> ServiceError:
        error = self._error(request, message, transient=True, **kwargs)
        log.warning("%s (transient: retried while attempts remain)", error)
        return error

    def _status_error(self, request: ApiRequest, response: httpx.Response) -> ServiceError:
        detail = self._error_detail(response)
        transient = is_transient_status(response.status_code)
        error = self._error(
            request,
            detail.message,
            status_code=response.status_code,
            transient=transient,
            retry_after=parse_retry_after(response.headers.get("Retry-After")) if transient else None,
            code=detail.code,
            not_found=detail.not_found,
        )
        if transient:
            log.warning("%s (transient: retried while attempts remain)", error)
        return error


def collect_pages(
    fetch_page: Callable[[int], tuple[Sequence[Any], bool]], first: int, limit: int = 1000
) -> list:
    """Items of every page from `first` on; `fetch_page(n)` returns (items, more pages follow)."""
    items: list[Any] = []
    page = first
    for _ in range(limit):
        batch, more = fetch_page(page)
        items.extend(batch)
        if not more or not batch:
            return items
        page += 1
    return items
