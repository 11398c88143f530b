"""`vodflow down` signals only what `vodflow up` started, as a user runs it (a real `vodflow` process).

Each `vodflow down` runs in a session of its own together with a bystander `sleep`: a state file that made it
signal its caller's group (pid 0) kills the bystander, not the test. A user's shell job stands in as a process
with its own session and group (`sleep`, started with start_new_session); it must survive a state file that
names its pid with another identity, or even with its real start time and command line (it was not started
by the stack). Parts started as `vodflow up` starts them are still stopped, with what they started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults import LEDGER
from tests.prefect_server import BIN
from tests.procs import alive, cmdline, find, stat

STACK_ID = "5" * 32


def down(root: Path) -> tuple[subprocess.CompletedProcess, int]:
    """`vodflow down` for the state under `root`, run in a new session beside a bystander `sleep`; the
    finished command and the bystander's pid (the caller kills it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "VODFLOW_"))}
    env["VODFLOW_STATE_DIR"] = str(root / "state")
    script = 'sleep 300 >/dev/null 2>&1 & echo "$!" >&2; exec "$0" down'
    done = subprocess.run(
        ["sh", "-c", script, str(BIN / "vodflow")], env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    first, _, rest = done.stderr.partition("\n")
    done.stderr = rest
    return done, int(first)


@pytest.fixture
def bystanders() -> Iterator[list[subprocess.Popen | int]]:
    """Processes the test starts; all killed (by the pid the test got) at the end."""
    started: list[subprocess.Popen | int] = []
    yield started
    for each in started:
        pid = each if isinstance(each, int) else each.pid
        if alive(pid):
            os.kill(pid, 9)
        if isinstance(each, subprocess.Popen):
            each.wait()


def users_job(bystanders: list) -> subprocess.Popen:
    """A user's shell job: a `sleep` leading its own session and group, with a child in that group."""
    job = subprocess.Popen(["sh", "-c", "sleep 300 & exec sleep 301"], start_new_session=True)
    bystanders.append(job)
    wait_until(lambda: cmdline(job.pid) == ["sleep", "301"] and len(find(group=job.pid)) == 2)
    return job


def wait_until(ready: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, "not ready in time"
        time.sleep(0.05)


def craft(root: Path, parts: list[dict]) -> Path:
    """A state file as a tampered, broken or outdated one could be (not checked by the model)."""
    path = root / "state" / "stack.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"state_dir": str(root / "state"), "project_dir": str(root), "stack_id": STACK_ID, "parts": parts}
    path.write_text(json.dumps(state))
    return path


def part_for(pid: int, **changes: object) -> dict:
    """A part naming `pid` with its real identity, but for `changes`."""
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    real = {"started_at": (stat(pid) or [None] * 20)[19], "cmdline": cmdline(pid), "boot_id": boot}
    return {"name": "server", "pid": pid, "log": "server.log", **real, **changes}


def test_a_pid_that_is_another_process_now_is_not_signalled(tmp_path, bystanders):
    job = users_job(bystanders)
    members = find(group=job.pid)
    assert len(members) == 2
    for changes in ({"started_at": "1"}, {"cmdline": ["prefect", "server", "start"]}, {}):
        # another start time (pid reuse, a reboot), another command line, or the very same identity: none
        # of them was started by this stack (no stack id in its environment)
        path = craft(tmp_path, [part_for(job.pid, **changes)])
        done, bystander = down(tmp_path)
        bystanders.append(bystander)
        assert [pid for pid in members if alive(pid)] == members, changes  # the user's job lives
        assert done.returncode == 0, done.stderr
        assert f"pid {job.pid} is another process now" in done.stderr, done.stderr
        assert not path.exists()  # nothing of the stack runs: forgotten
    LEDGER.inject("stack state naming a foreign process", 3)


def test_a_state_file_that_cannot_be_trusted_is_reported_and_left(tmp_path, bystanders):
    job = users_job(bystanders)
    for part in (
        part_for(0),  # os.killpg(0) is the caller's own group
        part_for(-5),
        part_for(job.pid, started_at=None),
        part_for(job.pid, cmdline=None, boot_id=None),  # written by an older vodflow: no identity
    ):
        path = craft(tmp_path, [part])
        text = path.read_text()
        done, bystander = down(tmp_path)
        bystanders.append(bystander)
        assert alive(bystander) and alive(job.pid), part  # neither the caller's group nor the job
        assert done.returncode == 1, done.stderr
        assert "cannot be trusted, so nothing was signalled" in done.stderr and "parts.0." in done.stderr
        assert path.read_text() == text  # left as it was
    craft(tmp_path, [part_for(job.pid)]).chmod(0o666)  # writable by any user
    done, bystander = down(tmp_path)
    bystanders.append(bystander)
    assert done.returncode == 1 and "writable by another user" in done.stderr and alive(job.pid)
    LEDGER.inject("untrusted stack state file", 5)


def test_a_genuine_part_is_stopped_with_what_it_started(tmp_path, bystanders):
    from vodflow.stack.processes import spawn
    from vodflow.stack.state import STACK_ID_VARIABLE, StackState, save_state

    env = {"PATH": os.environ["PATH"], STACK_ID_VARIABLE: STACK_ID}
    logs = tmp_path / "state" / "logs"
    leader_code = "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"
    server, server_process = spawn("server", [sys.executable, "-c", leader_code], env, logs, tmp_path)
    worker, worker_process = spawn("worker", ["sh", "-c", "sleep 302 & sleep 0.5"], env, logs, tmp_path)
    bystanders.extend([server_process, worker_process])
    worker_process.wait()  # the worker's leader is gone; its child lives on in its group
    job = users_job(bystanders)
    wait_until(lambda: len(find(group=server.pid)) == 2)  # its child has started
    orphans, children = find(group=worker.pid), find(group=server.pid)
    assert len(orphans) == 1 and len(children) == 2
    save_state(StackState(state_dir=str(tmp_path / "state"), project_dir=str(tmp_path), stack_id=STACK_ID,
                          parts=[server, worker]))  # fmt: skip

    done, bystander = down(tmp_path)
    bystanders.append(bystander)
    assert done.returncode == 0 and "stopped server" in done.stderr, done.stderr
    server_process.wait(timeout=15)
    assert [pid for pid in orphans + children if alive(pid)] == []
    assert alive(job.pid) and alive(bystander)
    assert not (tmp_path / "state" / "stack.json").exists()
