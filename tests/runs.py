"""Where a run keeps its temp directory under the settings in force (`VODFLOW_TMP_DIR`), for checks."""

from __future__ import annotations

from pathlib import Path

from vodflow.settings import load_settings
from vodflow.steps.workdir import run_workdir


def workdir_of(job_id: str) -> Path:
    return run_workdir(job_id, load_settings().tmp_dir)


def bytes_written() -> int:
    """How many bytes this process has written so far, to files, pipes and sockets (`wchar`, Linux)."""
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["wchar"])
