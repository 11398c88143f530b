"""What ends a CLI run against a Prefect server that stopped answering, or that the user told to stop.

A run of `vodflow encode` on a server (`vodflow up`'s, or PREFECT_API_URL) asks the server's health every
2 s. When it has not answered for `lost_after` seconds (`VODFLOW_PREFECT_LOST_SECONDS`) the guard stops the
run as a SIGTERM would, naming the reason `prefect_unavailable`. A run told to stop (by the guard or a
signal) gets `grace` seconds (`VODFLOW_STOP_GRACE_SECONDS`) to unwind: Prefect's own clean-up retries a
server that is gone for longer than that. Then, or at a second signal, `last_resort` writes the document
and ends the process (ffmpeg dies with it).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

import httpx

POLL_SECONDS = 2.0


class RunGuard:
    """Watches the Prefect server of one CLI run and bounds how long a stopping run may take."""

    def __init__(
        self,
        api_url: str | None,
        lost_after: float,
        grace: float,
        last_resort: Callable[[str, str], None],
    ) -> None:
        self.api_url = api_url.rstrip("/") if api_url else None
        self.lost_after = lost_after
        self.grace = grace
        self.lost: str | None = None  # why the server counts as gone, once it does
        self._last_resort = last_resort
        self._lock = threading.Lock()
        self._done = False
        self._stopping = False
        self._quiet = False
        self._finished = threading.Event()

    @property
    def active(self) -> bool:
        """Only a run on a server is guarded: Prefect's temporary server is stopped by a clean exit."""
        return self.api_url is not None

    def watch(self) -> None:
        """Start watching the server in a daemon thread (no-op without a server)."""
        if self.active:
            threading.Thread(target=self._watch, name="vodflow-prefect-watch", daemon=True).start()

    def _watch(self) -> None:
        silent_since: float | None = None
        while not self._finished.wait(POLL_SECONDS):
            if _answers(f"{self.api_url}/health"):
                silent_since = None
                continue
            now = time.monotonic()
            silent_since = silent_since or now
            if now - silent_since >= self.lost_after:
                with self._lock:  # never after `quiet`: the signal lands while the run's handler is in place
                    if self._quiet:
                        return
                    silent = f"has not answered for {self.lost_after:g} s"
                    self.lost = f"the Prefect server at {self.api_url} {silent}"
                    self.stopping()
                    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)  # unwinds the run
                return

    def quiet(self) -> None:
        """The run's signal handling ends: stop watching (a stop already decided has been signalled)."""
        self._finished.set()
        with self._lock:
            self._quiet = True

    def stopping(self) -> None:
        """The run was told to stop: end it with `last_resort` unless it finishes within the grace time."""
        if not self.active or self._stopping:
            return
        self._stopping = True
        timer = threading.Timer(self.grace, self.give_up)
        timer.daemon = True
        timer.start()

    def give_up(self) -> None:
        """Write the document and end the process now (once, and never after `finish`)."""
        with self._lock:
            if self._done:
                return
            self._done = True
        if self.lost:
            self._last_resort("prefect_unavailable", f"Prefect could not run the job: {self.lost}")
        else:
            self._last_resort("cancelled", "run cancelled: stopped by a signal")

    def finish(self) -> bool:
        """The run has ended on its own: no last resort any more. False when one already began."""
        self._finished.set()
        with self._lock:
            if self._done:
                return False
            self._done = True
            return True


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=POLL_SECONDS).status_code < 500
    except httpx.HTTPError:
        return False
