"""Caption files read strictly (errors name the line) and written as WebVTT, whole and in HLS segments."""

import pytest

from vodflow.media.captions import (
    CaptionError,
    Cue,
    hls_segments,
    parse_captions,
    subtitle_playlist,
    webvtt,
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
