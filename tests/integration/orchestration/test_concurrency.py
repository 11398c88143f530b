"""Concurrency limits against a Prefect API: per-host ffmpeg slots and one run at a time per job."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from vodflow.orchestration.concurrency import Slots, ffmpeg_limit_name, job_limit_name, job_slot

pytestmark = pytest.mark.usefixtures("prefect_harness")


def active_slots(name: str) -> int | None:
    with get_client(sync_client=True) as client:
        try:
            return client.read_global_concurrency_limit_by_name(name).active_slots
        except ObjectNotFound:
            return None


@flow
def hold_ffmpeg_slot(slots: Slots) -> int | None:
    with slots.ffmpeg():
        return active_slots(ffmpeg_limit_name())


@flow
def hold_job_slot(job_id: str, seconds: float) -> tuple[int | None, float, float]:
    """(active slots of the job's limit while held, when the slot was held from, to)."""
    with job_slot(job_id):
        start = time.monotonic()
        slots = active_slots(job_limit_name(job_id))
        time.sleep(seconds)
        return slots, start, time.monotonic()


def test_ffmpeg_runs_hold_a_slot_of_the_host_limit(environment):
    _forget_ffmpeg_limit()  # another test of the session may have made it already
    assert hold_ffmpeg_slot(environment({"VODFLOW_FFMPEG_SLOTS": "2"}).slots()) == 1
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(ffmpeg_limit_name())
    assert limit.limit == 2 and limit.active_slots == 0  # created on first use, released after


def _forget_ffmpeg_limit() -> None:
    with get_client(sync_client=True) as client:
        try:
            client.delete_global_concurrency_limit_by_name(ffmpeg_limit_name())
        except ObjectNotFound:
            pass


@flow
def slots_while_held(job_id: str, slots: Slots) -> tuple[int | None, int | None]:
    """(active slots of the host's ffmpeg limit, of the job's limit) while both are entered."""
    with slots.job(job_id), slots.ffmpeg():
        return active_slots(ffmpeg_limit_name()), active_slots(job_limit_name(job_id))


@pytest.mark.parametrize(
    ("setting", "job_held"),
    [({"VODFLOW_FFMPEG_SLOTS": "0"}, 1), ({"VODFLOW_CONCURRENCY_LIMITS": "off"}, None)],
    ids=["no-slots", "off"],
)
def test_slots_are_no_ops_outside_runs_and_when_turned_off(environment, setting, job_held):
    """No ffmpeg slot turns only the host's ffmpeg slot off (the job's own slot is still held); limits off
    turns both off."""
    with job_slot("outside-a-run"):
        assert active_slots(job_limit_name("outside-a-run")) is None
    assert active_slots(job_limit_name("outside-a-run")) is None
    _forget_ffmpeg_limit()
    assert slots_while_held("limits-on", environment({}).slots()) == (1, 1)  # limits held on this server
    _forget_ffmpeg_limit()
    ffmpeg_slots, job_slots = slots_while_held("limits-off", environment(setting).slots())
    assert ffmpeg_slots is None, "no ffmpeg limit was created or held"
    assert job_slots == job_held


def test_runs_of_one_job_never_overlap_and_the_limit_goes_away():
    results: list[tuple[int | None, float, float]] = []
    runs = [threading.Thread(target=lambda: results.append(hold_job_slot("job-x", 1.5))) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(120)
    first, second = sorted(results, key=lambda r: r[1])
    assert first[0] == second[0] == 1
    assert second[1] >= first[2]  # the second run held the slot only after the first let go
    assert active_slots(job_limit_name("job-x")) is None


@flow
def hold_ffmpeg_slot_for(seconds: float) -> tuple[float, float]:
    """When this run held the host's ffmpeg slot: (from, to)."""
    with Slots().ffmpeg():
        start = time.monotonic()
        time.sleep(seconds)
        return start, time.monotonic()


def test_a_busy_ffmpeg_slot_is_asked_for_again_within_seconds(monkeypatch, caplog):
    """While the one slot is taken, a waiting run asks again every 1-2 s, not after the server's
    Retry-After (which grows with how long holders keep the slot), and no ERROR is logged for the
    requests the server answered 'all taken'."""
    import vodflow.orchestration.concurrency as concurrency

    monkeypatch.setenv("VODFLOW_FFMPEG_SLOTS", "1")
    with get_client(sync_client=True) as client:
        try:
            client.delete_global_concurrency_limit_by_name(ffmpeg_limit_name())
        except ObjectNotFound:
            pass
    asked: list[float] = []  # when each ask for a slot went to the server (Prefect's own call, observed)
    real = concurrency.concurrency
    monkeypatch.setattr(
        concurrency, "concurrency", lambda *a, **k: (asked.append(time.monotonic()), real(*a, **k))[1]
    )
    results: list[tuple[float, float]] = []
    holder = threading.Thread(target=lambda: results.append(hold_ffmpeg_slot_for(6.0)))
    holder.start()
    deadline = time.monotonic() + 60
    while active_slots(ffmpeg_limit_name()) != 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    waiting_from = time.monotonic()
    waiter = hold_ffmpeg_slot_for(0.1)
    holder.join(120)
    assert waiter[0] >= results[0][1], "the waiting run held the slot only after the holder let go"
    asks = [t for t in asked if t >= waiting_from]
    gaps = [b - a for a, b in zip(asks, asks[1:], strict=False)]
    # asked again while the slot was taken (Prefect's own wait would make one long call), 1-2 s apart
    # (the request's own time comes on top: a loaded host gets 3 s more)
    assert len(asks) >= 2 and all(1.0 <= gap <= 2.0 + 3.0 for gap in gaps), gaps
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors


def test_limit_names_are_valid_prefect_names():
    assert ffmpeg_limit_name("Encoder-01.example.com") == "vodflow-ffmpeg-encoder-01.example.com"
    assert job_limit_name("a" * 24) == "vodflow-job-" + "a" * 24
    odd = job_limit_name("team/x%y")
    assert "/" not in odd and "%" not in odd and odd != job_limit_name("team-x-y")
