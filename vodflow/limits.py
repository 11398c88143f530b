"""Limits on what input may make vodflow do: source bytes, seconds and picture size, download time and
redirects, and the names (job ids, object keys) derived from input. Each limit is an environment setting.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vodflow.errors import SpecError, StepError
from vodflow.storage import INGEST_PREFIX, StorageError, validate_key

if TYPE_CHECKING:
    from vodflow.probe import SourceInfo

JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_NAME_SEGMENT_BYTES = 255  # most file systems refuse longer names


@dataclass(frozen=True)
class Limits:
    """What one source may cost. Defaults suit feature-length sources; see `from_env` for the settings."""

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

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Limits:
        """`VODFLOW_MAX_SOURCE_BYTES`, `VODFLOW_MAX_SOURCE_SECONDS`, `VODFLOW_MAX_SOURCE_DIMENSION`,
        `VODFLOW_MAX_REDIRECTS`, `VODFLOW_DOWNLOAD_TIMEOUT` (whole download, s), `VODFLOW_HTTP_TIMEOUT`
        (connect and each read, s), `VODFLOW_MIN_SOURCE_BITRATE` (bit/s over the claimed duration),
        `VODFLOW_MAX_PIXELS_PER_BYTE` (claimed frames x pixels per source byte), `VODFLOW_MAX_ENCODE_SECONDS`
        (cap of any encode's time limit) and `VODFLOW_ENCODE_STALL_SECONDS` (longest pause of an encode's
        output); StepError(ingest, invalid_config) naming a bad value."""

        def number(name: str, default: float) -> float:
            raw = (environ.get(name) or "").strip()
            try:
                value = float(raw) if raw else default
            except ValueError:
                value = -1.0
            if value < 0:
                raise StepError("ingest", "invalid_config", f"{name}={raw!r}: expected a number >= 0")
            return value

        return cls(
            max_source_bytes=int(number("VODFLOW_MAX_SOURCE_BYTES", cls.max_source_bytes)),
            max_source_seconds=number("VODFLOW_MAX_SOURCE_SECONDS", cls.max_source_seconds),
            max_dimension=int(number("VODFLOW_MAX_SOURCE_DIMENSION", cls.max_dimension)),
            max_redirects=int(number("VODFLOW_MAX_REDIRECTS", cls.max_redirects)),
            download_timeout=number("VODFLOW_DOWNLOAD_TIMEOUT", cls.download_timeout),
            http_timeout=number("VODFLOW_HTTP_TIMEOUT", cls.http_timeout),
            min_source_bitrate=number("VODFLOW_MIN_SOURCE_BITRATE", cls.min_source_bitrate),
            max_pixels_per_byte=number("VODFLOW_MAX_PIXELS_PER_BYTE", cls.max_pixels_per_byte),
            max_encode_seconds=number("VODFLOW_MAX_ENCODE_SECONDS", cls.max_encode_seconds),
            stall_seconds=number("VODFLOW_ENCODE_STALL_SECONDS", cls.stall_seconds),
        )


def _size(count: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"  # pragma: no cover


def check_source_bytes(size: int, limits: Limits) -> None:
    """StepError(ingest, source_too_large) when a source of `size` bytes is over the limit."""
    if size > limits.max_source_bytes:
        raise StepError(
            "ingest",
            "source_too_large",
            f"source is larger than {_size(limits.max_source_bytes)} (VODFLOW_MAX_SOURCE_BYTES)",
        )


def check_source_info(info: SourceInfo, limits: Limits) -> None:
    """StepError(ingest, ...) when a probed source is too long or its picture too large."""
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


def unsafe_key_reason(key: str) -> str | None:
    """Why `key` cannot be an object key or a file name under its prefix, or None when it can."""
    try:
        validate_key(key)
    except StorageError as exc:
        return exc.message.rpartition(": ")[2]
    if any(len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_SEGMENT_BYTES for part in key.split("/")):
        return f"has a segment longer than {MAX_NAME_SEGMENT_BYTES} bytes"
    return None


def video_id_problem(video_id: str) -> str | None:
    """Why `video_id` cannot name an object under the ingest prefix, or None when it can."""
    if video_id.endswith("/"):
        return "must name an object, not end with '/'"
    return unsafe_key_reason(video_id) or unsafe_key_reason(f"{INGEST_PREFIX}{video_id}")


def check_job_id(job_id: str) -> str:
    """`job_id` unchanged when it can name files and objects; SpecError(job_id) otherwise."""
    if not isinstance(job_id, str) or not JOB_ID.match(job_id):
        raise SpecError("job_id", "expected 1 to 128 letters, digits, '.', '_' or '-', starting alphanumeric")
    return job_id
