"""`vodflow down` while jobs run, then `vodflow up` again, as a user does it.

One stack, two jobs encoding (or waiting for the host's one ffmpeg slot): a deployment run started by the
stack's worker and a `vodflow encode --here` in the user's shell (the flow run in the CLI's process; without
`--here` the CLI hands its job to the worker: test_handoff.py). `down` tells the worker's run to stop, so
its job ends `failed` with its temp directory gone and the run is no longer Running; the CLI notices its
server is gone and prints a `failed` document with `prefect_unavailable` and exits 1 within 30 s, its temp
directory gone too. After `up` a new job completes within a minute: no slot is left taken by the runs that
were cut off (their leases are kept on disk and expire; Prefect's default kept them in memory, lost with the
server, and the slot stayed taken for ever).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.faults import LEDGER
from tests.media import make_clip
from tests.prefect_server import BIN
from tests.procs import find
from tests.runs import temp_left
from vodflow.stack.state import load_state

REPO = Path(__file__).resolve().parents[3]

SLOW = {"presets": [{"format": "hls", "resolutions": ["360"]}]}
QUICK = {"presets": [{"format": "hls", "resolutions": ["240"]}]}


def vodflow(env: dict[str, str], *args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "vodflow"), *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def logs_of(root: Path) -> str:
    return "\n".join(
        f"--- {log.name}\n{log.read_text()[-3000:]}" for log in (root / "state" / "logs").glob("*.log")
    )


@pytest.fixture
def user_env(tmp_path) -> Iterator[dict[str, str]]:
    """A user's shell (no Prefect settings of the test session, state, data and temp files under tmp_path,
    x264 at its slowest so that an encode is still running when `down` comes); `down` at the end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "VODFLOW_"))}
    env |= {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_HOME": str(tmp_path / "user-prefect-home"),
        "VODFLOW_STATE_DIR": str(tmp_path / "state"),
        "VODFLOW_DATA_DIR": str(tmp_path / "data"),
        "VODFLOW_TMP_DIR": str(tmp_path / "work"),
        "VODFLOW_ALLOW_LOCAL_FILES": "true",
        "VODFLOW_X264_PRESET": "veryslow",
    }
    (tmp_path / "work").mkdir()
    try:
        yield env
    finally:
        vodflow(env, "down", timeout=180)


def wait_for(ready, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"{what} not seen within {timeout:.0f} s"
        time.sleep(0.5)


def stored(root: Path, job_id: str) -> dict:
    return json.loads((root / "data" / "jobs" / f"{job_id}.json").read_text())


def test_down_during_jobs_ends_them_and_the_next_job_after_up_completes(tmp_path, user_env):
    env = user_env
    started = vodflow(env, "up")
    assert started.returncode == 0, started.stderr + logs_of(tmp_path)
    api = load_state(tmp_path / "state").part("server").url + "/api"

    long_clip = make_clip(tmp_path / "long.mp4", 640, 360, seconds=40)
    spec = tmp_path / "cut.json"
    spec.write_text(json.dumps({"videoUrl": str(long_clip), **SLOW}))
    cli = subprocess.Popen(
        [str(BIN / "vodflow"), "encode", str(spec), "--job-id", "cut-cli", "--here"],  # its own flow run
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        # the CLI's encode holds the host's one ffmpeg slot; the deployment run then waits for it
        wait_for(  # an ffmpeg works in the CLI job's temp directory: its encode is under way
            lambda: find(program="ffmpeg", containing=str(tmp_path / "work" / "vodflow-cut-cli")),
            240,
            "the CLI's encode",
        )
        deployment = httpx.get(f"{api}/deployments/name/vodflow-encode/encode").raise_for_status().json()
        body = {"parameters": {"spec": {"videoUrl": str(long_clip), **SLOW}, "job_id": "cut-deployment"}}
        run = httpx.post(f"{api}/deployments/{deployment['id']}/create_flow_run", json=body)
        run_id = run.raise_for_status().json()["id"]
        wait_for(lambda: (tmp_path / "data" / "jobs" / "cut-deployment.json").exists(), 120, "the run's job")
        limits = httpx.post(f"{api}/v2/concurrency_limits/filter", json={}).raise_for_status().json()
        assert [g["active_slots"] for g in limits if g["name"].startswith("vodflow-ffmpeg-")] == [1]
        assert cli.poll() is None, "the CLI job ended before `down`"

        stopped = vodflow(env, "down", timeout=180)
        assert stopped.returncode == 0, stopped.stderr
        LEDGER.inject("stack stopped mid-job")
        down_at = time.monotonic()
        try:
            out, err = cli.communicate(timeout=45)
        except subprocess.TimeoutExpired:
            cli.kill()
            out, err = cli.communicate()
            raise AssertionError(f"the CLI still ran 45 s after `down`: {err[-3000:]}") from None
        assert time.monotonic() - down_at <= 30, "the CLI took more than 30 s to end"
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
    assert cli.returncode == 1, err[-3000:]
    cli_doc = json.loads(out)
    assert cli_doc["status"] == "failed" and cli_doc["error"]["code"] == "prefect_unavailable", cli_doc
    assert stored(tmp_path, "cut-cli")["status"] == "failed"
    LEDGER.job("stack stopped mid-job", "failed")
    run_doc = stored(tmp_path, "cut-deployment")
    assert run_doc["status"] == "failed" and run_doc["error"]["code"] in ("cancelled", "crashed"), run_doc
    LEDGER.job("stack stopped mid-job", "failed")
    assert temp_left(tmp_path / "work") == []  # both temp directories removed, and their job locks
    assert "stopped 1 flow run" in stopped.stderr

    again = vodflow(env, "up")
    assert again.returncode == 0, again.stderr + logs_of(tmp_path)
    api = load_state(tmp_path / "state").part("server").url + "/api"
    after = httpx.get(f"{api}/flow_runs/{run_id}").raise_for_status().json()
    assert after["state_type"] != "RUNNING", after["state"]  # the cut-off run does not stay Running

    up_at = time.monotonic()
    quick = tmp_path / "quick.json"
    quick.write_text(json.dumps({"videoUrl": str(make_clip(tmp_path / "quick.mp4", 320, 240, 2)), **QUICK}))
    env_quick = env | {"VODFLOW_X264_PRESET": "veryfast"}
    encoded = vodflow(env_quick, "encode", str(quick), "--job-id", "after-restart", timeout=120)
    assert encoded.returncode == 0, encoded.stderr[-3000:]
    assert json.loads(encoded.stdout)["status"] == "completed"
    assert time.monotonic() - up_at <= 60, f"the job after `up` took {time.monotonic() - up_at:.0f} s"
    limits = httpx.post(f"{api}/v2/concurrency_limits/filter", json={}).raise_for_status().json()
    assert [(gcl["name"], gcl["active_slots"]) for gcl in limits if gcl["active_slots"]] == []
