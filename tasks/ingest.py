"""The ingest step as a Prefect task: fetch the source into the run's temp directory and probe it."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from vodflow.jobs.sources import Source
from vodflow.jobs.spec import JobSpec
from vodflow.orchestration.retries import task_retry_options
from vodflow.steps.ingest import IngestPolicy, ingest_source
from vodflow.storage.base import Storage


@task(name="ingest", cache_policy=NONE, **task_retry_options())
def ingest(spec: JobSpec, workdir: Path, storage: Storage, policy: IngestPolicy) -> Source:
    return ingest_source(spec, workdir, storage, policy)
