"""The preview and chapters step as a Prefect task (after the encode, before publishing)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from vodflow.jobs.plan import OutputPlan
from vodflow.jobs.sources import Source
from vodflow.orchestration.concurrency import Slots
from vodflow.orchestration.retries import task_retry_options
from vodflow.steps.extras import make_extras


@task(name="preview-chapters", cache_policy=NONE, **task_retry_options())
def extras(source: Source, plan: OutputPlan, workdir: Path, slots: Slots, stall_seconds: float) -> None:
    make_extras(source, plan, workdir, slots=slots, stall_seconds=stall_seconds)
