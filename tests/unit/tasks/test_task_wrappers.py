"""The Prefect task wrappers: the names the pipeline's tasks show, the one retry policy on every step that may
meet a transient fault (README "Faults and retries": transient faults retried, a 4xx, a validation error or a
corrupt source at once), and `PrefectSteps` running an encoder's steps as task runs named after each step,
retried by that policy, side by side with every one finished before a failure is raised."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from prefect import flow
from prefect.context import TaskRunContext
from prefect.states import Completed, Failed
from pydantic import BaseModel, ValidationError

from vodflow.encoders.base import Call
from vodflow.errors import StepError
from vodflow.tasks.cleanup import cleanup
from vodflow.tasks.ingest import ingest
from vodflow.tasks.pertitle import analyse_ladder
from vodflow.tasks.publish import publish
from vodflow.tasks.quality import quality
from vodflow.tasks.remote import delete_remote_record, find_expired_records
from vodflow.tasks.steps import PrefectSteps
from vodflow.tasks.thumbnail import thumbnail

RETRIED = [ingest, analyse_ladder, quality, thumbnail, publish]


def test_the_pipeline_s_tasks_are_named_after_their_steps():
    names = [t.name for t in (ingest, analyse_ladder, quality, thumbnail, publish, cleanup)]
    assert names == ["ingest", "ladder-analysis", "quality", "thumbnail", "publish", "cleanup"]
    assert [delete_remote_record.name, find_expired_records.name] == [
        "delete-remote-record",
        "find-expired-records",
    ]
    assert delete_remote_record.task_run_name == "delete-{service}-{item_id}"


def http_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "https://service.test/job")
    return httpx.HTTPStatusError(
        f"{status}", request=request, response=httpx.Response(status, request=request)
    )


def validation_error() -> ValidationError:
    class Spec(BaseModel):
        width: int

    try:
        Spec.model_validate({"width": "wide"})
    except ValidationError as exc:
        return exc
    raise AssertionError("not refused")


FAULTS = [
    (StepError("ingest", "source_unreachable", "connection refused", transient=True), True),
    (StepError("publish", "storage_unavailable", "S3 is down", transient=True), True),
    (http_error(503), True),
    (http_error(429), True),
    (http_error(408), True),
    (ConnectionResetError("reset by peer"), True),
    (TimeoutError("timed out"), True),
    (StepError("ingest", "source_not_found", "GET 404", transient=False), False),
    (StepError("ingest", "invalid_source", "not a video", transient=False), False),  # a corrupt source
    (http_error(404), False),
    (http_error(400), False),
    (http_error(401), False),
    (validation_error(), False),
    (ValueError("width: not a number"), False),
]


@pytest.mark.parametrize("task", RETRIED, ids=lambda t: t.name)
def test_every_step_retries_transient_faults_three_times_and_nothing_else(task):
    assert task.retries == 3
    assert task.retry_delay_seconds == [2.0, 4.0, 8.0]  # README: exponential backoff from 2 s
    assert task.retry_jitter_factor == 0.5
    decisions = [task.retry_condition_fn(task, None, Failed(data=fault)) for fault, _ in FAULTS]
    assert decisions == [expected for _, expected in FAULTS]
    assert task.retry_condition_fn(task, None, Completed(data=1)) is False


def task_run_name() -> str:
    context = TaskRunContext.get()
    assert context is not None, "not inside a task run"
    return context.task_run.name


@pytest.mark.usefixtures("prefect_harness")
def test_a_step_is_a_task_run_retried_only_for_a_transient_fault():
    calls: list[str] = []

    def flaky(kind: str) -> str:
        calls.append(task_run_name())
        if len(calls) == 1:
            raise StepError("encode", "worker_lost", "the worker went away", transient=kind == "transient")
        return "made"

    @flow
    def encode(kind: str) -> str:
        return PrefectSteps(retries=2, retry_delay=0.01).run("encode-audio", flaky, kind)

    assert encode("transient") == "made" and calls == ["encode-audio", "encode-audio"]
    calls.clear()
    with pytest.raises(StepError, match="the worker went away"):
        encode("permanent")
    assert calls == ["encode-audio"], "a fault that will not pass is not tried again"


@pytest.mark.usefixtures("prefect_harness")
def test_parallel_steps_run_side_by_side_in_order_and_all_finish_before_a_failure():
    finished: list[str] = []
    both_started = threading.Barrier(2, timeout=30)

    def chunk(index: int, seconds: float, fail: bool) -> tuple[int, str]:
        both_started.wait()  # two at once: one thread each
        time.sleep(seconds)
        finished.append(task_run_name())
        if fail:
            raise StepError("encode", "ffmpeg_failed", f"chunk {index}: broken", transient=False)
        return index, task_run_name()

    @flow
    def encode(fail_first: bool) -> list:
        calls = [
            Call("encode-chunk", chunk, (0, 0.0, fail_first), "encode-chunk-0"),
            Call("encode-chunk", chunk, (1, 1.0, False), "encode-chunk-1"),
        ]
        return PrefectSteps(retries=0, parallel_slots=1).parallel(calls)

    assert encode(False) == [(0, "encode-chunk-0"), (1, "encode-chunk-1")]
    finished.clear()
    with pytest.raises(StepError, match="chunk 0: broken"):
        encode(True)
    assert sorted(finished) == ["encode-chunk-0", "encode-chunk-1"], "the slower chunk finished first"
