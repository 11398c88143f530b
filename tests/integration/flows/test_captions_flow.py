"""Captions end to end through the pipeline flow: a source with a `mov_text` subtitle stream and a sidecar SRT
served over HTTP become whole `.vtt` files in the document and subtitle renditions of an HLS and a CMAF
ladder, read back with real parsers (`m3u8`, `mpegdash`); a bad sidecar fails the job at ingest naming the
file and the line, with nothing published."""

from __future__ import annotations

import re
from pathlib import Path

import m3u8
import pytest
from mpegdash.parser import MPEGDASHParser

from tests.faults import LEDGER
from tests.httpserver import serve
from tests.media import ffprobe_streams, local_file, make_bilingual_clip, make_subtitled_clip
from tests.runs import temp_left
from vodflow.errors import JobFailed
from vodflow.flows.pipeline import encode_video
from vodflow.media.captions import parse_captions

pytestmark = pytest.mark.usefixtures("prefect_harness")

SECONDS = 14  # 6 + 6 + 2 s segments
SIDECAR = """1
00:00:01,000 --> 00:00:03,000
Hello from the sidecar

2
00:00:07,000 --> 00:00:09,500
Second <i>English</i> cue

3
00:00:12,000 --> 00:00:13,000
Third
"""
IN_SOURCE = """1
00:00:02,000 --> 00:00:04,000
Bonjour

2
00:00:08,000 --> 00:00:10,000
Au revoir
"""


@pytest.fixture(scope="module")
def subtitled(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("captions")
    (folder / "fr.srt").write_text(IN_SOURCE)
    return make_subtitled_clip(folder / "subtitled.mp4", folder / "fr.srt", "fra", SECONDS)


def texts(vtt: str) -> list[str]:
    return [" ".join(cue.lines) for cue in parse_captions(vtt.encode())] if "-->" in vtt else []


def check_rendition(folder: Path, uri: str, video: m3u8.M3U8, expected: list[list[str]]) -> list[str]:
    """A segmented subtitle rendition: a VOD playlist cut like the video, each segment the cues it shows."""
    playlist = m3u8.load(str(folder / uri))
    assert playlist.playlist_type == "vod" and playlist.is_endlist
    assert [s.duration for s in playlist.segments] == pytest.approx(
        [s.duration for s in video.segments], abs=0.01
    )
    segments = [(folder / uri).parent / s.uri for s in playlist.segments]
    assert [texts(p.read_text()) for p in segments] == expected
    return [p.read_text().splitlines()[1] for p in segments]


def test_source_subtitles_and_a_sidecar_become_captions_of_every_ladder(tmp_path, subtitled, storage):
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "english.srt").write_text(SIDECAR)
    with serve(tmp_path / "www") as server:
        spec = {
            "videoUrl": str(subtitled),
            "presets": [
                {"format": "hls", "resolutions": ["240"]},
                {"format": "cmaf", "resolutions": ["240"]},
            ],
            "captions": [{"url": server.url("/english.srt"), "language": "en", "label": "English (US)"}],
        }
        doc = encode_video(spec, job_id="e" * 24)

    assert doc["status"] == "completed", doc.get("error")
    assert doc["skipped"] == [] and doc.get("playableAt") is None, "ladders with captions publish at the end"
    assert doc["captions"] == spec["captions"]
    captions = [f for f in doc["files"] if f["type"] == "caption"]
    assert [f["meta"] for f in captions] == [
        {"language": "en", "label": "English (US)"},
        {"language": "fr", "label": "French"},
    ]
    for entry in captions:
        assert entry["filePath"] == f"files/captions/{entry['id']}.vtt" and entry["jobId"] == doc["id"]
        assert local_file(entry["fileUrl"]) == storage.root / entry["filePath"]
        assert entry["size"] == local_file(entry["fileUrl"]).stat().st_size
    english, french = (local_file(f["fileUrl"]).read_text() for f in captions)
    assert texts(english) == ["Hello from the sidecar", "Second English cue", "Third"]
    assert texts(french) == ["Bonjour", "Au revoir"]

    hls, cmaf = sorted((f for f in doc["files"] if f["type"] == "x-tar"), key=lambda f: f["meta"]["format"])[
        ::-1
    ]
    assert (hls["meta"]["format"], cmaf["meta"]["format"]) == ("hls", "cmaf")
    by_segment_en = [["Hello from the sidecar"], ["Second English cue"], ["Third"]]
    by_segment_fr = [["Bonjour"], ["Au revoir"], []]

    # HLS (MPEG-TS): the subtitle group in the master, on every variant
    folder = local_file(hls["fileUrl"]).parent
    master = m3u8.load(str(folder / "index.m3u8"))
    subtitles = [(m.group_id, m.language, m.name, m.default, m.autoselect, m.uri) for m in master.media]
    assert subtitles == [
        ("subs", "en", "English (US)", "NO", "YES", "subs/en/index.m3u8"),
        ("subs", "fr", "French", "NO", "YES", "subs/fr/index.m3u8"),
    ]
    assert master.playlists and all(p.stream_info.subtitles == "subs" for p in master.playlists)
    video = m3u8.load(str(folder / master.playlists[0].uri))
    maps = check_rendition(folder, "subs/en/index.m3u8", video, by_segment_en)
    check_rendition(folder, "subs/fr/index.m3u8", video, by_segment_fr)
    start = float(ffprobe_streams(folder / "240p" / video.segments[0].uri)["format"]["start_time"])
    assert set(maps) == {f"X-TIMESTAMP-MAP=MPEGTS:{round(start * 90000)},LOCAL:00:00:00.000"}
    assert hls["size"] == sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())

    # CMAF: the same renditions in its HLS master, the whole files as text AdaptationSets of the MPD
    folder = local_file(cmaf["fileUrl"]).parent
    master = m3u8.load(str(folder / "index.m3u8"))
    assert [(m.type, m.language) for m in master.media if m.type == "SUBTITLES"] == [
        ("SUBTITLES", "en"),
        ("SUBTITLES", "fr"),
    ]
    assert all(p.stream_info.subtitles == "subs" for p in master.playlists)
    video = m3u8.load(str(folder / master.playlists[0].uri))
    maps = check_rendition(folder, "subs/en/index.m3u8", video, by_segment_en)
    assert set(maps) == {"X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000"}
    mpd = MPEGDASHParser.parse(str(local_file(cmaf["meta"]["dashUrl"])))
    (period,) = mpd.periods
    text = [a for a in period.adaptation_sets if a.content_type == "text"]
    assert [(a.lang, a.mime_type) for a in text] == [("en", "text/vtt"), ("fr", "text/vtt")]
    urls = [a.representations[0].base_urls[0].base_url_value for a in text]
    assert urls == ["subs/en.vtt", "subs/fr.vtt"]
    assert (folder / urls[0]).read_text() == english and (folder / urls[1]).read_text() == french
    assert {a.content_type for a in period.adaptation_sets} == {"video", "audio", "text"}


