"""The watermark image at ingest: fetched as sources are (address guard, size bound), then probed: it must be
one PNG or JPEG picture of bounded size, or the job fails before its source is downloaded."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vodflow.errors import StepError
from vodflow.jobs.filters import MAX_WATERMARK_BYTES, WATERMARK_DEMUXERS, WatermarkImage
from vodflow.jobs.limits import Limits
from vodflow.jobs.sources import SourceRef, parse_video_url
from vodflow.jobs.spec import JobSpec
from vodflow.media.inputs import input_args
from vodflow.media.usage import run_measured
from vodflow.media.watermark import header_size, image_problem, size_problem

FIELD = "watermark.url"
HEADER_BYTES = 64 * 1024  # where a JPEG's SOF marker is (after its EXIF and tables) in any real image
# fetch_ref with the storage and policy bound: (ref, dest, field=, limits=) -> the local file
Fetch = Callable[..., Path]


def _invalid(reason: str) -> StepError:
    return StepError("ingest", "invalid_watermark", f"{FIELD}: {reason}")


def probe_image(path: Path, timeout: float = 30.0, count_frames: bool = False) -> dict[str, Any]:
    """ffprobe's report of an image file (streams, format; with `count_frames`, each picture decoded and
    counted), opened only as PNG or JPEG; StepError(ingest, invalid_watermark) when ffprobe cannot read it."""
    command = ["ffprobe", "-v", "error", *(["-count_frames"] if count_frames else [])]
    command += ["-show_format", "-show_streams", "-of", "json"]
    command += input_args(path, tuple(WATERMARK_DEMUXERS))
    try:
        result = run_measured(command, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise _invalid(f"not read within {timeout:g} s") from None
    if result.returncode != 0:
        raise _invalid("is not a PNG or JPEG image")
    return json.loads(result.stdout or "{}")


def fetch_watermark(spec: JobSpec, workdir: Path, fetch: Fetch, limits: Limits) -> WatermarkImage | None:
    """The spec's watermark image in the run's temp directory (a local path is used in place), checked;
    None without one. StepError(ingest) naming `watermark.url`: the fetch's own errors, `invalid_watermark`
    when it is larger than MAX_WATERMARK_BYTES or not one PNG/JPEG picture within the size bounds."""
    if spec.watermark is None:
        return None
    try:
        ref: SourceRef = parse_video_url(spec.watermark.url)
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    bounded = limits.capped_bytes(MAX_WATERMARK_BYTES)
    too_large = _invalid(f"larger than {MAX_WATERMARK_BYTES} bytes")
    try:
        path = fetch(ref, workdir / "watermark", field=FIELD, limits=bounded)
    except StepError as exc:
        if exc.code == "source_too_large":
            raise too_large from None
        raise
    if path.stat().st_size > MAX_WATERMARK_BYTES:  # a local file, used in place
        raise too_large
    if path.stat().st_size == 0:
        raise _invalid("is empty")
    # the header first, read here: a small file may declare a picture of gigabytes, which ffprobe would decode
    with path.open("rb") as image:
        declared = header_size(image.read(HEADER_BYTES))
    if (problem := size_problem(*declared) if declared else "is not a PNG or JPEG image") is not None:
        raise _invalid(problem)
    report = probe_image(path, count_frames=True)
    if (problem := image_problem(report)) is not None:
        raise _invalid(problem)
    stream = report["streams"][0]
    demuxer = report["format"]["format_name"]
    return WatermarkImage(path, int(stream["width"]), int(stream["height"]), demuxer)
