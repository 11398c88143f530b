"""The per-title analysis as a Prefect task: probe points for every `ladder: auto` rung of a plan."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from vodflow.jobs.pertitle import ProbePoint
from vodflow.jobs.plan import Rendition
from vodflow.jobs.sources import Source
from vodflow.orchestration.concurrency import Slots
from vodflow.orchestration.progress import StepProgress
from vodflow.orchestration.retries import task_retry_options
from vodflow.steps.pertitle import probe_rungs


@task(name="ladder-analysis", cache_policy=NONE, **task_retry_options())
def analyse_ladder(
    source: Source, rungs: list[Rendition], workdir: Path, x264_preset: str, slots: Slots
) -> dict[str, list[ProbePoint]]:
    progress = StepProgress("analysis")
    started = time.monotonic()
    points = probe_rungs(source, rungs, workdir, x264_preset=x264_preset, slots=slots, on_step=progress)
    probes = sum(len(found) for found in points.values())
    rungs_text = f"{len(rungs)} rung{'s' if len(rungs) != 1 else ''}"
    progress.finish(f"{probes} probes for {rungs_text} in {time.monotonic() - started:.1f} s")
    return points
