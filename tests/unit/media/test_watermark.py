"""The watermark's filters in every builder (one-process encode, chunk, thumbnails), built purely, and the
check of a fetched image's probe."""

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from vodflow.jobs.filters import WatermarkImage, WatermarkPlan
from vodflow.jobs.plan import (
    AudioTrack,
    CmafOutput,
    HlsOutput,
    Mp4Output,
    OutputPlan,
    Rendition,
    StoryboardOutput,
    ThumbnailOutput,
)
from vodflow.media.chunking import Chunk, PieceSpec, build_chunk_command, piece_streams
from vodflow.media.commands import build_encode_command, build_thumbnail_command
from vodflow.media.watermark import Marks, image_problem, on_images

R240 = Rendition("240", 426, 240, 400, 64)
R360 = Rendition("360", 640, 360, 800, 96)
IMAGE = WatermarkImage(Path("/tmp/job/watermark"), 400, 100, "png_pipe")
MARK = WatermarkPlan(IMAGE, "bottom-right", 0.2, 0.05, 0.5)


def graph(command: list[str]) -> str:
    return command[command.index("-filter_complex") + 1]


def a_plan(**changes) -> OutputPlan:
    plan = OutputPlan(
        hls=[HlsOutput("h", "p0", (R240, R360))],
        cmaf=[
            CmafOutput(
                "c", "p1", (replace(R240, codec="hevc"),), (AudioTrack(0, "eng", "English", True),), 96
            )
        ],  # fmt: skip
        mp4=[Mp4Output("m", "p2", R360)],
        thumbnails=[ThumbnailOutput("t", "t0", 1.0, "240", 426, 240, "jpg", "none")],
        storyboard=StoryboardOutput("s", 2, 160, 8.0, 640, 360),
    )
    return replace(plan, **changes)


def test_each_rung_gets_the_image_scaled_to_its_width_and_placed_by_it():
    """One image input split once per video encode (the HLS rungs and the HEVC CMAF rung; the 360p MP4 is the
    360p rung's encode, remuxed), each scaled to 20 % of its rung's width, half opaque, at 5 % of that width
    from the bottom right."""
    command = build_encode_command(Path("/src.mp4"), a_plan(watermark=MARK), Path("/w"), has_audio=True)
    assert command.count("-i") == 2
    at = command.index("file:/tmp/job/watermark")
    image_input = command[at - 7 : at]  # its options: only the demuxer its probe found, from a file
    assert image_input == [
        "-f",
        "png_pipe",
        "-format_whitelist",
        "png_pipe",
        "-protocol_whitelist",
        "file",
        "-i",
    ]
    filters = graph(command)
    assert "[1:v]split=3" in filters  # not the thumbnail's nor the storyboard's
    assert filters.count("scale=h=21:w=85") == 2 and filters.count("scale=h=32:w=128") == 1
    assert filters.count("overlay=") == 3
    placed = "overlay=eof_action=repeat:format=auto:"
    assert filters.count(placed + "x=320:y=198") == 2  # 426 - 85 - 21, 240 - 21 - 21
    assert filters.count(placed + "x=480:y=296") == 1  # 640 - 128 - 32, 360 - 32 - 32
    assert filters.count("colorchannelmixer=aa=0.500") == 3 and filters.count("format=rgba") == 3


def test_images_get_it_only_when_asked():
    plain = graph(build_encode_command(Path("/src.mp4"), a_plan(watermark=MARK), Path("/w"), has_audio=True))
    asked = graph(
        build_encode_command(
            Path("/src.mp4"), a_plan(watermark=replace(MARK, images=True)), Path("/w"), has_audio=True
        )
    )
    assert plain.count("overlay=") == 3 and asked.count("overlay=") == 5  # + the thumbnail, the storyboard
    assert "scale=h=8:w=32" in asked and "scale=h=8:w=32" not in plain  # the 160x90 tile's: 20 % of 160
    assert on_images(MARK) is None and on_images(replace(MARK, images=True)) is not None
    assert on_images(None) is None


