"""A chunked encode with a watermark and a loudness target, its pieces travelling through S3 (`storage`
transfer): the watermark image reaches the chunk steps through scratch (no path of the run's machine in their
arguments), the source is measured once before any chunk, and the outputs carry both."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

import vodflow.encoders.chunked as chunked
from tests.integration.flows.test_loudness_flow import CEILING, TARGET, ebur128
from tests.integration.flows.test_watermark_flow import MARK, check_watermark, rgb_frame
from tests.media import ffmpeg
from vodflow.encoders import EncodeOptions, InlineSteps
from vodflow.encoders.base import Call
from vodflow.jobs.document import JobDocument
from vodflow.jobs.filters import WatermarkImage
from vodflow.jobs.plan import plan_outputs, with_filters
from vodflow.jobs.sources import Source
from vodflow.jobs.spec import parse_spec
from vodflow.media.commands import hls_dir
from vodflow.media.probe import probe_source
from vodflow.media.quality import rung_files

pytestmark = pytest.mark.usefixtures("prefect_harness")

OPTIONS = EncodeOptions(chunk_seconds=6, report_progress=False)


class RecordingSteps(InlineSteps):
    """Inline steps that keep the names of what ran, in order, and every parallel call."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.sent: list[Call] = []

    def run(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        self.names.append(name)
        return super().run(name, fn, *args)

    def parallel(self, calls: Sequence[Call], on_done: Any = None) -> list[Any]:
        self.names.append("parallel")
        self.sent += calls
        return super().parallel(calls, on_done)


def paths_in(value: Any) -> list[Path]:
    """Every Path inside a step's arguments (tuples, lists, dicts, dataclasses)."""
    if isinstance(value, Path):
        return [value]
    if isinstance(value, list | tuple):
        return [p for item in value for p in paths_in(item)]
    if isinstance(value, dict):
        return [p for item in value.values() for p in paths_in(item)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [p for f in dataclasses.fields(value) for p in paths_in(getattr(value, f.name))]
    return []


def test_watermark_and_loudness_through_s3_scratch(scratch, tmp_path):
    source_path = tmp_path / "gray.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=0x808080:s=640x360:r=25:d=14",
           "-f", "lavfi", "-i", "sine=f=440:d=14", "-af", "volume=-20dB",
           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
           str(source_path))  # fmt: skip
    image = tmp_path / "mark.png"
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=400x100", "-frames:v", "1", str(image))
    spec = {
        "videoUrl": str(source_path),
        "presets": [{"format": "hls", "resolutions": ["240"]}],
        "watermark": {"url": str(image), **MARK},
        "loudness": {"target": TARGET, "truePeak": CEILING},
    }
    doc = JobDocument.from_spec(parse_spec(spec))
    source = Source(source_path, probe_source(source_path))
    plan = with_filters(plan_outputs(doc, source.info), doc, WatermarkImage(image, 400, 100, "png_pipe"))
    workdir = tmp_path / "run"
    workdir.mkdir()
    steps = RecordingSteps()

    chunked.encode_in_chunks(source, plan, workdir, OPTIONS, steps, scratch)

    assert steps.names.index("measure-loudness") < steps.names.index("parallel")
    assert steps.names.count("measure-loudness") == 1, "the whole source is measured once"
    chunk_args = [c.args for c in steps.sent if c.name == "encode-chunk"]
    assert len(chunk_args) == 3
    sent_paths = [p for args in chunk_args for p in paths_in(args)]
    assert Path("watermark") in sent_paths  # the image named by its scratch name
    assert all(not p.is_absolute() for p in sent_paths), "no chunk step is given a local file"
    rung = hls_dir(workdir, plan.hls[0]) / "240p"
    joined = tmp_path / "rung.ts"
    joined.write_bytes(
        b"".join((rung / s).read_bytes() for s in rung_files((rung / "index.m3u8").read_text()))
    )
    for at in (0.0, 7.0, 13.0):  # a picture of each chunk
        check_watermark(rgb_frame(joined, at), MARK, f"240p at {at} s")
    integrated, peak = ebur128(joined)
    assert abs(integrated - TARGET) <= 1.0 and peak < CEILING, (integrated, peak)
    assert scratch.open().list_keys("tmp/") == [], "the scratch prefix is emptied"
