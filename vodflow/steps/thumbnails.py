"""Thumbnail: every planned image exists; those the encode did not make are taken by input seek."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from vodflow.errors import StepError
from vodflow.jobs.plan import OutputPlan, ThumbnailOutput
from vodflow.jobs.sources import Source
from vodflow.media.commands import build_thumbnail_command, by_timestamp, thumbnail_path
from vodflow.media.runner import run_ffmpeg
from vodflow.media.watermark import on_images
from vodflow.orchestration.concurrency import Slots


def is_whole_image(path: Path, fmt: str) -> bool:
    """True when `path` holds a complete JPEG or WebP file.

    An image output that got no frame is not always absent: ffmpeg's webp muxer leaves 8 meaningless bytes.
    """
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if fmt == "webp":
        riff_size = int.from_bytes(data[4:8], "little") if len(data) >= 8 else -1
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP" and riff_size + 8 == len(data)
    return len(data) > 4 and data[:3] == b"\xff\xd8\xff" and data[-2:] == b"\xff\xd9"


def missing_thumbnails(outputs: Iterable[ThumbnailOutput], workdir: Path) -> list[ThumbnailOutput]:
    """The images of `outputs` not (or not wholly) written under `workdir`."""
    return [out for out in outputs if not is_whole_image(thumbnail_path(workdir, out), out.format)]


def make_thumbnails(
    source: Source,
    plan: OutputPlan,
    workdir: Path,
    *,
    slots: Slots | None = None,
    stall_seconds: float = 120.0,
) -> int:
    """Take the missing images, one ffmpeg per timestamp; returns how many were taken.

    The one-process encode writes every thumbnail itself, so after it this finds nothing to do; a chunked
    encode leaves them all to this step. StepError(thumbnail) when a frame cannot be taken.
    """
    slots = slots or Slots()
    missing = missing_thumbnails(plan.thumbnails, workdir)
    for seconds, outputs in by_timestamp(missing):
        mark = on_images(plan.watermark)
        command = build_thumbnail_command(source.path, outputs, workdir, plan.dynamic_range, mark)
        with slots.ffmpeg():
            run_ffmpeg(
                command,
                step="thumbnail",
                workdir=workdir,
                timeout=120.0,
                stall_timeout=stall_seconds or None,
                source=source.path,
            )
        if missing_thumbnails(outputs, workdir):
            raise StepError("thumbnail", "no_frame", f"no frame could be taken at {seconds:.3f} s")
    return len(missing)
