"""Codec strings from configuration records as libx265 and SVT-AV1 write them (bytes from real encodes)."""

import pytest

from vodflow.media.codecs import av1_codec_string, hevc_codec_string, hexdump_bytes

# Heads of the records ffprobe showed for 320x180 encodes with Debian's ffmpeg 5.1 (libx265 3.5, SVT-AV1).
HEVC_MAIN10 = bytes.fromhex("010220000000900000000000" + "3cf000fcfdfafa00000f04")
HEVC_MAIN = bytes.fromhex("010160000000900000000000" + "3cf000fc")
AV1_MAIN_10BIT = bytes.fromhex("81004c000a0b0000")


def test_hevc_strings_follow_annex_e():
    assert hevc_codec_string(HEVC_MAIN10) == "hvc1.2.4.L60.90"
    assert hevc_codec_string(HEVC_MAIN) == "hvc1.1.6.L60.90"
    high_tier_level_5_1 = HEVC_MAIN[:1] + bytes([0x21]) + HEVC_MAIN[2:12] + bytes([153])
    assert hevc_codec_string(high_tier_level_5_1, tag="hev1") == "hev1.1.6.H153.90"


def test_av1_strings_carry_profile_level_tier_and_depth():
    assert av1_codec_string(AV1_MAIN_10BIT) == "av01.0.00M.10"
    eight_bit_level_4_0 = bytes([0x81, 0x08, 0x0C, 0x00])
    assert av1_codec_string(eight_bit_level_4_0) == "av01.0.08M.08"


@pytest.mark.parametrize("record", [b"", b"\x00" * 13, bytes.fromhex("0102")])
def test_anything_else_is_refused(record):
    with pytest.raises(ValueError):
        hevc_codec_string(record)
    with pytest.raises(ValueError):
        av1_codec_string(record)


def test_ffprobes_hex_dump_reads_back_as_the_record():
    dump = (
        "\n00000000: 0102 2000 0000 9000 0000 0000 3cf0 00fc  .. .........<...\n"
        "00000010: fdfa fa00 000f 04                        .......\n"
    )
    assert hexdump_bytes(dump) == HEVC_MAIN10
    assert hevc_codec_string(hexdump_bytes(dump)) == hevc_codec_string(HEVC_MAIN10)
    with pytest.raises(ValueError, match="hex dump"):
        hexdump_bytes("extradata=0102")
