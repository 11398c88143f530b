"""`vodflow up`, `status` and `down` as a user runs them, and the CLI using the stack they start.

One stack on SQLite: `up` starts it and a second `up` finds it; `vodflow encode` (no PREFECT_API_URL) runs
against it, shows as a flow run on its server and publishes http:// URLs that its file server answers with
byte ranges; `down` stops every process it started and frees every port, twice in a row. One stack on a real
PostgreSQL named by VODFLOW_DATABASE_URL: a deployment run, picked up by the stack's worker, completes a job.
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

from tests.media import make_clip
from tests.needs import missing, tool
from tests.postgres import run_postgres, server_binaries
from tests.prefect_server import BIN
from tests.procs import find
from vodflow.stack.processes import port_in_use
from vodflow.stack.state import StackState, load_state

REPO = Path(__file__).resolve().parents[3]
SPEC = {
    "presets": [{"format": "hls", "resolutions": ["240"]}],
    "thumbnails": [{"timestamp": "00:00:01", "resolutions": ["240"], "formats": ["jpg"]}],
}


def user_env(root: Path) -> dict[str, str]:
    """A user's shell: no Prefect settings of the test session, the stack's state and data under `root`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "VODFLOW_"))}
    return env | {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_HOME": str(root / "user-prefect-home"),
        "VODFLOW_STATE_DIR": str(root / "state"),
        "VODFLOW_DATA_DIR": str(root / "data"),
        "VODFLOW_ALLOW_LOCAL_FILES": "true",
    }


def vodflow(env: dict[str, str], *args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "vodflow"), *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def ports_of(state: StackState) -> list[int]:
    return [int(p.url.rsplit(":", 1)[1]) for p in state.parts if p.url]


def logs_of(root: Path, state_dir: Path | None = None) -> str:
    return "\n".join(
        f"--- {log.name}\n{log.read_text()[-3000:]}"
        for log in ((state_dir or root / "state") / "logs").glob("*.log")
    )


@pytest.fixture
def down_after(tmp_path) -> Iterator[dict[str, str]]:
    """The user's environment; whatever happens, `vodflow down` runs at the end."""
    env = user_env(tmp_path)
    try:
        yield env
    finally:
        vodflow(env, "down", timeout=120)


def test_up_encode_status_down(tmp_path, down_after):
    env = down_after
    started = vodflow(env, "up")
    assert started.returncode == 0, started.stderr + logs_of(tmp_path)
    state = load_state(tmp_path / "state")
    assert state is not None and [p.name for p in state.parts] == ["server", "files", "runner", "worker"]
    ui = state.part("server").url
    assert ui.startswith("http://127.0.0.1:") and f"Prefect UI: {ui}" in started.stdout

    again = vodflow(env, "up")
    assert again.returncode == 0 and "already running" in again.stderr
    assert load_state(tmp_path / "state").parts == state.parts  # nothing new was started

    clip = make_clip(tmp_path / "clip.mp4", 320, 240, seconds=2)
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps({"videoUrl": str(clip), **SPEC}))
    encoded = vodflow(env, "encode", str(spec))
    assert encoded.returncode == 0, encoded.stderr
    assert "temporary server" not in encoded.stderr  # it used the stack, not an ephemeral server
    doc = json.loads(encoded.stdout)
    assert doc["status"] == "completed"
    files_url = state.part("files").url
    master = next(f["fileUrl"] for f in doc["files"] if f["fileUrl"].endswith("index.m3u8"))
    assert master.startswith(f"{files_url}/files/videos/")
    playlist = httpx.get(master, headers={"Origin": ui})
    assert playlist.status_code == 200 and playlist.text.startswith("#EXTM3U")
    assert playlist.headers["access-control-allow-origin"] == "*"
    image = next(f["fileUrl"] for f in doc["files"] if f["type"] == "image")
    first_bytes = httpx.get(image, headers={"Range": "bytes=0-1"})
    assert first_bytes.status_code == 206 and first_bytes.content == b"\xff\xd8"  # a JPEG, by range

    runs = httpx.post(f"{ui}/api/flow_runs/filter", json={}).raise_for_status().json()
    mine = [r for r in runs if r["parameters"].get("spec", {}).get("videoUrl") == str(clip)]
    assert [r["state_type"] for r in mine] == ["COMPLETED"]  # the run is on the stack's server (its UI)

    shown = vodflow(env, "status")
    assert shown.returncode == 0 and ui in shown.stdout and files_url in shown.stdout
    assert f"For the prefect CLI: export PREFECT_API_URL={ui}/api\n" in shown.stdout

    stopped = vodflow(env, "down")
    assert stopped.returncode == 0 and "stopped worker, runner, files, server" in stopped.stderr
    assert [find(group=p.pid) for p in state.parts] == [[], [], [], []]
    assert [port for port in ports_of(state) if port_in_use(port)] == []
    assert not (tmp_path / "state" / "stack.json").exists()
    twice = vodflow(env, "down")
    assert twice.returncode == 0 and "nothing was running" in twice.stderr
    assert vodflow(env, "status").returncode == 3


