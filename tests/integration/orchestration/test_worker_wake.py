"""The stack's worker asks for runs when the server schedules one (vodflow.stack.worker): the Prefect server's
events stream wakes it (a real server), and its poll waits for that wake or the idle poll, not both."""

from __future__ import annotations

import asyncio
import time

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.states import Scheduled

from vodflow.stack import worker as stack_worker


@flow
def nothing() -> None:
    """A flow to make runs of (never run)."""


async def quiet(wake: asyncio.Event, seconds: float = 1.0, within: float = 60.0) -> bool:
    """Whether `wake` stays clear for `seconds` (cleared each time it is set) before `within` passes: the
    stream's replay of the last minute, and other tests' runs on the session's server, pass first."""
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), seconds)
        except TimeoutError:
            return True
    return False


@pytest.mark.usefixtures("prefect_harness")
def test_a_run_created_on_the_server_wakes_the_worker():
    async def woken() -> tuple[bool, bool]:
        wake = asyncio.Event()
        listener = asyncio.create_task(stack_worker.wake_on_scheduled_runs(wake))
        try:
            await asyncio.wait_for(wake.wait(), 60)  # set once when the stream opens
            calm = await quiet(wake)  # nothing scheduled or ended: no wake
            async with get_client() as client:
                await client.create_flow_run(nothing, state=Scheduled())
            try:
                await asyncio.wait_for(wake.wait(), 60)
            except TimeoutError:
                return calm, False
            return calm, True
        finally:
            listener.cancel()

    assert asyncio.run(woken()) == (True, True)


class Polls:
    """A worker's poll, recording when it ran."""

    def __init__(self) -> None:
        self.at: list[float] = []

    async def get_and_submit_flow_runs(self) -> list:
        self.at.append(time.monotonic())
        return []


def test_the_poll_waits_for_the_wake_or_the_idle_poll(monkeypatch):
    monkeypatch.setattr(stack_worker, "IDLE_POLL_SECONDS", 30.0)

    async def woken_after(delay: float) -> float:
        worker, wake = Polls(), asyncio.Event()
        stack_worker.poll_when_woken(worker, wake)  # type: ignore[arg-type]
        started = time.monotonic()
        asyncio.get_running_loop().call_later(delay, wake.set)
        await worker.get_and_submit_flow_runs()
        assert not wake.is_set(), "the wake is used up by the poll it started"
        return worker.at[0] - started

    assert 0.2 <= asyncio.run(woken_after(0.2)) < 10  # the wake, not the 30 s idle poll

    monkeypatch.setattr(stack_worker, "IDLE_POLL_SECONDS", 0.3)

    async def unwoken() -> float:
        worker = Polls()
        stack_worker.poll_when_woken(worker, asyncio.Event())  # type: ignore[arg-type]
        started = time.monotonic()
        await worker.get_and_submit_flow_runs()
        return worker.at[0] - started

    assert 0.3 <= asyncio.run(unwoken()) < 10  # no wake: the idle poll
