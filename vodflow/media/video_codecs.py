"""Encoder options of each video codec of a CMAF ladder, per output stream (pure).

One `dash` output holds rungs of several codecs, so every option that differs between them names its stream
(`c:v:2`, `preset:v:2`): H.264 with libx264, HEVC with libx265 (tagged `hvc1`, as Apple's HLS wants it) and
AV1 with SVT-AV1. HEVC and AV1 rungs that keep an HDR source's range are 10-bit, tagged BT.2020 with the
source's transfer (PQ or HLG), and carry its mastering display and content light levels.
"""

from __future__ import annotations

from dataclasses import dataclass

from vodflow.jobs.plan import Rendition
from vodflow.media.color import HLG, PQ, MasteringDisplay

ENCODERS = {"h264": "libx264", "hevc": "libx265", "av1": "libsvtav1"}
TRANSFERS = {"hdr10": PQ, "hlg": HLG}


@dataclass(frozen=True)
class EncoderPresets:
    """Speed presets of the video encoders (settings `x264_preset`, `x265_preset`, `svtav1_preset`)."""

    x264: str = "veryfast"
    x265: str = "faster"
    svtav1: int = 10


def codec_stream_options(
    rendition: Rendition,
    index: int,
    presets: EncoderPresets,
    *,
    gop_frames: int,
    mastering: MasteringDisplay | None = None,
) -> dict[str, object]:
    """The options of output video stream `index` encoding `rendition`: encoder, preset, pixel format and
    profile; for HEVC and AV1, a keyframe every `gop_frames` and closed GOPs (segments start on them), and
    the HDR tags and `mastering` metadata when the rendition keeps the source's HDR."""
    v = f"v:{index}"
    hdr = rendition.dynamic_range != "sdr"
    options: dict[str, object] = {
        f"c:{v}": ENCODERS[rendition.codec],
        f"pix_fmt:{v}": "yuv420p10le" if hdr else "yuv420p",
    }
    if rendition.codec == "h264":
        options |= {f"preset:{v}": presets.x264, f"profile:{v}": "high"}
    elif rendition.codec == "hevc":
        params = ["log-level=error", f"keyint={gop_frames}", "scenecut=0", "open-gop=0"]
        if rendition.dynamic_range == "hdr10":
            params += ["hdr10=1", *([mastering.x265_params()] if mastering else [])]
        options |= {f"preset:{v}": presets.x265, f"tag:{v}": "hvc1", f"forced-idr:{v}": 1}
        options[f"x265-params:{v}"] = ":".join(params)
    else:
        # ffmpeg 5.1's libsvtav1 ignores forced keyframes: its GOP alone puts them on the 2 s grid.
        options |= {f"preset:{v}": presets.svtav1, f"g:{v}": gop_frames}
        if rendition.dynamic_range == "hdr10" and mastering:
            options[f"svtav1-params:{v}"] = mastering.svtav1_params()
    if hdr:
        options |= {
            f"color_primaries:{v}": "bt2020",
            f"color_trc:{v}": TRANSFERS[rendition.dynamic_range],
            f"colorspace:{v}": "bt2020nc",
        }
    return options
