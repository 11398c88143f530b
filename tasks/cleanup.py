"""Cleanup: remove the run's temp directory, whatever happened to the run."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from vodflow.limits import check_job_id


def temp_root() -> Path:
    """Where runs keep their temp directories (`VODFLOW_TMP_DIR`, default the system temp dir)."""
    return Path(os.environ.get("VODFLOW_TMP_DIR") or tempfile.gettempdir())


def run_workdir(job_id: str) -> Path:
    """The temp directory of a job's run; derivable from the job id so hooks can find it."""
    return temp_root() / f"vodflow-{check_job_id(job_id)}"


def remove_workdir(workdir: Path) -> bool:
    """Remove `workdir` and everything in it; True when something was removed."""
    existed = workdir.exists()
    shutil.rmtree(workdir, ignore_errors=True)
    return existed


@task(name="cleanup", cache_policy=NONE)
def cleanup(workdir: Path) -> bool:
    return remove_workdir(workdir)
