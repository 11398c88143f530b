"""`vodflow encode` and `vodflow demo` as a user runs them: real processes, Prefect's temporary server.

The contract: JSON on stdout, logs on stderr, exit 0 completed / 1 failed; a run stopped by SIGTERM or Ctrl-C
ends within seconds as a `failed` document (`cancelled`) with its temp directory gone and nothing left
running; a Prefect that cannot be reached is a `failed` document too, never a traceback.

Runs that test Prefect's temporary server (a signal mid-encode must stop it too) start one each; the others
run against the session's running test server (`server_env`, PREFECT_API_URL), as a user with a stack does.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults import LEDGER
from tests.httpserver import serve
from tests.media import make_clip
from tests.prefect_server import BIN, free_port
from tests.procs import command_line, descendants, started_at
from tests.runs import temp_left

MP4_240 = [{"format": "mp4", "resolutions": ["240"]}]


@dataclass
class CliRun:
    code: int
    document: dict
    stderr: str
    seconds: float  # from the signal (or the start) to the exit
    leftovers: list[str]  # command lines of the run's descendants still alive after it exited


@pytest.fixture
def cli_env(tmp_path) -> dict[str, str]:
    """The environment of a fresh user: its own Prefect home (temporary server), data and temp folders."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        VODFLOW_STORAGE="local",
        VODFLOW_DATA_DIR=str(tmp_path / "data"),
        VODFLOW_TMP_DIR=str(tmp_path / "tmp"),
    )
    (tmp_path / "tmp").mkdir()
    return env


@pytest.fixture(scope="module")
def running_api(prefect_harness) -> str:
    """The API of the session's Prefect test server, for runs that need a server but not a fresh one."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


@pytest.fixture
def server_env(cli_env, running_api) -> dict[str, str]:
    """A user's environment with PREFECT_API_URL naming a running server (no temporary server)."""
    return {**cli_env, "PREFECT_API_URL": running_api}


@pytest.fixture(scope="module")
def long_720p(tmp_path_factory) -> Path:
    """A 30 s 1280x720 source: long enough that its encode is still running when the signal comes."""
    return make_clip(tmp_path_factory.mktemp("long") / "long.mp4", 1280, 720, seconds=30)


