"""The command the stack's worker starts for each flow run: hands the run to the stack's warm runner
(`vodflow.stack.forkserver`) over its Unix socket and stands in for the run's process until it ends.

Run as a script, `python -I -S runclient.py SOCKET`: the standard library only, no site-packages, so that it
starts in milliseconds. It passes the flow run's id, environment and working directory with its own stdin,
stdout and stderr (the run's output goes where the worker reads it), forwards SIGTERM and SIGINT (the worker's
cancellation, `vodflow down`) and exits as the run did (its status, or killed by the same signal). Without a
runner (none listening, or it refuses the run before starting it) it becomes `python -m prefect.engine`, what
a process worker starts by default. The protocol's pure parts live here, shared with the server:

    client -> server  HEADER (magic, payload length) with fds 0, 1, 2; then the JSON payload
    server -> client  b"P" + pid (the run started) ... b"X" + status (its exit status, or -signal)
                      or b"E" + length + message (refused; nothing was started)
    client -> server  b"S" + signal number, any time after the header (forwarded to the run)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
import uuid
from typing import NoReturn

MAGIC = b"VFR1"
HEADER = struct.Struct("!4sI")  # magic, payload length
PID = struct.Struct("!I")
STATUS = struct.Struct("!i")
MAX_REQUEST_BYTES = 1 << 20  # a worker's whole environment fits many times over
MAX_ENV_ENTRIES = 4096
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux
FORWARDED = (signal.SIGTERM, signal.SIGINT)
FALLBACK = ("-m", "prefect.engine")  # what the process worker starts without a runner


class BadRequest(ValueError):
    """A request the runner refuses (the reason names the field)."""


def encode_request(flow_run_id: str, cwd: str, env: dict[str, str]) -> bytes:
    """The header and payload of a request; BadRequest when it would be refused."""
    payload = json.dumps({"flow_run_id": flow_run_id, "cwd": cwd, "env": env}).encode()
    check_request(payload)
    return HEADER.pack(MAGIC, len(payload)) + payload


def payload_length(header: bytes) -> int:
    """The payload length a header announces; BadRequest for a bad magic or a length over the bound."""
    if len(header) != HEADER.size:
        raise BadRequest("header: truncated")
    magic, length = HEADER.unpack(header)
    if magic != MAGIC:
        raise BadRequest("header: not a vodflow runner request")
    if not 0 < length <= MAX_REQUEST_BYTES:
        raise BadRequest(f"header: payload of {length} bytes, not within 1..{MAX_REQUEST_BYTES}")
    return length


def check_request(payload: bytes) -> tuple[str, str, dict[str, str]]:
    """(flow run id, working directory, environment) of a payload; BadRequest naming the field otherwise."""
    if len(payload) > MAX_REQUEST_BYTES:
        raise BadRequest(f"request: {len(payload)} bytes, more than {MAX_REQUEST_BYTES}")
    try:
        request = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"request: not JSON ({exc})") from None
    if not isinstance(request, dict) or set(request) != {"flow_run_id", "cwd", "env"}:
        raise BadRequest("request: an object of flow_run_id, cwd and env expected")
    run_id, cwd, env = request["flow_run_id"], request["cwd"], request["env"]
    try:
        run_id = str(uuid.UUID(run_id))
    except (TypeError, ValueError, AttributeError):
        raise BadRequest("flow_run_id: not a UUID") from None
    if not isinstance(cwd, str) or not cwd.startswith("/") or "\0" in cwd:
        raise BadRequest("cwd: an absolute path expected")
    if not isinstance(env, dict) or len(env) > MAX_ENV_ENTRIES:
        raise BadRequest(f"env: an object of at most {MAX_ENV_ENTRIES} variables expected")
    for key, value in env.items():
        if not key or "=" in key or "\0" in key or not isinstance(value, str) or "\0" in value:
            raise BadRequest(f"env: {key[:64]!r} is not a valid variable")
    if env.get("PREFECT__FLOW_RUN_ID", run_id) != run_id:
        raise BadRequest("env: PREFECT__FLOW_RUN_ID differs from flow_run_id")
    return run_id, cwd, env


def exit_as(status: int) -> NoReturn:
    """Exit with the run's status: its exit code, or killed by the signal that killed it."""
    if status < 0:
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
        status = 128 - status
    sys.stdout.flush()
    os._exit(status)


def recv_exactly(sock: socket.socket, size: int, closed: Exception | None = None) -> bytes:
    """`size` bytes from `sock`; `closed` (by default a ConnectionError) if the peer closes first."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise closed or ConnectionError("the runner closed the connection")
        data += chunk
    return data


def fall_back(reason: str, held: list[int]) -> NoReturn:
    """Become `python -m prefect.engine` (no runner to hand the run to), or end as told while connecting."""
    if held:
        exit_as(-held[0])
    print(f"vodflow runner: {reason}; starting the flow run in a new process", file=sys.stderr, flush=True)
    os.execv(sys.executable, [sys.executable, *FALLBACK])


def main(argv: list[str]) -> int:
    held: list[int] = []
    connection: list[socket.socket] = []

    def forward(signum: int, frame: object) -> None:
        if not connection:
            held.append(signum)
            return
        try:
            connection[0].sendall(b"S" + bytes([signum]))
        except OSError:
            pass  # the runner is gone: so is the run

    for number in FORWARDED:
        signal.signal(number, forward)
    run_id = os.environ.get("PREFECT__FLOW_RUN_ID", "")
    try:
        request = encode_request(run_id, os.getcwd(), dict(os.environ))
    except BadRequest as exc:
        fall_back(str(exc), held)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(argv[0])
        socket.send_fds(sock, [request[: HEADER.size]], [0, 1, 2])
        sock.sendall(request[HEADER.size :])
    except (OSError, IndexError) as exc:
        sock.close()
        fall_back(f"no runner at {argv[0] if argv else '(no socket given)'} ({exc})", held)
    try:
        connection.append(sock)
        for signum in held:
            sock.sendall(b"S" + bytes([signum]))
        kind = recv_exactly(sock, 1)
    except OSError as exc:  # it may have started the run: never a second one
        print(f"vodflow runner: no answer from the runner ({exc})", file=sys.stderr)
        return 1
    if kind == b"E":
        try:
            (length,) = PID.unpack(recv_exactly(sock, PID.size))
            message = recv_exactly(sock, min(length, 4096)).decode(errors="replace")
        except OSError as exc:
            message = str(exc)
        sock.close()
        connection.clear()
        fall_back(f"the runner refused the run: {message}", held)
    if kind != b"P":
        print("vodflow runner: a malformed answer; the run's state is unknown", file=sys.stderr)
        return 1
    try:
        recv_exactly(sock, PID.size)
        if recv_exactly(sock, 1) != b"X":
            raise ConnectionError("a malformed answer")
        (status,) = STATUS.unpack(recv_exactly(sock, STATUS.size))
    except OSError as exc:
        print(f"vodflow runner: lost the run ({exc})", file=sys.stderr)
        return 1
    exit_as(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
