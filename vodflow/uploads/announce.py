"""Send events to the Prefect API (`POST /events`), so a caller knows the server has them.

`prefect.events.emit_event` buffers events on a background websocket and, without PREFECT_API_URL,
sends them to a throwaway ephemeral server: fine inside flows, wrong for a bridge that must answer
its sender only once the event is safe. This posts synchronously and raises when the server did not
take the events.
"""

from __future__ import annotations

from typing import Any

from prefect.client.orchestration import get_client
from prefect.events import Event
from prefect.settings import PREFECT_API_URL


class NoPrefectServer(RuntimeError):
    """PREFECT_API_URL is not set: events would go to an ephemeral server and be lost."""


def require_api_url() -> str:
    """The configured Prefect API URL; NoPrefectServer when there is none."""
    url = PREFECT_API_URL.value()
    if not url:
        raise NoPrefectServer("PREFECT_API_URL is not set; events need a running Prefect server")
    return url


def _bodies(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [Event.model_validate(e).model_dump(mode="json") for e in events]


async def send_events(events: list[dict[str, Any]]) -> None:
    """Post `events` (name/resource/payload dicts) in one request; raises on any HTTP or network error."""
    if not events:
        return
    require_api_url()
    async with get_client() as client:
        await client.request("POST", "/events", json=_bodies(events))


def send_events_sync(events: list[dict[str, Any]]) -> None:
    """`send_events` for synchronous callers (flows, CLI)."""
    if not events:
        return
    require_api_url()
    with get_client(sync_client=True) as client:
        client.request("POST", "/events", json=_bodies(events))
