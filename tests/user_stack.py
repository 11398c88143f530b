"""One `vodflow up` stack, as a user starts it, shared by the test files that only need one running
(`STACK_FILES`): the browser harness, the chunked joins in a browser and the CLI hand-off.

Each of those files used to start and stop a stack of its own (about 40 s of two busy cores each). The files
now run one after the other on one pytest-xdist worker (tests/conftest.py hands them out as one unit); the
first of them starts the stack, and `vodflow down` stops it as soon as that worker moves on to a file that
does not use it, or at the end of the session. Each file's jobs have ids of their own; nothing in these files
stops, restarts or reconfigures the stack (test_priorities.py pauses its pool and limits it to one run for
one test, and puts both back) (the tests of `up`, `down`, restarts and the warm runner keep
stacks of their own).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.prefect_server import BIN
from vodflow.stack.state import StackState, load_state

REPO = Path(__file__).resolve().parents[1]
STACK_API_KEY = "stack-api-key"
STACK_API_SECRET = "stack-api-secret-0123456789abcdef0123"
STACK_KEY_SECRET = "stack-key-secret-0123456789abcdef0123"
STACK_FILES = (
    "tests/integration/cli/test_handoff.py",
    "tests/integration/browser/test_browser_outputs.py",
    "tests/integration/browser/test_chunked_joins.py",
    "tests/integration/orchestration/test_priorities.py",
    "tests/integration/browser/test_private_stack.py",
)


@dataclass
class UserStack:
    """A running stack: its directory (state, data and temp files under it), the user's environment for the
    CLI and the state `up` recorded."""

    root: Path
    env: dict[str, str]
    state: StackState


def user_env(root: Path) -> dict[str, str]:
    """A user's shell: no Prefect or vodflow settings of the test session; the stack's state and data under
    `root`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "VODFLOW_"))}
    return env | {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_HOME": str(root / "user-prefect-home"),
        "VODFLOW_STATE_DIR": str(root / "state"),
        "VODFLOW_DATA_DIR": str(root / "data"),
        "VODFLOW_ALLOW_LOCAL_FILES": "true",
        # the stack's encoder-job API (`up --api`) and the sealing of encrypted jobs' keys
        "VODFLOW_API_KEY": STACK_API_KEY,
        "VODFLOW_API_SECRET": STACK_API_SECRET,
        "VODFLOW_KEY_SECRET": STACK_KEY_SECRET,
    }


def vodflow(env: dict[str, str], *args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "vodflow"), *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


class SharedStack:
    """The worker's one stack: `up` on the first `get`, `down` on `stop` (a later `get` starts a new one)."""

    def __init__(self) -> None:
        self.running: UserStack | None = None

    def get(self, tmp_path_factory: pytest.TempPathFactory) -> UserStack:
        if self.running is None:
            root = tmp_path_factory.mktemp("user-stack")
            (root / "work").mkdir()
            env = user_env(root) | {"VODFLOW_TMP_DIR": str(root / "work")}
            started = vodflow(env, "up", "--api")
            if started.returncode != 0:
                vodflow(env, "down", timeout=180)
                logs = "\n".join(p.read_text()[-2000:] for p in (root / "state" / "logs").glob("*.log"))
                pytest.fail(f"`vodflow up` failed ({started.returncode}):\n{started.stderr}\n{logs}")
            state = load_state(root / "state")
            assert state is not None, "`vodflow up` recorded no state"
            self.running = UserStack(root, env, state)
        return self.running

    def stop(self) -> None:
        if self.running is not None:
            running, self.running = self.running, None
            vodflow(running.env, "down", timeout=180)


SHARED = SharedStack()
