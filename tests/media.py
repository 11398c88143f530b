"""Test clips made with ffmpeg's lavfi sources (nothing large is committed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from vodflow.demo import make_sample


def make_clip(
    dest: Path, width: int, height: int, seconds: float = 3, audio: bool = True, fps: int = 25
) -> Path:
    return make_sample(dest, width=width, height=height, seconds=seconds, audio=audio, fps=fps)


def make_rotated(source: Path, dest: Path, degrees: int = 90) -> Path:
    """Copy `source` with a display rotation in its metadata (as phones record portrait video)."""
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(source),
            "-c",
            "copy",
            "-metadata:s:v:0",
            f"rotate={degrees}",
            str(dest),
        ],
        check=True,
    )
    return dest


def ffprobe_streams(path: Path) -> dict:
    import json

    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)
