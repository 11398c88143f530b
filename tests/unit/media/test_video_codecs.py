"""Per-stream encoder options of HEVC and AV1 rungs, SDR and HDR."""

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


def test_hlg_is_kept_10_bit_with_its_transfer_and_no_mastering_display():
    hlg = replace(R240, codec="hevc", dynamic_range="hlg")
    options = codec_stream_options(hlg, 0, EncoderPresets(), gop_frames=50)
    assert options["pix_fmt:v:0"] == "yuv420p10le" and options["color_trc:v:0"] == "arib-std-b67"
    assert "hdr10" not in str(options["x265-params:v:0"])
    av1 = codec_stream_options(replace(hlg, codec="av1"), 0, EncoderPresets(), gop_frames=50)
    assert av1["color_primaries:v:0"] == "bt2020" and "svtav1-params:v:0" not in av1


def test_hdr10_without_mastering_metadata_is_still_tagged_pq():
    hdr10 = replace(R240, codec="hevc", dynamic_range="hdr10")
    options = codec_stream_options(hdr10, 0, EncoderPresets(), gop_frames=50)
    assert options["color_trc:v:0"] == "smpte2084" and options["colorspace:v:0"] == "bt2020nc"
    assert str(options["x265-params:v:0"]).endswith(":hdr10=1")
