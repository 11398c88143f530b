"""Limits on what a source may make vodflow do: bytes, seconds, picture size, work claimed per byte, download
and encode time; and on what a spec may ask of it: encoders in one ffmpeg process, thumbnail images, pixels
encoded (`vodflow.jobs.cost`). The values come from `vodflow.settings` (one `VODFLOW_*` variable each)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from vodflow.errors import StepError
from vodflow.jobs.sources import SourceInfo


@dataclass(frozen=True)
class Limits:
    """What one source may cost; the defaults suit feature-length sources (`vodflow.settings`)."""

    max_source_bytes: int = 20 * 1000**3
    max_source_seconds: float = 6 * 3600
    max_dimension: int = 8192
    max_redirects: int = 5
    download_timeout: float = 3600.0
    http_timeout: float = 30.0
    min_source_bitrate: float = 2000.0
    max_pixels_per_byte: float = 1_000_000.0
    max_encode_seconds: float = 12 * 3600.0
    stall_seconds: float = 120.0
    # What one job may ask (`vodflow.jobs.cost`): the largest real job plans 40 encoders (a CMAF ladder of
    # 3 codecs x 6 rungs with 8 audio tracks and an audio-only variant, beside a 6-rung HLS ladder with one).
    max_encoders: int = 64
    max_thumbnails: int = 256
    max_job_pixels: float = 1e14  # about ten 4K rungs of a 6-hour 60 fps source

    def capped_bytes(self, cap: int) -> Limits:
        """These limits for a smaller file (a caption, an intro, a watermark): at most `cap` bytes."""
        return replace(self, max_source_bytes=min(self.max_source_bytes, cap))


def _size(count: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"  # pragma: no cover


# Audio and subtitle streams a source may have (a Blu-ray remux has a few dozen).
MAX_SOURCE_STREAMS = 64


def check_source_bytes(size: int, limits: Limits, field: str = "") -> None:
    """StepError(ingest, source_too_large) when a source of `size` bytes is over the limit; the message
    starts with the spec `field` it came from, where given."""
    if size > limits.max_source_bytes:
        where = f"{field}: " if field else ""
        raise StepError(
            "ingest",
            "source_too_large",
            f"{where}source is larger than {_size(limits.max_source_bytes)} (VODFLOW_MAX_SOURCE_BYTES)",
        )


def check_source_info(info: SourceInfo, limits: Limits) -> None:
    """StepError(ingest, ...) when a probed source is too long, its picture too large, or it has more audio
    and subtitle streams than any real title (each kept one is an encode or a caption track)."""
    streams = len(info.audio_streams) + len(info.subtitle_streams)
    if streams > MAX_SOURCE_STREAMS:
        raise StepError(
            "ingest",
            "too_many_streams",
            f"source has {streams} audio and subtitle streams; the limit is {MAX_SOURCE_STREAMS}",
        )
    if info.duration > limits.max_source_seconds:
        raise StepError(
            "ingest",
            "source_too_long",
            f"source lasts {info.duration:.0f} s; the limit is {limits.max_source_seconds:.0f} s "
            "(VODFLOW_MAX_SOURCE_SECONDS)",
        )
    if max(info.width, info.height) > limits.max_dimension:
        raise StepError(
            "ingest",
            "source_dimensions_too_large",
            f"source picture is {info.width}x{info.height}; the limit is {limits.max_dimension} pixels a "
            "side (VODFLOW_MAX_SOURCE_DIMENSION)",
        )


def check_source_cost(info: SourceInfo, size: int, limits: Limits) -> None:
    """StepError(ingest, implausible_source) when a source claims far more work than its bytes can hold.

    A 14 kB file can claim hours of video (one frame, a huge timestamp): it would hold an ffmpeg slot for
    as long. Real video, even a still slide deck, carries more than `min_source_bitrate` over its duration
    and fewer than `max_pixels_per_byte` decoded pixels per byte.
    """
    size = max(size, 1)
    bitrate = size * 8 / info.duration
    if limits.min_source_bitrate and bitrate < limits.min_source_bitrate:
        raise StepError(
            "ingest",
            "implausible_source",
            f"source claims {info.duration:.0f} s of video in {_size(size)} ({bitrate:.0f} bit/s; the "
            f"least accepted is {limits.min_source_bitrate:.0f}, VODFLOW_MIN_SOURCE_BITRATE)",
        )
    pixels = info.duration * info.frame_rate * info.width * info.height
    if limits.max_pixels_per_byte and pixels / size > limits.max_pixels_per_byte:
        raise StepError(
            "ingest",
            "implausible_source",
            f"source claims {pixels:.3g} decoded pixels in {_size(size)} (more than "
            f"{limits.max_pixels_per_byte:.0f} per byte, VODFLOW_MAX_PIXELS_PER_BYTE)",
        )
