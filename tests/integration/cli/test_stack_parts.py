"""`vodflow up --api` / `--receiver`, their refusals without credentials, `up` exiting 1 when a part does not
start, and `status` exiting 1 when a part is down (README "Local stack" and "Exit codes").

`vodflow up` runs as `vodflow.cli.main` with its executables' folder (the interpreter's, `sys.executable`)
pointed at a folder of this test: `prefect` there is a stand-in (a loopback HTTP server answering the health,
work-pool and worker questions `up` asks, a worker that waits, deploy steps that succeed), and `vodflow` runs
the real `vodflow` for the file server, the API and the receiver. The stand-in fails the part named by
FAKE_FAIL. A real Prefect server under `up` is tested in test_stack.py; what is tested here is `up`'s own
work: which parts it starts, what it refuses, what it stops again, and what it tells.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.prefect_server import BIN
from tests.procs import alive, cmdline, find
from vodflow.cli import main
from vodflow.stack.state import load_state

REPO = Path(__file__).resolve().parents[3]
API_KEY, API_SECRET = "stack-key", "s" * 32
RECEIVER_TOKEN = "r" * 32

FAKE_PREFECT = """\
#!{python}
# A stand-in for Prefect's CLI under `vodflow up`; each process notes its pid (the test checks they are gone).
import http.server, json, os, sys, time
from pathlib import Path
Path(os.environ["FAKE_PIDS"], f"prefect-{{os.getpid()}}").write_text(" ".join(sys.argv[1:]))
fail, args = os.environ.get("FAKE_FAIL", ""), sys.argv[1:]
if args[:2] == ["worker", "start"]:
    if fail == "worker":
        sys.exit("the worker cannot reach its pool")
    import urllib.request
    poll = urllib.request.Request(
        os.environ["PREFECT_API_URL"] + "/work_pools/vodflow/workers/heartbeat",
        data=json.dumps({{"name": args[args.index("--name") + 1]}}).encode(), method="POST",
    )
    urllib.request.urlopen(poll, timeout=10).read()
    time.sleep(3600)
"""

PYTHON = """\
#!{python}
# A stand-in for the interpreter `up` runs its Prefect server, set-up, warm runner and worker with: the server
# answers what `up` asks, the set-up succeeds, the runner puts its socket in place, the worker polls the
# server once; they wait.
import http.server, json, os, sys, time, urllib.request
from pathlib import Path
Path(os.environ["FAKE_PIDS"], f"python-{{os.getpid()}}").write_text(" ".join(sys.argv[1:]))
args = sys.argv[1:]
if args[:2] == ["-m", "vodflow.stack.server"]:  # the stack's Prefect server
    if os.environ.get("FAKE_FAIL") == "server":
        sys.exit("database connection refused: the server cannot start")
    Path(os.environ["FAKE_PIDS"], "server-database").write_text(
        os.environ.get("PREFECT_SERVER_DATABASE_CONNECTION_URL", "(SQLite)")
    )
    polled = []  # the workers that have polled, as Prefect marks them ONLINE
    class Answers(http.server.BaseHTTPRequestHandler):
        def reply(self, body):
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        def do_GET(self):
            self.reply(True if self.path == "/api/health" else {{"name": "vodflow"}})
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{{}}")
            if self.path.endswith("/workers/heartbeat"):
                polled.append(body["name"])
            online = [{{"name": name, "status": "ONLINE"}} for name in polled]
            self.reply(online if self.path.endswith("/workers/filter") else [])
        def log_message(self, *args):
            pass
    port = int(args[args.index("--port") + 1])
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Answers).serve_forever()
elif args[:2] == ["-m", "vodflow.stack.deploy"]:  # the work pool, deployments and automations: done
    sys.exit(0)
if args[:2] == ["-m", "vodflow.stack.forkserver"]:
    Path(args[args.index("--socket") + 1]).touch()
elif args[:2] == ["-m", "vodflow.stack.worker"]:
    if os.environ.get("FAKE_FAIL") == "worker":
        sys.exit("the worker cannot reach its pool")
    poll = urllib.request.Request(
        os.environ["PREFECT_API_URL"] + "/work_pools/vodflow/workers/heartbeat",
        data=json.dumps({{"name": args[args.index("--name") + 1]}}).encode(), method="POST",
    )
    urllib.request.urlopen(poll, timeout=10).read()
