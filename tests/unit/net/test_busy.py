"""A busy Prefect server (SQLite: 503 with no Retry-After) is asked again after a tenth of a second, not after
Prefect's client's first back-off of about 2 s."""

from __future__ import annotations

import httpx
from prefect.client import base as prefect_client_base
from prefect.client.base import PrefectHttpxSyncClient

from vodflow.net.busy import BusyHintTransport


def answers(*statuses: tuple[int, dict[str, str]]) -> tuple[httpx.MockTransport, list[str]]:
    seen: list[str] = []
    queue = list(statuses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        status, headers = queue.pop(0) if len(queue) > 1 else queue[0]
        return httpx.Response(status, headers=headers, json={})

    return httpx.MockTransport(handler), seen


def test_prefects_client_asks_a_busy_server_again_after_a_tenth_of_a_second(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(prefect_client_base.time, "sleep", slept.append)
    inner, seen = answers((503, {}), (200, {}))
    with PrefectHttpxSyncClient(
        transport=BusyHintTransport(inner), base_url="http://127.0.0.1:9/api"
    ) as client:
        assert client.get("/health").status_code == 200
    assert seen == ["/api/health", "/api/health"]
    assert len(slept) == 1 and slept[0] < 0.5, slept  # without the hint: 2 s and more

    slept.clear()
    inner, _ = answers((503, {}), (200, {}))
    with PrefectHttpxSyncClient(transport=inner, base_url="http://127.0.0.1:9/api") as client:
        assert client.get("/health").status_code == 200
    assert len(slept) == 1 and slept[0] >= 1.0, "the bound above would not see the bug"


def test_an_answer_that_names_its_delay_or_is_no_503_is_left_alone():
    for status, headers, expected in ((503, {"Retry-After": "7"}, "7"), (429, {}, None), (200, {}, None)):
        inner, _ = answers((status, headers))
        response = BusyHintTransport(inner).handle_request(httpx.Request("GET", "http://127.0.0.1:9/api/x"))
        assert response.headers.get("Retry-After") == expected, (status, headers)
