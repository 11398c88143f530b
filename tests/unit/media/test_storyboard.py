"""Storyboard layout and its WebVTT thumbnails track."""

from vodflow.media.captions import parse_captions
from vodflow.packaging.storyboard import storyboard_filters, storyboard_layout, thumbnails_track


def test_layout_keeps_the_aspect_ratio_and_fills_sheets_in_order():
    layout = storyboard_layout(duration=1003, interval=5, width=160, source_width=1920, source_height=1080)
    assert (layout.width, layout.height, layout.count, layout.sheets) == (160, 90, 201, 3)
    assert layout.tile(0) == (0, 0, 0) and layout.tile(11) == (0, 160, 90) and layout.tile(100) == (1, 0, 0)
    portrait = storyboard_layout(duration=4, interval=5, width=999, source_width=360, source_height=640)
    assert (portrait.width, portrait.height, portrait.count) == (360, 640, 1), "never wider than the source"


def test_track_cues_cover_the_source_and_point_inside_their_sheet():
    layout = storyboard_layout(duration=12.5, interval=5, width=160, source_width=640, source_height=360)
    track = thumbnails_track(layout, 12.5)
    cues = parse_captions(track.encode())
    assert [(c.start, c.end) for c in cues] == [(0, 5), (5, 10), (10, 12.5)]
    assert [c.lines[0] for c in cues] == [
        "sprite_000.jpg#xywh=0,0,160,90",
        "sprite_000.jpg#xywh=160,0,160,90",
        "sprite_000.jpg#xywh=320,0,160,90",
    ]
    assert dict(storyboard_filters(layout))["tile"] == {"layout": "10x10"}
