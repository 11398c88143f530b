"""A busy Prefect server (SQLite: 503 with no Retry-After) is asked again after a tenth of a second, not after
Prefect's client's first back-off of about 2 s: through the client's transport (a server of the user's) and
the stack's server's middleware (every client)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import httpx
from prefect.client import base as prefect_client_base
from prefect.client.base import PrefectHttpxAsyncClient, PrefectHttpxSyncClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from vodflow.net import busy
from vodflow.net.busy import BusyHintMiddleware, BusyHintTransport


def answers(*statuses: tuple[int, dict[str, str]]) -> tuple[httpx.MockTransport, list[str]]:
    seen: list[str] = []
    queue = list(statuses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        status, headers = queue.pop(0) if len(queue) > 1 else queue[0]
        return httpx.Response(status, headers=headers, json={})

    return httpx.MockTransport(handler), seen


def test_a_busy_answer_is_asked_again_at_once_then_prefect_s_client_waits_a_tenth_of_a_second(monkeypatch):
    """Busy twice: the transport's own resends end it, Prefect's client never waits. Busy for longer: the
    third answer reaches Prefect's client hinted, which asks again after a tenth of a second, not 2 s."""
    slept: list[float] = []  # Prefect's client's waits
    resent: list[float] = []  # the transport's
    monkeypatch.setattr(prefect_client_base.time, "sleep", slept.append)
    monkeypatch.setattr(busy, "time", SimpleNamespace(sleep=resent.append))
    inner, seen = answers((503, {}), (503, {"Retry-After": "0.1"}), (200, {}))
    with PrefectHttpxSyncClient(
        transport=BusyHintTransport(inner), base_url="http://127.0.0.1:9/api"
    ) as client:
        assert client.get("/health").status_code == 200
    assert seen == ["/api/health"] * 3 and slept == [], slept
    assert len(resent) == 2 and all(0.05 <= delay <= 0.15 for delay in resent), resent

    inner, seen = answers((503, {}), (503, {}), (503, {}), (200, {}))
    with PrefectHttpxSyncClient(
        transport=BusyHintTransport(inner), base_url="http://127.0.0.1:9/api"
    ) as client:
        assert client.get("/health").status_code == 200
    assert seen == ["/api/health"] * 4
    assert len(slept) == 1 and slept[0] < 0.5, slept  # without the hint: 2 s and more

    slept.clear()
    inner, _ = answers((503, {}), (200, {}))
    with PrefectHttpxSyncClient(transport=inner, base_url="http://127.0.0.1:9/api") as client:
        assert client.get("/health").status_code == 200
    assert len(slept) == 1 and slept[0] >= 1.0, "the bound above would not see the bug"


def test_an_answer_that_names_a_longer_delay_or_is_no_503_is_left_alone():
    for status, headers, expected in ((503, {"Retry-After": "7"}, "7"), (429, {}, None), (200, {}, None)):
        inner, seen = answers((status, headers))
        response = BusyHintTransport(inner).handle_request(httpx.Request("GET", "http://127.0.0.1:9/api/x"))
        assert response.headers.get("Retry-After") == expected, (status, headers)
        assert len(seen) == 1, "asked once"


def busy_app(*statuses: tuple[int, dict[str, str]]) -> tuple[Starlette, list[str]]:
    """An ASGI app answering `statuses` in turn (the last one from then on), as Prefect's server does."""
    seen: list[str] = []
    queue = list(statuses)

    async def handler(request: Request) -> JSONResponse:
        seen.append(request.url.path)
        status, headers = queue.pop(0) if len(queue) > 1 else queue[0]
        return JSONResponse({}, status_code=status, headers=headers)

    return Starlette(routes=[Route("/api/{path:path}", handler)]), seen


def test_the_stack_s_server_tells_prefect_s_client_to_ask_again_after_a_tenth_of_a_second(monkeypatch):
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(prefect_client_base.anyio, "sleep", sleep)

    async def ask(app) -> int:
        transport = httpx.ASGITransport(app=app)
        async with PrefectHttpxAsyncClient(transport=transport, base_url="http://127.0.0.1:9/api") as client:
            return (await client.get("/health")).status_code

    app, seen = busy_app((503, {}), (200, {}))
    assert asyncio.run(ask(BusyHintMiddleware(app))) == 200
    assert seen == ["/api/health", "/api/health"]
    assert len(slept) == 1 and slept[0] < 0.5, slept

    slept.clear()
    app, _ = busy_app((503, {}), (200, {}))
    assert asyncio.run(ask(app)) == 200
    assert len(slept) == 1 and slept[0] >= 1.0, "the bound above would not see the bug"


def test_the_middleware_leaves_an_answer_that_names_its_delay_or_is_no_503_alone():
    async def status_and_hint(status: int, headers: dict[str, str]) -> str | None:
        app, _ = busy_app((status, headers))
        transport = httpx.ASGITransport(app=BusyHintMiddleware(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9") as client:
            return (await client.get("/api/x")).headers.get("Retry-After")

    for status, headers, expected in ((503, {"Retry-After": "7"}, "7"), (429, {}, None), (200, {}, None)):
        assert asyncio.run(status_and_hint(status, headers)) == expected, (status, headers)
