"""The quality step as a Prefect task: every video rendition measured against the source (`quality: true`)."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from vodflow.jobs.plan import OutputPlan
from vodflow.jobs.sources import Source
from vodflow.orchestration.concurrency import Slots
from vodflow.orchestration.progress import ArtifactProgress
from vodflow.orchestration.retries import task_retry_options
from vodflow.steps.quality import QualityReport, measure_quality


@task(name="quality", cache_policy=NONE, **task_retry_options())
def quality(
    source: Source,
    plan: OutputPlan,
    workdir: Path,
    configured_ffmpeg: str | None,
    slots: Slots,
    max_seconds: float,
    stall_seconds: float,
) -> QualityReport:
    renditions = sum(len(out.renditions) for out in (*plan.hls, *plan.cmaf)) + len(plan.mp4)
    label = f"quality of {renditions} rendition{'s' if renditions != 1 else ''}"
    report = measure_quality(
        source,
        plan,
        workdir,
        configured_ffmpeg=configured_ffmpeg,
        slots=slots,
        max_seconds=max_seconds,
        stall_seconds=stall_seconds,
        on_progress=ArtifactProgress(source.info.duration, label),
    )
    metrics = "SSIM, PSNR and VMAF" if report.vmaf else "SSIM and PSNR (no libvmaf)"
    get_run_logger().info(
        "quality: %s of %d renditions measured in %.2f s", metrics, len(report.scores), report.seconds
    )
    return report
