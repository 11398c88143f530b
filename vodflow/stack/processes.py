"""Background processes of the stack: started in their own session and process group with output to a log
file, told from a process that got a recycled pid by start time, command line, boot and environment, and
stopped with the members of their group that provably descend from them. Nothing else is ever signalled."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vodflow.stack.state import STACK_ID_VARIABLE, Part, StackState


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Proc:
    """What /proc/<pid>/stat tells of a live process."""

    pid: int
    state: str  # "Z": a zombie, already dead
    pgid: int
    sid: int
    start: int  # clock ticks since boot


def read_proc(pid: int) -> Proc | None:
    """The process `pid` now, or None when there is none (or /proc cannot tell)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return Proc(pid, fields[0], int(fields[2]), int(fields[3]), int(fields[19]))  # proc(5) fields 3 to 22


def process_start(pid: int) -> str | None:
    """The start time of `pid` in clock ticks since boot (Linux), or None where /proc cannot tell."""
    proc = read_proc(pid)
    return str(proc.start) if proc else None


def _nul_list(path: str) -> list[str] | None:
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    return [os.fsdecode(item) for item in data.split(b"\0")[:-1]]


def process_cmdline(pid: int) -> list[str] | None:
    return _nul_list(f"/proc/{pid}/cmdline")


def boot_id() -> str | None:
    """This boot's id; another id in a state file means its processes died with an earlier boot."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def carries(pid: int, stack_id: str) -> bool:
    """Whether `pid` was started with the stack's id in its environment (it descends from the stack)."""
    return f"{STACK_ID_VARIABLE}={stack_id}" in (_nul_list(f"/proc/{pid}/environ") or [])


def identity_problem(part: Part, stack_id: str) -> str | None:
    """Why the process now at `part.pid` is not the one `up` started (None when it is that one, alive)."""
    if part.boot_id != boot_id():
        return "it was started before the last reboot"
    proc = read_proc(part.pid)
    if proc is None or proc.state == "Z":
        return "it has exited"
    if str(proc.start) != part.started_at or (proc.pgid, proc.sid) != (part.pid, part.pid):
        return f"pid {part.pid} is another process now (start time or process group differ)"
    if process_cmdline(part.pid) != part.cmdline or not carries(part.pid, stack_id):
        return f"pid {part.pid} is another process now (command line or environment differ)"
    return None


def is_running(part: Part, stack_id: str) -> bool:
    """Whether the process `part` recorded still runs (and is that process, not another with its pid)."""
    return identity_problem(part, stack_id) is None


def spawn(
    name: str, args: list[str], env: Mapping[str, str], logs: Path, cwd: Path, url: str | None = None
) -> tuple[Part, subprocess.Popen]:
    """Start `args` detached (own session, stdin closed), output appended to `logs/<name>.log`; its part
    records what identifies it later. RuntimeError (the process killed again) where /proc cannot tell."""
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            args,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 5.0  # /proc shows the new command line a moment after exec returned
    while not (cmdline := process_cmdline(process.pid)) and time.monotonic() < deadline:
        time.sleep(0.01)
    started, boot = process_start(process.pid), boot_id()
    if not (started and cmdline and boot):
        process.kill()
        if (status := process.wait()) >= 0:
            raise RuntimeError(f"{name} exited with status {status} at once (log: {log})")
        raise RuntimeError(f"{name}: /proc does not tell its start time, command line and boot")
    part = Part(
        name=name, pid=process.pid, started_at=started, cmdline=cmdline, boot_id=boot, url=url, log=str(log)
    )
    return part, process


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether an HTTP server answers `url` with any status below 500."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback URLs we made
            return response.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False


