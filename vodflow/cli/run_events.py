"""A flow run's events, as Prefect's events stream (`/api/events/out`) sends them, on a thread of their own:
`vodflow encode` reads its run's state when one comes (and every few seconds), instead of every 0.2 s. Each
read costs the stack's server about 5 ms of CPU: a 30 s job's 150 reads were most of the server's share of a
2-core machine that ffmpeg fills. Best effort: without the stream (`live` false) the caller reads every 0.2 s.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

from vodflow.orchestration.flow_runs import run_events_subscription, run_events_url

OPEN_SECONDS = 5.0
MAX_MESSAGE_BYTES = 1 << 20  # one event; Prefect's are a few KiB


class RunEvents:
    """Listens for the flow run `run_id`'s events; `changed` is set on each, once when the stream opens and
    once when it ends (`live` then false). `close()` ends it."""

    def __init__(self, api_url: str, run_id: str) -> None:
        self.changed = threading.Event()
        self.live = False
        self._socket: Any = None
        self._closed = threading.Event()
        self._thread = threading.Thread(
            target=self._listen, args=(api_url, run_id), name="run-events", daemon=True
        )
        self._thread.start()

    def _listen(self, api_url: str, run_id: str) -> None:
        try:
            from websockets.sync.client import connect

            with connect(
                run_events_url(api_url),
                subprotocols=["prefect"],  # type: ignore[list-item]
                open_timeout=OPEN_SECONDS,
                close_timeout=1.0,
                max_size=MAX_MESSAGE_BYTES,
                proxy=None,
            ) as socket:
                self._socket = socket
                if self._closed.is_set():
                    return
                auth, subscribe = run_events_subscription(run_id, datetime.now(UTC))
                socket.send(json.dumps(auth))
                if json.loads(socket.recv(timeout=OPEN_SECONDS)).get("type") != "auth_success":
                    return
                socket.send(json.dumps(subscribe))
                self.live = True
                self.changed.set()  # what happened before the filter took effect: read the state once
                for _ in socket:
                    self.changed.set()
        except Exception:  # no stream (an older server, a proxy, a network fault): the caller polls
            pass
        finally:
            self.live = False
            self.changed.set()

    def close(self) -> None:
        """Stop listening (the socket closed, the thread ended within a second or so)."""
        self._closed.set()
        socket = self._socket
        if socket is not None:
            try:
                socket.close()
            except Exception:
                pass
        self._thread.join(timeout=2.0)
