"""Caption files read strictly (errors name the line) and written as WebVTT, whole and in HLS segments."""

import random
from pathlib import Path

import m3u8
import pytest

from vodflow.jobs.plan import CaptionOutput
from vodflow.media.captions import (
    MAX_MPEGTS,
    CaptionError,
    CaptionLimitError,
    CaptionLimits,
    Cue,
    build_subtitle_extract_command,
    hls_segments,
    parse_captions,
    segmented_bytes,
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
    segments = list(hls_segments(cues, duration=14.5, segment_seconds=6))
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


def test_segments_are_the_cues_each_shows_as_a_whole_scan_finds_them():
    rng = random.Random(21)
    cues = []
    for _ in range(300):
        start = round(rng.uniform(0, 100), 3)
        cues.append(Cue(start, round(start + rng.choice([0.5, 2, 7, 30]), 3), (f"cue {len(cues)}",)))
    cues.sort(key=lambda c: (c.start, c.end))
    segments = list(hls_segments(cues, duration=95.0, segment_seconds=6))
    for index, segment in enumerate(segments):
        start, end = index * 6, min(95.0, index * 6 + 6)
        shown = [c for c in cues if c.start < end and c.end > start]
        assert segment == webvtt(shown, "X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000")
    assert segmented_bytes(cues, 95.0, 6, CaptionLimits()) == sum(len(s.encode()) for s in segments)


# Every cue spans the whole video: each is copied into every segment.
SPANNING = [Cue(0.0, 36_000.0, (f"cue {n} " + "é" * 30,)) for n in range(50)]


def test_segments_are_made_one_at_a_time_and_refused_at_the_first_over_a_limit():
    segments = hls_segments(
        SPANNING, duration=36_000, segment_seconds=6, limits=CaptionLimits(segment_cues=10)
    )
    with pytest.raises(CaptionLimitError, match=r"segment 0 .* more than 10 cues .*SEGMENT_CUES"):
        next(segments)

    made = 0
    segments = hls_segments(SPANNING, duration=36_000, segment_seconds=6, limits=CaptionLimits())
    for _ in segments:  # 6000 segments in all: only those asked for are made
        made += 1
        if made == 3:
            break
    assert made == 3 and segments.gi_frame is not None, "a generator, suspended after three segments"

    small = CaptionLimits(segment_bytes=1000)
    with pytest.raises(
        CaptionLimitError, match=r"segment 0 .* more than 1000 \(VODFLOW_MAX_CAPTION_SEGMENT_BYTES"
    ):
        next(hls_segments(SPANNING, duration=36_000, segment_seconds=6, limits=small))


def test_what_segments_come_to_is_reckoned_without_making_them_and_bounded_per_job():
    one = len(next(hls_segments(SPANNING, 36_000, 6, MAX_MPEGTS)).encode())
    assert segmented_bytes(SPANNING, 6000, 6, CaptionLimits(), MAX_MPEGTS) == 1000 * one
    with pytest.raises(CaptionLimitError, match=r"more than 1000000 bytes \(VODFLOW_MAX_CAPTION_JOB_BYTES\)"):
        segmented_bytes(SPANNING, 36_000, 6, CaptionLimits(job_bytes=1_000_000))


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
    (segment,) = list(hls_segments([Cue(1.0, 2.0, ("a",))], duration=5, segment_seconds=6, mpegts=126000))
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
        "-map", "0:s:0", "-c:s", "webvtt", "-fs", "4194305", "-f", "webvtt", "/w/a.vtt",
        "-map", "0:s:2", "-c:s", "webvtt", "-fs", "4194305", "-f", "webvtt", "/w/b.vtt",
    ]  # fmt: skip
    with pytest.raises(ValueError):
        build_subtitle_extract_command(Path("/w/source"), [])


def test_an_empty_webvtt_cue_is_dropped_but_an_empty_srt_cue_is_a_mistake():
    vtt = b"WEBVTT\n\n00:01.000 --> 00:02.000\nHello\n\n" + b"00:02.000 --> 00:04.000\n\n"
    vtt += b"00:04.000 --> 00:05.000\n<i></i>\n"
    assert parse_captions(vtt) == [Cue(1.0, 2.0, ("Hello",))]
    with pytest.raises(CaptionError, match="without text"):
        parse_captions(b"1\n00:00:01,000 --> 00:00:02,000\n<i></i>\n")
