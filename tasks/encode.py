"""Encode: every HLS ladder, MP4 and thumbnail of a job from one ffmpeg process (one decode of the source)."""

from __future__ import annotations

import os
from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from tasks.ingest import Source
from tasks.progress import ArtifactProgress
from vodflow.concurrency import ffmpeg_slot
from vodflow.ffmpeg_graphs import build_encode_command
from vodflow.ffmpeg_run import encode_timeout, run_ffmpeg
from vodflow.limits import Limits
from vodflow.plan import OutputPlan
from vodflow.retry import task_retry_options


def x264_preset() -> str:
    """The x264 speed/quality trade-off (`VODFLOW_X264_PRESET`, default `veryfast`)."""
    return os.environ.get("VODFLOW_X264_PRESET", "veryfast")


def encode_renditions(source: Source, plan: OutputPlan, workdir: Path, preset: str | None = None) -> None:
    """Write the plan's HLS folders, MP4 files and thumbnails under `workdir`; StepError(encode) if failed."""
    command = build_encode_command(
        source.path,
        plan,
        workdir,
        has_audio=source.info.has_audio,
        x264_preset=preset or x264_preset(),
    )
    limits = Limits.from_env()
    with ffmpeg_slot():
        run_ffmpeg(
            command,
            step="encode",
            workdir=workdir,
            timeout=encode_timeout(source.info.duration, cap=limits.max_encode_seconds),
            stall_timeout=limits.stall_seconds or None,
            source=source.path,
            on_progress=ArtifactProgress(source.info.duration, "encode"),
        )


@task(name="encode", cache_policy=NONE, **task_retry_options())
def encode(source: Source, plan: OutputPlan, workdir: Path, preset: str | None = None) -> None:
    encode_renditions(source, plan, workdir, preset)
