"""A run's temp directory, and the lock that keeps two runs of one job apart on a host.

Each run works in a directory of its own under `VODFLOW_TMP_DIR` (default the system temp dir),
`vodflow-<job id>-<16 random hex digits>`, made with mode 0700: other local users can neither guess its name
nor look inside, and no other run (on this host or another sharing the folder) ever uses it.

While it runs, a run holds an exclusive lock on `<job id>.lock` in `vodflow-locks-<uid>` (a folder of this
user's, mode 0700, next to the temp directories): a second run of the same job on this host fails at once
(`job_running`) instead of working in, or deleting, the first one's files, whether or not the Prefect job slot
could be had. The kernel drops the lock with the process, however it ends; whoever holds it next removes the
temp directories of that job that a killed run left behind.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vodflow.errors import StepError
from vodflow.jobs.keys import check_job_id

LOCKS = "vodflow-locks-{uid}"
SUFFIX = re.compile(r"[0-9a-f]{16}")
_held: set[str] = set()  # the jobs whose lock this process holds


def temp_root(tmp_dir: Path | None = None) -> Path:
    """Where runs keep their temp directories: `tmp_dir` (`VODFLOW_TMP_DIR`), else the system temp dir."""
    return Path(tmp_dir or tempfile.gettempdir())


def new_workdir(job_id: str, tmp_dir: Path | None = None) -> Path:
    """A fresh name for a run's temp directory (`make_workdir` creates it): unguessable, unique to the run."""
    return temp_root(tmp_dir) / f"vodflow-{check_job_id(job_id)}-{secrets.token_hex(8)}"


def make_workdir(workdir: Path) -> None:
    """Create the run's temp directory, private to this user (0700); fails if anything is there already."""
    workdir.parent.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(mode=0o700)


def job_workdirs(job_id: str, tmp_dir: Path | None = None) -> list[Path]:
    """The temp directories of the job's runs under `tmp_dir` that this user owns (no symbolic links)."""
    prefix = f"vodflow-{check_job_id(job_id)}-"
    found = []
    try:
        entries = list(os.scandir(temp_root(tmp_dir)))
    except FileNotFoundError:
        return []
    for entry in entries:
        if not (entry.name.startswith(prefix) and SUFFIX.fullmatch(entry.name[len(prefix) :])):
            continue
        info = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid():
            found.append(Path(entry.path))
    return sorted(found)


def remove_workdir(workdir: Path) -> bool:
    """Remove `workdir` and everything in it; True when something was removed."""
    existed = workdir.exists()
    shutil.rmtree(workdir, ignore_errors=True)
    return existed


def remove_job_workdirs(job_id: str, tmp_dir: Path | None = None) -> int:
    """Remove the job's temp directories (call it holding the job's lock: no run of it is alive here)."""
    return sum(remove_workdir(path) for path in job_workdirs(job_id, tmp_dir))


def lock_folder(tmp_dir: Path | None = None) -> Path:
    """This user's folder of job locks (made 0700 if missing); StepError(run, unsafe_temp_dir) when it is
    not a folder of this user's that only this user may enter."""
    folder = temp_root(tmp_dir) / LOCKS.format(uid=os.geteuid())
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise StepError("run", "unsafe_temp_dir", f"{folder.name} in the temp dir is not this user's folder")
    if info.st_mode & 0o077:
        os.chmod(folder, 0o700)
    return folder


@contextmanager
def job_lock(job_id: str, tmp_dir: Path | None = None) -> Iterator[None]:
    """Hold the job's lock on this host while the block runs; StepError(run, job_running) at once when
    another run holds it. The lock file is removed on the way out (a run that took the old file checks it
    is still the one in place, and tries again if not)."""
    path = lock_folder(tmp_dir) / f"{check_job_id(job_id)}.lock"
    for _ in range(10):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StepError(
                "run", "job_running", f"job {job_id} is running on this host already; not run twice at once"
            ) from None
        try:
            if os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:  # its holder removed it as we took it: take the next one
            pass
        os.close(fd)
    else:  # pragma: no cover - only under a storm of runs of one job
        raise StepError("run", "job_running", f"job {job_id}: its lock keeps changing hands")
    _held.add(job_id)
    try:
        yield
    finally:
        _held.discard(job_id)
        path.unlink(missing_ok=True)
        os.close(fd)


def holds_job_lock(job_id: str) -> bool:
    """Whether this process holds the job's lock (a run of it is at work here)."""
    return job_id in _held


def leave_job(job_id: str, tmp_dir: Path | None = None) -> None:
    """For a process about to end without unwinding its run (`os._exit`): when it holds the job's lock,
    remove the job's temp directories and the lock file (the kernel drops the lock itself)."""
    if holds_job_lock(job_id):  # else they are another run's
        remove_job_workdirs(job_id, tmp_dir)
        (lock_folder(tmp_dir) / f"{check_job_id(job_id)}.lock").unlink(missing_ok=True)
