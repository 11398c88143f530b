"""A CMAF ladder end to end through the pipeline flow: a bilingual lavfi source, both manifests read with real
parsers (`m3u8`, `mpegdash`), every init and media segment probed with ffprobe."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import m3u8
import pytest
from mpegdash.parser import MPEGDASHParser

from tests.faults import LEDGER
from tests.media import (
    decoded_frames,
    ffmpeg,
    ffprobe_streams,
    join_segment,
    local_file,
    make_bilingual_clip,
    make_clip,
)
from vodflow.errors import JobFailed
from vodflow.flows.pipeline import encode_video

pytestmark = pytest.mark.usefixtures("prefect_harness")

SECONDS = 14  # 6 + 6 + 2 s segments


@pytest.fixture
def storage(storage, monkeypatch):
    """The shared local storage, with chunking on for short sources (cmaf must stay on one process)."""
    monkeypatch.setenv("VODFLOW_CHUNK_THRESHOLD_SECONDS", "5")
    return storage


@pytest.fixture(scope="module")
def bilingual(tmp_path_factory) -> Path:
    return make_bilingual_clip(tmp_path_factory.mktemp("cmaf") / "bilingual.mkv", 640, 360, SECONDS)


def probe_segment(init: Path, segment: Path, tmp: Path) -> dict:
    """ffprobe of one media segment, joined to its init segment as a player joins them."""
    return ffprobe_streams(join_segment(init, segment, tmp / f"{segment.stem}.mp4"))


def rfc6381(stream: dict) -> str:
    """The codecs string a stream's ffprobe report implies (H.264 High, AAC LC)."""
    if stream["codec_name"] == "aac":
        assert stream["profile"] == "LC"
        return "mp4a.40.2"
    assert stream["codec_name"] == "h264" and stream["profile"] == "High"
    return f"avc1.6400{stream['level']:02x}"


