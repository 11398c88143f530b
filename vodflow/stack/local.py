"""The local stack: a Prefect server (SQLite under the state directory, or a PostgreSQL URL), the work pool
and deployments of prefect.yaml, one worker, a read-only file server for local storage and, when asked, the
encoder-job API and the upload receiver. All on 127.0.0.1, each in its own process group, recorded in the
state directory so that `status` can show them and `down` stop exactly them (a process that only got one of
their pids is never signalled; a state file that cannot be trusted is reported and left)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from vodflow.stack.processes import (
    answers,
    free_port,
    identity_problem,
    is_running,
    port_in_use,
    spawn,
    stop,
    stop_runs,
    wait_until,
)
from vodflow.stack.state import (
    STACK_ID_VARIABLE,
    Part,
    StackState,
    forget_state,
    load_state,
    read_state,
    save_state,
)

POOL = "vodflow"  # the work pool prefect.yaml's deployments use
SERVER_START_SECONDS = 180.0  # a first start migrates the database; slow on a busy 2-core machine
PART_START_SECONDS = 60.0
SETUP_SECONDS = 300.0
RUN_STOP_SECONDS = 30.0  # a flow run told to stop fails its job, removes its temp files, releases its slots
# Leases kept on disk under PREFECT_HOME (Prefect's default keeps them in memory, lost with the server: a
# slot held across a restart then stayed taken for ever), and looked at every 5 s instead of 15: a run
# killed with its host, or while the server was down, frees its slots within about a minute.
SERVER_LEASES = {
    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect.server.concurrency.lease_storage.filesystem",
    "PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS": "5",
}


@dataclass(frozen=True)
class UpOptions:
    """What `vodflow up` starts, and where."""

    state_dir: Path
    project_dir: Path
    data_dir: Path
    bin_dir: Path  # where the `prefect` and `vodflow` executables are (the virtualenv's bin)
    port: int | None = None  # the Prefect server's; default: a free one
    database_url: str | None = None
    serve_files: bool = True
    api: bool = False
    receiver: bool = False


@dataclass(frozen=True)
class PartStatus:
    name: str
    running: bool
    answering: bool | None  # None: nothing to ask (the worker)
    part: Part


def running_stack(state_dir: Path) -> StackState | None:
    """The recorded stack when its Prefect server runs and answers, else None."""
    state = load_state(state_dir)
    if state is None:
        return None
    server = state.part("server")
    if (
        server is None
        or not is_running(server, state.stack_id)
        or not answers(f"{server.url}/api/health", timeout=1.0)
    ):
        return None
    return state


def up(options: UpOptions, environ: Mapping[str, str], say: Callable[[str], None]) -> tuple[StackState, bool]:
    """Start the stack, or find the one already running; (state, started). RuntimeError naming the part that
    failed (everything started by this call is stopped again); UntrustedState when the state file left by an
    earlier stack cannot be trusted (then nothing is started or signalled)."""
    if found := running_stack(options.state_dir):
        return found, False
    down(options.state_dir, warn=say)  # what a crashed earlier stack left behind
    logs = options.state_dir / "logs"
    home = options.state_dir / "prefect"
    home.mkdir(parents=True, exist_ok=True)
    data_dir = options.data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = options.port or free_port()
    if port_in_use(port):
        raise RuntimeError(f"port {port} is in use; choose another with --port")
    ui_url = f"http://127.0.0.1:{port}"
    base = {k: v for k, v in environ.items() if not k.startswith("PREFECT_API_URL")}
    client = {
        "PREFECT_API_URL": f"{ui_url}/api",
        "VODFLOW_DATA_DIR": str(data_dir),
        "VODFLOW_PROJECT_DIR": str(options.project_dir),
    }
    state = StackState(state_dir=str(options.state_dir), project_dir=str(options.project_dir), env=client)
    base |= {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    base[STACK_ID_VARIABLE] = state.stack_id  # inherited by what the parts start: how `down` knows them
    exe = lambda name: str(options.bin_dir / name)  # noqa: E731

    def start(
        name: str,
        args: list[str],
        env: Mapping[str, str],
        ready: Callable[[], bool] | None,
        url: str | None = None,
        timeout: float = PART_START_SECONDS,
    ) -> None:
        say(f"starting {name}")
        part, process = spawn(name, args, env, logs, cwd=options.state_dir, url=url)
        state.parts.append(part)
        save_state(state)
        wait_until(ready or (lambda: True), timeout, process, f"{name} (log: {part.log})")

    try:
        server_env = {**base, **SERVER_LEASES, "PREFECT_UI_API_URL": f"{ui_url}/api"}  # UI calls this API
        if options.database_url:
            server_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = options.database_url
        start(
            "server",
            [exe("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            server_env,
            lambda: answers(f"{ui_url}/api/health"),
            url=ui_url,
            timeout=SERVER_START_SECONDS,
        )
        if options.serve_files:
            files_url = f"http://127.0.0.1:{free_port()}"
            files_args = [
                exe("vodflow"),
                "files",
                "--dir",
                str(data_dir),
                "--port",
                files_url.rsplit(":", 1)[1],
            ]
            start("files", files_args, base, lambda: answers(f"{files_url}/"), url=files_url)
            client["VODFLOW_DATA_URL"] = files_url
        env = {**base, **client}
        say("creating the work pool and deploying prefect.yaml")
        setup_deployments(exe, env, options.project_dir, logs)
        worker_env = {"PREFECT_WORKER_QUERY_SECONDS": "2", **env}
        worker_name = f"vodflow-local@{socket.gethostname()}"
        start(
            "worker",
            [exe("prefect"), "worker", "start", "--pool", POOL, "--type", "process", "--name", worker_name],
            worker_env,
            lambda: worker_online(client["PREFECT_API_URL"], worker_name),
        )
        if options.api:
            api_url = f"http://127.0.0.1:{free_port()}"
            api_args = [exe("vodflow"), "api", "--port", api_url.rsplit(":", 1)[1]]
            start("api", api_args, env, lambda: answers(f"{api_url}/healthz"), url=api_url)
        if options.receiver:
            receiver_url = f"http://127.0.0.1:{free_port()}"
            receiver_args = [exe("vodflow"), "receiver", "--port", receiver_url.rsplit(":", 1)[1]]
            start(
                "receiver", receiver_args, env, lambda: answers(f"{receiver_url}/healthz"), url=receiver_url
            )
    except BaseException:
        down(options.state_dir)
        raise
    state.env = client
    save_state(state)
    return state, True


def setup_deployments(exe: Callable[[str], str], env: Mapping[str, str], project: Path, logs: Path) -> None:
    """The work pool (created when missing, never overwritten), `prefect deploy --all` and the automations."""
    api = env["PREFECT_API_URL"]
    steps = [
        [exe("prefect"), "--no-prompt", "deploy", "--all"],
        [exe("vodflow"), "automations", "apply", "--file", str(project / "prefect.yaml")],
    ]
    if not pool_exists(api):
        steps.insert(0, [exe("prefect"), "work-pool", "create", POOL, "--type", "process"])
    with open(logs / "deploy.log", "ab") as log:
        for args in steps:
            done = subprocess.run(
                args,
                env=dict(env),
                cwd=project,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=SETUP_SECONDS,
            )
            if done.returncode != 0:
                raise RuntimeError(f"`{' '.join(args[1:4])}` failed (log: {logs / 'deploy.log'})")


def _api(url: str, body: dict | None = None) -> object:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - the stack's own server
        return json.loads(response.read())


def pool_exists(api: str) -> bool:
    try:
        _api(f"{api}/work_pools/{POOL}")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise
    return True


def worker_online(api: str, name: str) -> bool:
    """Whether the worker `name` has reported to the pool (Prefect marks it ONLINE on its first poll)."""
    try:
        workers = _api(f"{api}/work_pools/{POOL}/workers/filter", {})
    except (OSError, ValueError):
        return False
    return any(w.get("name") == name and w.get("status") == "ONLINE" for w in workers)  # type: ignore[union-attr]


def status(state: StackState) -> list[PartStatus]:
    """Each recorded part: whether its process runs and whether it answers on its URL."""
    rows = []
    for part in state.parts:
        running = is_running(part, state.stack_id)
        health = {"server": "/api/health", "api": "/healthz", "receiver": "/healthz", "files": "/"}.get(
            part.name
        )
        answering = (running and answers(f"{part.url}{health}", timeout=2.0)) if part.url and health else None
        rows.append(PartStatus(part.name, running, answering, part))
    return rows


def down(state_dir: Path, warn: Callable[[str], None] = lambda line: None) -> list[str]:
    """Stop the flow runs its worker started (SIGTERM: each fails its job, removes its temp directory and
    releases its slots while the server still answers), then every part the state records (newest first)
    with what it started, wait until their ports are free, forget the state. The names of the parts that
    were running; [] when nothing was (safe to repeat).

    A part whose pid now names another process is not signalled (`warn` says so). UntrustedState, with the
    file left as it is and nothing signalled, when the state file cannot be trusted."""
    state = read_state(state_dir)
    if state is None:
        return []
    stopped = []
    if runs := stop_runs(state, grace=RUN_STOP_SECONDS):  # while the server still records what they do
        warn(f"stopped {runs} flow run process(es) of its worker; their jobs end failed")
    for part in reversed(state.parts):
        problem = identity_problem(part, state.stack_id)
        if problem and problem != "it has exited":
            warn(f"{part.name} (pid {part.pid}) not signalled: {problem}")
        if stop(part, state.stack_id):
            stopped.append(part.name)
    for part in state.parts:
        if part.url:
            port = int(part.url.rsplit(":", 1)[1])
            wait_port_free(port)
    forget_state(state_dir)
    return stopped


def wait_port_free(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while port_in_use(port) and time.monotonic() < deadline:
        time.sleep(0.2)