def test_a_stack_on_postgresql_completes_a_deployment_run_through_its_worker(tmp_path, down_after):
    if server_binaries() is None:
        missing("no PostgreSQL server: run `make test-deps`")
    tool("psql", "make test-deps")
    env = down_after
    clip = make_clip(tmp_path / "clip.mp4", 320, 240, seconds=2)
    with run_postgres(tmp_path / "pg") as postgres:
        # VODFLOW_DATABASE_URL (README); `--database-url` winning over it: test_stack_parts.py
        started = vodflow(env | {"VODFLOW_DATABASE_URL": postgres.prefect_url}, "up")
        assert started.returncode == 0, started.stderr + logs_of(tmp_path)
        state = load_state(tmp_path / "state")
        api = f"{state.part('server').url}/api"
        deployment = httpx.get(f"{api}/deployments/name/vodflow-encode/encode").raise_for_status().json()
        created = (
            httpx.post(
                f"{api}/deployments/{deployment['id']}/create_flow_run",
                json={"parameters": {"spec": {"videoUrl": str(clip), **SPEC}, "job_id": "a" * 24}},
            )
            .raise_for_status()
            .json()
        )
        deadline = time.monotonic() + 300
        while (run := httpx.get(f"{api}/flow_runs/{created['id']}").json())["state_type"] not in (
            "COMPLETED", "FAILED", "CRASHED", "CANCELLED",
        ) and time.monotonic() < deadline:  # fmt: skip
            time.sleep(1)
        assert run["state_type"] == "COMPLETED", logs_of(tmp_path)
        doc = json.loads((tmp_path / "data" / "jobs" / f"{'a' * 24}.json").read_text())
        assert doc["status"] == "completed" and doc["files"][0]["fileUrl"].startswith(state.part("files").url)
        tables = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(postgres.port), "-U", "postgres", "-d", postgres.database,
             "-Atc", "SELECT count(*) FROM flow_run WHERE state_type = 'COMPLETED'"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert int(tables.stdout.strip()) >= 1  # the run is stored in PostgreSQL, not in SQLite
        assert not (tmp_path / "state" / "prefect" / "prefect.db").exists()
        stopped = vodflow(env, "down")
        assert stopped.returncode == 0 and [find(group=p.pid) for p in state.parts] == [[], [], [], []]


