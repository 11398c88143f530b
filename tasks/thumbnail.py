"""Thumbnail: frames at each timestamp, in every resolution x format x filter."""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from tasks.ingest import Source
from vodflow.concurrency import ffmpeg_slot
from vodflow.errors import StepError
from vodflow.ffmpeg_graphs import build_thumbnail_command, thumbnail_path
from vodflow.ffmpeg_run import run_ffmpeg
from vodflow.plan import OutputPlan
from vodflow.retry import task_retry_options


def make_thumbnails(source: Source, plan: OutputPlan, workdir: Path) -> None:
    """One ffmpeg per timestamp; StepError(thumbnail) when a frame cannot be taken."""
    by_time = sorted(plan.thumbnails, key=lambda out: out.seconds)
    for seconds, group in groupby(by_time, key=lambda out: out.seconds):
        outputs = list(group)
        command = build_thumbnail_command(source.path, outputs, workdir)
        with ffmpeg_slot():
            run_ffmpeg(command, step="thumbnail", workdir=workdir, timeout=120.0, source=source.path)
        missing = [out for out in outputs if not thumbnail_path(workdir, out).is_file()]
        if missing:
            raise StepError("thumbnail", "no_frame", f"no frame could be taken at {seconds:.3f} s")


@task(name="thumbnail", cache_policy=NONE, **task_retry_options())
def thumbnail(source: Source, plan: OutputPlan, workdir: Path) -> None:
    make_thumbnails(source, plan, workdir)
