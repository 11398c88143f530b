"""The stack's warm runner under `vodflow up`, as the UI and the API start runs: a run of the `encode`
deployment is forked from the runner (no new interpreter), completes and has its logs in Prefect; cancelling
such a run from Prefect stops its ffmpeg and ends it Cancelled; without the runner a run starts in a new
process as on any `prefect worker start` host, and completes; `vodflow down` stops the runner and its runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.cli.test_stack import logs_of, user_env, vodflow
from tests.media import make_clip
from tests.procs import alive, ancestors, find
from tests.runs import temp_left
from vodflow.net.retry import call_with_retry
from vodflow.stack.processes import stop
from vodflow.stack.state import StackState, load_state

QUICK = {"presets": [{"format": "hls", "resolutions": ["240"]}]}
SLOW = {"presets": [{"format": "hls", "resolutions": ["360"]}]}  # with x264 at veryslow: still encoding
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@pytest.fixture
def stack(tmp_path) -> Iterator[tuple[StackState, httpx.Client, dict[str, str]]]:
    """`vodflow up` in a user's shell, x264 at its slowest; (state, its API client, env); `down` after."""
    env = user_env(tmp_path) | {"VODFLOW_X264_PRESET": "veryslow", "VODFLOW_TMP_DIR": str(tmp_path / "work")}
    (tmp_path / "work").mkdir()
    try:
        started = vodflow(env, "up")
        assert started.returncode == 0, started.stderr + logs_of(tmp_path)
        state = load_state(tmp_path / "state")
        assert state is not None and [p.name for p in state.parts] == ["server", "files", "runner", "worker"]
        with httpx.Client(base_url=f"{state.part('server').url}/api", timeout=30) as api:
            yield state, api, env
    finally:
        vodflow(env, "down", timeout=180)


def start_run(api: httpx.Client, clip: Path, spec: dict, job_id: str) -> str:
    """A run of the `encode` deployment, created as the UI's Run form creates one; its id. A busy SQLite
    server answers 503 for a moment: asked again, as any client would."""

    def create() -> httpx.Response:
        deployment = api.get("/deployments/name/vodflow-encode/encode").raise_for_status().json()
        body = {"parameters": {"spec": {"videoUrl": str(clip), **spec}, "job_id": job_id}}
        return api.post(f"/deployments/{deployment['id']}/create_flow_run", json=body).raise_for_status()

    return call_with_retry(create, attempts=6, base=1.0).json()["id"]


def wait_for(ready, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (found := ready()):
        assert time.monotonic() < deadline, f"{what} not seen within {timeout:.0f} s"
        time.sleep(0.3)
    return found


def final_state(api: httpx.Client, run_id: str, timeout: float = 180) -> str:
    def ended() -> str | None:
        state = api.get(f"/flow_runs/{run_id}").raise_for_status().json()["state_type"]
        return state if state in FINAL else None

    return wait_for(ended, timeout, f"the end of flow run {run_id}")


def run_ffmpeg(tmp_path: Path, job_id: str) -> int:
    """The pid of the ffmpeg encoding the job (in its temp directory), once one runs."""
    return wait_for(lambda: find(program="ffmpeg", containing=str(tmp_path / "work" / f"vodflow-{job_id}")),
                    240, f"the encode of {job_id}")[0]  # fmt: skip


def log_of(state: StackState, part: str) -> str:
    return Path(state.part(part).log).read_text()


def test_runs_start_in_the_warm_runner_cancel_there_and_fall_back_without_it(tmp_path, stack):
    state, api, env = stack
    runner = state.part("runner")
    clip = make_clip(tmp_path / "clip.mp4", 320, 240, seconds=1)

    run_id = start_run(api, clip, QUICK, "warm-quick")
    assert final_state(api, run_id) == "COMPLETED", logs_of(tmp_path)
    assert f"flow run {run_id}: pid " in log_of(state, "runner"), "the runner forked the run"
    assert "in a new process" not in log_of(state, "worker")
    doc = json.loads((tmp_path / "data" / "jobs" / "warm-quick.json").read_text())
    assert doc["status"] == "completed"
    body = {"logs": {"flow_run_id": {"any_": [run_id]}}}

    def logged() -> bool:  # the run's logs are in Prefect (sent in batches: the last one after its state)
        messages = [log["message"] for log in api.post("/logs/filter", json=body).raise_for_status().json()]
        return any(m.startswith("Finished in state Completed") for m in messages)

    wait_for(logged, 30, "the run's last log line in Prefect")

    long_clip = make_clip(tmp_path / "long.mp4", 640, 360, seconds=30)
    run_id = start_run(api, long_clip, SLOW, "warm-cancel")
    ffmpeg = run_ffmpeg(tmp_path, "warm-cancel")
    assert runner.pid in ancestors(ffmpeg), "the run's ffmpeg descends from the runner"
    cancel = {"state": {"type": "CANCELLING", "name": "Cancelling"}, "force": True}
    api.post(f"/flow_runs/{run_id}/set_state", json=cancel).raise_for_status()
    assert final_state(api, run_id, timeout=90) == "CANCELLED", logs_of(tmp_path)
    wait_for(lambda: not alive(ffmpeg), 30, "ffmpeg stopped")
    assert json.loads((tmp_path / "data" / "jobs" / "warm-cancel.json").read_text())["status"] == "failed"
    wait_for(lambda: temp_left(tmp_path / "work") == [], 30, "its temp directory removed")  # told, not killed

    assert stop(runner, state.stack_id)  # the runner `up` started (its identity checked) goes away
    run_id = start_run(api, clip, QUICK, "cold-quick")
    assert final_state(api, run_id) == "COMPLETED", logs_of(tmp_path)
    assert "starting the flow run in a new process" in log_of(state, "worker")
    assert f"flow run {run_id}" not in log_of(state, "runner")


def test_down_stops_the_runner_and_its_runs(tmp_path, stack):
    state, api, env = stack
    runner = state.part("runner")
    start_run(api, make_clip(tmp_path / "long.mp4", 640, 360, seconds=30), SLOW, "warm-down")
    ffmpeg = run_ffmpeg(tmp_path, "warm-down")
    run = next(pid for pid in ancestors(ffmpeg) if pid in find(parent=runner.pid))  # the runner's child
    stopped = vodflow(env, "down", timeout=180)
    assert stopped.returncode == 0 and "stopped 1 flow run" in stopped.stderr, stopped.stderr
    assert "stopped worker, runner, files, server" in stopped.stderr
    assert not alive(ffmpeg) and not alive(run) and not alive(runner.pid)
    assert not Path(state.state_dir, "runner.sock").exists()
    doc = json.loads((tmp_path / "data" / "jobs" / "warm-down.json").read_text())
    assert doc["status"] == "failed", doc
    assert temp_left(tmp_path / "work") == [], "the run removed its temp directory and its job lock"