def test_cmaf_ladder_has_hls_and_dash_manifests_over_aligned_fmp4_segments(tmp_path, bilingual, storage):
    spec = {
        "videoUrl": str(bilingual),
        "presets": [{"format": "cmaf", "resolutions": ["240", "360"], "audioOnly": True}],
    }
    doc = encode_video(spec, job_id="c" * 24)

    assert doc["status"] == "completed", doc.get("error")
    (ladder,) = doc["files"]
    master_path = local_file(ladder["fileUrl"])
    folder = master_path.parent
    assert ladder["type"] == "x-tar" and master_path.name == "index.m3u8"
    assert ladder["filePath"] == f"files/videos/{ladder['id']}"
    assert ladder["meta"]["format"] == "cmaf"
    assert ladder["meta"]["resolution"] == {"width": 640, "height": 360}
    assert local_file(ladder["meta"]["dashUrl"]) == folder / "manifest.mpd"
    assert ladder["meta"]["duration"] == pytest.approx(SECONDS, abs=0.1)
    assert ladder["size"] == sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert not (folder / "master.m3u8").exists(), "ffmpeg's own master is replaced"

    # HLS: the master
    master = m3u8.load(str(master_path))
    assert master.is_variant and master.version == 7
    audio = [m for m in master.media if m.type == "AUDIO"]
    assert [(m.language, m.name, m.default, m.group_id) for m in audio] == [
        ("en", "English", "YES", "audio"),
        ("fr", "Français", "NO", "audio"),
    ]
    video = [p for p in master.playlists if p.stream_info.resolution]
    audio_only = [p for p in master.playlists if not p.stream_info.resolution]
    assert [p.stream_info.resolution for p in video] == [(426, 240), (640, 360)]
    assert all(p.stream_info.audio == "audio" for p in video)
    (extra,) = audio_only
    assert extra.stream_info.codecs == "mp4a.40.2" and extra.stream_info.audio is None
    assert extra.stream_info.bandwidth < min(p.stream_info.bandwidth for p in video)

    # every media playlist: fMP4 with an init segment, every segment probed, durations aligned across rungs
    def media(uri: str) -> tuple[m3u8.M3U8, list[dict]]:
        playlist = m3u8.load(str(folder / uri))
        assert playlist.is_endlist and playlist.playlist_type == "vod"
        assert not any(s.program_date_time for s in playlist.segments), "no wall clock: reruns write the same"
        (init_map,) = playlist.segment_map
        init = folder / init_map.uri
        assert ffprobe_streams(init)["streams"], "the init segment alone has the track"
        probes = [probe_segment(init, folder / s.uri, tmp_path) for s in playlist.segments]
        elapsed = 0.0
        for seg, probe in zip(playlist.segments, probes, strict=True):
            # a fragment's times are the presentation's: it starts where the ones before it end
            start, end = float(probe["format"]["start_time"]), float(probe["format"]["duration"])
            assert start == pytest.approx(elapsed, abs=0.1)
            assert end - start == pytest.approx(seg.duration, abs=0.05)
            elapsed += seg.duration
        return playlist, [p["streams"][0] for p in probes]

    rungs = []
    for variant in video:
        playlist, streams = media(variant.uri)
        assert all(s["codec_type"] == "video" for s in streams), "video renditions carry no sound"
        assert {(s["width"], s["height"]) for s in streams} == {variant.stream_info.resolution}
        assert variant.stream_info.codecs == f"{rfc6381(streams[0])},mp4a.40.2"
        rungs.append([s.duration for s in playlist.segments])
    assert rungs[0] == rungs[1], "every rung cut on the same boundaries"
    assert rungs[0][:2] == [6.0, 6.0] and sum(rungs[0]) == pytest.approx(SECONDS, abs=0.1)
    for m in (*audio, extra):
        playlist, streams = media(m.uri)
        assert all(s["codec_type"] == "audio" and rfc6381(s) == "mp4a.40.2" for s in streams)
        assert sum(s.duration for s in playlist.segments) == pytest.approx(SECONDS, abs=0.1)
    # (ffmpeg 5.1's dash muxer leaves the init segments' own language `und`: the manifests carry it)

    # DASH: the same segments, one AdaptationSet per media type and language
    mpd = MPEGDASHParser.parse(str(folder / "manifest.mpd"))
    (period,) = mpd.periods
    sets = {(a.content_type, a.lang): a for a in period.adaptation_sets}
    assert set(sets) == {("video", None), ("audio", "eng"), ("audio", "fra")}
    timelines = []
    for rep in sets["video", None].representations:
        template = rep.segment_templates[0]
        assert template.initialization == "init-$RepresentationID$.m4s" and template.segment_timelines
        timelines.append([(s.t, s.d, s.r) for s in template.segment_timelines[0].Ss])
        assert (folder / f"init-{rep.id}.m4s").is_file()
    assert timelines[0] == timelines[1], "rungs aligned in DASH too"
    codecs = {rep.id: rep.codecs for a in period.adaptation_sets for rep in a.representations}
    hls_codecs = {p.uri: p.stream_info.codecs.split(",")[0] for p in video}
    assert {codecs[str(j)] for j in range(2)} == set(hls_codecs.values())
    english = sets["audio", "eng"].representations
    assert sorted(rep.bandwidth for rep in english) == [64000, 96000], "the audio-only variant joins it"
    assert [rep.bandwidth for rep in sets["audio", "fra"].representations] == [96000]
    roles = {lang: [(r.scheme_id_uri, r.value) for r in sets["audio", lang].roles] for lang in ("eng", "fra")}
    assert roles == {
        "eng": [("urn:mpeg:dash:role:2011", "main")],
        "fra": [("urn:mpeg:dash:role:2011", "alternate")],
    }, "the default track is DASH's main one"
    referenced = {f"media_{rep_id}.m3u8" for rep_id in codecs}
    assert referenced == {p.uri for p in master.playlists} | {m.uri for m in audio}


