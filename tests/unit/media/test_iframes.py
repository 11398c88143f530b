"""I-frame playlists: keyframe byte ranges of MPEG-TS segments, the playlist text, the master's new lines."""

import math

import m3u8
import pytest

from vodflow.packaging.fmp4 import Fragment
from vodflow.packaging.iframes import (
    IFrame,
    Packet,
    fmp4_iframes,
    iframe_playlist,
    peak_bandwidth,
    read_packet_report,
    segment_iframes,
    with_iframe_streams,
)

VIDEO, AUDIO, PMT = 0x100, 0x101, 0x1000


def ts(*pids: int) -> bytes:
    return b"".join(bytes([0x47, pid >> 8, pid & 0xFF]) + bytes(185) for pid in pids)


def test_a_keyframe_range_starts_at_the_tables_before_it_and_ends_at_the_next_video_packet():
    #          0  188  376    564    752    940 1128 1316   1504
    data = ts(0, PMT, VIDEO, AUDIO, VIDEO, 0, PMT, VIDEO, AUDIO)
    packets = [Packet(1.4, 376, True), Packet(3.4, 1316, True), Packet(1.44, 752, False)]
    frames = segment_iframes("seg_00000.ts", data, packets, {VIDEO, AUDIO})
    assert frames == [
        IFrame("seg_00000.ts", 0, 752, 1.4),
        IFrame("seg_00000.ts", 940, len(data) - 940, 3.4),
    ]


def test_the_playlist_is_an_i_frames_only_vod_playlist_with_a_byte_range_per_keyframe():
    frames = [IFrame("seg_00000.ts", 0, 9400, 1.4), IFrame("seg_00000.ts", 94000, 7520, 3.4)]
    text = iframe_playlist(frames, end=4.9)
    playlist = m3u8.loads(text)
    assert playlist.is_i_frames_only and playlist.version == 4 and playlist.is_endlist
    assert [(s.uri, s.byterange, round(s.duration, 3)) for s in playlist.segments] == [
        ("seg_00000.ts", "9400@0", 2.0),
        ("seg_00000.ts", "7520@94000", 1.5),
    ]
    assert playlist.target_duration == 2
    assert peak_bandwidth(frames, 4.9) == 40107, "the second keyframe's 7520 bytes in 1.5 s"


def test_fmp4_keyframes_are_the_fragments_that_start_on_one_timed_by_the_fragments_before():
    segments = [
        ("seg-0-00001.m4s", [Fragment(76, 900, 2.0, True), Fragment(5000, 800, 2.0, False)]),
        ("seg-0-00002.m4s", [Fragment(76, 700, 2.0, True), Fragment(4000, 600, 1.0, True)]),
    ]
    frames, end = fmp4_iframes(segments)
    assert frames == [
        IFrame("seg-0-00001.m4s", 76, 900, 0.0),
        IFrame("seg-0-00002.m4s", 76, 700, 4.0),
        IFrame("seg-0-00002.m4s", 4000, 600, 6.0),
    ]
    assert end == 7.0
    playlist = m3u8.loads(iframe_playlist(frames, end, init="init-0.m4s"))
    assert playlist.is_i_frames_only and playlist.version == 7 and playlist.is_endlist
    assert [m.uri for m in playlist.segment_map] == ["init-0.m4s"]
    assert [(s.uri, s.byterange, s.duration) for s in playlist.segments] == [
        ("seg-0-00001.m4s", "900@76", 4.0),
        ("seg-0-00002.m4s", "700@76", 2.0),
        ("seg-0-00002.m4s", "600@4000", 1.0),
    ], "the fragment that starts on no keyframe lengthens the one before"
    # target 4 s: runs of 2-6 s count; the last keyframe's 1 s alone does not, with the one before it does
    assert peak_bandwidth(frames, end) == 3467, "700 + 600 bytes in 3 s"


def test_a_last_keyframe_one_frame_long_does_not_make_the_peak():
    frames = [IFrame("s.ts", 0, 8000, 0.0), IFrame("s.ts", 8000, 8000, 2.0), IFrame("s.ts", 16000, 8000, 4.0)]
    assert peak_bandwidth(frames, 4.04) == math.ceil(16000 * 8 / 2.04), "8000 bytes in 0.04 s joins the run"
    assert peak_bandwidth(frames[:1], 0.04) == 1_600_000, "nothing else: the whole playlist's rate"


