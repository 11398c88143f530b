"""Chunks without a shared filesystem: the chunked encode with `storage` transfer, its chunk and audio steps
on a Dask cluster of worker processes that each have a temp directory of their own, the pieces travelling
through the real S3 server (SeaweedFS).

One 14 s source (640x360, 25 fps, tone audio), 6 s chunks, one 240p rendition (an HLS rung and an MP4). The
reference is the same chunked encode with `shared-dir` transfer, in process.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from prefect import flow

import vodflow.encoders.chunked as chunked
from tests.integration.encoders.conftest import worker_state
from tests.media import make_clip, packet_rows
from vodflow.encoders import EncodeOptions, InlineSteps
from vodflow.encoders.base import Call
from vodflow.errors import StepError
from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import plan_outputs
from vodflow.jobs.sources import Source
from vodflow.jobs.spec import parse_spec
from vodflow.media.chunking import chunks_dir
from vodflow.media.probe import probe_source
from vodflow.storage.scratch import Scratch
from vodflow.tasks.steps import PrefectSteps

pytestmark = pytest.mark.usefixtures("prefect_harness")

OPTIONS = EncodeOptions(chunk_seconds=6, report_progress=False)
PRESETS = [{"format": "hls", "resolutions": ["240"]}, {"format": "mp4", "resolutions": ["240"]}]


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    root = tmp_path_factory.mktemp("chunked-storage")
    path = make_clip(root / "source.mp4", 640, 360, seconds=14, fps=25)
    doc = JobDocument.from_spec(parse_spec({"videoUrl": str(path), "presets": PRESETS}))
    source = Source(path, probe_source(path))
    plan = plan_outputs(doc, source.info)
    reference = root / "shared-dir"
    reference.mkdir()
    chunked.encode_in_chunks(source, plan, reference, OPTIONS, InlineSteps())
    return source, plan, reference


def paths_in(value: Any) -> list[Path]:
    """Every Path inside a step's arguments (tuples, lists, dataclasses)."""
    if isinstance(value, Path):
        return [value]
    if isinstance(value, list | tuple):
        return [p for item in value for p in paths_in(item)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [p for f in dataclasses.fields(value) for p in paths_in(getattr(value, f.name))]
    return []


class WatchedSteps:
    """PrefectSteps that check what goes to the workers (no local path at all) and what is where when the
    package step starts or a parallel step fails."""

    def __init__(self, steps: PrefectSteps, scratch: Scratch, workdir: Path) -> None:
        self.steps, self.scratch, self.workdir = steps, scratch, workdir
        self.sent: list[Call] = []
        self.before_package: tuple[list[str], bool] | None = None
        self.at_failure: list[str] | None = None

    def run(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        if name == "package":
            pieces_here = chunks_dir(self.workdir).exists()
            self.before_package = (self.scratch.open().list_keys(self.scratch.prefix), pieces_here)
        return self.steps.run(name, fn, *args)

    def parallel(self, calls: Sequence[Call]) -> list[Any]:
        self.sent += calls
        try:
            return self.steps.parallel(calls)
        except Exception:
            self.at_failure = self.scratch.open().list_keys(self.scratch.prefix)
            raise


def run_on_cluster(source, plan, workdir, scratch, address, options=OPTIONS) -> tuple[Any, WatchedSteps]:
    steps = WatchedSteps(PrefectSteps(retries=1, retry_delay=0.2, dask_address=address), scratch, workdir)
    state: dict[str, Any] = {}

    # the scratch value reaches the flow by closure, not as a flow parameter (as in the pipeline flow)
    @flow(name="chunked-through-storage", validate_parameters=False)
    def chunked_through_storage() -> Any:
        from prefect.runtime import flow_run

        state["flow_run_id"] = flow_run.get_id()
        return chunked.encode_in_chunks(source, plan, workdir, options, steps, scratch)

    try:
        state["result"] = chunked_through_storage()
    except Exception as exc:
        state["error"] = exc
    return state, steps


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def prefect_records(flow_run_id: str) -> str:
    """The flow run, its task runs and its logs as the Prefect API stores them, as one JSON text."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
    return "\n".join(m.model_dump_json() for m in [run, *tasks, *logs])


def test_chunks_travel_through_s3_between_workers_with_their_own_temp_dirs(
    job, cluster, scratch, s3_server, tmp_path
):
    source, plan, reference = job
    _, client = cluster
    workdir = tmp_path / "run"
    workdir.mkdir()
    state, steps = run_on_cluster(source, plan, workdir, scratch, cluster[0].scheduler_address)
    assert "error" not in state, state.get("error")

    times = state["result"]
    assert len(times.chunks) == 3 and len(times.audio) == 1
    assert {c.name for c in steps.sent} == {"encode-chunk", "encode-audio"}
    # (the only Path is the storage config's unused relative `data_dir`)
    sent_paths = [p for c in steps.sent for p in paths_in(c.args)]
    assert all(not p.is_absolute() for p in sent_paths), "no step on a worker is given a local file"
    keys, pieces_here = steps.before_package
    assert not pieces_here, "no worker wrote into the run's temp directory"
    names = [k.removeprefix(f"{scratch.prefix}chunks/") for k in keys]
    pieces = [f"0000{k}-426x240-400k-h264-sdr.mkv" for k in range(3)]
    attempts = {re.match(r"[0-9a-f]{12}-", n).group(0) for n in names if n != "source"}
    assert len(attempts) == 4, "each step's objects are stored under names of its attempt's own"
    names = sorted(re.sub(r"^[0-9a-f]{12}-", "", n) for n in names)
    assert names == sorted([*pieces, "audio-a0-64k.m4a", "source"]), "what the package step fetched was in S3"

    outputs = files_under(reference)
    assert files_under(workdir) == outputs, "the same outputs as with shared-dir transfer"
    variants = [n for n in outputs if n.endswith("/240p/index.m3u8")]
    assert len(variants) == 1
    for name in [*variants, *(n for n in outputs if n.endswith(".mp4"))]:
        assert packet_rows(workdir / name) == packet_rows(reference / name), name
    for segment in (workdir / n for n in outputs if n.endswith(".ts")):
        assert packet_rows(segment), f"{segment.name} is readable MPEG-TS video"
    decoded = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", str(workdir / variants[0]), "-f", "null", "-"],
        capture_output=True,
        text=True,
    )
    assert decoded.returncode == 0 and decoded.stderr == "", decoded.stderr

    assert scratch.open().list_keys("tmp/") == [], "the scratch prefix is emptied after packaging"
    workers = client.run(worker_state)
    assert all(listing == [] for _, listing, _ in workers.values()), "every step removed its temp directory"
    assert sum(executed for _, _, executed in workers.values()) >= len(steps.sent)

    records = prefect_records(state["flow_run_id"])
    assert "encode-chunk-1" in records  # the records are the ones of this run
    assert s3_server.secret_key not in records, "the S3 secret never shows in Prefect's records"


def test_a_failing_chunk_leaves_no_scratch_object(job, cluster, scratch, s3_server, tmp_path):
    source, plan, _ = job
    _, client = cluster
    broken = dataclasses.replace(OPTIONS, x264_preset="no-such-preset")  # every chunk's ffmpeg fails
    state, steps = run_on_cluster(source, plan, tmp_path, scratch, cluster[0].scheduler_address, broken)

    error = state.get("error")
    assert isinstance(error, StepError) and error.step == "encode", error
    assert "chunk " in error.message and error.code == "ffmpeg_failed"
    assert s3_server.secret_key not in str(error)
    assert any(k.endswith("-audio-a0-64k.m4a") for k in steps.at_failure), "the audio was in scratch"
    assert scratch.open().list_keys("tmp/") == [], "and is gone after the failure"
    assert all(listing == [] for _, listing, _ in client.run(worker_state).values())
    assert s3_server.secret_key not in prefect_records(state["flow_run_id"])


def test_the_pipeline_flow_sends_chunks_through_its_s3_storage(job, s3_server, monkeypatch, tmp_path):
    source, _, _ = job
    bucket = f"pipeline-{uuid.uuid4().hex[:8]}"
    for name, value in {
        "VODFLOW_STORAGE": "s3",
        "VODFLOW_S3_ENDPOINT": s3_server.endpoint,
        "VODFLOW_S3_ACCESS_KEY": s3_server.access_key,
        "VODFLOW_S3_SECRET_KEY": s3_server.secret_key,
        "VODFLOW_S3_BUCKET": bucket,
        "VODFLOW_TMP_DIR": str(tmp_path / "tmp"),
        "VODFLOW_CHUNK_THRESHOLD_SECONDS": "10",
        "VODFLOW_CHUNK_SECONDS": "6",
        "VODFLOW_CHUNK_TRANSFER": "storage",  # threads here: the setting alone chooses the transfer
    }.items():
        monkeypatch.setenv(name, value)
    staged = []
    real = chunked.stage_source

    def spy(*args):
        staged.append(real(*args))
        return staged[-1]

    monkeypatch.setattr(chunked, "stage_source", spy)
    from vodflow.flows.pipeline import encode_video
    from vodflow.settings import load_settings

    doc = encode_video({"videoUrl": str(source.path), "presets": PRESETS}, job_id="chunks-via-s3")

    assert doc["status"] == "completed" and len(staged) == 1
    storage = load_settings().storage_config().open()
    assert storage.list_keys("tmp/") == [], "no scratch object is left"
    assert sorted(f["type"] for f in doc["files"]) == ["video", "x-tar"]
    for entry in doc["files"]:
        path = entry["filePath"]
        assert storage.list_keys(path.rstrip("/") + "/") if entry["type"] == "x-tar" else storage.exists(path)
