"""Progress shown on the run: a Prefect progress artifact with percent done and speed, log lines, and
process-local listeners (the CLI's terminal progress bar) told of every report; for ffmpeg runs
(`ArtifactProgress`: encode, quality) and for phases of counted steps (`StepProgress`: the per-title
analysis)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.context import TaskRunContext
from prefect.logging import get_run_logger

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


def source_seconds_done(progress: Progress, total_seconds: float) -> float:
    """Seconds of the source done: ffmpeg's output time capped by the source's duration, all of it once
    finished (a storyboard's tile output ends on the last sheet's time, which may lie past the source's)."""
    if progress.done and total_seconds > 0:
        return total_seconds
    return min(progress.out_seconds, total_seconds) if total_seconds > 0 else progress.out_seconds


def source_speed(progress: Progress, total_seconds: float) -> float:
    """Seconds of source done per wall second since ffmpeg started; 0 when not known yet.

    Not ffmpeg's own `speed=`: that is its output time over its run time, and a storyboard's output time
    jumps to the last tile sheet's time when it ends, so ffmpeg said 1.69x of an encode that ran at 0.41x.
    """
    if progress.elapsed <= 0:
        return 0.0
    return source_seconds_done(progress, total_seconds) / progress.elapsed


def progress_description(label: str, progress: Progress, total_seconds: float) -> str:
    """`encode: 42% at 0.41x realtime` (without the speed until it is known)."""
    percent = progress_percent(progress, total_seconds)
    speed = source_speed(progress, total_seconds)
    return f"{label}: {percent:.0f}% at {speed:.2f}x realtime" if speed > 0 else f"{label}: {percent:.0f}%"


def _run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The run's logger (lines shown on the run in the UI) inside a flow or task run, else this module's."""
    try:
        return get_run_logger()
    except Exception:  # outside a run
        return logger


class _ProgressArtifact:
    """The run's progress artifact: created on the first report, then updated at most every `min_interval`
    seconds and always with a final report.

    Each update is an API call the Prefect server stores and announces. On a host whose cores ffmpeg already
    fills, that work slows the encode: a report every 2 s cost about 1 s of a 17 s encode here, so the default
    is 10 s. Does nothing outside a task run; a failure to report is logged once and reporting stops.
    """

    def __init__(self, min_interval: float) -> None:
        self.min_interval = min_interval
        self.artifact_id: UUID | None = None
        self.enabled = TaskRunContext.get() is not None
        self.sent_at = 0.0

    def post(self, percent: float, description: str, final: bool) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self.artifact_id is not None and not final and now - self.sent_at < self.min_interval:
            return
        try:
            if self.artifact_id is None:
                self.artifact_id = create_progress_artifact(progress=percent, description=description)
            else:
                update_progress_artifact(self.artifact_id, progress=percent, description=description)
            self.sent_at = now
        except Exception as exc:  # progress is informative only
            logger.warning("could not report progress: %s", type(exc).__name__)
            self.enabled = False


class ArtifactProgress:
    """Callback for `run_ffmpeg(on_progress=...)`: reports the percent done and the speed (`source_speed`) on
    the run's progress artifact (`_ProgressArtifact`), as a log line every `log_interval` seconds and once
    finished, and to process-local listeners (`add_progress_listener`: the CLI's terminal bar) on every
    report, inside a task run or not. A failure to report never fails the encode."""

    def __init__(
        self, total_seconds: float, label: str, min_interval: float = 10.0, log_interval: float = 30.0
    ) -> None:
        self.total_seconds = total_seconds
        self.label = label
        self.log_interval = log_interval
        self.artifact = _ProgressArtifact(min_interval)
        self.enabled = self.artifact.enabled
        self.log = _run_logger()
        self._logged_at = time.monotonic()

    def __call__(self, progress: Progress) -> None:
        notify_progress_listeners(self.label, progress, self.total_seconds)
        description = progress_description(self.label, progress, self.total_seconds)
        self.artifact.post(progress_percent(progress, self.total_seconds), description, progress.done)
        now = time.monotonic()
        if progress.done:
            done = source_seconds_done(progress, self.total_seconds)
            self.log.info("%s (%.1f s of source in %.2f s)", description, done, progress.elapsed)
        elif now - self._logged_at >= self.log_interval:
            self.log.info("%s", description)
            self._logged_at = now


class StepProgress:
    """Progress of a phase made of counted steps (the per-title analysis's probes): a log line per step, the
    progress artifact (percent of steps begun) and the process-local listeners; `finish()` reports 100%."""

    def __init__(self, label: str, min_interval: float = 10.0) -> None:
        self.label = label
        self.artifact = _ProgressArtifact(min_interval)
        self.log = _run_logger()

    def __call__(self, step: int, total: int, what: str) -> None:
        """Report that step `step` of (at most) `total`, doing `what`, begins."""
        text = f"{self.label}: {what}"
        percent = round(min(99.9, 100.0 * (step - 1) / total), 1) if total > 0 else 0.0
        self.log.info("%s", text)
        notify_progress_listeners(text, Progress(out_seconds=percent), 100.0)
        self.artifact.post(percent, text, final=False)

    def finish(self, what: str) -> None:
        text = f"{self.label}: {what}"
        self.log.info("%s", text)
        notify_progress_listeners(text, Progress(out_seconds=100.0, done=True), 100.0)
        self.artifact.post(100.0, text, final=True)