def wait_until(ready: Callable[[], bool], timeout: float, process: subprocess.Popen, what: str) -> None:
    """Poll `ready` until true; RuntimeError naming `what` on timeout or when `process` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode} before it was ready")
        if ready():
            return
        time.sleep(0.3)
    raise RuntimeError(f"{what} not ready after {timeout:.0f} s")


def stop(part: Part, stack_id: str, grace: float = 10.0) -> bool:
    """SIGTERM the part's process and the members of its group that are provably its own, SIGKILL whatever
    of them is left after `grace` s (a worker whose server is gone may ignore its first SIGTERM). True when
    the part itself was running; a process that is not the recorded one is never signalled."""
    with _pidfd(part.pid) as leader:
        running = leader is not None and is_running(part, stack_id)
        if running or part.boot_id == boot_id():  # members may outlive their leader; none outlive a boot
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
                if not _signal_members(part, stack_id, leader if running else None, sig):
                    break
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline and _members(part, stack_id, leader if running else None):
                    time.sleep(0.2)
    return running


@contextmanager
def _pidfd(pid: int) -> Iterator[int | None]:
    """A pidfd of `pid` (it keeps naming that process even if its pid is reused), None when it is gone."""
    try:
        fd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        yield None
        return
    try:
        yield fd
    finally:
        os.close(fd)


def _alive(pidfd: int) -> bool:
    try:
        signal.pidfd_send_signal(pidfd, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ours(proc: Proc, part: Part, stack_id: str, leader: int | None) -> bool:
    """Whether `proc` belongs to the part: in the session and group it leads, started after it, and either
    the part's own process still holds its pid (then nothing else can be in that session) or `proc` carries
    the stack's id in its environment."""
    if proc.state == "Z" or (proc.pgid, proc.sid) != (part.pid, part.pid):
        return False
    if proc.start < int(part.started_at):
        return False
    if leader is not None and _alive(leader):
        return True
    return proc.pid != part.pid and carries(proc.pid, stack_id)


def _members(part: Part, stack_id: str, leader: int | None) -> list[Proc]:
    procs = (read_proc(int(entry.name)) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return [proc for proc in procs if proc is not None and _ours(proc, part, stack_id, leader)]


def _signal_members(part: Part, stack_id: str, leader: int | None, sig: int) -> bool:
    """Send `sig` to each member, through a pidfd taken before its identity is checked again (a pid reused in
    between is never signalled). Whether any member was found."""
    found = _members(part, stack_id, leader)
    for member in found:
        with _pidfd(member.pid) as fd:
            again = read_proc(member.pid)  # the process the pidfd names, or one that took its pid before it
            if fd is None or again is None or again.start != member.start:
                continue
            if not _ours(again, part, stack_id, leader):
                continue
            try:
                signal.pidfd_send_signal(fd, sig)
            except (ProcessLookupError, PermissionError):
                pass
    return bool(found)


def _runs(state: StackState) -> list[Proc]:
    """The live processes the stack started outside its parts' own sessions: the flow runs its worker
    started (each in a session of its own) and what they started (ffmpeg). Each carries the stack's id in
    its environment, started in this boot, after the stack's first part; none before `up` can."""
    if not state.parts or any(part.boot_id != boot_id() for part in state.parts):
        return []
    parts = {part.pid for part in state.parts}
    since = min(int(part.started_at) for part in state.parts)
    procs = (read_proc(int(entry.name)) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return [
        proc
        for proc in procs
        if proc is not None
        and proc.state != "Z"
        and proc.sid not in parts
        and proc.start >= since
        and proc.pid != os.getpid()
        and carries(proc.pid, state.stack_id)
    ]


def stop_runs(state: StackState, grace: float = 30.0) -> int:
    """SIGTERM the session leaders among the stack's flow-run processes (`_runs`: a flow run told so fails
    its job, removes its temp directory and releases its slots), SIGKILL whatever of them and theirs is left
    after `grace` s. The number of runs told to stop."""
    leaders = [proc for proc in _runs(state) if proc.pid == proc.sid]
    for sig, wait, targets in ((signal.SIGTERM, grace, leaders), (signal.SIGKILL, 5.0, None)):
        for proc in targets if targets is not None else _runs(state):
            _send(proc, sig, state.stack_id)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _runs(state):
            time.sleep(0.2)
        if not _runs(state):
            break
    return len(leaders)


def _send(proc: Proc, sig: int, stack_id: str) -> None:
    """`sig` to `proc` through a pidfd, once the pidfd is known to name that very process."""
    with _pidfd(proc.pid) as fd:
        again = read_proc(proc.pid)
        if fd is None or again is None or again.start != proc.start or not carries(proc.pid, stack_id):
            return
        try:
            signal.pidfd_send_signal(fd, sig)
        except (ProcessLookupError, PermissionError):
            pass
