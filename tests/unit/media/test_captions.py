"""Caption files read strictly (errors name the line) and written as WebVTT, whole and in HLS segments."""

from pathlib import Path

import m3u8
import pytest

from vodflow.jobs.plan import CaptionOutput
from vodflow.media.captions import (
    CaptionError,
    Cue,
    build_subtitle_extract_command,
    hls_segments,
    parse_captions,
    subtitle_playlist,
    webvtt,
    with_subtitles,
)

SRT = b"""1
00:00:01,000 --> 00:00:02,500
Hello <i>there</i>

2
00:00:07,000 --> 00:00:08,000
Second line one
Second line two
"""

VTT = b"""WEBVTT
Kind: captions

NOTE a note that is dropped

intro
00:01.000 --> 00:02.500 align:start
Hello

00:00:07.000 --> 00:00:08.000
<v Bob>a & b</v>
"""


def test_srt_and_webvtt_give_the_same_cues():
    srt, vtt = parse_captions(SRT), parse_captions(VTT)
    assert srt[0] == Cue(1.0, 2.5, ("Hello there",)) and vtt[0] == Cue(1.0, 2.5, ("Hello",))
    assert srt[1].lines == ("Second line one", "Second line two") and vtt[1].lines == ("a & b",)
    assert webvtt(srt).startswith("WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nHello there\n")
    assert "a &amp; b" in webvtt(vtt), "text stays text"
    assert parse_captions(webvtt(srt).encode()) == srt, "what is written reads back the same"


@pytest.mark.parametrize(
    ("data", "line", "reason"),
    [
        (b"1\n00:00:01,000 -> 00:00:02,000\nx\n", 2, "timing line"),
        (b"1\n00:00:01,000 --> 00:00:0x,000\nx\n", 2, "bad timestamp"),
        (b"1\n00:00:03,000 --> 00:00:02,000\nx\n", 2, "ends before it starts"),
        (b"1\n00:00:01,000 --> 00:00:02,000\nok\n\nfoo\n00:00:03,000 --> 00:00:04,000\nx\n", 5, "cue number"),
        (b"1\n00:00:01,000 --> 00:00:02,000\n\n", 3, "without text"),
        (b"WEBVTTX\n\n00:01.000 --> 00:02.000\nx\n", 1, "WEBVTT"),
        (b"WEBVTT\n\nid\nnot a timing\n", 3, "timing line"),
        (b"1\n00:00:01,000 --> 00:00:02,000\n\xff\xfe\n", 3, "not UTF-8"),
        (b"", 0, "no cue"),
    ],
)
def test_bad_files_name_the_line_and_the_reason(data, line, reason):
    with pytest.raises(CaptionError) as caught:
        parse_captions(data)
    assert caught.value.line == line and reason in str(caught.value)


def test_limits_hold_for_hostile_files():
    with pytest.raises(CaptionError, match="longer than"):
        parse_captions(b"1\n00:00:01,000 --> 00:00:02,000\n" + b"x" * 5000 + b"\n")
    with pytest.raises(CaptionError, match="larger than"):
        parse_captions(b"x" * (5 << 20))


