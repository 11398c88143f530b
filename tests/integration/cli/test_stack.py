"""`vodflow up`, `status` and `down` as a user runs them, and the CLI using the stack they start.

One stack on SQLite in the per-user state directory (no VODFLOW_STATE_DIR), its life recorded once for the
module (`life`) and checked by three tests: `up` starts it and a second `up` finds it; `vodflow encode` from
another directory (no PREFECT_API_URL) runs against it, shows as a flow run on its server and publishes
http:// URLs that its file server answers with byte ranges; `down` stops every process it started and frees
every port, twice in a row; the next `up`, from another directory, reuses the ports and data directory, so a
link published before `down` answers after it; `up --api` beside the running stack starts only the API. One
stack on a real PostgreSQL named by VODFLOW_DATABASE_URL: a deployment run, picked up by the stack's worker,
completes a job.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.media import make_clip
from tests.needs import missing, tool
from tests.postgres import run_postgres, server_binaries
from tests.prefect_server import BIN
from tests.procs import find
from tests.user_stack import user_env, vodflow
from vodflow.stack.processes import port_in_use
from vodflow.stack.state import StackState, load_state

REPO = Path(__file__).resolve().parents[3]
SPEC = {
    "presets": [{"format": "hls", "resolutions": ["240"]}],
    "thumbnails": [{"timestamp": "00:00:01", "resolutions": ["240"], "formats": ["jpg"]}],
}


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


def fetch(url: str, **options) -> httpx.Response | httpx.HTTPError:
    """GET `url`: its answer, or the error (recorded for one test to fail on, not failing them all)."""
    try:
        return httpx.get(url, **options)
    except httpx.HTTPError as exc:
        return exc


@dataclass
class Life:
    """What one stack's life showed, step by step: each command's result and what was seen at that moment
    (the tests below check it; the life is run once, in this order)."""

    root: Path
    home: Path  # where the first `up` runs: the data directory is its ./data
    elsewhere: Path  # where the job, the restart and `up --api` run
    state_dir: Path  # the per-user state directory, under XDG_STATE_HOME
    env: dict[str, str]
    steps: dict[str, object] = field(default_factory=dict)

    def __getattr__(self, name: str):  # a step's record by its name: `life.stopped`
        try:
            return self.__dict__["steps"][name]
        except KeyError:
            raise AttributeError(name) from None


@pytest.fixture(scope="module")
def life(tmp_path_factory) -> Iterator[Life]:
    """`up` (home), `up` again, a job encoded from elsewhere, `status`, `down`, `down` again, `status`, `up`
    from elsewhere, `up --api`, `down`, `job get` from elsewhere (last: it makes ./data there), and `down`
    whatever happened. The first `up` and the job must succeed (nothing after them means anything
    otherwise); every other step is recorded for its test."""
    if (REPO / ".vodflow").is_dir():  # a developer's own stack in the checkout: never on a clean clone
        missing("this checkout has a .vodflow of an earlier version, which the search finds first")
    root = tmp_path_factory.mktemp("stack-life")
    home, elsewhere = root / "home", root / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "VODFLOW_", "XDG_"))} | {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_HOME": str(root / "user-prefect-home"),
        "HOME": str(home),
        "XDG_STATE_HOME": str(root / "xdg"),
        "VODFLOW_ALLOW_LOCAL_FILES": "true",
        "VODFLOW_API_KEY": "key",
        "VODFLOW_API_SECRET": "s" * 32,
    }
    story = Life(root, home, elsewhere, root / "xdg" / "vodflow", env)
    seen = story.steps
    try:
        seen["started"] = started = run_in(home, env, "up")
        assert started.returncode == 0, started.stderr + logs_of(root, story.state_dir)
        seen["state"] = state = load_state(story.state_dir)
        seen["state_mode"] = story.state_dir.stat().st_mode & 0o777
        seen["again"] = run_in(home, env, "up")
        seen["state_again"] = load_state(story.state_dir)

        seen["clip"] = clip = make_clip(root / "clip.mp4", 320, 240, seconds=2)
        spec = root / "job.json"
        spec.write_text(json.dumps({"videoUrl": str(clip), **SPEC}))
        seen["encoded"] = encoded = run_in(elsewhere, env, "encode", str(spec))
        assert encoded.returncode == 0, encoded.stderr
        seen["doc"] = doc = json.loads(encoded.stdout)
        seen["data_elsewhere_after_job"] = (elsewhere / "data").exists()
        ui = state.part("server").url
        master = next(f["fileUrl"] for f in doc["files"] if f["fileUrl"].endswith("index.m3u8"))
        seen["playlist"] = fetch(master, headers={"Origin": ui})
        image = next(f["fileUrl"] for f in doc["files"] if f["type"] == "image")
        seen["first_bytes"] = fetch(image, headers={"Range": "bytes=0-1"})
        seen["runs"] = httpx.post(f"{ui}/api/flow_runs/filter", json={}).raise_for_status().json()
        seen["shown"] = run_in(elsewhere, env, "status")

        seen["stopped"] = run_in(home, env, "down")
        seen["groups_left"] = [find(group=p.pid) for p in state.parts]
        seen["ports_left"] = [port for port in ports_of(state) if port_in_use(port)]
        seen["state_file_left"] = (story.state_dir / "stack.json").exists()
        seen["twice"] = run_in(home, env, "down")
        seen["status_stopped"] = run_in(home, env, "status")

        seen["restarted"] = run_in(elsewhere, env, "up")
        seen["state_restarted"] = load_state(story.state_dir)
        seen["replayed"] = fetch(master)  # published before the restart
        seen["added"] = run_in(elsewhere, env, "up", "--api")  # the running stack lacks the API
        seen["with_api"] = with_api = load_state(story.state_dir)
        api = with_api.part("api") if with_api else None
        seen["api_health"] = fetch(f"{api.url}/healthz") if api else None
        seen["data_elsewhere_after_restart"] = (elsewhere / "data").exists()
        seen["stopped_again"] = run_in(home, env, "down")
        seen["told"] = run_in(elsewhere, env, "job", "get", doc["id"])
        yield story
    finally:
        run_in(home, env, "down")


def test_up_encode_status_down(life):
    started, state = life.started, life.state
    assert state is not None and [p.name for p in state.parts] == ["server", "files", "runner", "worker"]
    ui = state.part("server").url
    assert ui.startswith("http://127.0.0.1:") and f"Prefect UI: {ui}" in started.stdout

    again = life.again
    assert again.returncode == 0 and "already running" in again.stderr
    assert life.state_again.parts == state.parts  # nothing new was started

    encoded, doc = life.encoded, life.doc
    assert "temporary server" not in encoded.stderr  # it used the stack, not an ephemeral server
    assert doc["status"] == "completed"
    files_url = state.part("files").url
    master = next(f["fileUrl"] for f in doc["files"] if f["fileUrl"].endswith("index.m3u8"))
    assert master.startswith(f"{files_url}/files/videos/")
    playlist = life.playlist
    assert playlist.status_code == 200 and playlist.text.startswith("#EXTM3U")
    assert playlist.headers["access-control-allow-origin"] == "*"
    first_bytes = life.first_bytes
    assert first_bytes.status_code == 206 and first_bytes.content == b"\xff\xd8"  # a JPEG, by range

    mine = [r for r in life.runs if r["parameters"].get("spec", {}).get("videoUrl") == str(life.clip)]
    assert [r["state_type"] for r in mine] == ["COMPLETED"]  # the run is on the stack's server (its UI)

    shown = life.shown
    assert shown.returncode == 0 and ui in shown.stdout and files_url in shown.stdout
    assert f"For the prefect CLI: export PREFECT_API_URL={ui}/api\n" in shown.stdout

    stopped = life.stopped
    assert stopped.returncode == 0 and "stopped worker, runner, files, server" in stopped.stderr
    assert life.groups_left == [[], [], [], []]
    assert life.ports_left == []
    assert not life.state_file_left
    twice = life.twice
    assert twice.returncode == 0 and "nothing was running" in twice.stderr
    assert life.status_stopped.returncode == 3


def test_a_link_published_before_a_restart_serves_after_it(life):
    """The first `up` picks the ports and the data directory, the next one (from another directory) reuses
    them: a fileUrl stored before `down` answers after the next `up`."""
    state = life.state
    link = next(f["fileUrl"] for f in life.doc["files"] if f["fileUrl"].endswith("index.m3u8"))
    assert link.startswith(f"{state.part('files').url}/files/videos/")
    assert "temporary server" not in life.encoded.stderr  # the stack's server ran the job

    assert life.stopped.returncode == 0
    again = life.restarted
    assert again.returncode == 0, again.stderr + logs_of(life.root, life.state_dir)
    assert [p.url for p in life.state_restarted.parts] == [p.url for p in state.parts]
    playlist = life.replayed  # published before the restart
    assert playlist.status_code == 200 and playlist.text.startswith("#EXTM3U")
    assert not life.data_elsewhere_after_restart  # the files are served from where the first `up` put them


def test_a_job_from_another_directory_uses_the_stack_and_up_starts_a_missing_api(life):
    """No VODFLOW_STATE_DIR: the stack lives in the per-user state directory, which any directory finds;
    `up --api` beside it starts the API, and a stopped stack is named when it is not used."""
    home, state_dir = life.home, life.state_dir
    state = life.state
    assert state is not None and state.env["VODFLOW_DATA_DIR"] == str(home / "data")
    assert life.state_mode == 0o700  # its logs and database are the user's only

    doc = life.doc  # encoded from `elsewhere`
    assert "temporary server" not in life.encoded.stderr  # the stack's server ran it
    assert (home / "data" / "jobs" / f"{doc['id']}.json").is_file() and not life.data_elsewhere_after_job
    assert [r["state_type"] for r in life.runs if r["parameters"].get("job_id") == doc["id"]] == ["COMPLETED"]

    added = life.added  # the restarted stack lacks the API: start it, only it
    assert added.returncode == 0 and "started api" in added.stderr, added.stderr
    with_api = life.with_api
    assert [p.name for p in with_api.parts] == ["server", "files", "runner", "worker", "api"]
    assert with_api.parts[:4] == life.state_restarted.parts
    assert life.api_health.status_code == 200

    assert life.stopped_again.returncode == 0
    told = life.told  # `job get` while the stack is stopped
    assert f"the local stack ({state_dir}) is stopped" in told.stderr  # says why it is not used
