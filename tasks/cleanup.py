"""The cleanup step as a Prefect task: remove the run's temp directory, whatever happened to the run."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from vodflow.steps.workdir import remove_workdir


@task(name="cleanup", cache_policy=NONE)
def cleanup(workdir: Path) -> bool:
    return remove_workdir(workdir)
