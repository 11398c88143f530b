"""A run's temp directory: where it is (derivable from the job id) and its removal, whatever happened."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from vodflow.jobs.keys import check_job_id


def run_workdir(job_id: str, tmp_dir: Path | None = None) -> Path:
    """The temp directory of a job's run under `tmp_dir` (`VODFLOW_TMP_DIR`, default the system temp dir);
    derivable from the job id so hooks can find it."""
    return Path(tmp_dir or tempfile.gettempdir()) / f"vodflow-{check_job_id(job_id)}"


def remove_workdir(workdir: Path) -> bool:
    """Remove `workdir` and everything in it; True when something was removed."""
    existed = workdir.exists()
    shutil.rmtree(workdir, ignore_errors=True)
    return existed
