"""HEVC and AV1 rungs in a CMAF ladder, and HDR sources, end to end through the pipeline flow: real encoders,
every rung's first segment probed with ffprobe (codec, profile, bit depth, colour tags, HDR side data), the
HLS master read with `m3u8` and the MPD with `mpegdash`."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import m3u8
import pytest
from mpegdash.parser import MPEGDASHParser

from tests.media import (
    HDR10_LIGHT_LEVELS,
    HDR10_MASTER_DISPLAY,
    MAX_REAL_VMAF,
    ffprobe_streams,
    first_frame_side_data,
    join_segment,
    lists_libvmaf,
    local_file,
    make_hlg_clip,
)
from vodflow.errors import JobFailed
from vodflow.flows.pipeline import encode_video
from vodflow.jobs.ladder import LADDER

pytestmark = pytest.mark.usefixtures("prefect_harness")

PQ_TAGS = {"color_primaries": "bt2020", "color_transfer": "smpte2084", "color_space": "bt2020nc"}
HLG_TAGS = {"color_primaries": "bt2020", "color_transfer": "arib-std-b67", "color_space": "bt2020nc"}
SDR_TAGS = {"color_primaries": "bt709", "color_transfer": "bt709", "color_space": "bt709"}


def first_segment(folder: Path, uri: str, tmp: Path) -> Path:
    """A variant's init segment and first media segment joined into one file, as a player joins them."""
    playlist = m3u8.load(str(folder / uri))
    init, segment = folder / playlist.segment_map[0].uri, folder / playlist.segments[0].uri
    return join_segment(init, segment, tmp / f"{Path(uri).stem}.mp4")


def video_stream(path: Path) -> dict:
    (stream,) = [s for s in ffprobe_streams(path)["streams"] if s["codec_type"] == "video"]
    return stream


def expected_display() -> dict[str, Fraction]:
    """`HDR10_MASTER_DISPLAY` as ffprobe reports a frame's mastering display side data."""
    numbers = [
        int(n) for n in HDR10_MASTER_DISPLAY.replace(")", ",").replace("(", ",").split(",") if n.isdigit()
    ]
    names = ["green", "blue", "red", "white_point"]
    display = {}
    for k, name in enumerate(names):
        display[f"{name}_x"] = Fraction(numbers[2 * k], 50000)
        display[f"{name}_y"] = Fraction(numbers[2 * k + 1], 50000)
    display["max_luminance"] = Fraction(numbers[8], 10000)
    display["min_luminance"] = Fraction(numbers[9], 10000)
    return display


def assert_hdr10_side_data(path: Path) -> None:
    side = first_frame_side_data(path)
    display = side["Mastering display metadata"]
    for name, value in expected_display().items():
        # AV1's metadata OBU keeps fixed-point chromaticities (1/65536) and luminance: equal to 1/1000
        assert abs(Fraction(display[name]) - value) <= Fraction(1, 1000), name
    light = side["Content light level metadata"]
    assert (light["max_content"], light["max_average"]) == HDR10_LIGHT_LEVELS