def test_hls_segments_cover_the_duration_and_keep_spanning_cues_in_both():
    cues = [Cue(1.0, 2.0, ("a",)), Cue(5.5, 6.5, ("b",)), Cue(13.0, 14.0, ("c",))]
    segments = hls_segments(cues, duration=14.5, segment_seconds=6)
    assert len(segments) == 3
    assert all(s.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n") for s in segments)
    assert [[c.lines[0] for c in parse_captions(s.encode())] if "-->" in s else [] for s in segments] == [
        ["a", "b"],
        ["b"],
        ["c"],
    ]
    playlist = subtitle_playlist(14.5, 6)
    assert playlist.count("#EXTINF:") == 3 and "#EXTINF:2.500000," in playlist
    assert playlist.rstrip().endswith("#EXT-X-ENDLIST") and "seg_00002.vtt" in playlist


# --- the HLS subtitle group and the extraction command ------------------------------------------------------

CAPTIONS = [
    CaptionOutput("a" * 24, "en", "English", Path("/w/captions/en.vtt")),
    CaptionOutput("b" * 24, "pt-BR", 'Portu"guês', Path("/w/captions/pt-BR.vtt")),
]
MASTER = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-STREAM-INF:BANDWIDTH=484000,RESOLUTION=428x240,CODECS="avc1.64001e,mp4a.40.2"
240p/index.m3u8

#EXT-X-STREAM-INF:BANDWIDTH=70400,CODECS="mp4a.40.2"
audio/index.m3u8
"""


def test_the_master_gets_a_subtitle_group_named_on_every_variant():
    master = m3u8.loads(with_subtitles(MASTER, CAPTIONS))
    subtitles = [m for m in master.media if m.type == "SUBTITLES"]
    assert [(m.group_id, m.language, m.name, m.default, m.autoselect, m.uri) for m in subtitles] == [
        ("subs", "en", "English", "NO", "YES", "subs/en/index.m3u8"),
        ("subs", "pt-BR", "Português", "NO", "YES", "subs/pt-BR/index.m3u8"),
    ]
    assert [p.stream_info.subtitles for p in master.playlists] == ["subs", "subs"]
    assert [p.uri for p in master.playlists] == ["240p/index.m3u8", "audio/index.m3u8"], "variants kept"


def test_a_master_without_captions_is_unchanged_and_a_non_master_refused():
    assert with_subtitles(MASTER, []) == MASTER
    with pytest.raises(ValueError, match="master"):
        with_subtitles("#EXTM3U\n#EXTINF:6,\nseg_00000.ts\n", CAPTIONS)
    with pytest.raises(ValueError, match="already"):
        with_subtitles(with_subtitles(MASTER, CAPTIONS), CAPTIONS)


def test_subtitle_segments_name_the_media_timestamp_of_zero():
    (segment,) = hls_segments([Cue(1.0, 2.0, ("a",))], duration=5, segment_seconds=6, mpegts=126000)
    assert segment.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n")


def test_markup_of_srt_and_ass_leaves_plain_text():
    (cue,) = parse_captions(
        b'1\n00:00:01,000 --> 00:00:02,000\n{\\an8}<font color="#ffff00">Hi</font> <b>you</b>\n'
    )
    assert cue.lines == ("Hi you",)


def test_the_extraction_command_opens_the_source_with_the_allow_list_and_writes_webvtt():
    command = build_subtitle_extract_command(
        Path("/w/source"), [(0, Path("/w/a.vtt")), (2, Path("/w/b.vtt"))]
    )
    assert command[0] == "ffmpeg" and "-nostdin" in command
    at = command.index("-i")
    assert command[at - 4 : at] == ["-format_whitelist", command[at - 3], "-protocol_whitelist", "file"]
    assert command[at + 1] == "file:/w/source"
    assert command[at + 2 :] == [
        "-map", "0:s:0", "-c:s", "webvtt", "-f", "webvtt", "/w/a.vtt",
        "-map", "0:s:2", "-c:s", "webvtt", "-f", "webvtt", "/w/b.vtt",
    ]  # fmt: skip
    with pytest.raises(ValueError):
        build_subtitle_extract_command(Path("/w/source"), [])


def test_an_empty_webvtt_cue_is_dropped_but_an_empty_srt_cue_is_a_mistake():
    vtt = b"WEBVTT\n\n00:01.000 --> 00:02.000\nHello\n\n" + b"00:02.000 --> 00:04.000\n\n"
    vtt += b"00:04.000 --> 00:05.000\n<i></i>\n"
    assert parse_captions(vtt) == [Cue(1.0, 2.0, ("Hello",))]
    with pytest.raises(CaptionError, match="without text"):
        parse_captions(b"1\n00:00:01,000 --> 00:00:02,000\n<i></i>\n")