def test_cmaf_without_audio_only_and_a_silent_source(tmp_path, clips, storage):
    spec = {"videoUrl": str(clips["portrait"]), "presets": [{"format": "cmaf", "resolutions": ["240"]}]}
    doc = encode_video(spec, job_id="d" * 24)

    assert doc["status"] == "completed", doc.get("error")
    (ladder,) = doc["files"]
    master = m3u8.load(str(local_file(ladder["fileUrl"])))
    assert not master.media and len(master.playlists) == 1
    (variant,) = master.playlists
    assert variant.stream_info.resolution == (240, 426) and variant.stream_info.audio is None
    assert variant.stream_info.codecs.startswith("avc1.") and "," not in variant.stream_info.codecs
    mpd = MPEGDASHParser.parse(str(local_file(ladder["meta"]["dashUrl"])))
    assert [a.content_type for a in mpd.periods[0].adaptation_sets] == ["video"]


def test_cmaf_i_frame_playlists_address_every_keyframe_as_its_own_fragment(tmp_path, storage):
    """With `iframes`, every 2 s keyframe starts a fragment: each I-frame playlist entry, joined to its init
    segment, decodes to exactly one frame, a keyframe, and the entries cover the rung."""
    seconds = 9  # segments of 6 + 3 s: fragments of 2, 2, 2 and 2, 1 s
    source = make_clip(tmp_path / "nine.mp4", 640, 360, seconds=seconds)
    spec = {
        "videoUrl": str(source),
        "presets": [{"format": "cmaf", "resolutions": ["240", "360"], "iframes": True}],
    }
    doc = encode_video(spec, job_id="a" * 24)

    assert doc["status"] == "completed", doc.get("error")
    assert doc["presets"][0]["iframes"] is True
    (ladder,) = doc["files"]
    folder = local_file(ladder["fileUrl"]).parent
    assert ladder["size"] == sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    master = m3u8.load(str(folder / "index.m3u8"))
    video = [p for p in master.playlists if p.stream_info.resolution]
    assert [p.uri for p in master.iframe_playlists] == ["iframes_0.m3u8", "iframes_1.m3u8"]
    for variant, stream in zip(video, master.iframe_playlists, strict=True):
        info = stream.iframe_stream_info
        assert info.resolution == variant.stream_info.resolution
        assert info.codecs == variant.stream_info.codecs.split(",")[0] and info.codecs.startswith("avc1.")
        playlist = m3u8.load(str(folder / stream.uri))
        assert playlist.is_i_frames_only and playlist.is_endlist and playlist.version == 7
        assert playlist.playlist_type == "vod"
        media = m3u8.load(str(folder / variant.uri))
        assert [m.uri for m in playlist.segment_map] == [m.uri for m in media.segment_map]
        init = (folder / playlist.segment_map[0].uri).read_bytes()
        assert len(playlist.segments) == math.ceil(seconds / 2), "a fragment per keyframe, all addressable"
        assert {s.uri for s in playlist.segments} == {s.uri for s in media.segments}
        total = sum(s.duration for s in playlist.segments)
        assert total == pytest.approx(sum(s.duration for s in media.segments), abs=1e-3)
        assert total == pytest.approx(seconds, abs=0.05)
        sizes = []
        for n, entry in enumerate(playlist.segments):
            length, offset = map(int, entry.byterange.split("@"))
            data = (folder / entry.uri).read_bytes()
            assert offset + length <= len(data)
            frames = decoded_frames(init + data[offset : offset + length], tmp_path / f"{stream.uri}-{n}.mp4")
            assert frames == [("I", True)], (stream.uri, entry.byterange)
            sizes.append((length, entry.duration))
        # RFC 8216's peak segment bit rate: runs of consecutive entries of 0.5-1.5 target durations
        target = playlist.target_duration
        runs = [sizes[i:j] for i in range(len(sizes)) for j in range(i + 1, len(sizes) + 1)]
        rates = [
            sum(n for n, _ in run) * 8 / sum(d for _, d in run)
            for run in runs
            if 0.5 * target <= sum(d for _, d in run) <= 1.5 * target
        ]
        assert info.bandwidth == pytest.approx(max(rates), rel=1e-3), "the peak segment bit rate"
    # the fragmented segments still play as segments: each joined to its init segment lasts its EXTINF
    media = m3u8.load(str(folder / video[0].uri))
    init_path = folder / media.segment_map[0].uri
    for segment in media.segments:
        probe = probe_segment(init_path, folder / segment.uri, tmp_path)
        start, end = float(probe["format"]["start_time"]), float(probe["format"]["duration"])
        assert end - start == pytest.approx(segment.duration, abs=0.05)


