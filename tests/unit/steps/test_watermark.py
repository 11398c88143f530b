"""The watermark image at ingest: fetched with a size bound, probed as one PNG or JPEG picture, every
refusal naming `watermark.url`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.media import ffmpeg
from vodflow.errors import StepError
from vodflow.jobs.filters import MAX_WATERMARK_BYTES, WatermarkImage
from vodflow.jobs.limits import Limits
from vodflow.jobs.spec import parse_spec
from vodflow.steps.watermark import fetch_watermark


def spec(url: str = "https://example.test/logo.png"):
    return parse_spec({"videoUrl": "https://example.test/v.mp4", "watermark": {"url": url},
                       "presets": [{"format": "mp4", "resolutions": ["240"]}]})  # fmt: skip


def fetch_copy(source: Path):
    """A fetch that copies `source` to where it is asked, recording the limits it was given."""
    seen: dict = {}

    def fetch(ref, dest: Path, *, field: str, limits: Limits) -> Path:
        seen.update(ref=ref, field=field, limits=limits)
        dest.write_bytes(source.read_bytes())
        return dest

    return fetch, seen


def test_a_png_is_fetched_within_the_image_bound_and_probed(tmp_path):
    image = tmp_path / "logo.png"
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=120x30", "-frames:v", "1", str(image))
    fetch, seen = fetch_copy(image)
    found = fetch_watermark(spec(), tmp_path, fetch, Limits())
    assert found == WatermarkImage(tmp_path / "watermark", 120, 30, "png_pipe")
    assert seen["field"] == "watermark.url" and seen["ref"].url == "https://example.test/logo.png"
    assert seen["limits"].max_source_bytes == MAX_WATERMARK_BYTES
    assert fetch_watermark(parse_spec({"videoUrl": "x.mp4", "presets": [{"format": "mp4", "resolutions": [
        "240"]}]}), tmp_path, fetch, Limits()) is None  # fmt: skip


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "is empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "is not a PNG or JPEG image"),
        (b"GIF89a" + b"\0" * 64, "is not a PNG or JPEG image"),
        (b"\0" * (MAX_WATERMARK_BYTES + 1), f"larger than {MAX_WATERMARK_BYTES} bytes"),
    ],
)
def test_what_is_not_a_bounded_image_is_refused_naming_the_field(tmp_path, content, reason):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(content)
    fetch, _ = fetch_copy(bad)
    with pytest.raises(StepError) as refused:
        fetch_watermark(spec(), tmp_path, fetch, Limits())
    assert (refused.value.step, refused.value.code) == ("ingest", "invalid_watermark")
    assert refused.value.message == f"watermark.url: {reason}"


def test_a_download_over_the_bound_is_an_invalid_watermark(tmp_path):
    def too_large(ref, dest, *, field, limits):
        raise StepError("ingest", "source_too_large", f"{field}: source is larger than 4.2 MB")

    with pytest.raises(StepError) as refused:
        fetch_watermark(spec(), tmp_path, too_large, Limits())
    assert refused.value.code == "invalid_watermark"
    assert refused.value.message == f"watermark.url: larger than {MAX_WATERMARK_BYTES} bytes"

    def refused_address(ref, dest, *, field, limits):
        raise StepError("ingest", "url_not_allowed", f"{field}: 10.0.0.1 is a private address")

    with pytest.raises(StepError) as guarded:
        fetch_watermark(spec(), tmp_path, refused_address, Limits())
    assert guarded.value.code == "url_not_allowed" and guarded.value.message.startswith("watermark.url: ")


def test_a_small_file_claiming_a_huge_picture_is_refused_from_its_header(tmp_path):
    """A 6 kB PNG whose header says 20000 x 20000 (1.2 GB decoded): refused by its size before any decode."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (1 + 3 * 20000) * 50, 9)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )
    assert bomb.stat().st_size < 10_000
    fetch, _ = fetch_copy(bomb)
    with pytest.raises(StepError) as refused:
        fetch_watermark(spec(), tmp_path, fetch, Limits())
    assert refused.value.message == "watermark.url: must be at most 4096x4096 pixels, not 20000x20000"
