"""ffmpeg progress shown on the run: a Prefect progress artifact with percent done and encoding speed."""

from __future__ import annotations

import logging
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.context import TaskRunContext

from vodflow.ffmpeg_run import Progress

logger = logging.getLogger("vodflow.progress")


def progress_percent(progress: Progress, total_seconds: float) -> float:
    """Percent of the source written so far (100 once ffmpeg has finished)."""
    if progress.done:
        return 100.0
    if total_seconds <= 0:
        return 0.0
    return round(min(99.9, 100.0 * progress.out_seconds / total_seconds), 1)


class ArtifactProgress:
    """Callback for `run_ffmpeg(on_progress=...)`: creates the artifact on first report, then updates it.

    Does nothing outside a task run; a failure to report never fails the encode.
    """

    def __init__(self, total_seconds: float, label: str) -> None:
        self.total_seconds = total_seconds
        self.label = label
        self.artifact_id: UUID | None = None
        self.enabled = TaskRunContext.get() is not None

    def __call__(self, progress: Progress) -> None:
        if not self.enabled:
            return
        percent = progress_percent(progress, self.total_seconds)
        description = f"{self.label}: {percent:.0f}% at {progress.speed:.2f}x realtime"
        try:
            if self.artifact_id is None:
                self.artifact_id = create_progress_artifact(progress=percent, description=description)
            else:
                update_progress_artifact(self.artifact_id, progress=percent, description=description)
        except Exception as exc:  # progress is informative only
            logger.warning("could not report progress: %s", type(exc).__name__)
            self.enabled = False
