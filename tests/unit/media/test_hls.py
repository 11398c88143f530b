"""Reading ffmpeg's EVENT playlists, turning the final one into the VOD playlist, and joining the parts of
short first segments into a rung's segments."""

import pytest

from vodflow.media.commands import KEYFRAME_SECONDS
from vodflow.packaging.hls import (
    FIRST_SEGMENT_SECONDS,
    Join,
    as_vod,
    check_first_segment,
    finished_segments,
    is_event_playlist,
    regrouped,
)

HEAD = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:0\n"
EVENT = HEAD + "#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXTINF:6.000000,\nseg_00000.ts\n"


def test_finished_segments_in_order_and_never_a_half_written_line():
    two = EVENT + "#EXTINF:6.000000,\nseg_00001.ts\n"
    assert finished_segments(two) == ["seg_00000.ts", "seg_00001.ts"]
    assert finished_segments(two + "#EXTINF:2.0,\nseg_000") == ["seg_00000.ts", "seg_00001.ts"]
    assert finished_segments(EVENT.rstrip("\n")) == []  # caught before its last newline
    assert finished_segments(HEAD + "stray.ts\n") == [], "a URI needs its #EXTINF"


def test_a_finished_event_playlist_becomes_vod_and_nothing_else_changes():
    done = EVENT + "#EXT-X-ENDLIST\n"
    vod = as_vod(done)
    assert is_event_playlist(done) and not is_event_playlist(vod)
    assert vod == done.replace("#EXT-X-PLAYLIST-TYPE:EVENT", "#EXT-X-PLAYLIST-TYPE:VOD")
    with pytest.raises(ValueError):
        as_vod(EVENT)  # not ended: the encode has not finished it
    with pytest.raises(ValueError):
        as_vod(vod)


# Short first segments: ffmpeg's 2 s parts joined into the rung's segments.

PARTS_HEAD = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"


def parts_playlist(durations: list[str], kind: str = "EVENT", ended: bool = False) -> str:
    lines = [f"#EXT-X-PLAYLIST-TYPE:{kind}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for i, d in enumerate(durations):
        lines += [f"#EXTINF:{d},", f"part_{i:05d}.ts"]
    return PARTS_HEAD + "\n".join(lines + (["#EXT-X-ENDLIST"] if ended else [])) + "\n"


def listed(playlist: str) -> list[tuple[str, str]]:
    lines = playlist.splitlines()
    return [(lines[i].removeprefix("#EXTINF:").rstrip(","), lines[i + 1]) for i, line in enumerate(lines)
            if line.startswith("#EXTINF:")]  # fmt: skip


def test_the_first_six_seconds_in_short_segments_then_six_second_ones():
    vod, joins = regrouped(parts_playlist(["2.000000"] * 10 + ["0.960000"], "VOD", ended=True))
    assert listed(vod) == [
        ("2.000000", "seg_00000.ts"),
        ("2.000000", "seg_00001.ts"),
        ("2.000000", "seg_00002.ts"),
        ("6.000000", "seg_00003.ts"),
        ("6.000000", "seg_00004.ts"),
        ("2.960000", "seg_00005.ts"),  # the last group, short, once the playlist has ended
    ]
    assert joins[:4] == [
        Join("seg_00000.ts", ("part_00000.ts",)),
        Join("seg_00001.ts", ("part_00001.ts",)),
        Join("seg_00002.ts", ("part_00002.ts",)),
        Join("seg_00003.ts", ("part_00003.ts", "part_00004.ts", "part_00005.ts")),
    ]
    assert joins[-1] == Join("seg_00005.ts", ("part_00009.ts", "part_00010.ts"))
    head = vod.split("#EXTINF:", 1)[0]
    assert head == PARTS_HEAD.replace("TARGETDURATION:2", "TARGETDURATION:6") + (
        "#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    )
    assert vod.endswith("seg_00005.ts\n#EXT-X-ENDLIST\n")


def test_a_growing_playlist_lists_whole_segments_only_and_keeps_its_target_duration():
    one, _ = regrouped(parts_playlist(["2.000000"]))
    assert listed(one) == [("2.000000", "seg_00000.ts")] and "#EXT-X-TARGETDURATION:6\n" in one
    five, joins = regrouped(parts_playlist(["2.000000"] * 5))
    assert [uri for _, uri in listed(five)] == ["seg_00000.ts", "seg_00001.ts", "seg_00002.ts"]
    assert len(joins) == 3, "parts 3 and 4 wait for part 5"
    six, _ = regrouped(parts_playlist(["2.000000"] * 6))
    assert listed(six)[-1] == ("6.000000", "seg_00003.ts") and "#EXT-X-ENDLIST" not in six
    assert five in six.replace("#EXTINF:6.000000,\nseg_00003.ts\n", ""), "an EVENT playlist only grows"
    assert six.startswith(five.rsplit("seg_00002.ts\n", 1)[0])


def test_the_target_duration_covers_a_long_segment_and_a_plain_playlist_is_left_alone():
    long, _ = regrouped(parts_playlist(["2.000000"] * 3 + ["2.500000"] * 3, "VOD", ended=True))
    assert listed(long)[-1] == ("7.500000", "seg_00003.ts") and "#EXT-X-TARGETDURATION:8\n" in long
    plain = EVENT + "#EXT-X-ENDLIST\n"
    assert regrouped(plain) == (plain, [])
    tagged = plain.replace("#EXTINF", "#EXT-X-DISCONTINUITY\n#EXTINF")
    assert regrouped(tagged) == (tagged, []), "without parts nothing is read: today's playlists as they are"
    assert regrouped(PARTS_HEAD) == (PARTS_HEAD, [])


@pytest.mark.parametrize(
    "bad",
    [
        parts_playlist(["2.0", "2.0"]).replace("part_00001.ts", "../part_00001.ts"),
        parts_playlist(["2.0", "2.0"]).replace("part_00001.ts", "seg_00001.ts"),
        parts_playlist(["2.0"]).replace("#EXTINF:2.0,", "#EXTINF:nan,"),
        parts_playlist(["2.0"]).replace("#EXTINF:2.0,", "#EXTINF:x,"),
        parts_playlist(["2.0", "2.0"]).replace("ts\n#EXTINF", "ts\n#EXT-X-DISCONTINUITY\n#EXTINF"),
    ],
    ids=["path", "mixed", "nan", "unreadable", "tag"],
)  # fmt: skip
def test_a_playlist_of_parts_vodflow_did_not_ask_for_is_refused(bad):
    with pytest.raises(ValueError):
        regrouped(bad)


def test_only_the_keyframe_interval_or_none():
    check_first_segment(0)
    check_first_segment(FIRST_SEGMENT_SECONDS)
    assert FIRST_SEGMENT_SECONDS == KEYFRAME_SECONDS, "ffmpeg cuts the parts at the 2 s keyframes"
    for seconds in (1, 3, 6):
        with pytest.raises(ValueError, match="first segment length"):
            check_first_segment(seconds)