time.sleep(3600)
"""

VODFLOW = """\
#!{python}
# `vodflow` for `up`: the real one, but `automations apply` (the stand-in server has no automations API).
import os, sys
from pathlib import Path
Path(os.environ["FAKE_PIDS"], f"vodflow-{{os.getpid()}}").write_text(" ".join(sys.argv[1:]))
if sys.argv[1] == "automations":
    sys.exit(0)
if sys.argv[1] == os.environ.get("FAKE_FAIL"):
    sys.exit(f"{{sys.argv[1]}} cannot start")
from vodflow.cli import main
sys.exit(main())
"""


@pytest.fixture
def stack(tmp_path, monkeypatch) -> Iterator[Path]:
    """A bin folder of stand-ins as `up`'s executables, a state and data folder under `tmp_path`, API and
    receiver credentials unset; the state folder. Whatever `up` started is stopped with `vodflow down`."""
    bin_dir, pids = tmp_path / "bin", tmp_path / "pids"
    bin_dir.mkdir()
    pids.mkdir()
    for name, text in (("prefect", FAKE_PREFECT.format(python=sys.executable)),
                       ("python", PYTHON.format(python=sys.executable)),
                       ("vodflow", VODFLOW.format(python=BIN / "python"))):  # fmt: skip
        (bin_dir / name).write_text(textwrap.dedent(text))
        (bin_dir / name).chmod(0o755)
    for name in list(os.environ):
        if name.startswith(("VODFLOW_API_", "VODFLOW_RECEIVER_", "VODFLOW_DATABASE", "PREFECT_API")):
            monkeypatch.delenv(name)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))  # `up` runs what lies beside it
    monkeypatch.setenv("FAKE_PIDS", str(pids))
    monkeypatch.setenv("VODFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VODFLOW_STORAGE", "local")
    state_dir = tmp_path / "state"
    try:
        yield state_dir
    finally:
        main(["down", "--state-dir", str(state_dir)])
        assert started_alive(pids) == [], "a process `up` started outlived `down`"


def started_alive(pids: Path) -> list[str]:
    """The stand-ins and `vodflow` processes this test's `up` started that still run (a pid that names
    another process now, one not run from the test's bin folder, is not theirs)."""
    bin_dir = str(pids.parent / "bin")
    started = [(f.name, int(f.name.rsplit("-", 1)[1])) for f in pids.glob("*-[0-9]*")]
    ours = [(name, pid, cmdline(pid) or []) for name, pid in started if alive(pid)]
    return [f"{name}: {args}" for name, pid, args in ours if any(a.startswith(bin_dir) for a in args)]


def up(state_dir: Path, *options: str) -> int:
    return main(["up", "--state-dir", str(state_dir), "--project", str(REPO), *options])


def status(state_dir: Path) -> int:
    return main(["status", "--state-dir", str(state_dir)])


@pytest.mark.parametrize(
    ("option", "env", "said"),
    [
        ("--api", {}, "set VODFLOW_API_KEY and VODFLOW_API_SECRET, or name a vodflow-api block"),
        ("--api", {"VODFLOW_API_KEY": API_KEY}, "set VODFLOW_API_SECRET"),
        ("--api", {"VODFLOW_API_KEY": API_KEY, "VODFLOW_API_SECRET": "short-secret"}, "at least 32 char"),
        ("--receiver", {}, "--receiver needs VODFLOW_RECEIVER_TOKEN"),
        ("--receiver", {"VODFLOW_RECEIVER_TOKEN": "t" * 31}, "at least 32 characters"),
    ],
)
def test_api_and_receiver_without_credentials_are_refused_before_anything_starts(
    stack, monkeypatch, capsys, option, env, said
):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert up(stack, option) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("vodflow up: ") and said in err, err
    assert "short-secret" not in err and "t" * 31 not in err, "a secret is never quoted"
    assert list((stack.parent / "pids").iterdir()) == [], "nothing was started"
    assert load_state(stack) is None


