"""HDR detection, mastering metadata for the encoders, the tone-map chain."""

import pytest

from vodflow.media.color import TONEMAP_FILTERS, dynamic_range, mastering_display
from vodflow.packaging.cmaf import hls_video_range

# What ffprobe 5.1 reports for a libx265 HDR10 encode made with master-display and max-cll set.
SIDE_DATA = [
    {
        "side_data_type": "Mastering display metadata",
        "red_x": "34000/50000", "red_y": "16000/50000",
        "green_x": "13250/50000", "green_y": "34500/50000",
        "blue_x": "7500/50000", "blue_y": "3000/50000",
        "white_point_x": "15635/50000", "white_point_y": "16450/50000",
        "min_luminance": "1/10000", "max_luminance": "10000000/10000",
    },
    {"side_data_type": "Content light level metadata", "max_content": 1000, "max_average": 400},
]  # fmt: skip


def test_transfer_decides_the_dynamic_range():
    assert dynamic_range({"color_transfer": "smpte2084", "color_primaries": "bt2020"}) == "hdr10"
    assert dynamic_range({"color_transfer": "arib-std-b67"}) == "hlg"
    assert dynamic_range({"color_transfer": "bt709"}) == dynamic_range({}) == "sdr"
    assert [hls_video_range(k) for k in ("hdr10", "hlg", "sdr")] == ["PQ", "HLG", "SDR"]


def test_mastering_metadata_round_trips_into_encoder_parameters():
    display = mastering_display(SIDE_DATA)
    assert display is not None
    assert display.x265_params() == (
        "master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400"
    )
    assert display.svtav1_params() == (
        "mastering-display=G(0.2650,0.6900)B(0.1500,0.0600)R(0.6800,0.3200)WP(0.3127,0.3290)L(1000,0.0001)"
        ":content-light=1000,400"
    )
    assert mastering_display([]) is None
    with pytest.raises(ValueError, match="mastering display"):
        mastering_display([{**SIDE_DATA[0], "red_x": "1/0"}])


def test_tonemap_ends_in_sdr_bt709_video_range():
    # The picture it makes is checked against a derivation in tests/integration/media/test_tonemap.py.
    names = [name for name, _ in TONEMAP_FILTERS]
    assert (
        names[0] == "zscale"
        and "tonemap" in names
        and TONEMAP_FILTERS[-1] == ("format", {"pix_fmts": "yuv420p"})
    )
