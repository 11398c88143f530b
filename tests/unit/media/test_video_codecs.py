"""Per-stream encoder options of HEVC and AV1 rungs."""

from dataclasses import replace

from vodflow.jobs.plan import Rendition
from vodflow.media.video_codecs import EncoderPresets, codec_stream_options

R240 = Rendition("240", 426, 240, 400, 64)


def test_hevc_and_av1_keyframes_on_the_grid_in_closed_gops():
    hevc = codec_stream_options(replace(R240, codec="hevc"), 1, EncoderPresets(), gop_frames=50)
    assert hevc == {
        "c:v:1": "libx265", "pix_fmt:v:1": "yuv420p", "preset:v:1": "faster", "tag:v:1": "hvc1",
        "forced-idr:v:1": 1, "x265-params:v:1": "log-level=error:keyint=50:scenecut=0:open-gop=0",
    }  # fmt: skip
    av1 = codec_stream_options(replace(R240, codec="av1"), 2, EncoderPresets(svtav1=12), gop_frames=48)
    assert av1 == {"c:v:2": "libsvtav1", "pix_fmt:v:2": "yuv420p", "preset:v:2": 12, "g:v:2": 48}