def test_up_with_api_and_receiver_starts_both_and_status_tells_a_part_that_is_down(
    stack, monkeypatch, capsys
):
    monkeypatch.setenv("VODFLOW_API_KEY", API_KEY)
    monkeypatch.setenv("VODFLOW_API_SECRET", API_SECRET)
    monkeypatch.setenv("VODFLOW_RECEIVER_TOKEN", RECEIVER_TOKEN)
    assert up(stack, "--api", "--receiver") == 0, capsys.readouterr().err
    state = load_state(stack)
    assert [p.name for p in state.parts] == ["server", "files", "runner", "worker", "api", "receiver"]
    assert len(started_alive(stack.parent / "pids")) == 6, "what the leak check finds: the six parts"
    api, receiver = state.part("api"), state.part("receiver")
    assert httpx.get(f"{api.url}/healthz").status_code == 200
    assert httpx.get(f"{api.url}/v1/encoder/jobs").status_code == 401, "the API asks for its token"
    assert httpx.get(f"{receiver.url}/healthz").status_code == 200
    refused = httpx.post(f"{receiver.url}/minio", json={"Records": []}, headers={"Authorization": "Bearer x"})
    assert refused.status_code == 401, "the receiver asks for its token"
    capsys.readouterr()
    assert status(stack) == 0
    assert "receiver  up" in capsys.readouterr().out

    assert cmdline(receiver.pid)[-3:] == ["receiver", "--port", receiver.url.rsplit(":", 1)[1]]
    os.killpg(receiver.pid, signal.SIGKILL)  # the receiver `up` started (its own process group) dies
    deadline = time.monotonic() + 10
    while find(group=receiver.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert find(group=receiver.pid) == []
    assert status(stack) == 1, "a part that is not running"
    shown = capsys.readouterr().out
    assert "receiver  stopped" in shown and "api       up" in shown

    assert up(stack, "--receiver") == 0, "a second `up` starts the receiver it lacks, and only it"
    assert "the stack was running; started receiver" in capsys.readouterr().err
    again = load_state(stack)
    assert [p.name for p in again.parts] == ["server", "files", "runner", "worker", "api", "receiver"]
    assert again.parts[:5] == state.parts[:5] and again.part("receiver").pid != receiver.pid
    assert status(stack) == 0


@pytest.mark.parametrize("part", ["server", "worker", "api"])
def test_up_exits_1_naming_the_part_that_did_not_start_and_stops_what_it_started(
    stack, monkeypatch, capsys, part
):
    monkeypatch.setenv("VODFLOW_API_KEY", API_KEY)
    monkeypatch.setenv("VODFLOW_API_SECRET", API_SECRET)
    monkeypatch.setenv("FAKE_FAIL", part)
    assert up(stack, "--api") == 1
    out, err = capsys.readouterr()
    log = stack / "logs" / f"{part}.log"
    assert out == "" and f"vodflow up: {part}" in err and f"(log: {log})" in err, err
    assert "cannot" in log.read_text(), "its log says why"
    assert load_state(stack) is None, "no stack is recorded"
    assert started_alive(stack.parent / "pids") == [], "everything this `up` started is stopped again"
    assert status(stack) == 3
    started = json.dumps(sorted(f.name.split("-")[0] for f in (stack.parent / "pids").glob("*-[0-9]*")))
    assert ("vodflow" in started) is (part != "server"), "the file server starts after the Prefect server"


def test_the_server_s_database_is_vodflow_database_url_unless_the_option_names_another(
    stack, monkeypatch, capsys
):
    """README: the PostgreSQL of `--database-url` / `VODFLOW_DATABASE_URL`, default SQLite; the URL (with its
    password) is handed to the server only, never printed or recorded. A real PostgreSQL under a real server
    through VODFLOW_DATABASE_URL: test_stack.py."""
    told = stack.parent / "pids" / "server-database"
    variable = "postgresql+asyncpg://vodflow:pg-secret-1@127.0.0.1:5432/prefect"
    option = "postgresql+asyncpg://vodflow:pg-secret-2@127.0.0.1:5433/other"
    for options, env, expected in (
        ((), None, "(SQLite)"),
        ((), variable, variable),
        (("--database-url", option), variable, option),
    ):
        if env:
            monkeypatch.setenv("VODFLOW_DATABASE_URL", env)
        assert up(stack, *options) == 0, capsys.readouterr().err
        assert told.read_text() == expected
        out, err = capsys.readouterr()
        recorded = "".join(p.read_text() for p in stack.glob("*.json"))
        assert "pg-secret" not in out + err + recorded, "the database password is never shown or kept"
        assert main(["down", "--state-dir", str(stack)]) == 0