def test_a_job_without_a_watermark_has_no_image_input():
    command = build_encode_command(Path("/src.mp4"), a_plan(), Path("/w"), has_audio=True)
    assert command.count("-i") == 1 and "overlay" not in graph(command)


def test_every_chunk_stream_and_its_tiles_get_it():
    plan = a_plan(watermark=replace(MARK, images=True))
    layout_spec = PieceSpec(
        streams=tuple(piece_streams(plan)), frame_rate=Fraction(25), watermark=plan.watermark
    )
    command = build_chunk_command(Path("/src.mp4"), Chunk(1, 6, 12), layout_spec, Path("/w"))
    filters = graph(command)
    assert filters.count("overlay=") == len(piece_streams(plan)) == 3
    opaque = replace(layout_spec, watermark=replace(MARK, opacity=1.0))
    assert "colorchannelmixer" not in graph(
        build_chunk_command(Path("/s.mp4"), Chunk(0, 0, 6), opaque, Path("/w"))
    )


def test_thumbnails_taken_apart_get_it_when_given():
    thumbs = [ThumbnailOutput(f"t{k}", "t0", 1.0, "240", 426, 240, fmt, "none") for k, fmt in
              enumerate(["jpg", "webp"])]  # fmt: skip
    with_mark = build_thumbnail_command(Path("/src.mp4"), thumbs, Path("/w"), watermark=MARK)
    assert graph(with_mark).count("overlay=") == 2 and "split=2" in graph(with_mark)
    assert "overlay" not in " ".join(build_thumbnail_command(Path("/src.mp4"), thumbs, Path("/w")))


def test_marks_refuse_more_pictures_than_they_were_split_for():
    marks = Marks(MARK, 1)
    import ffmpeg

    video = ffmpeg.input("file:/src.mp4").video
    marks.over(video, 640, 360)
    with pytest.raises(ValueError, match="more pictures"):
        marks.over(video, 640, 360)
    assert Marks(None, 3).over(video, 640, 360) is video
    assert Marks(MARK, 0).over(video, 640, 360) is video


def report(fmt="png_pipe", codec="png", frames="1", width=400, height=100, streams=1):
    stream = {"codec_type": "video", "codec_name": codec, "nb_read_frames": frames, "width": width,
              "height": height}  # fmt: skip
    return {"format": {"format_name": fmt}, "streams": [stream] * streams}


@pytest.mark.parametrize(
    ("probe", "problem"),
    [
        (report(), None),
        (report("jpeg_pipe", "mjpeg"), None),
        (report(width=4096, height=4096), None),
        (report("apng", "apng"), "is not a PNG or JPEG image"),
        (report("image2", "png"), "is not a PNG or JPEG image"),
        (report("png_pipe", "mjpeg"), "is not a PNG or JPEG image"),
        (report(frames="2"), "must be a single picture, not an animation"),
        (report(streams=2), "must hold exactly one picture"),
        (report(streams=0), "must hold exactly one picture"),
        (report(width=4097), "must be at most 4096x4096 pixels, not 4097x100"),
        (report(height=0), "is not a PNG or JPEG image"),
        (report(width=10, height=4097), "must be at most 4096x4096 pixels, not 10x4097"),
        ({}, "is not a PNG or JPEG image"),
    ],
)
def test_only_one_bounded_png_or_jpeg_picture_is_a_watermark(probe, problem):
    assert image_problem(probe) == problem


def test_the_declared_size_is_read_from_png_and_jpeg_headers_without_decoding(tmp_path):
    from tests.media import ffmpeg
    from vodflow.media.watermark import header_size

    for name in ("m.png", "m.jpg"):
        ffmpeg("-f", "lavfi", "-i", "color=c=red:s=300x70", "-frames:v", "1", str(tmp_path / name))
        assert header_size((tmp_path / name).read_bytes()) == (300, 70), name
    assert header_size(b"GIF89a" + b"\0" * 32) is None
    assert header_size(b"\xff\xd8\xff\xe0\x00\x04ab") is None  # a JPEG start with no frame header
    assert header_size(b"") is None
