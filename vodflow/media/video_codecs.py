"""Encoder options of each video codec of a CMAF ladder, per output stream (pure).

One `dash` output holds rungs of several codecs, so every option that differs between them names its stream
(`c:v:2`, `preset:v:2`): H.264 with libx264, HEVC with libx265 (tagged `hvc1`, as Apple's HLS wants it) and
AV1 with SVT-AV1.
"""

from __future__ import annotations

from dataclasses import dataclass

from vodflow.jobs.plan import Rendition

ENCODERS = {"h264": "libx264", "hevc": "libx265", "av1": "libsvtav1"}


@dataclass(frozen=True)
class EncoderPresets:
    """Speed presets of the video encoders (settings `x264_preset`, `x265_preset`, `svtav1_preset`)."""

    x264: str = "veryfast"
    x265: str = "faster"
    svtav1: int = 10


def codec_stream_options(
    rendition: Rendition, index: int, presets: EncoderPresets, *, gop_frames: int
) -> dict[str, object]:
    """The options of output video stream `index` encoding `rendition`: encoder, preset, pixel format and
    profile; for HEVC and AV1, a keyframe every `gop_frames` and closed GOPs (segments start on them)."""
    v = f"v:{index}"
    options: dict[str, object] = {f"c:{v}": ENCODERS[rendition.codec], f"pix_fmt:{v}": "yuv420p"}
    if rendition.codec == "h264":
        options |= {f"preset:{v}": presets.x264, f"profile:{v}": "high"}
    elif rendition.codec == "hevc":
        params = ["log-level=error", f"keyint={gop_frames}", "scenecut=0", "open-gop=0"]
        options |= {f"preset:{v}": presets.x265, f"tag:{v}": "hvc1", f"forced-idr:{v}": 1}
        options[f"x265-params:{v}"] = ":".join(params)
    else:
        # ffmpeg 5.1's libsvtav1 ignores forced keyframes: its GOP alone puts them on the 2 s grid.
        options |= {f"preset:{v}": presets.svtav1, f"g:{v}": gop_frames}
    return options
