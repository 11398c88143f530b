"""The stack's warm runner: one process that imports Prefect, the flows and their dependencies once, then
forks a child per flow run that its worker hands over (`vodflow.stack.runclient`, the command the stack's
worker starts), so that a run starts without a new interpreter importing all of that (seconds on a small
machine). The child runs the flow run exactly as `python -m prefect.engine` does, in the run's environment,
working directory and stdio, in a session of its own; the run stays a Prefect flow run of the worker
(states, logs, cancellation, crash detection).

Safety: the socket is the user's only (0600, in the stack's 0700 state directory), a request is taken only
from a process of the same uid that carries the stack's id (SO_PEERCRED, /proc), its size is bounded and its
fields checked; the server stays single-threaded (forking a threaded process is unsafe: a run is refused,
and the client then starts it in a new process, if a thread ever appears). Each child is the server's own,
signalled through its pidfd only (SIGTERM/SIGINT its client forwards; SIGKILL when its client is gone: the
worker gave up on it), reaped when it exits (no zombie), and dies with the server (SIGTERM). On SIGTERM the
server stops taking runs, tells its children to stop, kills what is left after STOP_GRACE_SECONDS, exits.
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import importlib
import os
import runpy
import selectors
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from vodflow.stack.processes import carries
from vodflow.stack.runclient import (
    FORWARDED,
    HEADER,
    MAX_SOCKET_PATH,
    PID,
    STATUS,
    BadRequest,
    check_request,
    payload_length,
    recv_exactly,
)
from vodflow.stack.state import STACK_ID_VARIABLE

REQUEST_SECONDS = 5.0  # a client sends its request at once; a stalled one does not hold the server longer
STOP_GRACE_SECONDS = 8.0  # under the 10 s `vodflow down` gives a part before SIGKILL
# What a run imports: measured as the modules a forked run still imported (graphviz, anyio's backend and
# croniter are imported lazily by Prefect; the local encoder and storage by the flow when it runs).
PRELOAD = (
    "prefect.engine",
    "prefect.flow_engine",
    "prefect.task_engine",
    "prefect.deployments.steps.core",
    "prefect.runner._control_channel",
    "prefect.utilities.visualization",
    "prefect._vendor.croniter",
    "anyio._backends._asyncio",
    "anyio.streams.memory",
    "anyio.streams.stapled",
    "anyio.streams.tls",
    "encodings.idna",
    "rich._emoji_codes",
    "vodflow.orchestration.deploy_steps",
    "vodflow.flows.pipeline",
    "vodflow.flows.cleanup",
    "vodflow.flows.sensor",
    "vodflow.encoders.local",
    "vodflow.storage.local",
)
PR_SET_PDEATHSIG = 1


@dataclass
class Run:
    """A child running a flow run, and the connection of the client that stands in for it."""

    pid: int
    pidfd: int
    conn: socket.socket | None
    pending: bytes = b""


@dataclass
class Server:
    listener: socket.socket
    stack_id: str | None
    selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    runs: dict[int, Run] = field(default_factory=dict)  # by pidfd
    logging_env: dict[str, str] = field(default_factory=dict)
    wake: tuple[socket.socket, ...] = ()  # the signal wakeup pair

    def serve(self) -> None:
        """Take runs until SIGTERM or SIGINT, then stop the children and return."""
        stopping: list[int] = []
        wake_r, wake_w = socket.socketpair()
        for end in (wake_r, wake_w):
            end.setblocking(False)
        signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        for number in FORWARDED:
            signal.signal(number, lambda signum, frame: stopping.append(signum))
        self.wake = (wake_r, wake_w)
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(wake_r, selectors.EVENT_READ, "wake")
        while not stopping:
            for key, _ in self.selector.select():
                self.handle(key)
        self.shutdown()

    def handle(self, key: selectors.SelectorKey) -> None:
        if key.data == "accept":
            self.accept()
        elif key.data == "wake":
            self.wake[0].recv(64)
        elif key.data == "conn":
            self.client_says(key.fileobj)  # type: ignore[arg-type]
        elif key.data in self.runs:
            self.reap(key.data)

    def accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        conn.settimeout(REQUEST_SECONDS)
        fds: list[int] = []  # stdio of the run, received: closed here once the child has its copies
        try:
            self.take(conn, fds)
        except BadRequest as exc:
            log(f"refused a run: {exc}")
            answer(conn, b"E" + PID.pack(len(str(exc).encode())) + str(exc).encode())
            conn.close()
        except OSError as exc:
            log(f"lost a request: {exc}")
            conn.close()
        finally:
            for fd in fds:
                os.close(fd)

    def take(self, conn: socket.socket, fds: list[int]) -> None:
        """Read, check and start one run; the stdio fds received go to `fds` (the caller closes them)."""
        peer_pid, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        if uid != os.getuid():
            raise BadRequest("peer: another user")
        if self.stack_id and not carries(peer_pid, self.stack_id):
            raise BadRequest("peer: not a process of this stack")
        header, received, flags, _ = socket.recv_fds(conn, HEADER.size, 3)
        fds.extend(received)
        if flags & socket.MSG_CTRUNC or len(fds) != 3:
            raise BadRequest("fds: stdin, stdout and stderr expected")
        truncated = BadRequest("request: truncated")
        length = payload_length(header + recv_exactly(conn, HEADER.size - len(header), truncated))
        run_id, cwd, env = check_request(recv_exactly(conn, length, truncated))
        if not os.path.isdir(cwd):
            raise BadRequest("cwd: not a directory")
        if threading.active_count() != 1:
            raise BadRequest("the runner is not single-threaded")
        pid = self.fork(run_id, cwd, env, fds, conn)
        pidfd = os.pidfd_open(pid)
        self.runs[pidfd] = Run(pid, pidfd, conn)
        conn.setblocking(False)
        answer(conn, b"P" + PID.pack(pid))
        self.selector.register(conn, selectors.EVENT_READ, "conn")
        self.selector.register(pidfd, selectors.EVENT_READ, pidfd)
        log(f"flow run {run_id}: pid {pid}")

    def fork(self, run_id: str, cwd: str, env: dict[str, str], fds: list[int], conn: socket.socket) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid:
            return pid
        code = 1
        try:
            code = self.child(parent, cwd, env, fds, conn)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)

    def child(self, parent: int, cwd: str, env: dict[str, str], fds: list[int], conn: socket.socket) -> int:
        """In the forked child: become the run's process, then run it as `python -m prefect.engine`."""
        os.setsid()
        LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # dies with the server, told to stop
        if os.getppid() != parent:
            return 1
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for run in self.runs.values():
            os.close(run.pidfd)
            if run.conn:
                run.conn.close()
        for sock in (self.listener, *self.wake, conn):
            sock.close()
        self.selector.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        sys.path[0] = cwd  # as `python -m` in the run's directory would have it (the server's was its own)
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()  # Prefect read its settings from the server's environment
        if prefect_logging(env) != self.logging_env:
            from prefect.logging.configuration import setup_logging

            setup_logging(incremental=False)
        sys.argv = ["prefect.engine"]  # the run's id comes from PREFECT__FLOW_RUN_ID, as for the worker's
        return run_engine()

    def client_says(self, conn: socket.socket) -> None:
        """Signals a client forwards (SIGTERM, SIGINT) to its run; its end (it died: SIGKILL the run)."""
        run = next(r for r in self.runs.values() if r.conn is conn)
        try:
            data = conn.recv(64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop_client(run)
            signal_run(run, signal.SIGKILL)  # the worker gave up on it; nothing stands in for it any more
            return
        run.pending += data
        while len(run.pending) >= 2:
            kind, number, run.pending = run.pending[0:1], run.pending[1], run.pending[2:]
            if kind == b"S" and number in FORWARDED:
                signal_run(run, number)

    def drop_client(self, run: Run) -> None:
        if run.conn is not None:
            self.selector.unregister(run.conn)
            run.conn.close()
            run.conn = None

    def reap(self, pidfd: int) -> None:
        """The run's child exited: reap it, tell its client how it ended."""
        run = self.runs.pop(pidfd)
        self.selector.unregister(pidfd)
        _, status = os.waitpid(run.pid, 0)
        os.close(pidfd)
        code = os.waitstatus_to_exitcode(status)
        log(f"pid {run.pid} exited with {code}")
        if run.conn is not None:
            run.conn.setblocking(True)
            run.conn.settimeout(REQUEST_SECONDS)
            answer(run.conn, b"X" + STATUS.pack(code))
            self.drop_client(run)

    def shutdown(self) -> None:
        """Stop taking runs; SIGTERM the children, SIGKILL those left after the grace, reap them all."""
        self.selector.unregister(self.listener)
        self.listener.close()
        for run in self.runs.values():
            signal_run(run, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while self.runs and time.monotonic() < deadline:
            for key, _ in self.selector.select(timeout=max(0.0, deadline - time.monotonic())):
                self.handle(key)
        for run in list(self.runs.values()):
            signal_run(run, signal.SIGKILL)
            self.reap(run.pidfd)


def answer(conn: socket.socket, data: bytes) -> None:
    try:
        conn.sendall(data)
    except OSError:
        pass  # the client is gone; its run (if any) is killed when its end of the connection is read


def signal_run(run: Run, number: int) -> None:
    """`number` to the run's child through its pidfd (never another process, even once it has exited)."""
    try:
        signal.pidfd_send_signal(run.pidfd, number)
    except ProcessLookupError:
        pass


def prefect_logging(env: dict[str, str] | os._Environ) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith("PREFECT_LOGGING_")}


def run_engine() -> int:
    """`python -m prefect.engine` in this process; its exit status (then exit handlers run, as at exit)."""
    # runpy's note that the module was imported before (by the server, on purpose) is no warning here
    warnings.filterwarnings("ignore", "'prefect.engine' found in sys.modules", RuntimeWarning, "runpy")
    try:
        runpy.run_module("prefect.engine", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        if not isinstance(exc.code, int | None):
            print(exc.code, file=sys.stderr)
    except KeyboardInterrupt:
        code = -signal.SIGINT
    except BaseException:
        traceback.print_exc()
        code = 1
    threading._shutdown()  # type: ignore[attr-defined]  # non-daemon threads joined, as at exit
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    if code < 0:  # an uncaught KeyboardInterrupt: end killed by SIGINT, as Python does
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


def warm_up(modules: list[str]) -> None:
    """Import `modules` and build what Prefect builds on first use, so that no run pays for it: the
    validators of every pydantic model (Prefect's are built when first used: 0.2 s for a deployment) and
    the time zone list that validating a schedule reads."""
    import pydantic

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a run that needs it imports it again and reports why
            log(f"could not preload {name}: {exc}")
    pending, seen = [pydantic.BaseModel], set()
    while pending:
        for model in pending.pop().__subclasses__():
            if model not in seen:
                seen.add(model)
                pending.append(model)
                if not model.__pydantic_complete__:
                    try:
                        model.model_rebuild(force=True)
                    except Exception:  # noqa: BLE001, S110 - one a run cannot use either: built, or not, on use
                        pass
    try:
        from prefect.types._datetime import get_timezones

        get_timezones()
    except ImportError:
        pass


def log(line: str) -> None:
    print(f"vodflow runner: {line}", file=sys.stderr, flush=True)


def listen(path: Path) -> socket.socket:
    """A listening socket at `path`, 0600 from the start, put in place once it listens."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise ValueError(f"socket path longer than {MAX_SOCKET_PATH} bytes: {path}")
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o177)
    try:
        sock.bind(str(temporary))
    finally:
        os.umask(previous)
    sock.listen(16)
    os.replace(temporary, path)
    return sock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vodflow.stack.forkserver", description=__doc__)
    parser.add_argument("--socket", type=Path, required=True, help="where to listen")
    parser.add_argument("--preload", action="append", default=None, help="a module to import once")
    args = parser.parse_args(argv)
    started = time.monotonic()
    warm_up(args.preload or list(PRELOAD))
    if threading.active_count() != 1:
        log(f"{threading.active_count()} threads after the imports: runs will start in new processes")
    listener = listen(args.socket)
    inode = args.socket.stat().st_ino
    log(f"ready in {time.monotonic() - started:.1f} s on {args.socket}")
    server = Server(listener, os.environ.get(STACK_ID_VARIABLE), logging_env=prefect_logging(os.environ))
    try:
        server.serve()
    finally:
        try:
            if args.socket.stat().st_ino == inode:  # ours, not one a next runner put in place
                args.socket.unlink()
        except OSError:
            pass
    return 0


LIBC = ctypes.CDLL("libc.so.6", use_errno=True)

if __name__ == "__main__":
    sys.exit(main())