def run_in(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`vodflow ARGS` run from `cwd`."""
    return subprocess.run(
        [str(BIN / "vodflow"), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=400,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def run_job(root: Path, env: dict[str, str], cwd: Path) -> dict:
    """A small job run with `vodflow encode` from `cwd`; its completed document."""
    clip = make_clip(root / "clip.mp4", 320, 240, seconds=2)
    spec = root / "job.json"
    spec.write_text(json.dumps({"videoUrl": str(clip), **SPEC}))
    encoded = run_in(cwd, env, "encode", str(spec))
    assert encoded.returncode == 0, encoded.stderr
    assert "temporary server" not in encoded.stderr  # the stack's server ran it
    return json.loads(encoded.stdout)


def test_a_link_published_before_a_restart_serves_after_it(tmp_path, down_after):
    """The first `up` picks the ports and the data directory, the next one (from another directory) reuses
    them: a fileUrl stored before `down` answers after the next `up`."""
    env = {k: v for k, v in down_after.items() if k != "VODFLOW_DATA_DIR"}  # the default: ./data of `up`
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    started = run_in(home, env, "up")
    assert started.returncode == 0, started.stderr + logs_of(tmp_path)
    state = load_state(tmp_path / "state")
    doc = run_job(tmp_path, env, home)
    link = next(f["fileUrl"] for f in doc["files"] if f["fileUrl"].endswith("index.m3u8"))
    assert link.startswith(f"{state.part('files').url}/files/videos/")

    assert run_in(home, env, "down").returncode == 0
    again = run_in(elsewhere, env, "up")
    assert again.returncode == 0, again.stderr + logs_of(tmp_path)
    assert [p.url for p in load_state(tmp_path / "state").parts] == [p.url for p in state.parts]
    playlist = httpx.get(link)  # published before the restart
    assert playlist.status_code == 200 and playlist.text.startswith("#EXTM3U")
    assert not (elsewhere / "data").exists()  # the files are served from where the first `up` put them


def test_a_job_from_another_directory_uses_the_stack_and_up_starts_a_missing_api(tmp_path):
    """No VODFLOW_STATE_DIR: the stack lives in the per-user state directory, which any directory finds;
    `up --api` beside it starts the API, and a stopped stack is named when it is not used."""
    if (REPO / ".vodflow").is_dir():  # a developer's own stack in the checkout: never on a clean clone
        missing("this checkout has a .vodflow of an earlier version, which the search finds first")
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "VODFLOW_", "XDG_"))} | {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_HOME": str(tmp_path / "user-prefect-home"),
        "HOME": str(home),
        "XDG_STATE_HOME": str(tmp_path / "xdg"),
        "VODFLOW_ALLOW_LOCAL_FILES": "true",
        "VODFLOW_API_KEY": "key",
        "VODFLOW_API_SECRET": "s" * 32,
    }
    state_dir = tmp_path / "xdg" / "vodflow"
    try:
        started = run_in(home, env, "up")
        assert started.returncode == 0, started.stderr + logs_of(tmp_path, state_dir)
        state = load_state(state_dir)
        assert state is not None and state.env["VODFLOW_DATA_DIR"] == str(home / "data")
        assert state_dir.stat().st_mode & 0o777 == 0o700  # its logs and database are the user's only

        doc = run_job(tmp_path, env, elsewhere)
        assert (home / "data" / "jobs" / f"{doc['id']}.json").is_file() and not (elsewhere / "data").exists()
        api = f"{state.part('server').url}/api"
        runs = httpx.post(f"{api}/flow_runs/filter", json={}).raise_for_status().json()
        assert [r["state_type"] for r in runs if r["parameters"].get("job_id") == doc["id"]] == ["COMPLETED"]

        added = run_in(elsewhere, env, "up", "--api")  # the running stack lacks the API: start it, only it
        assert added.returncode == 0 and "started api" in added.stderr, added.stderr
        with_api = load_state(state_dir)
        assert [p.name for p in with_api.parts] == ["server", "files", "runner", "worker", "api"]
        assert with_api.parts[:4] == state.parts
        assert httpx.get(f"{with_api.part('api').url}/healthz").status_code == 200

        assert run_in(home, env, "down").returncode == 0
        told = run_in(elsewhere, env, "job", "get", doc["id"])
        assert f"the local stack ({state_dir}) is stopped" in told.stderr  # says why it is not used
    finally:
        run_in(home, env, "down")
