"""Where a job's runs keep their temp directories under the settings in force (`VODFLOW_TMP_DIR`), and what
a process has written, for checks."""

from __future__ import annotations

import tempfile
from pathlib import Path

from vodflow.settings import load_settings


def _temp_root() -> Path:
    return Path(load_settings().tmp_dir or tempfile.gettempdir())


def workdirs_of(job_id: str) -> list[Path]:
    """The temp directories of the job's runs still there (none once its runs have ended)."""
    return sorted(p for p in _temp_root().glob(f"vodflow-{job_id}*") if p.is_dir())


def workdir_marker(job_id: str) -> str:
    """What the command line of every ffmpeg of the job's runs holds: the start of their temp dirs' paths."""
    return str(_temp_root() / f"vodflow-{job_id}")


def bytes_written() -> int:
    """How many bytes this process has written so far, to files, pipes and sockets (`wchar`, Linux)."""
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["wchar"])


def temp_left(root: Path) -> list[Path]:
    """What runs left under a temp root: everything but the job-lock folder itself (empty between runs)."""
    locks = [p for p in root.glob("vodflow-locks-*") if p.is_dir()]
    return sorted(p for p in root.rglob("*") if p not in locks)
