"""Reading ffmpeg's EVENT playlists and turning the final one into the VOD playlist."""

import pytest

from vodflow.packaging.hls import as_vod, finished_segments, is_event_playlist

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
