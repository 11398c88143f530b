"""The bitrate ladder: what each rung is encoded at, and how a rung's picture size is derived."""

from __future__ import annotations

from dataclasses import dataclass

from vodflow.jobs.spec import SHORT_EDGE


@dataclass(frozen=True)
class Rung:
    """Target bitrates of one rung (kbit/s). Video is capped at 1.07x and buffered over 2x the target."""

    video_kbps: int
    audio_kbps: int


LADDER: dict[str, Rung] = {
    "240": Rung(400, 64),
    "360": Rung(800, 96),
    "480": Rung(1400, 128),
    "720": Rung(2800, 128),
    "1080": Rung(5000, 192),
    "4k": Rung(16000, 192),
}


# Video bitrate of a rung per codec, as a share of the ladder's (H.264) one: HEVC and AV1 reach H.264's
# quality at about 60 % and 50 % of its bitrate.
CODEC_BITRATE_SHARE: dict[str, float] = {"h264": 1.0, "hevc": 0.6, "av1": 0.5}


def codec_kbps(video_kbps: int, codec: str) -> int:
    """A rung's video bitrate (kbit/s) in `codec`, from the ladder's H.264 one."""
    return round(video_kbps * CODEC_BITRATE_SHARE[codec])


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def scaled_size(width: int, height: int, resolution: str) -> tuple[int, int] | None:
    """Picture size for `resolution` (a short edge), aspect kept, even; None when it would upscale."""
    short_edge = SHORT_EDGE[resolution]
    if short_edge > min(width, height):
        return None
    scale = short_edge / min(width, height)
    if width <= height:
        return short_edge, _even(height * scale)
    return _even(width * scale), short_edge
