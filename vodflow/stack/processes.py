"""Background processes of the stack: started in their own process group with output to a log file, checked
by pid and start time (a recycled pid is not ours), stopped with their whole group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from vodflow.stack.state import Part


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def process_start(pid: int) -> str | None:
    """The start time of `pid` in clock ticks since boot (Linux), or None where /proc cannot tell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]  # field 22 of proc(5), counted after the command name


def is_running(part: Part) -> bool:
    """Whether the process `part` recorded still runs (and is the same process, not a recycled pid)."""
    try:
        os.kill(part.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = _proc_state(part.pid)
    if state == "Z":
        return False
    return part.started_at is None or process_start(part.pid) in (None, part.started_at)


def _proc_state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return None


def spawn(
    name: str, args: list[str], env: Mapping[str, str], logs: Path, cwd: Path, url: str | None = None
) -> tuple[Part, subprocess.Popen]:
    """Start `args` detached (own session, stdin closed), output appended to `logs/<name>.log`."""
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
    return Part(
        name=name, pid=process.pid, started_at=process_start(process.pid), url=url, log=str(log)
    ), process


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


def stop(part: Part, grace: float = 10.0) -> bool:
    """SIGTERM the part's process group, SIGKILL whatever is left after `grace` s (a worker whose server is
    gone may ignore its first SIGTERM). True when something was running."""
    if not is_running(part):
        _signal_group(part.pid, signal.SIGKILL)  # children may outlive their leader
        return False
    _signal_group(part.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _group_alive(part.pid):
        time.sleep(0.2)
    _signal_group(part.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _group_alive(part.pid):
        time.sleep(0.1)
    return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group is still there (zombies of reaped parents do not count)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
