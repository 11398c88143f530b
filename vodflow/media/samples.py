"""Sample clips made with ffmpeg's lavfi sources: the demo's 1080p sample, and test and benchmark sources."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import ffmpeg


def build_sample_command(
    dest: Path,
    *,
    width: int = 1920,
    height: int = 1080,
    seconds: float = 20,
    fps: int = 30,
    audio: bool = True,
) -> list[str]:
    """ffmpeg command for a test clip from lavfi's `testsrc2` (and a `sine` tone when `audio`)."""
    video = ffmpeg.input(f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}", f="lavfi")
    streams = [video]
    options: dict[str, Any] = {"vcodec": "libx264", "preset": "ultrafast", "pix_fmt": "yuv420p"}
    if audio:
        streams.append(ffmpeg.input(f"sine=frequency=440:sample_rate=48000:duration={seconds}", f="lavfi"))
        options.update(acodec="aac", shortest=None)
    return (
        ffmpeg.output(*streams, str(dest), **options)
        .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
        .overwrite_output()
        .compile()
    )


def make_sample(dest: Path, **kwargs: Any) -> Path:
    """Generate a sample clip at `dest` (see `build_sample_command`)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(build_sample_command(dest, **kwargs), check=True)
    return dest
