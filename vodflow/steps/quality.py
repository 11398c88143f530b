"""Quality: measure every video rendition of a local encode against its source (`quality: true` jobs).

One ffmpeg decodes the source once and compares every rendition with it (`build_job_quality_command`): SSIM
and PSNR always, VMAF when the measuring ffmpeg has libvmaf. That ffmpeg is `VODFLOW_QUALITY_FFMPEG` when set,
else the static one of the `imageio-ffmpeg` wheel when it is installed and has libvmaf, else `ffmpeg` on the
PATH (Debian's has no libvmaf: VMAF is then left out). A measurement that fails fails the job.
"""

from __future__ import annotations

import functools
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from vodflow.errors import StepError
from vodflow.jobs.plan import OutputPlan, Rendition
from vodflow.jobs.sources import Source
from vodflow.media.commands import hls_dir, mp4_path, rung_name, variant_name
from vodflow.media.quality import (
    QualityScores,
    QualityTarget,
    build_job_quality_command,
    has_libvmaf,
    parse_job_quality,
    rounded,
    rung_files,
)
from vodflow.media.runner import ProgressCallback, encode_timeout, run_ffmpeg
from vodflow.orchestration.concurrency import Slots
from vodflow.packaging.cmaf import cmaf_dir, media_playlist


@dataclass(frozen=True)
class QualityTool:
    """The ffmpeg that measures, and whether it has libvmaf."""

    ffmpeg: str
    vmaf: bool


@dataclass(frozen=True)
class QualityReport:
    """A job's measured renditions (scores rounded for the document, by `rung_label`), the seconds the
    measurement took and whether VMAF was measured."""

    scores: dict[str, QualityScores]
    seconds: float
    vmaf: bool


def rung_label(file_id: str, variant: str | None = None) -> str:
    """The key of a rendition's scores: an MP4's file id, or a ladder's file id and variant (`<id>/240p`)."""
    return f"{file_id}/{variant}" if variant else file_id


def _lists_libvmaf(ffmpeg: str) -> bool | None:
    """Whether `ffmpeg -filters` lists libvmaf; None when that ffmpeg cannot be run."""
    try:
        listing = subprocess.run(
            [ffmpeg, "-hide_banner", "-filters"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return has_libvmaf(listing)


@functools.cache
def quality_tool(configured: str | None = None) -> QualityTool:
    """The ffmpeg that measures (`configured` is `VODFLOW_QUALITY_FFMPEG`), looked up once per process;
    StepError(quality, quality_ffmpeg) when the configured one cannot be run."""
    if configured:
        vmaf = _lists_libvmaf(configured)
        if vmaf is None:
            raise StepError("quality", "quality_ffmpeg", "VODFLOW_QUALITY_FFMPEG cannot be run")
        return QualityTool(configured, vmaf)
    try:
        import imageio_ffmpeg

        bundled: str | None = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):  # not installed, or no binary for this platform
        bundled = None
    if bundled and _lists_libvmaf(bundled):
        return QualityTool(bundled, True)
    return QualityTool("ffmpeg", bool(_lists_libvmaf("ffmpeg")))


def quality_targets(plan: OutputPlan, workdir: Path) -> list[QualityTarget]:
    """Every video rendition the encode wrote under `workdir`: each HLS rung (its MPEG-TS segments), each
    CMAF rung (its init and media segments) and each MP4; StepError(quality) when a rung's playlist is
    missing or lists nothing."""
    targets = []
    hdr_source = plan.dynamic_range != "sdr"

    def target(label: str, files: tuple[Path, ...], demuxer: str, rendition: Rendition) -> QualityTarget:
        tonemap = hdr_source and rendition.dynamic_range == "sdr"
        return QualityTarget(label, files, demuxer, rendition.width, rendition.height, tonemap)

    for out in plan.hls:
        for rendition in out.renditions:
            name = variant_name(rendition)
            label = rung_label(out.file_id, name)
            targets.append(
                target(label, _rung(hls_dir(workdir, out) / name, "index.m3u8", label), "mpegts", rendition)
            )
    for out in plan.cmaf:
        for j, rendition in enumerate(out.renditions):
            label = rung_label(out.file_id, rung_name(rendition))
            targets.append(
                target(label, _rung(cmaf_dir(workdir, out), media_playlist(j), label), "mov", rendition)
            )
    for out in plan.mp4:
        targets.append(target(out.file_id, (mp4_path(workdir, out),), "mov", out.rendition))
    return targets


def _rung(folder: Path, playlist: str, label: str) -> tuple[Path, ...]:
    try:
        names = rung_files((folder / playlist).read_text())
    except OSError as exc:
        raise StepError("quality", "quality_failed", f"{label}: no playlist to measure") from exc
    if not names:
        raise StepError("quality", "quality_failed", f"{label}: its playlist lists no segment")
    return tuple(folder / name for name in names)


def measure_quality(
    source: Source,
    plan: OutputPlan,
    workdir: Path,
    *,
    configured_ffmpeg: str | None = None,
    slots: Slots | None = None,
    max_seconds: float = 12 * 3600.0,
    stall_seconds: float = 120.0,
    on_progress: ProgressCallback | None = None,
) -> QualityReport:
    """Measure every video rendition of `plan` under `workdir` against the source, in one ffmpeg bounded
    like an encode of the source (`encode_timeout`, capped at `max_seconds`); StepError(quality) when the
    measurement fails or its log lacks a rendition's scores. `on_progress` hears how far it is.
    """
    tool = quality_tool(configured_ffmpeg)
    targets = quality_targets(plan, workdir)
    command = build_job_quality_command(source.path, targets, vmaf=tool.vmaf, ffmpeg=tool.ffmpeg)
    started = time.monotonic()
    with (slots or Slots()).ffmpeg():
        log = run_ffmpeg(
            command,
            step="quality",
            workdir=workdir,
            timeout=encode_timeout(source.info.duration, cap=max_seconds),
            stall_timeout=stall_seconds or None,
            source=source.path,
            on_progress=on_progress,
        )
    seconds = round(time.monotonic() - started, 2)
    try:
        scores = parse_job_quality(log, targets)
    except ValueError as exc:
        raise StepError("quality", "quality_failed", str(exc)) from exc
    return QualityReport({label: rounded(s) for label, s in scores.items()}, seconds, tool.vmaf)
