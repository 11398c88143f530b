"""A run waiting for this host's ffmpeg slot says so on its log, with how many slots are in use, when it
starts waiting and again while it waits, instead of showing nothing until the slot is free."""

from __future__ import annotations

import threading
import time

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

import vodflow.orchestration.concurrency as concurrency
from vodflow.orchestration.concurrency import Slots, ffmpeg_limit_name

pytestmark = pytest.mark.usefixtures("prefect_harness")


@flow
def hold_ffmpeg_slot_for(seconds: float) -> None:
    with Slots(ffmpeg_slots=1).ffmpeg():
        time.sleep(seconds)


def active_slots(name: str) -> int | None:
    with get_client(sync_client=True) as client:
        try:
            return client.read_global_concurrency_limit_by_name(name).active_slots
        except ObjectNotFound:
            return None


def test_a_run_waiting_for_the_ffmpeg_slot_logs_it_and_its_place(monkeypatch, caplog):
    name = ffmpeg_limit_name()
    with get_client(sync_client=True) as client:
        try:
            client.delete_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            pass
    monkeypatch.setattr(concurrency, "SLOT_WAIT_LOG_SECONDS", 1.0, raising=False)
    holder = threading.Thread(target=hold_ffmpeg_slot_for, args=(5.0,))
    holder.start()
    deadline = time.monotonic() + 60
    while active_slots(name) != 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    caplog.set_level("INFO")
    hold_ffmpeg_slot_for(0.0)
    holder.join(120)

    lines = [record.getMessage() for record in caplog.records]
    waiting = [x for x in lines if x == f"waiting for an ffmpeg slot (1 of 1 in use on {name})"]
    assert len(waiting) >= 2, "said when it began waiting, and again while it waited"
    assert f"got an ffmpeg slot of {name}" in lines
