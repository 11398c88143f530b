"""The watermark's filters (pure builders, nothing runs here) and the check of a fetched image's probe.

Each picture that carries the watermark gets it at its own size: the image (one input per command, read by
the one demuxer its probe found, split once per picture) is scaled to `width` of that picture's width, given
its opacity (`format=rgba,colorchannelmixer=aa=`) and laid over it with `overlay` at the place
`watermark_box` gives.
A single picture is repeated by `overlay` to the end of the video (its `eof_action=repeat`), whatever the
video's timestamps (a chunk's start at 30 s with `-copyts` too).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ffmpeg

from vodflow.jobs.filters import (
    MAX_WATERMARK_SIDE,
    WATERMARK_DEMUXERS,
    WatermarkPlan,
    watermark_box,
)
from vodflow.media.inputs import file_url, input_options


def watermark_input(mark: WatermarkPlan) -> Any:
    """The watermark image as an ffmpeg-python video stream, opened only by the demuxer its probe found."""
    image = mark.image
    return ffmpeg.input(file_url(image.path), f=image.demuxer, **input_options((image.demuxer,))).video


def overlay_filters(mark: WatermarkPlan, width: int, height: int) -> tuple[dict[str, int], tuple[int, int]]:
    """The `scale` arguments of the image for a `width` x `height` picture and the `overlay` position (x, y)
    placing it."""
    box = watermark_box(mark, width, height)
    return {"w": box.width, "h": box.height}, (box.x, box.y)


class Marks:
    """The watermark for `count` pictures of one command: the image read once and split `count` ways (a graph
    may not leave a branch unused, nor use one twice), each branch scaled and laid over one picture by
    `over`. Without a watermark (`mark` None) `over` gives each picture back as it is."""

    def __init__(self, mark: WatermarkPlan | None, count: int) -> None:
        self.mark = mark if count > 0 else None
        self._branches: list[Any] = []
        if self.mark is not None:
            image = watermark_input(self.mark)
            if count == 1:
                self._branches = [image]
            else:
                split = image.filter_multi_output("split", count)
                self._branches = [split[k] for k in range(count)]

    def over(self, video: Any, width: int, height: int) -> Any:
        """`video` (a `width` x `height` picture stream) with the watermark over it, on the next branch."""
        if self.mark is None:
            return video
        if not self._branches:
            raise ValueError("more pictures than the watermark was split for")
        scale, (x, y) = overlay_filters(self.mark, width, height)
        image = self._branches.pop(0).filter("scale", **scale).filter("format", "rgba")
        if self.mark.opacity < 1:
            image = image.filter("colorchannelmixer", aa=f"{self.mark.opacity:.3f}")
        return ffmpeg.filter([video, image], "overlay", x=x, y=y, eof_action="repeat", format="auto")


def on_images(mark: WatermarkPlan | None) -> WatermarkPlan | None:
    """The watermark thumbnails and storyboard tiles get: the job's when it asks for `images`, else none."""
    return mark if mark is not None and mark.images else None


_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def header_size(data: bytes) -> tuple[int, int] | None:
    """The picture size a PNG's IHDR or a JPEG's first SOF marker declares (read without decoding: a small
    file may declare a picture of gigabytes), or None when `data` starts as neither."""
    if data.startswith(_PNG) and data[12:16] == b"IHDR" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if not data.startswith(b"\xff\xd8"):
        return None
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if marker in _JPEG_SOF and at + 9 <= len(data):
            return int.from_bytes(data[at + 7 : at + 9], "big"), int.from_bytes(data[at + 5 : at + 7], "big")
        at += 2 + length
    return None


def image_problem(report: Mapping[str, Any]) -> str | None:
    """Why an ffprobe report (`-show_format -show_streams -count_frames`) is not one PNG or JPEG picture of
    at most MAX_WATERMARK_SIDE px a side, or None when it is."""
    streams = report.get("streams") or []
    demuxer = str((report.get("format") or {}).get("format_name") or "")
    if demuxer not in WATERMARK_DEMUXERS:
        return "is not a PNG or JPEG image"
    if len(streams) != 1 or streams[0].get("codec_type") != "video":
        return "must hold exactly one picture"
    stream = streams[0]
    if stream.get("codec_name") != WATERMARK_DEMUXERS[demuxer]:
        return "is not a PNG or JPEG image"
    if str(stream.get("nb_read_frames", "1")) != "1":
        return "must be a single picture, not an animation"
    return size_problem(int(stream.get("width") or 0), int(stream.get("height") or 0))


def size_problem(width: int, height: int) -> str | None:
    """Why a `width` x `height` picture is no watermark (none, or larger than MAX_WATERMARK_SIDE a side)."""
    if width <= 0 or height <= 0:
        return "is not a PNG or JPEG image"  # a header ffprobe reads, no picture behind it
    if width > MAX_WATERMARK_SIDE or height > MAX_WATERMARK_SIDE:
        return f"must be at most {MAX_WATERMARK_SIDE}x{MAX_WATERMARK_SIDE} pixels, not {width}x{height}"
    return None