@pytest.mark.parametrize("encoder", ["videosdk", "mpc"])
def test_a_remote_encoder_refuses_a_cmaf_preset_naming_the_field(clips, storage, encoder):
    spec = {
        "videoUrl": str(clips["landscape"]),
        "presets": [{"format": "hls", "resolutions": ["240"]}, {"format": "cmaf", "resolutions": ["240"]}],
    }
    with pytest.raises(JobFailed) as failed:
        encode_video(spec, job_id="e" * 24, encoder=encoder)

    error = failed.value.document["error"]
    assert error["step"] == "validate" and error["code"] == "invalid_spec"
    assert error["message"] == f"presets[1].format: cmaf is made only by the local encoder, not by {encoder}"


def test_an_hls_and_a_cmaf_ladder_in_one_job(tmp_path, clips, storage):
    """One ffmpeg process makes both; the HLS ladder stays MPEG-TS with its muxed audio, and its audio-only
    variant, published while it encodes; the CMAF one is published at the end."""
    spec = {
        "videoUrl": str(clips["landscape"]),
        "presets": [
            {"format": "hls", "resolutions": ["240", "360"], "audioOnly": True},
            {"format": "cmaf", "resolutions": ["240"]},
        ],
    }
    doc = encode_video(spec, job_id="f" * 24)

    assert doc["status"] == "completed", doc.get("error")
    hls, cmaf = sorted(doc["files"], key=lambda entry: entry["meta"]["format"] != "hls")
    assert (hls["meta"]["format"], cmaf["meta"]["format"]) == ("hls", "cmaf")
    assert "dashUrl" not in hls["meta"] and hls["filePath"] != cmaf["filePath"]
    hls_folder = local_file(hls["fileUrl"]).parent
    assert sorted({p.parent.name for p in hls_folder.rglob("*.ts")}) == ["240p", "360p", "audio"]
    rung = ffprobe_streams(hls_folder / "240p" / "index.m3u8")
    assert sorted(s["codec_type"] for s in rung["streams"]) == ["audio", "video"], "TS keeps its muxed audio"
    hls_master = m3u8.load(str(hls_folder / "index.m3u8"))
    assert [(p.uri, p.stream_info.codecs) for p in hls_master.playlists][2] == (
        "audio/index.m3u8",
        "mp4a.40.2",
    )
    assert hls_master.playlists[2].stream_info.bandwidth == 70_400 and not hls_master.media
    audio_only = m3u8.load(str(hls_folder / "audio" / "index.m3u8"))
    assert audio_only.playlist_type == "vod" and audio_only.is_endlist, "a VOD playlist once encoded"
    (stream,) = ffprobe_streams(hls_folder / "audio" / "index.m3u8")["streams"]
    assert stream["codec_type"] == "audio" and stream["codec_name"] == "aac"
    master = m3u8.load(str(local_file(cmaf["fileUrl"])))
    assert [m.language for m in master.media] == [None], "the clip's one untagged track"
    assert master.media[0].name == "Audio" and master.media[0].default == "YES"