def failed_with_sidecar(tmp_path: Path, source: Path, name: str, text: str, job_id: str) -> dict:
    """The failed document of an HLS job whose English sidecar `name`, served over HTTP, holds `text`."""
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / name).write_text(text)
    with serve(tmp_path / "www") as server:
        spec = {
            "videoUrl": str(source),
            "presets": [{"format": "hls", "resolutions": ["240"]}],
            "captions": [{"url": server.url(f"/{name}"), "language": "en"}],
        }
        with pytest.raises(JobFailed) as failed:
            encode_video(spec, job_id=job_id)
    return failed.value.document


def test_a_bad_sidecar_fails_the_job_at_ingest_naming_the_file_and_the_line(tmp_path, clips, storage):
    broken = SIDECAR.replace("00:00:07,000", "00:00:0x,000")
    doc = failed_with_sidecar(tmp_path, clips["landscape"], "broken.srt", broken, "f" * 24)
    assert doc["status"] == "failed" and doc["files"] == []
    assert doc["error"] == {
        "step": "ingest",
        "code": "invalid_captions",
        "message": "captions[0] (broken.srt): line 6: bad timestamp '00:00:0x,000'",
    }
    assert not re.search(r"127\.0\.0\.1|/tmp/", doc["error"]["message"])
    assert storage.list_keys("files/") == [], "nothing published"


def spanning_srt(cues: int, seconds: float) -> str:
    """Overlapping cues that each span the whole video: every one is in every segment."""
    end = f"00:00:{seconds:06.3f}".replace(".", ",")
    return "".join(
        f"{n}\n00:00:00,000 --> {end}\nCue {n} says something long enough\n\n" for n in range(1, cues + 1)
    )


def test_captions_copied_into_every_segment_past_a_limit_fail_the_job_before_the_encode(
    tmp_path, clips, storage, monkeypatch
):
    monkeypatch.setenv("VODFLOW_MAX_CAPTION_SEGMENT_CUES", "5")
    doc = failed_with_sidecar(tmp_path, clips["landscape"], "spanning.srt", spanning_srt(20, 3), "a1" * 12)
    assert doc["status"] == "failed" and doc["files"] == []
    assert doc["error"] == {
        "step": "encode",
        "code": "invalid_captions",
        "message": "captions (en): segment 0 (0-3 s) shows more than 5 cues "
        "(VODFLOW_MAX_CAPTION_SEGMENT_CUES)",
    }
    assert storage.list_keys("files/") == [], "nothing published"
    assert temp_left(tmp_path / "tmp") == [], "temp files removed"
    LEDGER.inject("caption amplification")
    LEDGER.job("caption amplification", doc["status"])


def test_a_source_subtitle_stream_is_bounded_per_job_like_a_sidecar(tmp_path, storage, monkeypatch):
    (tmp_path / "spanning.srt").write_text(spanning_srt(40, 13))
    source = make_bilingual_clip(tmp_path / "spanning.mkv", 320, 240, 13, subtitles=tmp_path / "spanning.srt")
    # 3 segments of 40 spanning cues, in 2 ladders: some 12 kB, refused at 8 kB
    monkeypatch.setenv("VODFLOW_MAX_CAPTION_JOB_BYTES", "8000")
    spec = {
        "videoUrl": str(source),
        "presets": [{"format": "hls", "resolutions": ["240"]}, {"format": "cmaf", "resolutions": ["240"]}],
    }
    with pytest.raises(JobFailed) as failed:
        encode_video(spec, job_id="a2" * 12)

    doc = failed.value.document
    assert doc["status"] == "failed" and doc["files"] == []
    assert doc["error"] == {
        "step": "encode",
        "code": "invalid_captions",
        "message": "captions (fr): the subtitle segments of the job come to more than 8000 bytes "
        "(VODFLOW_MAX_CAPTION_JOB_BYTES)",
    }
    assert storage.list_keys("files/") == [], "nothing published"
    LEDGER.inject("caption amplification")
    LEDGER.job("caption amplification", doc["status"])
