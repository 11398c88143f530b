"""`vodflow encode` follows its handed-off run on Prefect's events stream (a real server): the run's own
state changes wake it, another run's do not, and it reads the run's state on those events and every 2 s
instead of every 0.2 s."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL
from prefect.states import Completed, Pending, Running

from vodflow.cli.handoff import Signals, StackRun
from vodflow.cli.run_events import RunEvents
from vodflow.orchestration.flow_runs import run_path

pytestmark = pytest.mark.usefixtures("prefect_harness")


@flow
def nothing() -> None:
    """A flow to make runs of (never run)."""


def new_run() -> str:
    with get_client(sync_client=True) as client:
        return str(client.create_flow_run(nothing).id)


def set_state(run_id: str, state) -> None:
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run_id, state, force=True)


def live(events: RunEvents) -> RunEvents:
    deadline = time.monotonic() + 60
    while not events.live:
        assert time.monotonic() < deadline, "the events stream did not open"
        time.sleep(0.05)
    return events


def test_the_run_s_own_state_changes_wake_the_cli_and_another_run_s_do_not():
    run_id, other = new_run(), new_run()
    events = live(RunEvents(PREFECT_API_URL.value(), run_id))
    try:
        events.changed.wait(5)
        time.sleep(0.5)
        events.changed.clear()
        set_state(other, Running())
        assert not events.changed.wait(2.0), "another run's event woke it"
        set_state(run_id, Running())
        assert events.changed.wait(30), "the run's own state change did not"
    finally:
        events.close()
    assert not events.live


def test_following_a_run_reads_its_state_on_events_not_every_fifth_of_a_second():
    run_id = new_run()
    reads: list[float] = []

    def count(request: httpx.Request) -> None:
        if request.method == "GET" and request.url.path.endswith(run_path(run_id)):
            reads.append(time.monotonic())

    with httpx.Client(base_url=PREFECT_API_URL.value(), event_hooks={"request": [count]}) as client:
        run = StackRun(client, lost_after=30)
        run.run_id = run_id
        run.watch(PREFECT_API_URL.value())
        live(run.events)  # type: ignore[arg-type]

        def states() -> None:  # the run's life: 4 s, as a worker would move it
            for state, after in ((Pending(), 0.5), (Running(), 0.5), (Completed(), 3.0)):
                time.sleep(after)
                set_state(run_id, state)

        mover = threading.Thread(target=states)
        started = time.monotonic()
        mover.start()
        try:
            ended = run.follow(Signals(), stopping=False, until=None)
        finally:
            mover.join()
            run.close()
    assert ended.state == "COMPLETED"
    # polling: 20 reads in these 4 s; on events: one per change (3) and every 2 s at most, plus the first
    assert len(reads) <= 8, [round(t - started, 2) for t in reads]


PLAIN_HTTP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno"


@pytest.mark.parametrize("answer", [b"", PLAIN_HTTP], ids=["silent", "no-ws"])
def test_a_server_that_never_opens_the_stream_leaves_the_cli_polling(answer, monkeypatch):
    """A server that accepts and says nothing, or answers plain HTTP: the stream ends within its open
    timeout (shortened here), not live, so `follow` reads the state every 0.2 s as before."""
    import socket

    from vodflow.cli import run_events

    monkeypatch.setattr(run_events, "OPEN_SECONDS", 1.0)
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def serve() -> None:
        conn, _ = listener.accept()
        accepted.append(conn)
        conn.recv(65536)
        if answer:
            conn.sendall(answer)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    port = listener.getsockname()[1]
    started = time.monotonic()
    events = RunEvents(f"http://127.0.0.1:{port}/api", "r-1")
    try:
        assert events.changed.wait(10), "the stream neither opened nor ended"
        events._thread.join(10)
        assert not events._thread.is_alive() and not events.live
        assert time.monotonic() - started < 10
    finally:
        events.close()
        for conn in accepted:
            conn.close()
        listener.close()
