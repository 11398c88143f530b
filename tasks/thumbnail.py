"""The thumbnail step as a Prefect task: every planned image exists (the missing ones are taken by seek)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from vodflow.jobs.plan import OutputPlan
from vodflow.jobs.sources import Source
from vodflow.orchestration.concurrency import Slots
from vodflow.orchestration.retries import task_retry_options
from vodflow.steps.thumbnails import make_thumbnails


@task(name="thumbnail", cache_policy=NONE, **task_retry_options())
def thumbnail(source: Source, plan: OutputPlan, workdir: Path, slots: Slots, stall_seconds: float) -> int:
    return make_thumbnails(source, plan, workdir, slots=slots, stall_seconds=stall_seconds)
