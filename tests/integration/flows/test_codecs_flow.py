"""HEVC and AV1 rungs in a CMAF ladder end to end through the pipeline flow: real encoders, every rung's first
segment probed with ffprobe (codec, profile, bit depth), the HLS master read with `m3u8` and the MPD with
`mpegdash`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import m3u8
import pytest
from mpegdash.parser import MPEGDASHParser

from tests.media import ffprobe_streams
from vodflow.errors import JobFailed
from vodflow.flows.pipeline import encode_video
from vodflow.jobs.ladder import LADDER

pytestmark = pytest.mark.usefixtures("prefect_harness")


def local_file(url: str) -> Path:
    assert url.startswith("file://")
    return Path(urlsplit(url).path)


def first_segment(folder: Path, uri: str, tmp: Path) -> Path:
    """A variant's init segment and first media segment joined into one file, as a player joins them."""
    playlist = m3u8.load(str(folder / uri))
    joined = tmp / f"{Path(uri).stem}.mp4"
    init = folder / playlist.segment_map[0].uri
    joined.write_bytes(init.read_bytes() + (folder / playlist.segments[0].uri).read_bytes())
    return joined


def video_stream(path: Path) -> dict:
    (stream,) = [s for s in ffprobe_streams(path)["streams"] if s["codec_type"] == "video"]
    return stream


def test_one_cmaf_ladder_in_three_codecs(tmp_path, clips, storage):
    spec = {
        "videoUrl": str(clips["landscape"]),
        "presets": [{"format": "cmaf", "resolutions": ["240", "360"], "codecs": ["h264", "hevc", "av1"]}],
    }
    doc = encode_video(spec, job_id="a0" * 12)

    assert doc["status"] == "completed", doc.get("error")
    (ladder,) = doc["files"]
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


@pytest.mark.parametrize("encoder", ["videosdk", "mpc"])
def test_a_remote_encoder_refuses_hevc_naming_the_field(clips, storage, encoder):
    spec = {"videoUrl": str(clips["landscape"]), "presets": [{"format": "cmaf", "resolutions": ["240"],
                                                              "codecs": ["h264", "av1"]}]}  # fmt: skip
    with pytest.raises(JobFailed) as failed:
        encode_video(spec, job_id="a3" * 12, encoder=encoder)

    error = failed.value.document["error"]
    reason = f"hevc and av1 are made only by the local encoder, not by {encoder}"
    assert error["code"] == "invalid_spec" and error["message"] == f"presets[0].codecs: {reason}"
