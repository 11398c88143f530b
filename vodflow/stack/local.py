"""The local stack: a Prefect server (SQLite under the state directory, or a PostgreSQL URL), the work pool
and deployments of prefect.yaml, one worker, a read-only file server for local storage and, when asked, the
encoder-job API and the upload receiver. All on 127.0.0.1, each in its own process group, recorded in the
state directory so that `status` can show them and `down` stop exactly them (a process that only got one of
their pids is never signalled; a state file that cannot be trusted is reported and left)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
from vodflow.stack.runclient import MAX_SOCKET_PATH
from vodflow.stack.state import (
    STACK_ID_VARIABLE,
    Part,
    StackConfig,
    StackState,
    forget_state,
    load_state,
    read_config,
    read_state,
    save_config,
    save_state,
)

POOL = "vodflow"  # the work pool prefect.yaml's deployments use
SERVER_START_SECONDS = 180.0  # a first start migrates the database; slow on a busy 2-core machine
PART_START_SECONDS = 60.0
SETUP_SECONDS = 300.0
PORT_OPTIONS = {
    "server": "--port",
    "files": "--files-port",
    "api": "--api-port",
    "receiver": "--receiver-port",
}
HEALTH = {"server": "/api/health", "api": "/healthz", "receiver": "/healthz", "files": "/"}
ADDABLE = ("api", "receiver")  # parts that `up` starts beside a running stack that lacks them
RUNNER_SOCKET = "runner.sock"  # the warm runner's, in the 0700 state directory
# The stack's worker asks for runs as the server schedules them (vodflow.stack.worker), at most every 0.5 s
# (Prefect's default poll: 10 s); without a run it asks every 5 s.
WORKER_QUERY_SECONDS = "0.5"
RUN_STOP_SECONDS = 30.0  # a flow run told to stop fails its job, removes its temp files, releases its slots
# Leases kept on disk under PREFECT_HOME (Prefect's default keeps them in memory, lost with the server: a
# slot held across a restart then stayed taken for ever), and looked at every 5 s instead of 15: a run
# killed with its host, or while the server was down, frees its slots within about a minute.
SERVER_LEASES = {
    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect.server.concurrency.lease_storage.filesystem",
    "PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS": "5",
}


class PortInUse(RuntimeError):
    """A port the stack is to listen on is taken by another program (the user frees it or picks another)."""


class StackRunning(RuntimeError):
    """What `up` was asked needs the running stack stopped first (the message names the commands)."""


@dataclass(frozen=True)
class UpOptions:
    """What `vodflow up` starts, and where."""

    state_dir: Path
    project_dir: Path
    data_dir: Path | None  # None: the one recorded in the state directory, else ./data (then recorded)
    bin_dir: Path  # where the `prefect` and `vodflow` executables are (the virtualenv's bin)
    python: str = sys.executable  # the interpreter of the warm runner and the worker
    ports: Mapping[str, int] = field(default_factory=dict)  # by part name; others: recorded, else free ones
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


def url_port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def choose_ports(names: list[str], asked: Mapping[str, int], recorded: Mapping[str, int]) -> dict[str, int]:
    """A port for each part in `names`: the one asked for, else the one its state directory recorded (the
    URLs it published hold it), else a free one. PortInUse naming the part and the option to change it
    when one is taken by another program; ValueError when two parts would share one."""
    ports: dict[str, int] = {}
    for name in names:
        port = asked.get(name) or recorded.get(name)
        others = {*ports.values(), *asked.values(), *(p for n, p in recorded.items() if n != name)}
        while port is None or (name not in asked and port in others):
            port = free_port()  # never one recorded for another part: that part gets it back on its start
        ports[name] = port
    if len(set(ports.values())) < len(ports):
        raise ValueError(f"two parts of the stack cannot share a port: {ports}")
    for name, port in ports.items():
        if port_in_use(port):
            kept = (
                " (the port this state directory recorded: links it published use it)"
                if (name not in asked and name in recorded)
                else ""
            )
            raise PortInUse(
                f"port {port} of the {name}{kept} is in use by another program: stop it, or choose another "
                f"port with `vodflow up {PORT_OPTIONS[name]} PORT`"
            )
    return ports


def base_environment(state: StackState, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment every part starts with: the caller's, less its Prefect server, with the stack's
    Prefect home and id (inherited by what the parts start: how `down` knows them)."""
    base = {k: v for k, v in environ.items() if not k.startswith("PREFECT_API_URL")}
    return base | {
        "PREFECT_HOME": str(Path(state.state_dir) / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        STACK_ID_VARIABLE: state.stack_id,
    }


def service_args(exe: Callable[[str], str], name: str, port: int, data_dir: Path) -> list[str]:
    """The command line of the files server, the API or the receiver on `port`."""
    extra = ["--dir", str(data_dir)] if name == "files" else []
    return [exe("vodflow"), name, *extra, "--port", str(port)]


@dataclass
class Starter:
    """Starts parts into `state`, saved after each, and waits until each is ready."""

    state: StackState
    say: Callable[[str], None]

    def start(
        self,
        name: str,
        args: list[str],
        env: Mapping[str, str],
        ready: Callable[[], bool] | None,
        url: str | None = None,
        timeout: float = PART_START_SECONDS,
    ) -> subprocess.Popen:
        """Start the part and wait until `ready` (None: do not wait); its process."""
        self.say(f"starting {name}")
        state_dir = Path(self.state.state_dir)
        part, process = spawn(name, args, env, state_dir / "logs", cwd=state_dir, url=url)
        self.state.parts.append(part)
        save_state(self.state)
        wait_until(ready or (lambda: True), timeout, process, f"{name} (log: {part.log})")
        return process

    def start_service(self, name: str, port: int, env: Mapping[str, str], exe: Callable[[str], str]) -> None:
        url = f"http://127.0.0.1:{port}"
        args = service_args(exe, name, port, Path(self.state.env["VODFLOW_DATA_DIR"]))
        self.start(name, args, env, lambda: answers(f"{url}{HEALTH[name]}"), url)


def up(
    options: UpOptions, environ: Mapping[str, str], say: Callable[[str], None]
) -> tuple[StackState, list[str]]:
    """Start the stack, or the parts asked for that the running one lacks; (state, the parts started: [] when
    it ran with all of them). Ports and the data directory are those the state directory recorded, so links
    published before a restart answer after it. RuntimeError naming the part that failed (everything
    started by this call is stopped again); PortInUse before anything starts; StackRunning when the running
    stack would have to move; UntrustedState when a file left by an earlier stack cannot be trusted (then
    nothing is started or signalled)."""
    config = read_config(options.state_dir)
    if found := running_stack(options.state_dir):
        return found, add_parts(found, options, config, environ, say)
    down(options.state_dir, warn=say)  # what a crashed earlier stack left behind
    wanted = ["server", *[n for n, on in (("files", options.serve_files), ("api", options.api),
                                          ("receiver", options.receiver)) if on]]  # fmt: skip
    ports = choose_ports(wanted, options.ports, config.ports)
    options.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # logs and database: the user's only
    (options.state_dir / "prefect").mkdir(exist_ok=True)
    data_dir = (options.data_dir or Path(config.data_dir or "./data")).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    ui_url = f"http://127.0.0.1:{ports['server']}"
    client = {
        "PREFECT_API_URL": f"{ui_url}/api",
        "VODFLOW_DATA_DIR": str(data_dir),
        "VODFLOW_PROJECT_DIR": str(options.project_dir),
    }
    state = StackState(state_dir=str(options.state_dir), project_dir=str(options.project_dir), env=client)
    base = base_environment(state, environ)
    exe = lambda name: str(options.bin_dir / name)  # noqa: E731
    starter = Starter(state, say)
    try:
        server_env = {**base, **SERVER_LEASES, "PREFECT_UI_API_URL": f"{ui_url}/api"}  # UI calls this API
        if options.database_url:
            server_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = options.database_url
        starter.start(
            "server",
            [options.python, "-m", "vodflow.stack.server", "--port", str(ports["server"])],
            server_env,
            lambda: answers(f"{ui_url}/api/health"),
            url=ui_url,
            timeout=SERVER_START_SECONDS,
        )
        if options.serve_files:
            starter.start_service("files", ports["files"], base, exe)
            client["VODFLOW_DATA_URL"] = f"http://127.0.0.1:{ports['files']}"
        if "api" in ports and not environ.get("VODFLOW_PLAYBACK_BASE_URL"):  # encrypted jobs' key URIs
            client["VODFLOW_PLAYBACK_BASE_URL"] = f"http://127.0.0.1:{ports['api']}"
        env = {**base, **client}
        runner = runner_socket(options.state_dir)
        if runner is None:
            say("the state directory's path is too long for the warm runner's socket: runs start slower")
        else:  # imports while the deployments are made; ready once its socket is in place
            runner.unlink(missing_ok=True)  # one a killed runner left
            warming = starter.start("runner", runner_args(options.python, runner), env, None)
        say("creating the work pool and deploying prefect.yaml")
        setup_deployments(options.python, env, options.project_dir, options.state_dir / "logs")
        if runner is not None:
            log = state.part("runner").log  # type: ignore[union-attr]
            wait_until(runner.exists, PART_START_SECONDS, warming, f"runner (log: {log})")
        worker_env = {"PREFECT_WORKER_QUERY_SECONDS": WORKER_QUERY_SECONDS, **env}
        worker_name = f"vodflow-local@{socket.gethostname()}"
        starter.start(
            "worker",
            worker_args(exe, options.python, worker_name, runner),
            worker_env,
            lambda: worker_online(client["PREFECT_API_URL"], worker_name),
        )
        for name in ADDABLE:
            if name in ports:
                starter.start_service(name, ports[name], env, exe)
    except BaseException:
        down(options.state_dir)
        raise
    state.env = client
    save_state(state)
    save_config(options.state_dir, StackConfig(ports={**config.ports, **ports}, data_dir=str(data_dir)))
    return state, [part.name for part in state.parts]


def add_parts(
    state: StackState,
    options: UpOptions,
    config: StackConfig,
    environ: Mapping[str, str],
    say: Callable[[str], None],
) -> list[str]:
    """Start beside the running stack the API or receiver asked for that it lacks (or whose process has
    ended); the names started. StackRunning when a port asked for differs from a running part's."""
    for name, port in options.ports.items():
        if (part := state.part(name)) and part.url and url_port(part.url) != port:
            raise StackRunning(
                f"the stack runs with its {name} on port {url_port(part.url)}: to move it, `vodflow down`, "
                f"then `vodflow up {PORT_OPTIONS[name]} {port}`"
            )
    missing = [
        name
        for name, asked in (("api", options.api), ("receiver", options.receiver))
        if asked and not ((part := state.part(name)) and is_running(part, state.stack_id))
    ]
    if not missing:
        return []
    for name in missing:
        if ended := state.part(name):
            stop(ended, state.stack_id)  # what its group left; never another process
            state.parts.remove(ended)
    ports = choose_ports(missing, options.ports, config.ports)
    env = {**base_environment(state, environ), **state.env}
    exe = lambda name: str(options.bin_dir / name)  # noqa: E731
    starter = Starter(state, say)
    before = list(state.parts)
    try:
        for name in missing:
            starter.start_service(name, ports[name], env, exe)
    except BaseException:
        for part in state.parts[len(before) :]:
            stop(part, state.stack_id)
        state.parts[:] = before
        save_state(state)
        raise
    save_config(options.state_dir, config.model_copy(update={"ports": {**config.ports, **ports}}))
    return missing


def runner_socket(state_dir: Path) -> Path | None:
    """Where the warm runner listens; None when the path is too long for a Unix socket."""
    path = state_dir.resolve() / RUNNER_SOCKET
    return path if len(str(path).encode()) <= MAX_SOCKET_PATH else None


def runner_args(python: str, sock: Path) -> list[str]:
    return [python, "-m", "vodflow.stack.forkserver", "--socket", str(sock)]


def worker_args(exe: Callable[[str], str], python: str, name: str, runner: Path | None) -> list[str]:
    """The stack's worker: Prefect's process worker starting its runs through the warm runner, or, without
    one, `prefect worker start`."""
    if runner is None:
        return [exe("prefect"), "worker", "start", "--pool", POOL, "--type", "process", "--name", name]
    worker = [python, "-m", "vodflow.stack.worker", "--pool", POOL, "--name", name]
    return [*worker, "--runner-socket", str(runner)]


def setup_deployments(python: str, env: Mapping[str, str], project: Path, logs: Path) -> None:
    """The work pool (created when missing, never overwritten), `prefect deploy --all` and the automations,
    in one process (vodflow/stack/deploy.py); RuntimeError naming its log when it fails."""
    with open(logs / "deploy.log", "ab") as log:
        done = subprocess.run(
            [python, "-m", "vodflow.stack.deploy", "--pool", POOL],
            env=dict(env),
            cwd=project,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=SETUP_SECONDS,
        )
    if done.returncode != 0:
        raise RuntimeError(f"the work pool, deployments or automations failed (log: {logs / 'deploy.log'})")


def _api(url: str, body: dict | None = None) -> object:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - the stack's own server
        return json.loads(response.read())


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
        health = HEALTH.get(part.name)
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
            wait_port_free(url_port(part.url))
    forget_state(state_dir)
    return stopped


def wait_port_free(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while port_in_use(port) and time.monotonic() < deadline:
        time.sleep(0.2)