EVIL = '"><BaseURL>https://evil.example/</BaseURL><x a="'
EVERYWHERE = [
    *("-metadata:s:v:0", f"language=en{EVIL}", "-metadata", f"title=G{EVIL}"),
    *("-metadata:s:a:0", f"language=en{EVIL}", "-metadata:s:a:0", f"title=T{EVIL}"),
    *("-metadata:s:a:0", f"role=main{EVIL}", "-metadata:s:a:0", f"handler_name=H{EVIL}"),
    *("-metadata:s:s:0", f"language=fr{EVIL}", "-metadata:s:s:0", f"title=S{EVIL}"),
]
# A role that leaves the MPD well-formed (ffmpeg writes it into an empty Role element), with a good language.
IN_THE_ROLE = [
    *("-metadata:s:a:0", "language=eng", "-metadata:s:s:0", "language=fra"),
    *("-metadata:s:a:0", 'role=main"/><BaseURL>https://evil.example/</BaseURL><Role schemeIdUri="x" value="'),
]


@pytest.mark.parametrize("tags", [EVERYWHERE, IN_THE_ROLE], ids=["everywhere", "in-the-role"])
def test_source_stream_metadata_cannot_inject_into_the_mpd_or_the_masters(tmp_path, storage, tags):
    """A source whose audio and subtitle streams carry markup in their language, title, role and handler:
    the MPD and the masters have only what vodflow writes (a malformed language is `und`)."""
    (tmp_path / "s.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nHello\n")
    source = tmp_path / "crafted.mkv"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2",
        "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-i", str(tmp_path / "s.srt"),
        "-map", "0:v", "-map", "1:a", "-map", "2:s",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-c:s", "srt",
        *tags, str(source),
    )  # fmt: skip
    spec = {
        "videoUrl": str(source),
        "presets": [{"format": "cmaf", "resolutions": ["240"]}, {"format": "hls", "resolutions": ["240"]}],
    }
    doc = encode_video(spec, job_id="d1" * 12)

    assert doc["status"] == "completed", doc.get("error")
    cmaf, hls = sorted((f for f in doc["files"] if f["type"] == "x-tar"), key=lambda f: f["meta"]["format"])
    mpd_path = local_file(cmaf["meta"]["dashUrl"])
    root = ET.parse(mpd_path).getroot()  # well-formed XML
    assert all(e.tag.startswith("{urn:mpeg:dash:schema:mpd:2011}") for e in root.iter()), "no element added"
    base_urls = [e.text for e in root.iter("{urn:mpeg:dash:schema:mpd:2011}BaseURL")]
    assert base_urls in (["subs/und.vtt"], ["subs/fr.vtt"]), "only the caption track's file"
    values = [v for e in root.iter() for v in e.attrib.values()]
    assert not any("evil" in v or "<" in v or '"' in v for v in values)
    langs = {e.get("lang") for e in root.iter() if e.get("lang")}
    assert langs <= {"und", "en", "eng", "fr"}, "a malformed source language is no language"
    roles = {e.get("value") for e in root.iter("{urn:mpeg:dash:schema:mpd:2011}Role")}
    assert roles <= {"main", "alternate", "subtitle"}

    for ladder in (cmaf, hls):
        folder = local_file(ladder["fileUrl"]).parent
        for playlist in folder.rglob("*.m3u8"):
            text = playlist.read_text()
            assert "<" not in text and ">" not in text and "</BaseURL" not in text, playlist.name
        master = m3u8.load(str(folder / "index.m3u8"))
        assert master.playlists
        for media in master.media:
            assert media.language in (None, "und", "en", "fr") and '"' not in (media.name or "")
            assert media.uri and not media.uri.startswith("http")
    assert mpd_path.read_text().count("evil") == (tags is EVERYWHERE), "only in the label (a title), as text"
    LEDGER.inject("stream metadata injection")
    LEDGER.job("stream metadata injection", doc["status"])
