"""Chunked encode against the one-process encode of the same job: same outputs, seamless joins, retries.

One 14 s source (640x360, 25 fps, tone audio) cut in 6 s chunks (joins at 6 s and 12 s), encoded once each way
in a module fixture; the chunked run goes through Prefect with one chunk failing once.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, replace
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import m3u8
import pytest
from prefect import flow

import vodflow.encoders.chunked as chunked
from tests.hls import parse_master, segment_durations
from tests.media import decoded_pictures, ffprobe_streams, make_clip, packets
from vodflow.encoders import EncodeOptions, get_encoder
from vodflow.encoders.local import encode_renditions
from vodflow.errors import StepError
from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import OutputPlan, plan_outputs
from vodflow.jobs.sources import Source
from vodflow.jobs.spec import parse_spec
from vodflow.media.chunking import chunks_dir
from vodflow.media.commands import hls_dir, mp4_path, variant_name
from vodflow.media.probe import probe_source
from vodflow.steps.iframes import write_iframe_playlists
from vodflow.steps.publish import plan_files
from vodflow.storage.local import LocalStorage
from vodflow.tasks.steps import PrefectSteps

pytestmark = pytest.mark.usefixtures("prefect_harness")

FPS = 25
OPTIONS = EncodeOptions(chunk_seconds=6, report_progress=False)


@flow(validate_parameters=False)
def chunked_flow(
    source: Source, plan: OutputPlan, workdir: Path, dask_address: str | None = None
) -> chunked.ChunkedEncodeTimes:
    """The chunked encode with its steps as Prefect tasks (threads here, or a Dask cluster)."""
    steps = PrefectSteps(retries=3, retry_delay=0.2, parallel_slots=2, dask_address=dask_address)
    return chunked.encode_in_chunks(source, plan, workdir, OPTIONS, steps)


@dataclass
class Encodes:
    source: Source
    plan: OutputPlan
    doc: JobDocument
    single: Path
    chunked: Path
    attempts: dict[int, int]
    times: chunked.ChunkedEncodeTimes

    def outputs(self) -> list[tuple[str, Path, Path]]:
        """(name, one-process path, chunked path) of every MP4 and HLS variant playlist."""
        pairs = [
            (f"mp4 {o.rendition.resolution}", mp4_path(self.single, o), mp4_path(self.chunked, o))
            for o in self.plan.mp4
        ]
        for out in self.plan.hls:
            for r in out.renditions:
                name = f"{variant_name(r)}/index.m3u8"
                single, chunked_path = hls_dir(self.single, out) / name, hls_dir(self.chunked, out) / name
                pairs.append((f"hls {name}", single, chunked_path))
        return pairs


@pytest.fixture(scope="module")
def encodes(tmp_path_factory, prefect_harness) -> Encodes:
    root = tmp_path_factory.mktemp("chunked")
    path = make_clip(root / "source.mp4", 640, 360, seconds=14, fps=FPS)
    presets = [{"format": "hls", "resolutions": ["240", "360"]}, {"format": "mp4", "resolutions": ["360"]}]
    doc = JobDocument.from_spec(parse_spec({"videoUrl": str(path), "presets": presets}))
    source = Source(path, probe_source(path))
    plan = plan_outputs(doc, source.info)
    single, chunked_dir = root / "single", root / "chunked"
    single.mkdir()
    chunked_dir.mkdir()
    encode_renditions(source, plan, single, OPTIONS)

    attempts: dict[int, int] = {}
    real = chunked.encode_chunk_pieces

    def flaky(source, chunk, *args):
        attempts[chunk.index] = attempts.get(chunk.index, 0) + 1
        if chunk.index == 1 and attempts[1] == 1:
            raise StepError("encode", "worker_lost", "injected fault", transient=True)
        return real(source, chunk, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chunked, "encode_chunk_pieces", flaky)
        times = chunked_flow(source, plan, chunked_dir)
    return Encodes(source, plan, doc, single, chunked_dir, attempts, times)


def test_only_the_failed_chunk_is_retried(encodes):
    assert encodes.attempts == {0: 1, 1: 2, 2: 1}
    assert len(encodes.times.chunks) == 3 and all(t > 0 for t in encodes.times.chunks)
    assert not chunks_dir(encodes.chunked).exists(), "pieces are removed once stitched"


def test_same_frames_duration_and_sizes_as_the_one_process_encode(encodes):
    for name, single, chunked_path in encodes.outputs():
        a, b = ffprobe_streams(single), ffprobe_streams(chunked_path)
        video_a, video_b = (next(s for s in r["streams"] if s["codec_type"] == "video") for r in (a, b))
        assert (video_b["width"], video_b["height"]) == (video_a["width"], video_a["height"]), name
        duration = float(a["format"]["duration"])
        assert float(b["format"]["duration"]) == pytest.approx(duration, abs=0.001), name
        frames = [len(packets(p, "v")) for p in (single, chunked_path)]
        assert frames == [14 * FPS, 14 * FPS], name


def test_video_timestamps_run_on_without_gaps_across_joins(encodes):
    step = 1 / FPS
    for name, single, chunked_path in encodes.outputs():
        video = packets(chunked_path, "v")
        assert video == packets(single, "v"), f"{name}: pts, dts and keyframes as in the one-process encode"
        pts = sorted(p for p, _, _ in video)
        assert all(b - a == pytest.approx(step, abs=1e-4) for a, b in pairwise(pts)), name
        dts = [d for _, d, _ in video]
        assert all(b - a == pytest.approx(step, abs=1e-4) for a, b in pairwise(dts)), name
        keys = [round(p - pts[0], 3) for p, _, key in video if key]
        assert keys == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0], f"{name}: a keyframe opens every join"


def test_audio_is_one_continuous_track(encodes):
    for name, single, chunked_path in encodes.outputs():
        audio = [p for p, _, _ in packets(chunked_path, "a")]
        assert audio == [p for p, _, _ in packets(single, "a")], name
        steps = {round(b - a, 4) for a, b in pairwise(audio)}
        assert steps == {round(1024 / 48000, 4)}, f"{name}: no gap or overlap anywhere, joins included"


def test_hls_ladder_is_valid_and_plays_across_joins(encodes):
    out = encodes.plan.hls[0]
    master = (hls_dir(encodes.chunked, out) / "index.m3u8").read_text()
    assert master == (hls_dir(encodes.single, out) / "index.m3u8").read_text()
    variants = parse_master(master)
    assert [v.resolution for v in variants] == [(426, 240), (640, 360)]
    assert all(v.codecs.startswith("avc1.64") and v.codecs.endswith(",mp4a.40.2") for v in variants)
    for variant in variants:
        playlist = hls_dir(encodes.chunked, out) / variant.uri
        text = playlist.read_text()
        assert text == (hls_dir(encodes.single, out) / variant.uri).read_text()
        assert "#EXT-X-ENDLIST" in text and segment_durations(text) == [2.0, 2.0, 2.0, 6.0, 2.0]
        assert sum(segment_durations(text)) == pytest.approx(encodes.source.info.duration, abs=0.05)
        decoded = subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", str(playlist), "-f", "null", "-"],
            capture_output=True,
            text=True,
        )
        assert decoded.returncode == 0 and decoded.stderr == "", f"{variant.uri}: {decoded.stderr}"


def test_publish_sees_the_same_outputs(encodes, tmp_path):
    storage = LocalStorage(tmp_path)
    single = plan_files(encodes.doc, encodes.plan, encodes.single, storage)
    chunked_files = plan_files(encodes.doc, encodes.plan, encodes.chunked, storage)
    assert [f.entry.meta for f in chunked_files] == [f.entry.meta for f in single]
    assert [[u.key for u in f.uploads] for f in chunked_files] == [[u.key for u in f.uploads] for f in single]


def test_frame_rate_of_the_source(encodes):
    assert chunked.video_frame_rate(encodes.source.path) == Fraction(FPS)


def test_the_registry_chooses_chunks_for_long_sources_only(encodes):
    assert get_encoder("local", encodes.source.info, chunk_threshold=10).name == "chunked"
    assert get_encoder("local", encodes.source.info, chunk_threshold=20).name == "local"
    assert get_encoder("local", encodes.source.info, chunk_threshold=0).name == "local"  # 0: never


def test_pipeline_flow_chunks_long_sources(encodes, tmp_path, monkeypatch, storage):
    root = tmp_path / "data"
    monkeypatch.setenv("VODFLOW_CHUNK_THRESHOLD_SECONDS", "10")
    monkeypatch.setenv("VODFLOW_CHUNK_SECONDS", "5")  # rounded to 6
    calls = []
    real = chunked.encode_in_chunks

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(chunked, "encode_in_chunks", spy)
    from vodflow.flows import pipeline

    spec = {
        "videoUrl": str(encodes.source.path),
        "presets": [{"format": "hls", "resolutions": ["240"]}, {"format": "mp4", "resolutions": ["240"]}],
    }
    doc = pipeline.encode_video(spec, job_id="chunked-job")

    assert len(calls) == 1 and doc["status"] == "completed"
    by_type = {f["type"]: f for f in doc["files"]}
    assert by_type["video"]["meta"]["resolution"] == {"width": 426, "height": 240}
    assert by_type["video"]["meta"]["duration"] == pytest.approx(14.0, abs=0.05)
    master = root / by_type["x-tar"]["filePath"] / "index.m3u8"
    assert [v.resolution for v in parse_master(master.read_text())] == [(426, 240)]


def test_chunks_run_on_dask_worker_processes(encodes, tmp_path):
    from distributed import LocalCluster

    plan = plan_outputs(encodes.doc, encodes.source.info)
    plan = OutputPlan(hls=plan.hls[:1])  # one ladder (240p + 360p) is enough to prove the distribution
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        times = chunked_flow(encodes.source, plan, tmp_path, cluster.scheduler_address)
    assert len(times.chunks) == 3
    here, reference = hls_dir(tmp_path, plan.hls[0]), hls_dir(encodes.single, plan.hls[0])
    for name in ("240p/index.m3u8", "360p/index.m3u8"):
        assert packets(here / name, "v") == packets(reference / name, "v"), name
    assert (here / "index.m3u8").read_text() == (reference / "index.m3u8").read_text()


def test_a_chunk_that_keeps_failing_fails_the_encode_naming_it(encodes, tmp_path, monkeypatch):
    finished = []

    def pieces(source, chunk, *args):
        if chunk.index == 1:
            raise StepError("encode", "ffmpeg_failed", f"{chunk.label}: ffmpeg failed: broken frame")
        time.sleep(0.5)  # the other chunks are still running when chunk 1 fails
        finished.append(chunk.index)
        return 0.5

    monkeypatch.setattr(chunked, "encode_chunk_pieces", pieces)
    monkeypatch.setattr(chunked, "encode_audio_track", lambda *args: 0.0)
    with pytest.raises(StepError) as caught:
        chunked_flow(encodes.source, encodes.plan, tmp_path)
    assert caught.value.step == "encode" and "chunk 1 (6-12 s)" in caught.value.message
    assert sorted(finished) == [0, 2], "every other chunk finished before the failure was raised"


def test_i_frame_playlists_of_the_stitched_segments_decode_one_keyframe_a_range(encodes, tmp_path):
    (out,) = encodes.plan.hls
    folder = shutil.copytree(hls_dir(encodes.chunked, out), tmp_path / "ladder")
    write_iframe_playlists(folder, replace(out, iframes=True))

    master = m3u8.loads((folder / "index.m3u8").read_text())
    assert [p.uri for p in master.iframe_playlists] == ["240p/iframes.m3u8", "360p/iframes.m3u8"]
    for stream in master.iframe_playlists:
        playlist = m3u8.loads((folder / stream.uri).read_text())
        assert len(playlist.segments) == 7, "a keyframe every 2 s of the 14 s source"
        rung = folder / stream.uri.split("/")[0]
        for n, frame in enumerate(playlist.segments):
            length, offset = map(int, frame.byterange.split("@"))
            data = (rung / frame.uri).read_bytes()[offset : offset + length]
            assert decoded_pictures(data, tmp_path / f"{n}.ts") == ["I"], (stream.uri, frame.byterange)
