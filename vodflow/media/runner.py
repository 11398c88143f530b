"""Running ffmpeg: bounded in time, killed with its run, progress reported, errors without host paths."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from vodflow.errors import StepError
from vodflow.media.usage import kill_unreaped, wait_measured

PROGRESS_ARGS = ("-progress", "pipe:1", "-nostats")

# DEBUG lines when each ffmpeg starts and exits: the benchmark sends them to the Prefect API (its own
# PREFECT_LOGGING_SETTINGS_PATH) to measure the orchestration around ffmpeg (bench/fixed_cost.py).
logger = logging.getLogger("vodflow.media.runner")


@dataclass
class Progress:
    """The latest of ffmpeg's `-progress` reports: output time written so far and ffmpeg's speed, with the
    wall seconds since ffmpeg started (`elapsed`, set by `run_ffmpeg` on each report)."""

    out_seconds: float = 0.0
    speed: float = 0.0
    done: bool = False
    elapsed: float = 0.0


ProgressCallback = Callable[[Progress], None]


_SETPRIV = shutil.which("setpriv")


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGKILL ffmpeg if the process that started it dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def dying_with_parent(command: Sequence[str]) -> tuple[list[str], Callable[[], None] | None]:
    """`command` and the `preexec_fn` that make Linux SIGKILL it when the thread that started it ends.

    Through util-linux's `setpriv --pdeathsig KILL`, exec'd in place (same pid), so Python may start it with
    vfork: a `preexec_fn` makes it fork a copy of this process instead, whose copy-on-write faults and
    teardown are charged to the child's CPU (25 ms a run at 1.5 GB resident, 70 ms in a larger worker). The
    `preexec_fn` only where setpriv is missing. FileNotFoundError for a missing program, as Popen raises it.
    """
    if _SETPRIV is None:
        return list(command), _die_with_parent
    program = shutil.which(command[0])
    if program is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), command[0])
    return [_SETPRIV, "--pdeathsig", "KILL", "--", program, *command[1:]], None


STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


@contextmanager
def stop_signals_held() -> Iterator[None]:
    """Hold SIGTERM and SIGINT while the main thread forks a child; deliver them right after.

    A stop signal that lands while the fork runs Python's after-fork callbacks (logging's lock release)
    raises inside that callback, where Python can only print the exception and drop it: the run would go on
    as if never told to stop. During the hold a recorder replaces the Python-level handlers (a signal mask
    would not do: the kernel hands a process-wide signal to any thread that does not block it); the signals
    it recorded are raised again, through the restored handlers, once the fork has returned.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # Python runs signal handlers in the main thread only: nothing to hold elsewhere
        return
    held: list[int] = []
    previous = {
        number: signal.signal(number, lambda signum, frame: held.append(signum))
        for number in STOP_SIGNALS
        if signal.getsignal(number) is not None  # a handler installed outside Python: left as it is
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in held:
            signal.raise_signal(number)


def encode_timeout(
    duration: float, *, factor: float = 20.0, floor: float = 300.0, cap: float = 12 * 3600.0
) -> float:
    """Seconds an encode of a `duration`-second source may take before it is considered stuck: 20x the
    duration, at least `floor`, at most `cap` (`VODFLOW_MAX_ENCODE_SECONDS`)."""
    return min(cap, max(floor, duration * factor))


def describe_failure(stderr: str, workdir: Path, source: Path | None = None) -> str:
    """The last meaningful ffmpeg error lines, with temp and source paths replaced by neutral names."""
    text = stderr.replace(str(workdir), "<work>")
    if source is not None:
        text = text.replace(str(source), "<source>")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(lines[-3:])[:500] or "ffmpeg exited without a message"


def parse_progress_line(line: str, progress: Progress) -> None:
    """Fold one `key=value` line of ffmpeg's `-progress` output into `progress`."""
    key, _, value = line.strip().partition("=")
    if key == "out_time_us" and value.isdigit():
        progress.out_seconds = int(value) / 1e6
    elif key == "speed" and value.endswith("x"):
        try:
            progress.speed = float(value[:-1])
        except ValueError:
            pass
    elif key == "progress" and value == "end":
        progress.done = True


class _ProgressReader(threading.Thread):
    """Reads ffmpeg's `-progress` lines into `progress` and notes when its output time last moved."""

    def __init__(self, stream: IO[str], progress: Progress) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.progress = progress
        self.moved_at = time.monotonic()

    def run(self) -> None:
        for line in self.stream:
            before = self.progress.out_seconds
            parse_progress_line(line, self.progress)
            if self.progress.out_seconds != before:
                self.moved_at = time.monotonic()


def written_footprint(folder: Path) -> tuple[int, int]:
    """How many files `folder` holds and their bytes: what an encode has written so far."""
    count = size = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                size += os.stat(os.path.join(root, name)).st_size
            except OSError:  # removed meanwhile (a published segment, a temp file)
                continue
            count += 1
    return count, size


class _OutputWatch:
    """Notes when the files under a work directory last changed.

    ffmpeg reports no progress at all until every output has written its header: a storyboard's tile
    output writes its first sheet only once the sheet fills (100 frames, minutes of source), so its
    reports say nothing for most of such an encode while the other outputs grow on disk.
    """

    def __init__(self, folder: Path, limit: float) -> None:
        self.folder = folder
        self.limit = limit
        self.every = min(5.0, limit / 4)
        self.footprint = written_footprint(folder)
        self.checked_at = self.changed_at = time.monotonic()

    def check(self, now: float) -> float:
        """When the folder last changed, looking again at most every `every` s."""
        if now - self.checked_at >= self.every:
            footprint = written_footprint(self.folder)
            if footprint != self.footprint:
                self.footprint, self.changed_at = footprint, now
            self.checked_at = now
        return self.changed_at


def run_ffmpeg(
    args: list[str],
    *,
    step: str,
    workdir: Path,
    timeout: float,
    source: Path | None = None,
    on_progress: ProgressCallback | None = None,
    progress_interval: float = 2.0,
    stall_timeout: float | None = None,
) -> str:
    """Run an ffmpeg command and return its log (stderr); StepError(step, "ffmpeg_failed" | "ffmpeg_timeout"
    | "stalled") when it fails.

    `on_progress` is called from this thread every `progress_interval` seconds while ffmpeg runs. With
    `stall_timeout`, a run whose output time has not moved, nor any file under `workdir` changed, for that
    many seconds is stopped (`stalled`).
    The process is killed if the caller is interrupted (cancellation, timeout), so no ffmpeg outlives its run.
    """
    progress = Progress()
    command = [args[0], *PROGRESS_ARGS, *args[1:]]
    deadline = time.monotonic() + timeout
    reader: _ProgressReader | None = None
    with tempfile.TemporaryFile(mode="w+", dir=workdir) as errors:
        process: subprocess.Popen[str] | None = None
        try:  # a stop signal held during the fork is raised as the hold ends: ffmpeg is killed below
            argv, preexec = dying_with_parent(command)  # a killed worker leaves no orphan ffmpeg behind
            with stop_signals_held():
                process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    text=True,
                    preexec_fn=preexec,  # noqa: PLW1509 (no threads start in the child before exec)
                )
            logger.debug("ffmpeg started (%s, pid %d)", step, process.pid)
            assert process.stdout is not None
            started = time.monotonic()
            reader = _ProgressReader(process.stdout, progress)
            reader.start()
            watch = _OutputWatch(workdir, stall_timeout) if stall_timeout else None
            while True:
                now = time.monotonic()
                if now >= deadline:
                    raise StepError(step, "ffmpeg_timeout", f"ffmpeg did not finish within {timeout:.0f} s")
                wait = min(progress_interval, deadline - now)
                if watch is not None:
                    moved_at = max(reader.moved_at, watch.check(now))  # the output time, or the bytes
                    if now - moved_at >= watch.limit:
                        raise StepError(
                            step,
                            "stalled",
                            f"ffmpeg wrote nothing new for {watch.limit:g} s (stopped at "
                            f"{progress.out_seconds:.1f} s of output)",
                        )
                    wait = min(wait, watch.every, max(0.05, moved_at + watch.limit - now))
                try:
                    returncode = wait_measured(process, wait)  # its CPU seconds on the job's meter
                    break
                except subprocess.TimeoutExpired:
                    # a snapshot: the reader thread may mark the run done meanwhile, and the final
                    # report is made once, after the loop
                    snapshot = replace(progress, elapsed=time.monotonic() - started)
                    if on_progress and not snapshot.done:
                        on_progress(snapshot)
        finally:
            if process is not None and process.returncode is None:  # poll() would reap it unmeasured
                kill_unreaped(process)
                wait_measured(process)
            if reader is not None:
                reader.join(timeout=5)
            logger.debug("ffmpeg exited (%s, pid %d, code %s)", step, process.pid, process.returncode)
        if returncode < 0:  # its stderr then ends mid-sentence: the signal is the reason
            raise StepError(step, "ffmpeg_failed", f"ffmpeg was killed by {signal.Signals(-returncode).name}")
        if returncode != 0:
            errors.seek(0)
            message = describe_failure(errors.read()[-20000:], workdir, source)
            raise StepError(step, "ffmpeg_failed", f"ffmpeg failed: {message}")
        if on_progress:
            progress.done = True
            progress.elapsed = time.monotonic() - started
            on_progress(progress)
        errors.seek(0)
        return errors.read()
