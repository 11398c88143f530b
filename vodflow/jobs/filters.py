"""What a job's `watermark` and `loudness` become once the source is ingested: the checked image and the
placement every video output gets, the loudness target and what was measured (plain data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# What a watermark image may be: one PNG or JPEG picture (ffmpeg's demuxer and codec names), this large.
WATERMARK_DEMUXERS = {"png_pipe": "png", "jpeg_pipe": "mjpeg"}
MAX_WATERMARK_BYTES = 4 * 1024 * 1024
MAX_WATERMARK_SIDE = 4096


@dataclass(frozen=True)
class WatermarkImage:
    """A watermark image fetched and probed at ingest: one `width` x `height` picture that `demuxer` reads."""

    path: Path
    width: int
    height: int
    demuxer: str


@dataclass(frozen=True)
class WatermarkPlan:
    """The image and where it goes: `width` and `margin` are fractions of each picture's width."""

    image: WatermarkImage
    position: str
    width: float
    margin: float
    opacity: float
    images: bool = False  # over thumbnails and storyboard tiles too


@dataclass(frozen=True)
class Box:
    """Where a watermark lands in one picture: its top-left corner and size, in pixels."""

    x: int
    y: int
    width: int
    height: int


def watermark_box(mark: WatermarkPlan, picture_width: int, picture_height: int) -> Box:
    """The watermark's place in a `picture_width` x `picture_height` picture: `mark.width` of the picture's
    width wide (at least 2 px, aspect kept, never taller than the picture), `mark.margin` of its width from
    the edges its position names (centred on the other axis for `center`)."""
    width = max(2, round(mark.width * picture_width))
    height = max(2, round(width * mark.image.height / mark.image.width))
    if height > picture_height:
        height = picture_height
        width = max(2, round(height * mark.image.width / mark.image.height))
    margin = round(mark.margin * picture_width)
    vertical, _, horizontal = mark.position.partition("-")
    if mark.position == "center":
        x, y = (picture_width - width) // 2, (picture_height - height) // 2
    else:
        x = margin if horizontal == "left" else picture_width - width - margin
        y = margin if vertical == "top" else picture_height - height - margin
    return Box(max(0, x), max(0, y), width, height)


@dataclass(frozen=True)
class LoudnessMeasure:
    """EBU R128 figures of a stream: integrated loudness (LUFS), true peak (dBTP), loudness range (LU) and
    the gating threshold (LUFS), as ffmpeg's `loudnorm` reports them."""

    integrated: float
    true_peak: float
    lra: float = 0.0
    threshold: float = -70.0


@dataclass(frozen=True)
class LoudnessPlan:
    """A job's loudness target and ceiling, the source's audio streams measured before the encode (by their
    index among the source's audio streams) and, after it, each audio output's own figures (by label:
    `<file id>` for an MP4, `<file id>/<variant>` for a ladder's audio rendition)."""

    target: float
    true_peak: float
    source: dict[int, LoudnessMeasure] = field(default_factory=dict, hash=False)
    outputs: dict[str, LoudnessMeasure] = field(default_factory=dict, hash=False)
