"""What a job's ffmpeg and ffprobe processes cost: each child is reaped with `os.wait4`, and its CPU seconds
(user + system, from its resource usage) are added to the job's `Meter`, found through a context variable.

The flow opens a meter for the job (`metering`); every ffmpeg and ffprobe the job runs in that context, in
its thread or in a thread or Prefect task started from it, adds to it. A step that runs elsewhere (a Dask
worker) opens a meter of its own, returns its figures with its result, and the caller adds them
(`Meter.add`). Wall seconds of the job's steps and the bytes it read are noted on the same meter.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from vodflow.jobs.document import FileEntry, JobUsage


@dataclass
class Meter:
    """CPU seconds of the processes reaped in its context, wall seconds per step, bytes read; thread-safe.
    `cpu_known` is False where the work ran elsewhere (a remote encoder): its CPU is then unknown."""

    cpu_seconds: float = 0.0
    processes: int = 0
    steps: dict[str, float] = field(default_factory=dict)
    bytes_in: int | None = None
    cpu_known: bool = True
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, cpu_seconds: float, processes: int = 1) -> None:
        """Count `processes` that took `cpu_seconds` of CPU (user + system)."""
        with self._lock:
            self.cpu_seconds += cpu_seconds
            self.processes += processes

    def add_bytes_in(self, size: int) -> None:
        with self._lock:
            self.bytes_in = (self.bytes_in or 0) + size

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Add the wall seconds of the block to step `name` (a failed block counts too)."""
        started = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                self.steps[name] = self.steps.get(name, 0.0) + time.monotonic() - started

    def usage(self, files: Sequence[FileEntry]) -> JobUsage:
        """The document's `usage`: these figures, with the bytes of the job's files (`bytesOut`: its
        outputs; `storedBytes`: every file it keeps in storage, an original too)."""
        stored = sum(f.size for f in files)
        out = sum(f.size for f in files if str(f.type) != "original")
        return JobUsage(
            cpu_seconds=round(self.cpu_seconds, 3) if self.cpu_known else None,
            processes=self.processes if self.cpu_known else None,
            wall_seconds=round(sum(self.steps.values()), 3),
            steps={name: round(seconds, 3) for name, seconds in self.steps.items()},
            bytes_in=self.bytes_in,
            bytes_out=out,
            stored_bytes=stored,
        )


_current: ContextVar[Meter | None] = ContextVar("vodflow_meter", default=None)


def current_meter() -> Meter | None:
    return _current.get()


@contextmanager
def metering(meter: Meter | None = None) -> Iterator[Meter]:
    """Count the processes reaped in this context (and contexts copied from it) on `meter` (a new one by
    default); an enclosing meter does not see them."""
    meter = meter if meter is not None else Meter()
    token = _current.set(meter)
    try:
        yield meter
    finally:
        _current.reset(token)


@dataclass(frozen=True)
class Metered:
    """A step's result with the CPU seconds and processes it measured where it ran."""

    result: Any
    cpu_seconds: float
    processes: int


def _record(rusage: Any) -> None:
    meter = _current.get()
    if meter is not None:
        meter.add(rusage.ru_utime + rusage.ru_stime)


def wait_measured(process: subprocess.Popen[Any], timeout: float | None = None) -> int:
    """`process.wait(timeout)`, reaping it with `os.wait4` so its CPU seconds reach the current meter;
    subprocess.TimeoutExpired when it is still running after `timeout` seconds."""
    if process.returncode is not None:
        return process.returncode
    if timeout is not None:
        handle = os.pidfd_open(process.pid)  # readable once the process has exited (Linux 5.3)
        try:
            ready, _, _ = select.select([handle], [], [], max(0.0, timeout))
        finally:
            os.close(handle)
        if not ready:
            raise subprocess.TimeoutExpired(process.args, timeout)
    try:
        _, status, rusage = os.wait4(process.pid, 0)
    except ChildProcessError:  # reaped elsewhere: nothing to measure
        return process.wait()
    _record(rusage)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode


def kill_unreaped(process: subprocess.Popen[Any]) -> None:
    """SIGKILL a process not reaped yet, without reaping it: `Popen.kill` and `poll` reap one that has
    exited, unmeasured; an exited one waits as a zombie (its pid still its own) for `wait_measured`."""
    if process.returncode is None:
        with suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)


def run_measured(
    command: list[str], *, timeout: float | None = None, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """`subprocess.run(command, capture_output=True, text=True, timeout=, check=)` with the process's CPU
    seconds on the current meter (a process killed at the timeout too)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, text=True)
        try:
            code = wait_measured(process, timeout)
        except BaseException:
            kill_unreaped(process)
            wait_measured(process)
            raise
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(command, code, out.read(), err.read())
    if check:
        done.check_returncode()
    return done
