"""The task retry policy (README "Faults and retries", docs/security.md "Limits"): `source_unreachable` is
transient and retried, a missing source is not, and `VODFLOW_TASK_RETRIES` / `VODFLOW_TASK_RETRY_DELAY` are
what the pipeline gives its tasks. Prefect states are built directly: no Prefect server is started."""

from __future__ import annotations

import socket

import pytest
from prefect.states import Failed

from tests.httpserver import serve
from vodflow.errors import StepError
from vodflow.flows import pipeline
from vodflow.jobs.document import JobDocument
from vodflow.jobs.spec import parse_spec
from vodflow.net.guard import NetPolicy
from vodflow.net.retry import is_transient
from vodflow.steps.ingest import IngestPolicy, ingest_source
from vodflow.storage.local import LocalStorage
from vodflow.tasks.ingest import ingest
from vodflow.tasks.steps import PrefectSteps

LOOPBACK = IngestPolicy(net=NetPolicy.from_entries(["127.0.0.1"]))
MP4_240 = [{"format": "mp4", "resolutions": ["240"]}]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ingest_error(tmp_path, url: str) -> StepError:
    spec = parse_spec({"videoUrl": url, "presets": MP4_240})
    with pytest.raises(StepError) as caught:
        ingest_source(spec, tmp_path / "work", LocalStorage(tmp_path / "data"), LOOPBACK)
    return caught.value


def test_an_unreachable_source_is_retried_by_the_ingest_task(tmp_path):
    error = ingest_error(tmp_path, f"http://127.0.0.1:{closed_port()}/clip.mp4")
    assert (error.code, error.step) == ("source_unreachable", "ingest")
    assert error.transient and is_transient(error)
    assert ingest.retries == 3  # the documented default
    assert ingest.retry_condition_fn(ingest, None, Failed(data=error)) is True


def test_a_missing_source_is_not_retried(tmp_path):
    with serve(tmp_path / "empty") as server:
        error = ingest_error(tmp_path, server.url("/clip.mp4"))
    assert error.code == "source_not_found" and not is_transient(error)
    assert ingest.retry_condition_fn(ingest, None, Failed(data=error)) is False
    assert len(server.requests) == 1


class Caught(Exception):
    pass


def test_task_retry_variables_are_what_the_pipeline_gives_its_tasks(monkeypatch, environment):
    """`VODFLOW_TASK_RETRIES=5`, `VODFLOW_TASK_RETRY_DELAY=0.5`: five retries, 0.5 s doubling, transient
    faults only; for the pipeline's own tasks (`run_locally`) and the encoders' steps (`PrefectSteps`)."""
    settings = environment({"VODFLOW_TASK_RETRIES": "5", "VODFLOW_TASK_RETRY_DELAY": "0.5"})
    given: list[dict] = []
    real = pipeline.task_retry_options

    def record(*args):
        given.append(real(*args))
        raise Caught  # stop before the pipeline does anything

    monkeypatch.setattr(pipeline, "task_retry_options", record)
    doc = JobDocument.from_spec(parse_spec({"videoUrl": "https://example.test/v.mp4", "presets": MP4_240}))
    with pytest.raises(Caught):
        pipeline.run_locally(doc, None, settings, LOOPBACK, None)
    steps = PrefectSteps(settings.task_retries, settings.task_retry_delay)
    for options in (given[0], steps.options):
        retried = ingest.with_options(**options)
        assert retried.retries == 5
        assert retried.retry_delay_seconds == [0.5, 1.0, 2.0, 4.0, 8.0]
        assert retried.retry_condition_fn is ingest.retry_condition_fn
    defaults = environment({})
    assert (defaults.task_retries, defaults.task_retry_delay) == (3, 2.0)