MASTER = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-STREAM-INF:BANDWIDTH=475200,RESOLUTION=428x240,CODECS="avc1.640015,mp4a.40.2"
240p/index.m3u8

#EXT-X-STREAM-INF:BANDWIDTH=1020800,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2"
360p/index.m3u8

"""


RUNGS = [("240p", 90000), ("360p", 150000)]


def test_the_master_lists_each_rungs_i_frame_playlist_once():
    streams = {f"{rung}/index.m3u8": (bandwidth, f"{rung}/iframes.m3u8") for rung, bandwidth in RUNGS}
    rewritten = with_iframe_streams(MASTER, streams)
    assert rewritten.startswith(MASTER.rstrip("\n") + "\n#EXT-X-I-FRAME-STREAM-INF:")
    assert with_iframe_streams(rewritten, streams) == rewritten, "idempotent"
    master = m3u8.loads(rewritten)
    assert [p.uri for p in master.playlists] == ["240p/index.m3u8", "360p/index.m3u8"]
    streams = [(p.uri, p.iframe_stream_info.bandwidth, p.iframe_stream_info.resolution,
                p.iframe_stream_info.codecs) for p in master.iframe_playlists]  # fmt: skip
    assert streams == [
        ("240p/iframes.m3u8", 90000, (428, 240), "avc1.640015"),
        ("360p/iframes.m3u8", 150000, (640, 360), "avc1.64001e"),
    ]


def test_a_packet_report_gives_video_packets_every_pid_and_the_end():
    report = {
        "streams": [{"index": 0, "id": "0x100", "codec_type": "video"}, {"index": 1, "id": "0x101"}],
        "packets": [
            {"stream_index": 0, "pts_time": "1.4", "pos": "376", "flags": "K__"},
            {"stream_index": 1, "pts_time": "1.4", "pos": "564", "flags": "K__"},
            {"stream_index": 0, "pts_time": "1.44", "pos": "752", "flags": "___"},
        ],
        "format": {"start_time": "1.4", "duration": "6.0"},
    }
    packets, pids, end = read_packet_report(report)
    assert packets == [Packet(1.4, 376, True), Packet(1.44, 752, False)]
    assert pids == {VIDEO, AUDIO} and end == 7.4


def rfc_8216_peak(playlist_text: str) -> float:
    """The peak segment bit rate of RFC 8216 4.3.4.2, computed from the playlist a player reads: the largest
    bit rate of any contiguous set of segments lasting 0.5 to 1.5 times the target duration (sizes over
    durations); the whole playlist's rate when no set fits (the playlist's documented fallback)."""
    playlist = m3u8.loads(playlist_text)
    sizes = [int(s.byterange.split("@")[0]) for s in playlist.segments]
    spans = [s.duration for s in playlist.segments]
    target = playlist.target_duration
    rates = [
        sum(sizes[i:j]) * 8 / sum(spans[i:j])
        for i in range(len(sizes))
        for j in range(i + 1, len(sizes) + 1)
        if 0.5 * target <= sum(spans[i:j]) <= 1.5 * target
    ]
    return max(rates) if rates else sum(sizes) * 8 / sum(spans)


def test_the_peak_bandwidth_is_the_rfc_peak_of_the_playlist_it_describes():
    """Checked against the RFC's definition applied to the playlist text, on keyframe patterns of every
    kind (regular, irregular, one huge keyframe, a short last one)."""
    import random

    rng = random.Random(8216)
    for _ in range(200):
        count = rng.randint(1, 12)
        times = sorted(rng.uniform(0, 30) for _ in range(count))
        times[0] = 0.0
        frames = [
            IFrame("s.ts", 188 * i, rng.choice([rng.randint(1, 20), 1000]) * 188, t)
            for i, t in enumerate(times)
        ]
        end = times[-1] + rng.choice([0.04, rng.uniform(0.1, 6)])
        expected = rfc_8216_peak(iframe_playlist(frames, end))
        assert peak_bandwidth(frames, end) == pytest.approx(expected, rel=1e-3, abs=2), (frames, end)
