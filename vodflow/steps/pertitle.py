"""Per-title analysis: probe encodes of a sample of the title at each `auto` rung, measured with SSIM (that of
the worst sampled scene).

Each rung is probed from its cheapest bitrate up and stops at the first probe that reaches the target quality
(more probes would not change its choice: `jobs.pertitle.choose_ladder`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from vodflow.errors import StepError
from vodflow.jobs.pertitle import TARGET_SSIM_DB, ProbePoint, ssim_db
from vodflow.jobs.plan import Rendition
from vodflow.jobs.sources import Source
from vodflow.media.pertitle import (
    PROBE_SHARES,
    build_probe_command,
    build_sample_command,
    build_ssim_command,
    probe_kbps,
    sample_scenes,
    worst_scene_ssim,
)
from vodflow.media.runner import run_ffmpeg
from vodflow.orchestration.concurrency import Slots

STEP = "encode"  # the analysis is the first part of an `auto` ladder's encode
PROBE_TIMEOUT = 300.0  # seconds for one ffmpeg of the analysis (a few seconds of video each)

StepCallback = Callable[[int, int, str], None]
"""Told (step, at most steps, what) as each step of the analysis begins."""


def probe_rungs(
    source: Source,
    rungs: Sequence[Rendition],
    workdir: Path,
    *,
    x264_preset: str = "veryfast",
    slots: Slots | None = None,
    target: float = TARGET_SSIM_DB,
    on_step: StepCallback | None = None,
) -> dict[str, list[ProbePoint]]:
    """Probe points (kbit/s, SSIM dB) per rung resolution, from encodes of a sample of `source`.

    Works in `workdir/pertitle` (removed after); StepError(encode) when an ffmpeg fails or times out, or
    measures nothing. `on_step(step, at most steps, what)` is told as the sample and each probe begin
    (`probe 3 of at most 8 (720p at 1210 kbit/s)`).
    """
    report = on_step or (lambda step, total, what: None)
    slots = slots or Slots()
    folder = workdir / "pertitle"
    folder.mkdir(parents=True, exist_ok=True)
    scenes = sample_scenes(source.info.duration)
    sample = folder / "sample.mkv"

    def run(command: list[str]) -> None:
        with slots.ffmpeg():
            run_ffmpeg(command, step=STEP, workdir=workdir, timeout=PROBE_TIMEOUT, source=source.path)

    try:
        hdr = source.info.dynamic_range != "sdr"
        shares = len(PROBE_SHARES)
        report(1, 1 + shares * len(rungs), f"sample of {len(scenes)} scenes")
        run(build_sample_command(source.path, scenes, sample, tonemap=hdr))
        points: dict[str, list[ProbePoint]] = {}
        begun = 0
        for i, rung in enumerate(rungs):
            found = points.setdefault(rung.resolution, [])
            for j, share in enumerate(PROBE_SHARES):
                kbps = probe_kbps(rung, share)
                begun += 1
                at_most = begun + (shares - j - 1) + (len(rungs) - i - 1) * shares
                what = f"probe {begun} of at most {at_most} ({rung.resolution}p at {kbps} kbit/s)"
                report(1 + begun, 1 + at_most, what)
                probe = folder / f"{rung.resolution}-{kbps}k.mp4"
                run(build_probe_command(sample, rung, kbps, probe, x264_preset))
                stats = folder / f"{rung.resolution}-{kbps}k.ssim"
                run(build_ssim_command(probe, sample, rung, stats))
                try:
                    quality = ssim_db(worst_scene_ssim(stats.read_text(), len(scenes)))
                except (OSError, ValueError) as exc:
                    raise StepError(STEP, "ffmpeg_failed", f"per-title analysis: no SSIM: {exc}") from exc
                found.append(ProbePoint(kbps, quality))
                if quality >= target:
                    break
        return points
    finally:
        shutil.rmtree(folder, ignore_errors=True)
