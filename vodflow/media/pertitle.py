"""The per-title analysis's ffmpeg commands (pure builders): a short sample of the title's scenes kept
lossless, probe encodes of it at a rung's size and a few bitrates, and their SSIM per scene.

The sample joins `SCENES` scenes of `SCENE_SECONDS` spread over the source (the whole source when shorter),
at the source's size. Each probe scales it with the encode's scaler (`scale`, bicubic by default; straight to
the rung's size, where the encode cascades: within 0.03 dB PSNR after encoding, `media.scaling`) and encodes
it with the encode's own x264 options and rate control (average bitrate, maxrate 1.07x, 2x buffer) at a share
of the fixed rung's bitrate, so each probe is one (kbit/s, quality) point of what the encode would give.
Constant-quality (CRF) probes were tried first: their average bitrate hides the peaks the encode's buffer
cannot hold (a cartoon whose picture changes every 5th frame lost 17 VMAF points at the bitrate its CRF probe
reached the target with). A probe's quality is that of its worst scene: with the encode's buffer of 2 s, a
hard scene cannot borrow bits from an easy one, and an average would hide it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from vodflow.jobs.plan import Rendition
from vodflow.media.color import TONEMAP_FILTERS, filter_chain
from vodflow.media.commands import rate_options, x264_options
from vodflow.media.inputs import input_args

_FRAME_SSIM = re.compile(r"^n:\d+ .*\bAll:([\d.]+|inf)", re.M)
SCENES = 3
SCENE_SECONDS = 2.0
# Shares of the fixed ladder's bitrate probed per rung, cheapest first (1.0: the fixed rung itself).
PROBE_SHARES = (0.2, 0.35, 0.6, 1.0)


def sample_scenes(
    duration: float, scenes: int = SCENES, seconds: float = SCENE_SECONDS
) -> list[tuple[float, float]]:
    """(start, length) in seconds of `scenes` scenes of `seconds` each, centred in equal parts of the
    source; one scene of the whole source when it is not longer than they are together."""
    if duration <= scenes * seconds:
        return [(0.0, duration)]
    part = duration / scenes
    return [(round(part * (i + 0.5) - seconds / 2, 3), seconds) for i in range(scenes)]


def build_sample_command(
    source: Path, scenes: list[tuple[float, float]], dest: Path, *, tonemap: bool = False
) -> list[str]:
    """An ffmpeg command writing the `scenes` of `source` one after the other, video only, lossless
    (FFV1 in Matroska) at the source's size, to `dest`; with `tonemap` (an HDR source) tone-mapped to SDR
    BT.709 as the encode tone-maps its H.264 rungs, so the probes start from the picture they encode."""
    *restrictions, url = input_args(source)
    inputs: list[str] = []
    for start, length in scenes:
        inputs += ["-ss", f"{start:.3f}", "-t", f"{length:.3f}", *restrictions, "-i", url]
    joined = "".join(f"[{i}:v:0]" for i in range(len(scenes)))
    picture = filter_chain(TONEMAP_FILTERS) if tonemap else "format=yuv420p"
    graph = f"{joined}concat=n={len(scenes)}:v=1:a=0,{picture}[v]"
    return [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", *inputs,
        "-filter_complex", graph, "-map", "[v]", "-c:v", "ffv1", "-y", str(dest),
    ]  # fmt: skip


def probe_kbps(rung: Rendition, share: float) -> int:
    """The bitrate (kbit/s) a probe of `rung` at `share` of its fixed bitrate asks for."""
    return max(1, round(rung.video_kbps * share))


def build_probe_command(
    sample: Path, rung: Rendition, kbps: int, dest: Path, x264_preset: str = "veryfast"
) -> list[str]:
    """An ffmpeg command encoding the `sample` as the encode makes `rung`, at `kbps` (MP4, video only)."""
    options = {
        **x264_options(x264_preset),
        **rate_options(replace(rung, video_kbps=kbps), with_audio=False),
    }
    return [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
        "-i", str(sample), "-vf", f"scale={rung.width}:{rung.height},setsar=1",
        *(arg for key, value in options.items() for arg in (f"-{key}", str(value))),
        "-an", "-y", str(dest),
    ]  # fmt: skip


def build_ssim_command(probe: Path, sample: Path, rung: Rendition, stats: Path) -> list[str]:
    """An ffmpeg command writing the SSIM of each frame of `probe` against the `sample` (scaled to the rung's
    size with bicubic, the encode's scaler) to the file `stats`; ValueError for a path with a quote."""
    if "'" in str(stats):
        raise ValueError("the SSIM stats path must not contain a quote")
    graph = (
        f"[1:v]scale={rung.width}:{rung.height}:flags=bicubic,setsar=1[ref];"
        f"[0:v]setsar=1[probe];[probe][ref]ssim=stats_file='{stats}'"
    )
    return [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
        "-i", str(probe), "-i", str(sample), "-lavfi", graph, "-f", "null", "-",
    ]  # fmt: skip


def worst_scene_ssim(stats: str, scenes: int) -> float:
    """The lowest of the mean SSIMs of `scenes` equal runs of frames in an ffmpeg `ssim` stats file;
    ValueError when it holds fewer frames than scenes."""
    values = [float(v) for v in _FRAME_SSIM.findall(stats)]
    if len(values) < scenes:
        raise ValueError(f"{len(values)} frames of SSIM for {scenes} scenes")
    bounds = [round(i * len(values) / scenes) for i in range(scenes + 1)]
    return min(sum(values[a:b]) / (b - a) for a, b in zip(bounds, bounds[1:], strict=False))
