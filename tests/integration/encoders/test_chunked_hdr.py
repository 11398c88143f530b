"""Chunked encode of an HDR10 source against the one-process encode of the same job: the chunks are
tone-mapped to SDR BT.709 as the one-process encode tone-maps, so the stitched outputs carry the same tags and
picture.

One 8 s HDR10 clip (426x240, 25 fps, tone audio) cut in 6 s chunks (one join at 6 s), an `hls` and an `mp4`
preset of its 240p rung and a thumbnail, encoded once each way in a module fixture.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

import vodflow.encoders.chunked as chunked
from tests.media import ffprobe_streams, make_hdr10_clip
from vodflow.encoders import EncodeOptions, get_encoder
from vodflow.encoders.local import encode_renditions
from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import OutputPlan, plan_outputs
from vodflow.jobs.sources import Source
from vodflow.jobs.spec import parse_spec
from vodflow.media.commands import hls_dir, mp4_path, thumbnail_path, variant_name
from vodflow.media.probe import probe_source
from vodflow.steps.thumbnails import make_thumbnails

WIDTH, HEIGHT, FPS, SECONDS = 426, 240, 25, 8
OPTIONS = EncodeOptions(chunk_seconds=6, report_progress=False)
SPEC = {
    "presets": [{"format": "hls", "resolutions": ["240"]}, {"format": "mp4", "resolutions": ["240"]}],
    "thumbnails": [{"timestamp": "00:00:07", "resolutions": ["240"], "formats": ["jpg"]}],
}
LUMA_TOLERANCE = 1.0  # 8-bit code values: same chain, same x264 settings, rate control aside


@dataclass
class Encodes:
    source: Source
    plan: OutputPlan
    single: Path
    chunked: Path

    def outputs(self) -> list[tuple[str, Path, Path]]:
        """(name, one-process path, chunked path) of the MP4 and the HLS variant playlist."""
        (out,) = self.plan.hls
        variant = f"{variant_name(out.renditions[0])}/index.m3u8"
        (mp4,) = self.plan.mp4
        return [
            ("mp4", mp4_path(self.single, mp4), mp4_path(self.chunked, mp4)),
            ("hls", hls_dir(self.single, out) / variant, hls_dir(self.chunked, out) / variant),
        ]


@pytest.fixture(scope="module")
def encodes(tmp_path_factory) -> Encodes:
    root = tmp_path_factory.mktemp("chunked-hdr")
    path = make_hdr10_clip(root / "hdr10.mp4", WIDTH, HEIGHT, SECONDS)
    doc = JobDocument.from_spec(parse_spec({"videoUrl": str(path), **SPEC}))
    source = Source(path, probe_source(path))
    plan = plan_outputs(doc, source.info)
    assert plan.dynamic_range == "hdr10"
    single, chunked_dir = root / "single", root / "chunked"
    single.mkdir()
    chunked_dir.mkdir()
    encode_renditions(source, plan, single, OPTIONS)
    times = chunked.encode_in_chunks(source, plan, chunked_dir, OPTIONS)  # the chunk steps inline
    assert len(times.chunks) == 2, "chunks 0-6 s and 6 s-end"
    assert make_thumbnails(source, plan, chunked_dir) == 1, "a chunked encode leaves it to this step"
    return Encodes(source, plan, single, chunked_dir)


def frame_luma(path: Path, index: int, pix_fmt: str = "yuv420p") -> float:
    """Mean 8-bit luma (Y plane) of frame `index` of `path`, decoded to raw `pix_fmt`."""
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-vf", f"select=eq(n\\,{index})"]
    command += ["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", pix_fmt, "-"]
    picture = subprocess.run(command, check=True, capture_output=True).stdout
    assert picture, f"{path.name}: no frame {index}"
    luma = picture[: WIDTH * HEIGHT]
    return sum(luma) / len(luma)


def video_stream(path: Path) -> dict:
    return next(s for s in ffprobe_streams(path)["streams"] if s["codec_type"] == "video")


def test_the_registry_chunks_a_long_hdr_source(encodes):
    assert get_encoder("local", encodes.source.info, 4, encodes.plan).name == "chunked"


def test_stitched_outputs_are_sdr_bt709_h264_tagged_as_the_one_process_encode(encodes):
    tags = ("codec_name", "pix_fmt", "color_range", "color_space", "color_transfer", "color_primaries")
    for name, single, chunked_path in encodes.outputs():
        stream = video_stream(chunked_path)
        assert (stream["codec_name"], stream["pix_fmt"]) == ("h264", "yuv420p"), name
        assert [stream.get(k) for k in tags[3:]] == ["bt709", "bt709", "bt709"], name
        reference = video_stream(single)
        assert [stream.get(k) for k in tags] == [reference.get(k) for k in tags], name


@pytest.mark.parametrize("frame", [0, 6 * FPS], ids=["first-frame", "first-frame-of-chunk-1"])
def test_stitched_picture_is_the_one_process_encodes_tone_map(encodes, frame):
    for name, single, chunked_path in encodes.outputs():
        reference = frame_luma(single, frame)
        assert frame_luma(chunked_path, frame) == pytest.approx(reference, abs=LUMA_TOLERANCE), name


def test_the_thumbnail_of_a_chunked_encode_is_tone_mapped_too(encodes):
    (out,) = encodes.plan.thumbnails
    single, chunked_path = thumbnail_path(encodes.single, out), thumbnail_path(encodes.chunked, out)
    reference = frame_luma(single, 0, "yuvj420p")
    assert frame_luma(chunked_path, 0, "yuvj420p") == pytest.approx(reference, abs=LUMA_TOLERANCE)


def test_the_pipeline_chunks_an_hdr_source_and_its_document_names_hdr10(
    encodes, tmp_path, monkeypatch, storage, prefect_harness
):
    monkeypatch.setenv("VODFLOW_CHUNK_THRESHOLD_SECONDS", "4")
    monkeypatch.setenv("VODFLOW_CHUNK_SECONDS", "6")
    calls = []
    real = chunked.encode_in_chunks

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(chunked, "encode_in_chunks", spy)
    from vodflow.flows import pipeline

    spec = {"videoUrl": str(encodes.source.path), "presets": SPEC["presets"]}
    doc = pipeline.encode_video(spec, job_id="chunked-hdr-job")

    assert len(calls) == 1 and doc["status"] == "completed"
    by_type = {f["type"]: f for f in doc["files"]}
    assert by_type["x-tar"]["meta"]["dynamicRange"] == by_type["video"]["meta"]["dynamicRange"] == "HDR10"
    mp4 = tmp_path / "data" / by_type["video"]["filePath"]
    tags = [video_stream(mp4).get(k) for k in ("codec_name", "pix_fmt", "color_transfer")]
    assert tags == ["h264", "yuv420p", "bt709"]
