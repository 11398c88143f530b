"""The animated preview (pure builders and readers): one ffmpeg command that takes `frames` frames at `fps`
from the source and writes a palette-optimised GIF (palettegen and paletteuse in one filter graph: one
palette made for these frames) or an animated WebP (libwebp_anim, looping); and what a written preview
holds (its picture size, frames and duration), read back from the file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import ffmpeg

from vodflow.jobs.extras import PreviewOutput
from vodflow.media.commands import GLOBAL_ARGS, tone_mapped
from vodflow.media.inputs import file_url, input_args, input_options
from vodflow.media.usage import run_measured

# How far past its last frame the input is read: the fps filter picks each output frame's nearest input
# frame, so the input runs a little longer and `-frames:v` ends the preview at exactly `frames`.
_LEAD_OUT = 0.5


def preview_path(workdir: Path, out: PreviewOutput) -> Path:
    return workdir / f"{out.file_id}.{out.format}"


def build_preview_command(
    source: Path, out: PreviewOutput, dest: Path, dynamic_range: str = "sdr"
) -> list[str]:
    """One ffmpeg command writing the preview to `dest`: an accurate input seek to `out.start`, the frame
    rate made `out.fps`, scaled to `out.width` x `out.height` (square pixels), tone-mapped first when the
    source's `dynamic_range` is HDR; GIF through one palette, WebP animated; both loop forever."""
    seconds = out.frames / out.fps + _LEAD_OUT
    src = ffmpeg.input(file_url(source), ss=f"{out.start:.3f}", t=f"{seconds:.3f}", **input_options())
    video = src.video
    if dynamic_range != "sdr":
        video = tone_mapped(video)
    video = video.filter("fps", out.fps).filter("scale", out.width, out.height, flags="lanczos")
    video = video.filter("setsar", 1)
    options: dict[str, object] = {"frames:v": out.frames, "loop": 0}
    if out.format == "gif":
        split = video.filter_multi_output("split", 2)
        palette = split[0].filter("palettegen", stats_mode="diff")
        video = ffmpeg.filter(
            [split[1], palette], "paletteuse", dither="bayer", bayer_scale=5, diff_mode="rectangle"
        )
        options |= {"f": "gif"}
    elif out.format == "webp":
        video = video.filter("format", "yuv420p")
        options |= {"f": "webp", "vcodec": "libwebp_anim", "quality": 75, "compression_level": 4}
    else:
        raise ValueError(f"unknown preview format {out.format!r}")
    output = ffmpeg.output(video, str(dest), **options)
    return output.global_args(*GLOBAL_ARGS).overwrite_output().compile()


@dataclass(frozen=True)
class PreviewInfo:
    """What a written preview holds: its picture, frames and duration (s)."""

    width: int
    height: int
    frames: int
    duration: float


def _u24(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 3], "little")


def webp_animation(data: bytes) -> PreviewInfo:
    """An animated WebP's canvas, frames (`ANMF` chunks) and duration (their durations, ms), read from its
    RIFF chunks (Debian's ffmpeg 5.1 decodes no animated WebP); ValueError when it is not one or is cut."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP file")
    if int.from_bytes(data[4:8], "little") + 8 != len(data):
        raise ValueError("truncated WebP file")
    canvas: tuple[int, int] | None = None
    frames, millis, at = 0, 0, 12
    while at + 8 <= len(data):
        fourcc, size = data[at : at + 4], int.from_bytes(data[at + 4 : at + 8], "little")
        payload = at + 8
        if payload + size > len(data):
            raise ValueError("truncated WebP chunk")
        if fourcc == b"VP8X" and size >= 10:
            canvas = (_u24(data, payload + 4) + 1, _u24(data, payload + 7) + 1)
        elif fourcc == b"ANMF" and size >= 16:
            frames += 1
            millis += _u24(data, payload + 12)
        at = payload + size + (size & 1)
    if canvas is None or not frames:
        raise ValueError("not an animated WebP (no VP8X canvas or no ANMF frame)")
    return PreviewInfo(canvas[0], canvas[1], frames, millis / 1000)


def gif_info(path: Path, timeout: float = 60.0) -> PreviewInfo:
    """A GIF's picture, frames (decoded and counted by ffprobe) and duration; ValueError when unreadable."""
    entries = "stream=width,height,nb_read_frames:format=duration"
    cmd = ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", entries,
           "-of", "json", *input_args(path, ("gif",))]  # fmt: skip
    result = run_measured(cmd, timeout=timeout)
    try:
        report = json.loads(result.stdout or "{}")
        (stream,) = report["streams"]
        return PreviewInfo(
            int(stream["width"]),
            int(stream["height"]),
            int(stream["nb_read_frames"]),
            float(report["format"]["duration"]),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"unreadable GIF: {result.stderr.strip()[-200:] or exc}") from None


def preview_info(path: Path, fmt: str) -> PreviewInfo:
    """What the preview at `path` holds (`fmt` gif or webp); ValueError when it is not a whole preview."""
    return gif_info(path) if fmt == "gif" else webp_animation(path.read_bytes())
