"""A chunked job publishes while it encodes: the packaging runs beside the chunks, fed through pipes as each
chunk finishes, so its ladders play (masters up, `playable` told) before the last chunk is encoded; every
playlist uploaded lists only segments already up, and the finished ladders are the ones a chunked encode
without publishing makes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.faults import ffmpeg_processes
from tests.integration.flows.test_live_publish import RecordingStorage
from tests.media import make_clip
from vodflow.encoders import EncodeOptions
from vodflow.encoders.base import Call, InlineSteps
from vodflow.encoders.chunked import encode_in_chunks
from vodflow.errors import StepError
from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import plan_outputs
from vodflow.jobs.sources import Source
from vodflow.jobs.spec import parse_spec
from vodflow.media.chunking import chunks_dir
from vodflow.media.probe import probe_source
from vodflow.packaging.hls import finished_segments
from vodflow.steps.live import LivePublisher

OPTIONS = EncodeOptions(chunk_seconds=6, report_progress=False)
PRESETS = [
    {"format": "hls", "resolutions": ["240", "360"], "audioOnly": True},
    {"format": "cmaf", "resolutions": ["240"], "codecs": ["h264", "av1"]},
]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """20 s of 640x360 with sound: chunks at 0, 6, 12 and 18 s."""
    return make_clip(tmp_path_factory.mktemp("chunked-live") / "clip.mp4", 640, 360, seconds=20)


class GatedSteps(InlineSteps):
    """Inline steps that, before the last parallel call (the last chunk), wait up to a minute for `gate`,
    and record whether it opened: a job that published only at the end never opens it."""

    def __init__(self, gate: threading.Event) -> None:
        self.gate, self.opened_before_last = gate, None

    def parallel(self, calls: Sequence[Call], on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
        results = []
        for index, call in enumerate(calls):
            if index == len(calls) - 1:
                self.opened_before_last = self.gate.wait(60)
            results.append(call.fn(*call.args))
            if on_done is not None:
                on_done(index, results[-1])
        return results


def job(clip: Path, job_id: str):
    doc = JobDocument.from_spec(parse_spec({"videoUrl": str(clip), "presets": PRESETS}), job_id)
    source = Source(clip, probe_source(clip))
    return doc, source, plan_outputs(doc, source.info)


def test_a_chunked_job_plays_before_its_last_chunk_is_encoded(tmp_path, clip):
    doc, source, plan = job(clip, "e" * 24)
    storage, workdir = RecordingStorage(tmp_path / "data"), tmp_path / "work"
    workdir.mkdir()
    playable = threading.Event()
    publisher = LivePublisher(doc, plan, workdir, storage, lambda entries, at: playable.set())
    steps = GatedSteps(playable)
    encode_in_chunks(source, plan, workdir, OPTIONS, steps, live=lambda: publisher)

    assert steps.opened_before_last, "playable (every master up) before the last chunk was encoded"

    hls, cmaf = plan.hls[0], plan.cmaf[0]
    uploaded: set[str] = set()
    for key, body in storage.log:
        if key.endswith(".m3u8") and body and "#EXT-X-STREAM-INF" not in body.decode():
            text = body.decode()
            folder = key.rsplit("/", 1)[0]
            listed = {f"{folder}/{s}" for s in finished_segments(text)}
            assert listed <= uploaded, f"{key} lists a segment not uploaded yet"
            assert "#EXT-X-ENDLIST" not in text, "EVENT playlists while encoding"
        uploaded.add(key)
    assert f"{hls.key}/index.m3u8" in uploaded and f"{cmaf.key}/index.m3u8" in uploaded
    assert not chunks_dir(workdir).exists(), "pipes and pieces are gone"

    # the same ladders as a chunked encode that publishes at the end
    reference = tmp_path / "reference"
    reference.mkdir()
    encode_in_chunks(source, plan, reference, OPTIONS)
    for name in ("240p", "360p", "audio"):
        final = (workdir / hls.file_id / name / "index.m3u8").read_text()
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in final and final.rstrip().endswith("#EXT-X-ENDLIST")
        assert final == (reference / hls.file_id / name / "index.m3u8").read_text().replace(
            "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-PLAYLIST-TYPE:VOD"
        ), name
    made = sorted(p.relative_to(workdir) for p in workdir.rglob("*") if p.is_file() and "live" not in p.name)
    assert made == sorted(p.relative_to(reference) for p in reference.rglob("*") if p.is_file())


def test_a_chunk_that_fails_stops_the_live_packaging(tmp_path, clip, monkeypatch):
    import vodflow.encoders.chunked as chunked

    doc, source, plan = job(clip, "f" * 24)
    storage, workdir = RecordingStorage(tmp_path / "data"), tmp_path / "work"
    workdir.mkdir()
    publisher = LivePublisher(doc, plan, workdir, storage, lambda entries, at: None)
    real = chunked.encode_chunk_pieces

    packaging_seen: list[list[int]] = []

    def failing(source, chunk, *args):
        if chunk.index == 2:  # the packaging has read chunks 0 and 1 and waits on chunk 2's pipes
            packaging_seen.append(ffmpeg_processes(str(workdir)))
            raise StepError("encode", "ffmpeg_failed", f"{chunk.label}: ffmpeg failed: broken frame")
        return real(source, chunk, *args)

    monkeypatch.setattr(chunked, "encode_chunk_pieces", failing)
    with pytest.raises(StepError, match=r"chunk 2 \(12-18 s\)"):
        encode_in_chunks(source, plan, workdir, OPTIONS, InlineSteps(), live=lambda: publisher)
    assert packaging_seen and len(packaging_seen[0]) == 1, (
        "the packaging ffmpeg was running beside the chunks"
    )
    assert not ffmpeg_processes(str(workdir)), "and is stopped once the chunk failed for good"
    assert not [t for t in threading.enumerate() if t.name.startswith("Thread") and t.is_alive() and t.daemon
                and "feed" in repr(t)], "no feeder left"  # fmt: skip


class DaskSteps(InlineSteps):
    """Parallel calls straight on a Dask cluster (no Prefect), each told to `on_done` as it finishes; the
    last call's is held until `gate` opens (up to a minute), so the packaging cannot run through every chunk
    at once (on a busy machine all four may finish together), and whether it opened is recorded."""

    def __init__(self, client: Any, gate: threading.Event) -> None:
        self.client, self.gate, self.opened_before_last = client, gate, None

    def parallel(self, calls: Sequence[Call], on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
        from distributed import as_completed

        futures = [self.client.submit(call.fn, *call.args, pure=False) for call in calls]
        where = {future.key: index for index, future in enumerate(futures)}
        held: tuple[int, Any] | None = None
        for future in as_completed(futures):
            if on_done is None or future.status != "finished":
                continue
            if where[future.key] == len(calls) - 1:
                held = (where[future.key], future.result())
                continue
            on_done(where[future.key], future.result())
        if held is not None and on_done is not None:
            self.opened_before_last = self.gate.wait(60)
            on_done(*held)
        return [future.result() for future in futures]


def test_published_while_encoding_on_a_cluster_through_s3(tmp_path, clip, cluster, scratch):
    """With `storage` transfer each chunk's pieces are fetched from scratch as it finishes and fed to the
    packaging, on workers that share nothing but S3: the job plays while encoding and ends with the ladders a
    chunked encode without publishing makes; nothing is left in scratch."""
    doc, source, plan = job(clip, "a" * 24)
    storage, workdir = RecordingStorage(tmp_path / "data"), tmp_path / "work"
    workdir.mkdir()
    playable = threading.Event()
    publisher = LivePublisher(doc, plan, workdir, storage, lambda entries, at: playable.set())
    steps = DaskSteps(cluster[1], playable)
    times = encode_in_chunks(source, plan, workdir, OPTIONS, steps, scratch, live=lambda: publisher)
    assert len(times.chunks) == 4 and steps.opened_before_last, "told playable before the last chunk was fed"
    hls = plan.hls[0]
    assert any(key == f"{hls.key}/index.m3u8" for key, _ in storage.log), "the master went up while encoding"
    reference = tmp_path / "reference"
    reference.mkdir()
    encode_in_chunks(source, plan, reference, OPTIONS)
    for name in ("240p", "360p", "audio"):
        playlist = workdir / hls.file_id / name / "index.m3u8"
        assert playlist.read_text() == (reference / hls.file_id / name / "index.m3u8").read_text(), name
    assert scratch.open().list_keys(scratch.prefix) == [], "scratch emptied"
