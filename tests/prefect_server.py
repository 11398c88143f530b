"""A real Prefect server, CLI calls and workers for integration tests, each in its own process group.

`PrefectServer` runs `prefect server start` on a free loopback port with its own PREFECT_HOME (SQLite
inside it), gives the environment every other process needs (`env`), and stops everything it started:
the server, workers and helper processes, with their children (flow-run processes, ffmpeg).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import httpx

from tests.ports import free_port

BIN = Path(sys.executable).parent


def wait_for_http(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Poll `url` until it answers 200; RuntimeError on timeout or when `process` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args[:3]} exited with {process.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def stop_group(process: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL what is left after `grace` seconds."""
    if process.poll() is not None:
        _kill_group(process.pid, signal.SIGKILL)  # children may outlive their leader
        return
    _kill_group(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    _kill_group(process.pid, signal.SIGKILL)
    process.wait(5)


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class PrefectServer:
    """`prefect server start` plus the processes started against it; use as a context manager."""

    def __init__(self, home: Path, logs: Path, extra_env: Mapping[str, str] | None = None) -> None:
        self.home = home
        self.logs = logs
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.processes: list[subprocess.Popen] = []
        self._log_files: list[IO[bytes]] = []
        base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        self.env: dict[str, str] = {
            **base,
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_API_URL": self.api_url,
            "PREFECT_LOGGING_LEVEL": "INFO",
            "PREFECT_CLI_PROMPT": "false",
            "DO_NOT_TRACK": "1",
            **(extra_env or {}),
        }

    def __enter__(self) -> PrefectServer:
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            server_env = {k: v for k, v in self.env.items() if k != "PREFECT_API_URL"}
            self.server = self.start(
                "server",
                [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                env=server_env,
            )
            wait_for_http(f"{self.api_url}/health", timeout=90, process=self.server)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(
        self, name: str, args: list[str], env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.Popen:
        """Start a process in its own group, output to `logs/<name>.log`; stopped by `stop()`."""
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._log_files.append(log)
        process = subprocess.Popen(
            args,
            env=dict(env or self.env),
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def cli(self, *args: str, cwd: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
        """Run `prefect ARGS` against this server; RuntimeError with its output when it fails."""
        result = subprocess.run(
            [str(BIN / "prefect"), *args],
            env=self.env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise RuntimeError(f"prefect {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def start_worker(self, pool: str, name: str, cwd: Path | None = None) -> subprocess.Popen:
        return self.start(
            f"worker-{name}",
            [str(BIN / "prefect"), "worker", "start", "--pool", pool, "--type", "process", "--name", name],
            cwd=cwd,
        )

    def log_tail(self, name: str, chars: int = 4000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop(self) -> None:
        """Stop every process started here (newest first), with their process groups."""
        for process in reversed(self.processes):
            stop_group(process)
        self.processes.clear()
        for log in self._log_files:
            log.close()
        self._log_files.clear()
