"""Per-title analysis: probe encodes of a sample of the title at each `auto` rung, measured with SSIM.

Each rung is probed from its cheapest bitrate up and stops at the first probe that reaches the target quality
(more probes would not change its choice: `jobs.pertitle.choose_ladder`).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from vodflow.errors import StepError
from vodflow.jobs.pertitle import TARGET_SSIM_DB, ProbePoint, ssim_db
from vodflow.jobs.plan import Rendition
from vodflow.jobs.sources import Source
from vodflow.media.pertitle import (
    PROBE_SHARES,
    build_probe_command,
    build_sample_command,
    probe_kbps,
    sample_scenes,
)
from vodflow.media.quality import build_quality_command, parse_quality
from vodflow.media.runner import describe_failure, run_ffmpeg
from vodflow.orchestration.concurrency import Slots

STEP = "encode"  # the analysis is the first part of an `auto` ladder's encode
PROBE_TIMEOUT = 300.0  # seconds for one ffmpeg of the analysis (a few seconds of video each)


def measure_ssim(probe: Path, sample: Path, width: int, height: int, workdir: Path) -> float:
    """The SSIM (0-1) of `probe` against the `sample` scaled to its size; StepError(encode) on failure."""
    command = build_quality_command(probe, sample, width, height)
    try:
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=PROBE_TIMEOUT
        )
    except subprocess.TimeoutExpired as exc:
        raise StepError(STEP, "ffmpeg_timeout", f"SSIM did not finish within {PROBE_TIMEOUT:.0f} s") from exc
    try:
        if done.returncode != 0:
            raise ValueError(describe_failure(done.stderr[-20000:], workdir))
        return parse_quality(done.stderr).ssim
    except ValueError as exc:
        raise StepError(STEP, "ffmpeg_failed", f"per-title analysis: SSIM failed: {exc}") from exc


def probe_rungs(
    source: Source,
    rungs: Sequence[Rendition],
    workdir: Path,
    *,
    x264_preset: str = "veryfast",
    slots: Slots | None = None,
    target: float = TARGET_SSIM_DB,
) -> dict[str, list[ProbePoint]]:
    """Probe points (kbit/s, SSIM dB) per rung resolution, from encodes of a sample of `source`.

    Works in `workdir/pertitle` (removed after); StepError(encode) when an ffmpeg fails or times out.
    """
    slots = slots or Slots()
    folder = workdir / "pertitle"
    folder.mkdir(parents=True, exist_ok=True)
    scenes = sample_scenes(source.info.duration)
    sample = folder / "sample.mkv"

    def run(command: list[str]) -> None:
        with slots.ffmpeg():
            run_ffmpeg(command, step=STEP, workdir=workdir, timeout=PROBE_TIMEOUT, source=source.path)

    try:
        run(build_sample_command(source.path, scenes, sample))
        points: dict[str, list[ProbePoint]] = {}
        for rung in rungs:
            found = points.setdefault(rung.resolution, [])
            for share in PROBE_SHARES:
                kbps = probe_kbps(rung, share)
                probe = folder / f"{rung.resolution}-{kbps}k.mp4"
                run(build_probe_command(sample, rung, kbps, probe, x264_preset))
                with slots.ffmpeg():
                    quality = ssim_db(measure_ssim(probe, sample, rung.width, rung.height, workdir))
                found.append(ProbePoint(kbps, quality))
                if quality >= target:
                    break
        return points
    finally:
        shutil.rmtree(folder, ignore_errors=True)
