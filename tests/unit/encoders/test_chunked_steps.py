"""What the chunked encoder asks its steps to do (`ChunkedEncoder.encode`, `encode_in_chunks`), seen through a
`Steps` that records each step instead of running it: which chunks a source is cut into, one audio step per
track, a remux first for a container that cannot seek, the packaging last, the scratch prefix emptied before
and after, and on a failed chunk no packaging and the scratch emptied while the chunk's error is raised.

ffmpeg runs only to read the small clip's frame rate; the source's length is the probed info's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from tests.media import make_clip
from vodflow.encoders import EncodeOptions, EncodeRequest, get_encoder
from vodflow.encoders.base import Call
from vodflow.encoders.chunked import encode_in_chunks
from vodflow.errors import StepError
from vodflow.jobs.document import JobDocument
from vodflow.jobs.keys import chunk_scratch_key
from vodflow.jobs.plan import plan_outputs
from vodflow.jobs.sources import Source, SourceInfo
from vodflow.jobs.spec import parse_spec
from vodflow.storage.config import StorageConfig
from vodflow.storage.scratch import Scratch

PRESETS = [{"format": "hls", "resolutions": ["240", "360"]}, {"format": "mp4", "resolutions": ["240"]}]
MP4 = "mov,mp4,m4a,3gp,3g2,mj2"


@dataclass
class Made:
    seconds: float


class RecordingSteps:
    """`Steps` that record what they are asked and run nothing; `fail` raised by `parallel`."""

    def __init__(self, remuxed: Source | None = None, fail: Exception | None = None, made: bool = False):
        self.log: list[Any] = []
        self.calls: list[Call] = []
        self.remuxed, self.fail, self.made = remuxed, fail, made

    def run(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        self.log.append(name)
        return {"remux-source": self.remuxed, "stage-source": "staged", "package": 0.5}.get(name)

    def parallel(self, calls: Sequence[Call]) -> list[Any]:
        self.log.append([c.label for c in calls])
        self.calls = list(calls)
        if self.fail is not None:
            raise self.fail
        return [Made(float(n)) if self.made else float(n) for n in range(len(calls))]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("chunked-steps") / "clip.mp4", 64, 64, seconds=1)


def job(clip: Path, duration: float, has_audio: bool = True, format_name: str = MP4):
    info = SourceInfo(duration, 640, 360, 0, has_audio, "h264", format_name, 25.0)
    doc = JobDocument.from_spec(parse_spec({"videoUrl": str(clip), "presets": PRESETS}))
    return Source(clip, info), plan_outputs(doc, info), doc


def chunk_ranges(steps: RecordingSteps) -> list[tuple[int, int | None]]:
    return [(c.args[1].start, c.args[1].end) for c in steps.calls if c.name == "encode-chunk"]


def audio_labels(plan) -> list[str]:
    """One audio step per distinct audio bitrate of the plan's renditions (all of the first audio stream)."""
    kbps = {r.audio_kbps for out in plan.hls for r in out.renditions} | {
        o.rendition.audio_kbps for o in plan.mp4
    }
    return [f"encode-audio-a0-{k}k" for k in sorted(kbps)]


@pytest.mark.parametrize(
    ("duration", "chunk_seconds", "ranges"),
    [
        (65.0, 30, [(0, 30), (30, 60), (60, None)]),
        (61.0, 30, [(0, 30), (30, None)]),  # a 1 s tail joins the chunk before it
        (65.0, 25, [(0, 24), (24, 48), (48, None)]),  # whole 6 s segments: 25 s becomes 24
        (65.0, 1, [(6 * n, 6 * n + 6) for n in range(10)] + [(60, None)]),  # at least one segment
        (20.0, 30, [(0, None)]),
    ],
)
def test_a_source_is_cut_into_whole_segment_chunks_each_a_step(
    clip, tmp_path, duration, chunk_seconds, ranges
):
    source, plan, doc = job(clip, duration)
    steps = RecordingSteps()
    options = EncodeOptions(chunk_seconds=chunk_seconds)
    request = EncodeRequest(doc, tmp_path, steps=steps, options=options).with_source(source, plan)
    get_encoder("chunked").encode(request)
    chunks = [f"encode-chunk-{n}" for n in range(len(ranges))]
    assert steps.log == [[*audio_labels(plan), *chunks], "package"], "the audio and every chunk side by side"
    assert chunk_ranges(steps) == ranges
    assert all(c.args[0] is source and c.args[-1] is options for c in steps.calls if c.name == "encode-chunk")


