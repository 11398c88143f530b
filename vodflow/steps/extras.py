"""The preview and chapters step, after the encode (one-process and chunked alike): the animated preview taken
from the source, and the chapters written as a WebVTT file and muxed into every MP4 (copy only)."""

from __future__ import annotations

import os
from pathlib import Path

from vodflow.errors import StepError
from vodflow.jobs.plan import OutputPlan
from vodflow.jobs.sources import Source
from vodflow.media.chapters import build_chapters_remux_command, chapters_path
from vodflow.media.commands import mp4_path
from vodflow.media.preview import build_preview_command, preview_info, preview_path
from vodflow.media.runner import encode_timeout, run_ffmpeg
from vodflow.orchestration.concurrency import Slots
from vodflow.packaging.chapters import METADATA_NAME, chapters_metadata, chapters_track

PREVIEW_TIMEOUT = 300.0  # a few seconds of pictures, from an input seek


def make_preview(
    source: Source, plan: OutputPlan, workdir: Path, *, slots: Slots, stall_seconds: float = 120.0
) -> None:
    """Write the plan's preview from the source; StepError(preview, ffmpeg_failed) when ffmpeg fails or
    what it wrote is not a whole preview."""
    out = plan.preview
    if out is None:
        return
    dest = preview_path(workdir, out)
    command = build_preview_command(source.path, out, dest, plan.dynamic_range)
    with slots.ffmpeg():
        run_ffmpeg(
            command,
            step="preview",
            workdir=workdir,
            timeout=PREVIEW_TIMEOUT,
            stall_timeout=stall_seconds or None,
            source=source.path,
        )
    try:
        preview_info(dest, out.format)
    except (OSError, ValueError) as exc:
        raise StepError("preview", "ffmpeg_failed", f"preview: {exc}") from None


def write_chapters(source: Source, plan: OutputPlan, workdir: Path, *, stall_seconds: float = 120.0) -> None:
    """Write the plan's WebVTT chapters file and put the chapters into every MP4 (a copy-only remux into a
    temp file that then replaces it, so a retried step finds whole MP4s). No slot: no encoder runs."""
    out = plan.chapters
    if out is None:
        return
    chapters_path(workdir, out).write_text(chapters_track(out), encoding="utf-8")
    if not plan.mp4:
        return
    metadata = workdir / METADATA_NAME
    metadata.write_text(chapters_metadata(out), encoding="utf-8")
    for mp4 in plan.mp4:
        path = mp4_path(workdir, mp4)
        marked = path.with_name(f"{path.stem}.chapters.mp4")
        run_ffmpeg(
            build_chapters_remux_command(path, metadata, marked),
            step="chapters",
            workdir=workdir,
            timeout=encode_timeout(source.info.duration),
            stall_timeout=stall_seconds or None,
        )
        os.replace(marked, path)
    metadata.unlink(missing_ok=True)


def make_extras(
    source: Source,
    plan: OutputPlan,
    workdir: Path,
    *,
    slots: Slots | None = None,
    stall_seconds: float = 120.0,
) -> None:
    """The preview and the chapters of the plan, whichever it has."""
    slots = slots or Slots()
    make_preview(source, plan, workdir, slots=slots, stall_seconds=stall_seconds)
    write_chapters(source, plan, workdir, stall_seconds=stall_seconds)
