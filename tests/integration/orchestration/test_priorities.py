"""Job priorities on the shared `vodflow up` stack (tests/user_stack.py): the pool's queues as `up` made them,
and its real worker with one run slot (the pool's concurrency limit 1) taking a queue of waiting jobs by
priority.

The runs are created while the pool is paused (its worker polls but is handed nothing), then it resumes: each
time the slot frees, the server hands the worker the oldest run of the highest-priority queue. Had the long
job already been running when the five were queued, they would wait until it ended (or was cancelled):
Prefect never stops a running flow run for a waiting one; priorities only order the waiting runs. The
pool's limit and pause are put back at the end, and the long job cancelled once it has started: it never
takes its ten minutes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import WorkPoolUpdate
from prefect.client.schemas.objects import FlowRun

from vodflow.api.jobs import JobService
from vodflow.api.runs import PrefectJobRuns
from vodflow.cli.handoff import StackRun
from vodflow.jobs.spec import parse_spec
from vodflow.media.samples import make_sample
from vodflow.orchestration.flow_runs import (
    ENCODE_DEPLOYMENT,
    ENCODE_FLOW,
    run_parameters,
)
from vodflow.stack.local import POOL
from vodflow.storage.local import LocalStorage

MP4_240 = {"presets": [{"format": "mp4", "resolutions": ["240"]}]}
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@pytest.fixture(scope="module")
def api(user_stack) -> Iterator[httpx.Client]:
    """A client of the stack's Prefect API (what `vodflow encode` talks to), with Prefect's own client (which
    asks again when the SQLite-backed server answers 503 for a moment) pointed at it too."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = user_stack.state.env["PREFECT_API_URL"]
    with temporary_settings({PREFECT_API_URL: url}), httpx.Client(base_url=url, timeout=30) as client:
        yield client


@contextmanager
def prefect() -> Iterator[SyncPrefectClient]:
    with get_client(sync_client=True) as client:
        yield client


def read_run(run_id: str) -> FlowRun:
    with prefect() as client:
        return client.read_flow_run(UUID(run_id))


def wait_for(run_id: str, done: Callable[[FlowRun], bool], timeout: float, what: str) -> FlowRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done(run := read_run(run_id)):
            return run
        time.sleep(0.25)
    pytest.fail(f"flow run {run_id} not {what} after {timeout:.0f} s: {run.state_type}")


def finished(run: FlowRun) -> bool:
    return run.state_type is not None and run.state_type.value in FINAL


def test_up_makes_one_queue_per_priority_ahead_of_the_default_queue(api):
    with prefect() as client:
        queues = client.read_work_queues(work_pool_name=POOL)
        deployment = client.read_deployment_by_name(f"{ENCODE_FLOW}/{ENCODE_DEPLOYMENT}")
    by_priority = [q.name for q in sorted(queues, key=lambda q: q.priority)]
    assert by_priority[:3] == ["high", "normal", "low"] and "default" in by_priority[3:], by_priority
    limits = {q.name: q.concurrency_limit for q in queues}
    assert (limits["high"], limits["normal"], limits["low"]) == (None, None, 1)
    assert deployment.work_queue_name == "normal", "runs without a priority wait in normal"


def test_five_high_jobs_queued_after_a_long_one_all_end_before_it_starts(api, user_stack, tmp_path):
    long_source = make_sample(tmp_path / "long.mp4", width=426, height=240, seconds=600, fps=2, audio=False)
    short_source = make_sample(tmp_path / "short.mp4", width=426, height=240, seconds=5, fps=10, audio=False)
    runs = PrefectJobRuns(f"{ENCODE_FLOW}/{ENCODE_DEPLOYMENT}")
    service = JobService(LocalStorage(user_stack.root / "data"), runs, allow_local_sources=True)

    def spec(source: Path, priority: str | None) -> dict:
        return {"videoUrl": str(source), **MP4_240} | ({"priority": priority} if priority else {})

    def api_job(source: Path, priority: str | None) -> str:
        """A job created as `POST /v1/encoder/jobs` creates it; its flow run's id."""
        job_id = service.create(parse_spec(spec(source, priority))).id
        return runs.find([job_id])[job_id].id

    long_run = None
    with prefect() as client:
        client.update_work_pool(POOL, WorkPoolUpdate(is_paused=True, concurrency_limit=1))
    try:
        long_run = api_job(long_source, None)
        high = [api_job(short_source, "high") for _ in range(3)]
        for i in range(2):  # `vodflow encode`'s hand-off to the stack: its request, retried as it retries
            job_id = f"prio-cli-{int(time.time() * 1000)}-{i}"
            parameters = run_parameters(spec(short_source, "high"), job_id, x264_preset="ultrafast")
            high.append(StackRun(api, lost_after=30).create(parameters))
        assert read_run(long_run).work_queue_name == "normal"
        assert {read_run(run).work_queue_name for run in high} == {"high"}

        with prefect() as client:
            client.update_work_pool(POOL, WorkPoolUpdate(is_paused=False))
        ended = [wait_for(run, finished, 120, "finished") for run in high]
        assert [r.state_type.value for r in ended] == ["COMPLETED"] * 5, [r.state.message for r in ended]
        started = wait_for(long_run, lambda r: r.start_time is not None, 60, "started")
        runs.cancel(long_run)

        assert started.start_time >= max(r.end_time for r in ended), "the long job started first"
        in_order = sorted(ended, key=lambda r: r.start_time)
        for before, after in zip(in_order, in_order[1:], strict=False):
            assert after.start_time >= before.end_time, "one slot: one run at a time"
        assert wait_for(long_run, finished, 60, "stopped").state_type.value == "CANCELLED"
    finally:
        with prefect() as client:
            client.update_work_pool(POOL, WorkPoolUpdate(is_paused=False, concurrency_limit=None))
        if long_run and not finished(read_run(long_run)):
            runs.cancel(long_run)  # a failed assertion must not leave ten minutes of work on the shared stack
