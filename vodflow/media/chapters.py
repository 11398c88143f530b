"""Chapter markers into an MP4 (a pure builder): a copy-only remux that takes the streams and metadata of the
MP4 and the chapters of an ffmetadata file (`vodflow.packaging.chapters.chapters_metadata`)."""

from __future__ import annotations

from pathlib import Path

from vodflow.jobs.chapters import ChaptersOutput
from vodflow.media.commands import GLOBAL_ARGS
from vodflow.media.inputs import file_url, input_args


def chapters_path(workdir: Path, out: ChaptersOutput) -> Path:
    """The WebVTT chapters file in the run's temp dir."""
    return workdir / f"{out.file_id}.vtt"


def build_chapters_remux_command(mp4: Path, metadata: Path, dest: Path) -> list[str]:
    """Copy `mp4`'s video, audio and metadata into `dest` (faststart), with the chapters of the ffmetadata
    file `metadata` in place of any it had (`-map_chapters 1`)."""
    return [
        "ffmpeg",
        *GLOBAL_ARGS,
        *input_args(mp4, ("mov",))[:-1], "-i", file_url(mp4),
        "-f", "ffmetadata", *input_args(metadata, ("ffmetadata",))[:-1], "-i", file_url(metadata),
        "-map", "0:v", "-map", "0:a?", "-map_metadata", "0", "-map_chapters", "1",
        "-c", "copy", "-movflags", "+faststart", "-f", "mp4", "-y", str(dest),
    ]  # fmt: skip
