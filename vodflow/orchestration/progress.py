"""ffmpeg progress shown on the run: a Prefect progress artifact with percent done and encoding speed, and
process-local listeners (the CLI's terminal progress bar) told of every report."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.context import TaskRunContext

from vodflow.media.runner import Progress

logger = logging.getLogger("vodflow.progress")

ProgressListener = Callable[[str, Progress, float], None]
"""Called with (label, progress, total seconds of the source) on every report, in the encoding thread."""

_listeners: list[ProgressListener] = []
_listeners_lock = threading.Lock()


def add_progress_listener(listener: ProgressListener) -> Callable[[], None]:
    """Tell `listener` of every encode progress report in this process; returns the function removing it."""
    with _listeners_lock:
        _listeners.append(listener)

    def remove() -> None:
        with _listeners_lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return remove


def has_progress_listeners() -> bool:
    return bool(_listeners)


def notify_progress_listeners(label: str, progress: Progress, total_seconds: float) -> None:
    """Call every listener; one that fails is logged and never fails the encode."""
    with _listeners_lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(label, progress, total_seconds)
        except Exception as exc:  # progress is informative only
            logger.warning("progress listener failed: %s", type(exc).__name__)


def progress_percent(progress: Progress, total_seconds: float) -> float:
    """Percent of the source written so far (100 once ffmpeg has finished)."""
    if progress.done:
        return 100.0
    if total_seconds <= 0:
        return 0.0
    return round(min(99.9, 100.0 * progress.out_seconds / total_seconds), 1)


class ArtifactProgress:
    """Callback for `run_ffmpeg(on_progress=...)`: creates the artifact on first report, then updates it at
    most every `min_interval` seconds, and always with the final 100%.

    Each update is an API call the Prefect server stores and announces. On a host whose cores ffmpeg already
    fills, that work slows the encode: a report every 2 s cost about 1 s of a 17 s encode here, so the default
    is 10 s. Does nothing outside a task run; a failure to report never fails the encode. Process-local
    listeners (`add_progress_listener`) get every report, inside a task run or not.
    """

    def __init__(self, total_seconds: float, label: str, min_interval: float = 10.0) -> None:
        self.total_seconds = total_seconds
        self.label = label
        self.min_interval = min_interval
        self.artifact_id: UUID | None = None
        self.enabled = TaskRunContext.get() is not None
        self._sent_at = 0.0

    def __call__(self, progress: Progress) -> None:
        notify_progress_listeners(self.label, progress, self.total_seconds)
        if not self.enabled:
            return
        now = time.monotonic()
        if self.artifact_id is not None and not progress.done and now - self._sent_at < self.min_interval:
            return
        percent = progress_percent(progress, self.total_seconds)
        description = f"{self.label}: {percent:.0f}% at {progress.speed:.2f}x realtime"
        try:
            if self.artifact_id is None:
                self.artifact_id = create_progress_artifact(progress=percent, description=description)
            else:
                update_progress_artifact(self.artifact_id, progress=percent, description=description)
            self._sent_at = now
        except Exception as exc:  # progress is informative only
            logger.warning("could not report progress: %s", type(exc).__name__)
            self.enabled = False
