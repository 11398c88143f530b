"""The guard of a CLI run on a Prefect server: a server that stops answering stops the run, and a run that
does not unwind in its grace time (or gets a second signal) ends through the last resort."""

from __future__ import annotations

import signal
import socket
import threading
import time

import pytest

from vodflow.cli.encode import Interrupted, stop_on_signals
from vodflow.cli.guard import RunGuard


def dead_url() -> str:
    """An API URL on loopback where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/api"


def test_a_server_that_stops_answering_interrupts_the_run_then_the_last_resort_ends_it():
    ended: list[tuple[str, str]] = []
    done = threading.Event()
    guard = RunGuard(
        dead_url(), lost_after=0.5, grace=1.0, last_resort=lambda *why: (ended.append(why), done.set())
    )
    started = time.monotonic()
    with pytest.raises(Interrupted), stop_on_signals(guard):
        guard.watch()
        time.sleep(30)  # the run, blocked: the guard's SIGTERM interrupts it
    assert time.monotonic() - started < 10
    assert guard.lost and "has not answered" in guard.lost
    assert done.wait(10)  # the run did not call finish(): after the grace time the guard ends it
    assert ended == [("prefect_unavailable", f"Prefect could not run the job: {guard.lost}")]
    assert not guard.finish()  # too late: the last resort already began


def test_a_second_signal_ends_a_run_on_a_server_at_once():
    ended: list[tuple[str, str]] = []
    guard = RunGuard(
        "http://127.0.0.1:9/api", lost_after=3600, grace=3600, last_resort=lambda *why: ended.append(why)
    )
    with stop_on_signals(guard):
        with pytest.raises(Interrupted):
            signal.raise_signal(signal.SIGINT)  # the run unwinds (Prefect's clean-up may hang here)
        signal.raise_signal(signal.SIGTERM)  # the second: no waiting for the grace time
    assert ended == [("cancelled", "run cancelled: stopped by a signal")]


def test_a_run_that_finishes_in_time_is_left_alone():
    ended: list[tuple[str, str]] = []
    guard = RunGuard(
        "http://127.0.0.1:9/api", lost_after=3600, grace=0.2, last_resort=lambda *why: ended.append(why)
    )
    guard.stopping()
    assert guard.finish()
    time.sleep(0.5)
    assert ended == []