def test_the_times_name_each_chunk_and_audio_step(clip, tmp_path):
    source, plan, _ = job(clip, 65.0)
    times = encode_in_chunks(source, plan, tmp_path, EncodeOptions(chunk_seconds=30), RecordingSteps())
    audio = len(audio_labels(plan))
    assert times.audio == [float(n) for n in range(audio)]
    assert times.chunks == [float(n) for n in range(audio, audio + 3)]
    assert times.stitch == 0.5 and times.total >= 0


def test_a_source_without_audio_has_no_audio_step(clip, tmp_path):
    source, plan, _ = job(clip, 65.0, has_audio=False)
    steps = RecordingSteps()
    encode_in_chunks(source, plan, tmp_path, EncodeOptions(chunk_seconds=30), steps)
    assert steps.log == [["encode-chunk-0", "encode-chunk-1", "encode-chunk-2"], "package"]


@pytest.mark.parametrize(
    ("format_name", "remuxed"), [("mpegts", True), ("flv", True), ("matroska,webm", False)]
)
def test_a_container_without_exact_seeks_is_remuxed_first_and_chunks_read_the_remux(
    clip, tmp_path, format_name, remuxed
):
    source, plan, _ = job(clip, 65.0, format_name=format_name)
    remux = replace(source, path=tmp_path / "chunks" / "source.mkv")
    steps = RecordingSteps(remuxed=remux)
    encode_in_chunks(source, plan, tmp_path, EncodeOptions(chunk_seconds=30), steps)
    assert (steps.log[0] == "remux-source") is remuxed
    read = {id(c.args[0]) for c in steps.calls if c.name == "encode-chunk"}
    assert read == {id(remux if remuxed else source)}
    audio = {id(c.args[0]) for c in steps.calls if c.name == "encode-audio"}
    assert audio == {id(source)}, "the audio is encoded from the source itself"


def test_a_failed_chunk_stops_before_the_packaging(clip, tmp_path):
    source, plan, _ = job(clip, 65.0)
    lost = StepError("encode", "worker_lost", "chunk 1 (30-60 s): the worker went away", transient=True)
    steps = RecordingSteps(fail=lost)
    with pytest.raises(StepError) as caught:
        encode_in_chunks(source, plan, tmp_path, EncodeOptions(chunk_seconds=30), steps)
    assert caught.value is lost
    assert "package" not in steps.log


def test_through_storage_the_scratch_is_emptied_before_and_after(clip, tmp_path):
    source, plan, doc = job(clip, 65.0)
    scratch = Scratch(StorageConfig(kind="local", data_dir=tmp_path / "data"), "a" * 24)
    steps = RecordingSteps(made=True)
    request = EncodeRequest(
        doc, tmp_path, steps=steps, options=EncodeOptions(chunk_seconds=30), scratch=scratch
    )
    get_encoder("chunked").encode(request.with_source(source, plan))
    chunks = ["encode-chunk-0", "encode-chunk-1", "encode-chunk-2"]
    parallel = [*audio_labels(plan), *chunks]
    assert steps.log == ["remove-scratch", "stage-source", parallel, "package", "remove-scratch"]
    assert {c.args[0] for c in steps.calls} == {"staged"}, "every step reads the staged source"


def test_through_storage_a_failed_chunk_empties_the_scratch_and_raises_its_error(clip, tmp_path):
    source, plan, _ = job(clip, 65.0)
    scratch = Scratch(StorageConfig(kind="local", data_dir=tmp_path / "data"), "b" * 24)
    left = scratch.open()
    piece = tmp_path / "piece.ts"
    piece.write_bytes(b"piece")
    made_before = chunk_scratch_key(scratch.job_id, "00000-426x240-400k-h264-sdr.mkv")
    left.upload_file(piece, made_before)  # a piece an earlier run made
    lost = StepError("encode", "worker_lost", "chunk 2 (60-end s): the worker went away", transient=True)
    steps = RecordingSteps(fail=lost, made=True)
    with pytest.raises(StepError) as caught:
        encode_in_chunks(source, plan, tmp_path, EncodeOptions(chunk_seconds=30), steps, scratch)
    assert caught.value is lost
    assert "package" not in steps.log
    assert scratch.clear() == 0, "the failure emptied the scratch prefix itself"


def test_a_chunked_encode_needs_the_ingest_first(tmp_path):
    doc = JobDocument.from_spec(parse_spec({"videoUrl": "/x.mp4", "presets": PRESETS}))
    with pytest.raises(AssertionError, match="needs the ingest first"):
        get_encoder("chunked").encode(EncodeRequest(doc, tmp_path, steps=RecordingSteps()))
