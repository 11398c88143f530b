"""The flow's hooks for runs that end without finishing their job: cancelled, crashed, stopped by a signal.

They are run as Prefect runs them: the hooks `encode_video` lists for a cancelled or a crashed run, called
with the flow, the run and its final state."""

from __future__ import annotations

from types import SimpleNamespace
from uuid import uuid4

import pytest
from prefect.states import Cancelled, Cancelling, Crashed

from tests.runs import workdirs_of
from vodflow.flows.pipeline import encode_video
from vodflow.jobs.document import JobDocument
from vodflow.jobs.spec import parse_spec
from vodflow.settings import load_settings
from vodflow.steps.workdir import job_lock, make_workdir, new_workdir
from vodflow.storage.jobstore import load_job, save_job
from vodflow.storage.local import LocalStorage

SPEC = {"videoUrl": "https://cdn.example.com/a.mp4", "presets": [{"format": "mp4", "resolutions": ["240"]}]}


def run_end_hooks(flow_run, state) -> None:
    """What Prefect does when a run of `encode_video` ends in `state` (Cancelled or Crashed, or the Cancelling
    state a worker's runner gives the cancellation hooks before it proposes Cancelled)."""
    cancelled = state.is_cancelled() or state.is_cancelling()
    hooks = encode_video.on_cancellation_hooks if cancelled else encode_video.on_crashed_hooks
    assert hooks, f"encode_video has no hook for a {state.type.value} run"
    for hook in hooks:
        hook(encode_video, flow_run, state)


def interrupted(storage: LocalStorage, state, status: str = "processing") -> JobDocument:
    """Run the hook on a job in `status` with a temp directory; the stored document afterwards."""
    doc = JobDocument.from_spec(parse_spec(SPEC), uuid4().hex[:24]).moved_to(status)
    save_job(storage, doc)
    make_workdir(workdir := new_workdir(doc.id, load_settings().tmp_dir))
    (workdir / "source").write_bytes(b"partial")
    storage.upload_bytes(b"piece", f"tmp/{doc.id}/chunks/00001-426x240-400k.ts")  # chunks in transit
    storage.upload_bytes(b"other", "tmp/another-job/chunks/source")
    flow_run = SimpleNamespace(id=uuid4(), parameters={"job_id": doc.id})
    run_end_hooks(flow_run, state)
    assert not workdirs_of(doc.id)
    assert storage.list_keys("tmp/") == ["tmp/another-job/chunks/source"], "its scratch objects are removed"
    return load_job(storage, doc.id)


@pytest.mark.parametrize(
    "state, code",
    [
        (Cancelled(message="Cancelled through the encoder-job API"), "cancelled"),
        (Cancelling(message="Flow run was cancelled."), "cancelled"),  # a worker cancelling its run
        (Crashed(message="Execution was aborted by a termination signal."), "cancelled"),
        (Crashed(message="Execution was aborted by an interrupt signal."), "cancelled"),
        (Crashed(message="No heartbeat for 90 s; its worker or host is gone."), "crashed"),
    ],
)
def test_an_interrupted_run_fails_its_job_and_removes_its_temp_files(storage, state, code):
    doc = interrupted(storage, state)
    assert doc.status == "failed" and doc.finished_at
    assert (doc.error.step, doc.error.code) == ("run", code)
    assert state.message in doc.error.message


def test_a_job_that_already_ended_is_left_as_it_is(storage):
    doc = interrupted(storage, Crashed(message="late"), status="completed")
    assert doc.status == "completed" and doc.error is None


def test_a_run_given_no_job_id_finds_its_job_by_the_flow_run_id(storage):
    run_id = uuid4()
    job_id = run_id.hex[:24]
    save_job(storage, JobDocument.from_spec(parse_spec(SPEC), job_id).moved_to("processing"))
    run_end_hooks(SimpleNamespace(id=run_id, parameters={}), Cancelled())
    assert load_job(storage, job_id).error.code == "cancelled"


def test_a_ladder_that_played_while_encoding_is_removed_with_the_run(storage):
    from vodflow.jobs.document import FileEntry

    doc = JobDocument.from_spec(parse_spec(SPEC), uuid4().hex[:24]).moved_to("processing")
    folder = f"files/videos/{doc.id}"
    for key in (f"{folder}/index.m3u8", f"{folder}/240p/index.m3u8", f"{folder}/240p/seg_00000.ts"):
        storage.upload_bytes(b"x", key)
    master = storage.url_for(f"{folder}/index.m3u8")
    entry = FileEntry(
        id=doc.id, job_id=doc.id, type="x-tar", file_path=folder, file_url=master, size=3,
        created_at=doc.created_at, updated_at=doc.created_at,
    )  # fmt: skip
    save_job(storage, doc.model_copy(update={"files": [entry], "playable_at": doc.created_at}))
    flow_run = SimpleNamespace(id=uuid4(), parameters={"job_id": doc.id})

    run_end_hooks(flow_run, Cancelled())

    failed = load_job(storage, doc.id)
    assert failed.status == "failed" and failed.files == [] and failed.playable_at is None
    assert storage.list_keys("files/") == [], "nothing half-listed stays"


def test_nothing_is_touched_while_another_run_of_the_job_holds_it_on_this_host(storage):
    """A run of the same job alive here (it holds the job's lock): its temp directory, scratch objects and
    document are its own, and stay."""
    doc = JobDocument.from_spec(parse_spec(SPEC), uuid4().hex[:24]).moved_to("processing")
    save_job(storage, doc)
    tmp_dir = load_settings().tmp_dir
    make_workdir(workdir := new_workdir(doc.id, tmp_dir))
    storage.upload_bytes(b"piece", f"tmp/{doc.id}/chunks/source")
    flow_run = SimpleNamespace(id=uuid4(), parameters={"job_id": doc.id})
    with job_lock(doc.id, tmp_dir):
        run_end_hooks(flow_run, Crashed(message="late"))
    assert workdir.is_dir() and workdirs_of(doc.id) == [workdir]
    assert storage.list_keys("tmp/") == [f"tmp/{doc.id}/chunks/source"]
    assert load_job(storage, doc.id).status == "processing"