def run_cli(
    args: list[str],
    env: dict[str, str],
    *,
    stop_when: Callable[[subprocess.Popen], bool] | None = None,
    sig: int = signal.SIGTERM,
    timeout: float = 240,
) -> CliRun:
    """Run `vodflow ARGS`; with `stop_when`, send `sig` once it holds. Descendants are watched throughout."""
    process = subprocess.Popen(
        [str(BIN / "vodflow"), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    seen: dict[int, str | None] = {}  # pid -> its start time, so a reused pid is never signalled
    started = time.monotonic()
    try:
        while stop_when is not None and process.poll() is None:
            seen.update((pid, started_at(pid)) for pid in descendants(process.pid) if pid not in seen)
            if stop_when(process):
                started = time.monotonic()
                process.send_signal(sig)
                break
            assert time.monotonic() - started < timeout, "the condition to stop never came"
            time.sleep(0.1)
        while process.poll() is None:
            seen.update((pid, started_at(pid)) for pid in descendants(process.pid) if pid not in seen)
            assert time.monotonic() - started < timeout, "the command did not end"
            time.sleep(0.1)
        seconds = time.monotonic() - started
        stdout, stderr = process.communicate()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    time.sleep(0.5)
    ours = [pid for pid, start in seen.items() if start is not None and started_at(pid) == start]
    leftovers = [line for pid in ours if (line := command_line(pid))]
    for pid in ours:  # never leak into the rest of the session, even when the test fails
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return CliRun(process.returncode, json.loads(stdout or "{}"), stderr, seconds, leftovers)


def has_child(name: str) -> Callable[[subprocess.Popen], bool]:
    def check(process: subprocess.Popen) -> bool:
        return any(name in (command_line(pid) or "") for pid in descendants(process.pid))

    return check


def write_spec(tmp_path: Path, spec: dict) -> str:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return str(path)


def assert_cancelled(run: CliRun, tmp_path: Path) -> None:
    error = run.document.get("error") or {}
    LEDGER.inject("signal to the CLI")
    LEDGER.job("signal to the CLI", "failed", (error.get("step"), error.get("code")) == ("run", "cancelled"))
    assert run.code == 1, run.stderr[-2000:]
    assert run.document["status"] == "failed", run.document
    assert (error.get("step"), error.get("code")) == ("run", "cancelled"), (error, run.stderr[-4000:])
    assert run.seconds < 45, f"took {run.seconds:.1f} s to stop"  # seconds, not the 150 s of a stuck read
    assert run.leftovers == [], run.leftovers
    assert temp_left(tmp_path / "tmp") == [], "the run's temp directory is removed, and its job lock"
    stored = json.loads((tmp_path / "data" / "jobs" / f"{run.document['id']}.json").read_text())
    assert stored["status"] == "failed" and stored["error"]["code"] == "cancelled"
    assert not (tmp_path / "data" / "files").exists() or not any((tmp_path / "data" / "files").rglob("*.*"))
    assert "Traceback" not in run.stderr


@contextmanager
def trickling_source(tmp_path: Path) -> Iterator[str]:
    with serve(tmp_path) as server:
        server.behave("/slow.mp4", "trickle_body", interval=0.5)
        yield server.url("/slow.mp4")


def test_sigterm_during_a_trickling_download_ends_the_run_cleanly(tmp_path, server_env):
    with trickling_source(tmp_path) as url:
        spec = write_spec(tmp_path, {"videoUrl": url, "presets": MP4_240})
        env = {**server_env, "VODFLOW_ALLOWED_HOSTS": "127.0.0.1"}
        downloading = tmp_path / "tmp"

        def started_downloading(process: subprocess.Popen) -> bool:
            return any(p.name == "source" for p in downloading.rglob("source"))

        run = run_cli(["encode", spec], env, stop_when=started_downloading)
    assert_cancelled(run, tmp_path)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_signal_mid_encode_stops_ffmpeg_and_fails_the_job(tmp_path, cli_env, sig, long_720p):
    """On Prefect's temporary server: the signal stops it too (nothing left running)."""
    spec = write_spec(
        tmp_path, {"videoUrl": str(long_720p), "presets": [{"format": "hls", "resolutions": ["720"]}]}
    )
    run = run_cli(["encode", spec], cli_env, stop_when=has_child("ffmpeg -progress"), sig=sig)
    assert_cancelled(run, tmp_path)


def test_an_unreachable_prefect_is_a_failed_document_not_a_traceback(tmp_path, cli_env, clips):
    spec = write_spec(tmp_path, {"videoUrl": str(clips["odd"]), "presets": MP4_240})
    env = {**cli_env, "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}  # nothing listens there
    run = run_cli(["encode", spec], env)
    assert run.code == 1 and run.document["status"] == "failed"
    assert run.document["error"]["code"] == "prefect_unavailable", run.document
    assert "Traceback" not in run.stderr and run.leftovers == []


def test_a_temporary_server_that_does_not_start_in_time_is_a_failed_document(tmp_path, cli_env, clips):
    spec = write_spec(tmp_path, {"videoUrl": str(clips["odd"]), "presets": MP4_240})
    env = {**cli_env, "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "1"}
    run = run_cli(["encode", spec], env)
    assert run.code == 1 and run.document["error"]["code"] == "prefect_unavailable", run.document
    assert "Timed out" in run.document["error"]["message"]
    assert "Traceback" not in run.stderr and run.leftovers == [], run.leftovers


def test_demo_runs_the_whole_pipeline(tmp_path, server_env):
    """On a running server (test_first_run.py runs the demo on Prefect's temporary server)."""
    sample = make_clip(tmp_path / "sample.mp4", 640, 360, seconds=4)
    run = run_cli(["demo", "--sample", str(sample)], server_env)
    assert run.code == 0, run.stderr[-3000:]
    doc = run.document
    assert doc["status"] == "completed"
    kinds = sorted(f["type"] for f in doc["files"])
    assert kinds == ["image"] * 4 + ["video", "x-tar"]  # 2 formats x 2 filters, the 360p MP4, the ladder
    assert {s["resolution"] for s in doc["skipped"]} == {"480", "720", "1080"}  # never upscaled
    for entry in doc["files"]:
        assert Path(entry["fileUrl"].removeprefix("file://")).is_file()
    assert f"vodflow job get {doc['id']}" in run.stderr and run.leftovers == []


def test_a_timestamp_past_the_end_is_one_clear_line_and_a_failed_document(tmp_path, server_env, clips):
    spec = write_spec(
        tmp_path,
        {
            "videoUrl": str(clips["odd"]),
            "presets": MP4_240,
            "thumbnails": [{"timestamp": "00:01:00", "resolutions": ["240"]}],
        },
    )
    run = run_cli(["encode", spec], server_env)
    assert run.code == 1 and run.document["status"] == "failed", run.stderr[-3000:]
    error = run.document["error"]
    assert (error["step"], error["code"]) == ("validate", "invalid_spec")
    assert error["message"] == "thumbnails[0].timestamp: 00:01:00 is past the end of the 2.000 s source"
    assert run.stderr.count(error["message"]) == 1, run.stderr
    assert "Traceback" not in run.stderr and "ETA" not in run.stderr  # no terminal: no progress bar


def test_a_closed_pipe_ends_quietly(tmp_path, cli_env):
    reader, writer = os.pipe()
    os.close(reader)  # `| head` that has already gone
    try:
        done = subprocess.run(
            [str(BIN / "vodflow"), "job", "list"],
            env=cli_env,
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(writer)
    assert done.returncode == 141 and done.stderr == ""


def test_a_terminal_shows_a_progress_bar_and_stdout_keeps_the_document(tmp_path, server_env):
    import pty
    import threading

    source = make_clip(tmp_path / "bar.mp4", 1280, 720, seconds=8)
    spec = write_spec(
        tmp_path, {"videoUrl": str(source), "presets": [{"format": "hls", "resolutions": ["720"]}]}
    )
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [str(BIN / "vodflow"), "encode", spec],
        env={**server_env, "TERM": "xterm", "COLUMNS": "120"},
        stdout=subprocess.PIPE,
        stderr=secondary,
    )
    os.close(secondary)
    seen = bytearray()

    def read_terminal() -> None:
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the terminal closed with the process
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        stdout, _ = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
        reader.join(timeout=10)
        os.close(primary)
    terminal = seen.decode(errors="replace")
    assert process.returncode == 0, terminal[-3000:]
    assert json.loads(stdout)["status"] == "completed"
    assert re.search(r"encode \[[#-]{30}\] +\d+%  .*ETA \d+:\d\d", terminal), terminal[-3000:]
