"""Storyboards (trickplay): sprite sheets of frames every `interval` seconds and the WebVTT thumbnails track
players read for scrubbing previews (`sprite_000.jpg#xywh=x,y,w,h`). Pure: layout, filter and track text.

The sheets come from the encode's own decode: one more branch of its graph, `fps` (a frame every interval),
`scale`, then `tile` (columns x rows a sheet; a last sheet that is not full is written at the end of the
input, its empty tiles black), written as JPEGs numbered from 0 (`-start_number 0`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from vodflow.jobs.plan import StoryboardOutput
from vodflow.packaging.webvtt import format_time

COLUMNS = 10
ROWS = 10
SHEET_NAME = "sprite_{:03d}.jpg"
SHEET_PATTERN = "sprite_%03d.jpg"  # the image2 muxer's name for SHEET_NAME
TRACK = "index.vtt"


@dataclass(frozen=True)
class StoryboardLayout:
    """Where each preview frame sits: `count` tiles of `width` x `height`, `columns` x `rows` a sheet."""

    interval: float
    width: int
    height: int
    count: int
    columns: int = COLUMNS
    rows: int = ROWS

    @property
    def per_sheet(self) -> int:
        return self.columns * self.rows

    @property
    def sheets(self) -> int:
        return math.ceil(self.count / self.per_sheet)

    def tile(self, index: int) -> tuple[int, int, int]:
        """Sheet number and top-left corner (x, y) of frame `index`."""
        sheet, place = divmod(index, self.per_sheet)
        row, column = divmod(place, self.columns)
        return sheet, column * self.width, row * self.height


def storyboard_layout(
    duration: float, interval: float, width: int, source_width: int, source_height: int
) -> StoryboardLayout:
    """The layout for a `duration`-second source: a frame every `interval` s (the first at 0), tiles `width`
    wide (even, never wider than the source) and as tall as the picture's aspect ratio makes them."""
    width = min(width, source_width) // 2 * 2
    height = max(2, round(width * source_height / source_width / 2) * 2)
    count = max(1, math.ceil(duration / interval - 1e-9))
    return StoryboardLayout(interval, width, height, count)


def planned_layout(output: StoryboardOutput) -> StoryboardLayout:
    """The layout of the plan's storyboard."""
    return storyboard_layout(
        output.duration, output.interval, output.width, output.source_width, output.source_height
    )


def storyboard_dir(workdir: Path, output: StoryboardOutput) -> Path:
    """Where the encode writes the sheets and the track of the storyboard."""
    return workdir / output.file_id


def sheet_paths(folder: Path) -> list[Path]:
    """The sheets in `folder`, in order."""
    return sorted(folder.glob("sprite_*.jpg"))


def storyboard_filters(layout: StoryboardLayout) -> list[tuple[str, dict[str, object]]]:
    """The filter chain (name, arguments) that turns the decoded video into the layout's sheets."""
    return [
        ("fps", {"fps": f"1/{layout.interval:g}"}),
        ("scale", {"w": layout.width, "h": layout.height}),
        ("setsar", {"sar": 1}),
        ("tile", {"layout": f"{layout.columns}x{layout.rows}"}),
    ]


def thumbnails_track(layout: StoryboardLayout, duration: float, name: str = SHEET_NAME) -> str:
    """The WebVTT thumbnails track: one cue per frame, `interval` long (the last ends at `duration`), whose
    text is its sheet and the tile's `#xywh=` rectangle."""
    cues = []
    for index in range(layout.count):
        start = index * layout.interval
        end = min(duration, start + layout.interval)
        sheet, x, y = layout.tile(index)
        cues.append(
            f"{format_time(start)} --> {format_time(end)}\n"
            f"{name.format(sheet)}#xywh={x},{y},{layout.width},{layout.height}\n"
        )
    return "WEBVTT\n" + "".join(f"\n{cue}" for cue in cues)
