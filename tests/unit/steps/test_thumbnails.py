"""The thumbnail step: it takes only what the encode did not make, and refuses half-written images."""

import pytest

from vodflow.encoders import EncodeOptions
from vodflow.encoders.local import encode_renditions
from vodflow.errors import StepError
from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import plan_outputs
from vodflow.jobs.sources import Source
from vodflow.jobs.spec import parse_spec
from vodflow.media.commands import thumbnail_path
from vodflow.media.probe import probe_source
from vodflow.steps.thumbnails import is_whole_image, make_thumbnails, missing_thumbnails

PRESETS = [{"format": "mp4", "resolutions": ["240"]}]


def prepared(path, timestamp):
    spec = {
        "videoUrl": str(path),
        "presets": PRESETS,
        "thumbnails": [{"timestamp": timestamp, "resolutions": ["240"], "formats": ["jpg", "webp"]}],
    }
    info = probe_source(path)
    return Source(path, info), plan_outputs(JobDocument.from_spec(parse_spec(spec)), info)


def test_after_the_encode_nothing_is_left_to_take(tmp_path, clips):
    source, plan = prepared(clips["landscape"], "00:00:02")
    encode_renditions(source, plan, tmp_path, EncodeOptions(x264_preset="ultrafast"))
    assert missing_thumbnails(plan.thumbnails, tmp_path) == []
    assert make_thumbnails(source, plan, tmp_path) == 0


def test_images_the_encode_did_not_make_are_taken_by_seek(tmp_path, clips):
    source, plan = prepared(clips["landscape"], "00:00:01.5")
    assert len(missing_thumbnails(plan.thumbnails, tmp_path)) == 2  # as after a chunked encode
    assert make_thumbnails(source, plan, tmp_path) == 2
    assert all(is_whole_image(thumbnail_path(tmp_path, out), out.format) for out in plan.thumbnails)


def test_a_timestamp_after_the_last_frame_fails_the_step(tmp_path, clips):
    # Inside the container's duration (audio runs to the end) but past the last video frame: the encode
    # leaves an 8-byte non-image for webp, which must not pass as a thumbnail.
    source, plan = prepared(clips["landscape"], "00:00:02.995")
    encode_renditions(source, plan, tmp_path, EncodeOptions(x264_preset="ultrafast"))
    assert len(missing_thumbnails(plan.thumbnails, tmp_path)) == 2
    with pytest.raises(StepError) as caught:
        make_thumbnails(source, plan, tmp_path)
    assert (caught.value.step, caught.value.code) == ("thumbnail", "no_frame")


@pytest.mark.parametrize(
    ("fmt", "data", "whole"),
    [
        ("jpg", b"\xff\xd8\xff\xe0" + b"x" * 20 + b"\xff\xd9", True),
        ("jpg", b"\xff\xd8\xff\xe0" + b"x" * 20, False),  # cut short: no end marker
        ("webp", b"RIFF" + (12).to_bytes(4, "little") + b"WEBPVP8 data", True),
        ("webp", b"RIFF" + (40).to_bytes(4, "little") + b"WEBPVP8 data", False),  # shorter than declared
        ("webp", b"\x00\x00\x00\x00\xf8\xff\xff\xff", False),  # what ffmpeg leaves without a frame
        ("jpg", b"", False),
    ],
)
def test_whole_image_check(tmp_path, fmt, data, whole):
    path = tmp_path / f"x.{fmt}"
    path.write_bytes(data)
    assert is_whole_image(path, fmt) is whole
    assert is_whole_image(tmp_path / "absent.jpg", "jpg") is False
