"""The publish step as a Prefect task: measure every output, upload it, describe it as a file entry."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from vodflow.jobs.document import FileEntry, JobDocument
from vodflow.jobs.plan import OutputPlan
from vodflow.orchestration.retries import task_retry_options
from vodflow.steps.publish import publish_outputs
from vodflow.steps.quality import QualityReport
from vodflow.storage.base import Storage


@task(name="publish", cache_policy=NONE, **task_retry_options())
def publish(
    doc: JobDocument,
    plan: OutputPlan,
    workdir: Path,
    storage: Storage,
    quality: QualityReport | None = None,
) -> list[FileEntry]:
    return publish_outputs(doc, plan, workdir, storage, quality)