def test_one_cmaf_ladder_in_three_codecs(tmp_path, clips, storage):
    spec = {
        "videoUrl": str(clips["landscape"]),
        "presets": [{"format": "cmaf", "resolutions": ["240", "360"], "codecs": ["h264", "hevc", "av1"]}],
    }
    doc = encode_video(spec, job_id="a0" * 12)

    assert doc["status"] == "completed", doc.get("error")
    (ladder,) = doc["files"]
    assert ladder["meta"]["dynamicRange"] == "SDR"
    folder = local_file(ladder["fileUrl"]).parent
    master = m3u8.load(str(folder / "index.m3u8"))
    variants = master.playlists
    assert [v.stream_info.codecs.split(".")[0] for v in variants] == ["avc1"] * 2 + ["hvc1"] * 2 + [
        "av01"
    ] * 2
    assert [v.stream_info.resolution for v in variants] == [(428, 240), (640, 360)] * 3, "854x480 scaled"
    assert all(v.stream_info.video_range is None for v in variants), "an SDR ladder names no range"
    kbps = [v.stream_info.average_bandwidth // 1000 - LADDER["360"].audio_kbps for v in variants]
    assert kbps == [400, 800, 240, 480, 200, 400], "HEVC at 0.6x and AV1 at 0.5x of the ladder's bitrate"

    expected = [("h264", "High"), ("hevc", "Main"), ("av1", "Main")]
    for variant, (codec, profile) in zip(variants[::2], expected, strict=True):
        stream = video_stream(first_segment(folder, variant.uri, tmp_path))
        assert (stream["codec_name"], stream["profile"], stream["pix_fmt"]) == (codec, profile, "yuv420p")
    hevc = video_stream(first_segment(folder, variants[2].uri, tmp_path))
    assert hevc["codec_tag_string"] == "hvc1"
    # hvc1.<profile 1: Main>.<compatibility>.L<level>...: the level the stream itself declares
    parts = variants[2].stream_info.codecs.split(",")[0].split(".")
    assert parts[1] == "1" and parts[3] == f"L{hevc['level']}"

    # DASH: one AdaptationSet per codec, naming the codecs the HLS master names, cut on the same keyframes
    mpd = MPEGDASHParser.parse(str(folder / "manifest.mpd"))
    sets = [a for a in mpd.periods[0].adaptation_sets if a.content_type == "video"]
    assert [[rep.codecs for rep in a.representations] for a in sets] == [
        [v.stream_info.codecs.split(",")[0] for v in variants[k : k + 2]] for k in (0, 2, 4)
    ]
    timelines = {
        tuple((s.t, s.d, s.r) for s in rep.segment_templates[0].segment_timelines[0].Ss)
        for a in sets
        for rep in a.representations
    }
    assert len(timelines) == 1, "every rung of every codec cut on the same 2 s keyframes"


def test_hdr10_source_gives_one_master_with_sdr_h264_and_hdr10_hevc_and_av1(tmp_path, hdr10, storage):
    spec = {
        "videoUrl": str(hdr10),
        "presets": [
            {"format": "cmaf", "resolutions": ["240"], "codecs": ["h264", "hevc", "av1"], "hdr": "keep"},
            {"format": "mp4", "resolutions": ["240"]},
        ],
        "quality": True,
    }
    doc = encode_video(spec, job_id="a1" * 12)

    assert doc["status"] == "completed", doc.get("error")
    ladder, mp4 = sorted(doc["files"], key=lambda entry: entry["type"] != "x-tar")
    assert ladder["meta"]["dynamicRange"] == mp4["meta"]["dynamicRange"] == "HDR10"
    folder = local_file(ladder["fileUrl"]).parent

    master = m3u8.load(str(folder / "index.m3u8"))
    variants = master.playlists
    assert [v.stream_info.codecs.split(".")[0] for v in variants] == ["avc1", "hvc1", "av01"]
    assert [v.stream_info.video_range for v in variants] == ["SDR", "PQ", "PQ"]
    assert all(v.stream_info.resolution == (426, 240) and v.stream_info.audio == "audio" for v in variants)
    kbps = [v.stream_info.average_bandwidth // 1000 - LADDER["240"].audio_kbps for v in variants]
    assert kbps == [400, 240, 200], "HEVC at 0.6x and AV1 at 0.5x of the ladder's video bitrate"

    h264, hevc, av1 = (first_segment(folder, v.uri, tmp_path) for v in variants)
    stream = video_stream(h264)
    assert (stream["codec_name"], stream["profile"], stream["pix_fmt"]) == ("h264", "High", "yuv420p")
    assert {k: stream.get(k) for k in SDR_TAGS} == SDR_TAGS, "tone-mapped to SDR BT.709"
    assert "Mastering display metadata" not in first_frame_side_data(h264)

    stream = video_stream(hevc)
    assert (stream["codec_name"], stream["profile"], stream["pix_fmt"]) == ("hevc", "Main 10", "yuv420p10le")
    assert stream["codec_tag_string"] == "hvc1"
    assert {k: stream.get(k) for k in PQ_TAGS} == PQ_TAGS
    assert_hdr10_side_data(hevc)
    # hvc1.<profile 2: Main 10>.<compatibility>.L<level>...: the level the stream itself declares
    parts = variants[1].stream_info.codecs.split(",")[0].split(".")
    assert parts[1] == "2" and parts[3] == f"L{stream['level']}"

    stream = video_stream(av1)
    assert (stream["codec_name"], stream["profile"], stream["pix_fmt"]) == ("av1", "Main", "yuv420p10le")
    assert {k: stream.get(k) for k in PQ_TAGS} == PQ_TAGS
    assert_hdr10_side_data(av1)
    assert variants[2].stream_info.codecs.split(",")[0].split(".")[3] == "10", "av01.0.<level>M.10: 10-bit"

    stream = video_stream(local_file(mp4["fileUrl"]))
    assert (stream["codec_name"], stream["pix_fmt"]) == ("h264", "yuv420p")
    assert {k: stream.get(k) for k in SDR_TAGS} == SDR_TAGS, "every output of an HDR source is tone-mapped"

    # DASH: one AdaptationSet per codec, naming the codecs the HLS master names
    mpd = MPEGDASHParser.parse(str(folder / "manifest.mpd"))
    sets = [a for a in mpd.periods[0].adaptation_sets if a.content_type == "video"]
    assert [[rep.codecs for rep in a.representations] for a in sets] == [
        [v.stream_info.codecs.split(",")[0]] for v in variants
    ]
    transfers = [[(p.scheme_id_uri, p.value) for p in a.essential_properties or []] for a in sets]
    pq = [("urn:mpeg:mpegB:cicp:TransferCharacteristics", "16")]
    assert transfers == [[], pq, pq], "the HDR10 sets say so"
    timelines = [[(s.t, s.d, s.r) for s in a.representations[0].segment_templates[0].segment_timelines[0].Ss]
                 for a in sets]  # fmt: skip
    assert timelines[0] == timelines[1] == timelines[2], "every codec cut on the same 2 s keyframes"

    # quality against the source: the SDR rungs against the source tone-mapped as the encode tone-maps it
    # (by another ffmpeg build: the static 9.0.2 with libvmaf, whose tone-mapping now matches 5.1's)
    rungs = ladder["meta"]["rungs"]
    assert [(r["name"], r["codec"]) for r in rungs] == [
        ("240p", "h264"),
        ("240p-hevc", "hevc"),
        ("240p-av1", "av1"),
    ]
    # VMAF because the measuring binary (no VODFLOW_QUALITY_FFMPEG: the imageio-ffmpeg wheel's) lists libvmaf;
    # every score strictly below what a rendition measured against itself gives (SSIM 1, PSNR 100, VMAF 99.96)
    assert lists_libvmaf(imageio_ffmpeg.get_ffmpeg_exe())
    for scores in [r["quality"] for r in rungs] + [mp4["meta"]["quality"]]:
        assert 0.9 < scores["ssim"] < 1 and 30 < scores["psnr"] < 100, scores
        assert 50 < scores["vmaf"] < MAX_REAL_VMAF, scores
    assert doc["qualitySeconds"] > 0


def test_hdr10_source_tone_maps_hevc_unless_kept(tmp_path, hdr10, storage):
    spec = {"videoUrl": str(hdr10), "presets": [{"format": "cmaf", "resolutions": ["240"], "codec": "hevc"}]}
    doc = encode_video(spec, job_id="a2" * 12)

    assert doc["status"] == "completed", doc.get("error")
    (ladder,) = doc["files"]
    folder = local_file(ladder["fileUrl"]).parent
    (variant,) = m3u8.load(str(folder / "index.m3u8")).playlists
    assert variant.stream_info.codecs.startswith("hvc1.1."), "Main (8-bit)"
    assert variant.stream_info.video_range is None, "an SDR ladder's master is written as before"
    stream = video_stream(first_segment(folder, variant.uri, tmp_path))
    assert (stream["profile"], stream["pix_fmt"]) == ("Main", "yuv420p")
    assert {k: stream.get(k) for k in SDR_TAGS} == SDR_TAGS


def test_an_hlg_source_end_to_end_keeps_hlg_in_hevc_and_tone_maps_the_rest(tmp_path, storage):
    """README `"hdr": "keep"`: an HLG source's HEVC rung keeps 10-bit BT.2020 / HLG with no mastering display,
    `VIDEO-RANGE=HLG` and the CICP transfer 18 in the MPD; its H.264 rung and MP4 are tone-mapped to SDR
    BT.709; the document says `HLG`."""
    source = make_hlg_clip(tmp_path / "hlg.mp4", 426, 240, seconds=2)
    assert {k: video_stream(source).get(k) for k in HLG_TAGS} == HLG_TAGS, "the source is what it claims"
    spec = {
        "videoUrl": str(source),
        "presets": [
            {"format": "cmaf", "resolutions": ["240"], "codecs": ["h264", "hevc"], "hdr": "keep"},
            {"format": "mp4", "resolutions": ["240"]},
        ],
    }
    doc = encode_video(spec, job_id="a3" * 12)

    assert doc["status"] == "completed", doc.get("error")
    ladder, mp4 = sorted(doc["files"], key=lambda entry: entry["type"] != "x-tar")
    assert ladder["meta"]["dynamicRange"] == mp4["meta"]["dynamicRange"] == "HLG"
    folder = local_file(ladder["fileUrl"]).parent
    variants = m3u8.load(str(folder / "index.m3u8")).playlists
    assert [v.stream_info.codecs.split(".")[0] for v in variants] == ["avc1", "hvc1"]
    assert [v.stream_info.video_range for v in variants] == ["SDR", "HLG"]

    h264, hevc = (first_segment(folder, v.uri, tmp_path) for v in variants)
    stream = video_stream(h264)
    assert (stream["codec_name"], stream["pix_fmt"]) == ("h264", "yuv420p")
    assert {k: stream.get(k) for k in SDR_TAGS} == SDR_TAGS, "the SDR rung is tone-mapped to BT.709"
    stream = video_stream(hevc)
    assert (stream["codec_name"], stream["profile"], stream["pix_fmt"]) == ("hevc", "Main 10", "yuv420p10le")
    assert {k: stream.get(k) for k in HLG_TAGS} == HLG_TAGS, "the kept rung keeps the HLG transfer"
    assert "Mastering display metadata" not in first_frame_side_data(hevc)
    assert variants[1].stream_info.codecs.split(",")[0].split(".")[1] == "2", "hvc1.2: Main 10"

    mpd = MPEGDASHParser.parse(str(folder / "manifest.mpd"))
    sets = [a for a in mpd.periods[0].adaptation_sets if a.content_type == "video"]
    transfers = [[(p.scheme_id_uri, p.value) for p in a.essential_properties or []] for a in sets]
    assert transfers == [[], [("urn:mpeg:mpegB:cicp:TransferCharacteristics", "18")]], "HLG is transfer 18"

    stream = video_stream(local_file(mp4["fileUrl"]))
    assert (stream["codec_name"], stream["pix_fmt"]) == ("h264", "yuv420p")
    assert {k: stream.get(k) for k in SDR_TAGS} == SDR_TAGS, "the MP4 of an HLG source is tone-mapped"


@pytest.mark.parametrize("encoder", ["videosdk", "mpc"])
def test_a_remote_encoder_refuses_hevc_naming_the_field(clips, storage, encoder):
    spec = {"videoUrl": str(clips["landscape"]), "presets": [{"format": "cmaf", "resolutions": ["240"],
                                                              "codecs": ["h264", "av1"]}]}  # fmt: skip
    with pytest.raises(JobFailed) as failed:
        encode_video(spec, job_id="a3" * 12, encoder=encoder)

    error = failed.value.document["error"]
    reason = f"hevc and av1 are made only by the local encoder, not by {encoder}"
    assert error["code"] == "invalid_spec" and error["message"] == f"presets[0].codecs: {reason}"
