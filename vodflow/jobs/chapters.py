"""Chapters of a job (pure): the source's, read from ffprobe's report and cleaned as hostile input, or the
spec's; put on the output's timeline (`on_timeline`) and planned as one WebVTT chapters file plus markers in
every MP4 (`vodflow.packaging.chapters` writes them).

Which chapters a job gets: `"chapters": "source"` takes the source's own; a list in the spec is used as it
is and the source's are ignored (the spec wins, no merge: a list is the whole table of contents). Left out:
none (a plain job's outputs are as before).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from vodflow.jobs.keys import CAPTIONS_PREFIX

MAX_CHAPTERS = 100  # a job's chapters at most: the spec's (refused above it), the source's (the first kept)
MAX_CHAPTER_TITLE = 120  # characters of a title: the spec's refused above it, the source's cut
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


@dataclass(frozen=True)
class ChapterMark:
    """A chapter's start (s) and title; it lasts until the next one starts (the last until the end)."""

    start: float
    title: str


@dataclass(frozen=True)
class ChaptersOutput:
    """The job's chapters on the output timeline (`duration` s long), each in whole milliseconds with a
    distinct start, the first at or after 0: a WebVTT chapters file (`files/captions/<id>.vtt`) and markers
    in every MP4. `origin` says where they came from (`spec` or `source`)."""

    file_id: str
    marks: tuple[ChapterMark, ...]
    duration: float
    origin: Literal["spec", "source"]

    @property
    def key(self) -> str:
        return chapters_key(self.file_id)

    def spans(self) -> list[tuple[int, int, str]]:
        """(start ms, end ms, title) of each chapter: it ends where the next begins, the last at the end."""
        ends = [round(m.start * 1000) for m in self.marks[1:]] + [round(self.duration * 1000)]
        return [(round(m.start * 1000), end, m.title) for m, end in zip(self.marks, ends, strict=True)]


def chapters_key(file_id: str) -> str:
    """Where the chapters file `file_id` is published (`files/captions/<id>.vtt`)."""
    return f"{CAPTIONS_PREFIX}{file_id}.vtt"


def title_problem(title: str) -> str | None:
    """Why a spec chapter's `title` is refused (empty, too long, a control character or line break, a WebVTT
    `-->`), or None. `=`, `;`, `#`, `\\`, `&`, `<` are fine: the writers escape them."""
    if not title.strip():
        return "must not be empty"
    if len(title) > MAX_CHAPTER_TITLE:
        return f"at most {MAX_CHAPTER_TITLE} characters"
    if _CONTROL.search(title):
        return "must not hold line breaks or control characters"
    if "-->" in title:
        return "must not hold '-->'"
    return None


def clean_title(title: Any, number: int) -> str:
    """A source chapter's title made safe: control characters and line breaks as spaces, whitespace
    collapsed, `-->` broken up, NFC, at most `MAX_CHAPTER_TITLE` characters; `Chapter <number>` when
    nothing is left."""
    text = unicodedata.normalize("NFC", str(title) if title is not None else "")
    text = " ".join(_CONTROL.sub(" ", text).split())
    while "-->" in text:
        text = text.replace("-->", "->")
    text = text[:MAX_CHAPTER_TITLE].strip()
    return text or f"Chapter {number}"


def _seconds(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) else None


def source_chapters(report: Sequence[Mapping[str, Any]] | Any) -> tuple[ChapterMark, ...]:
    """The chapters of ffprobe's `-show_chapters` report (its `chapters` list), cleaned: starts that are
    numbers (negative ones at 0), in order, one per millisecond, the first `MAX_CHAPTERS`, titles cleaned
    (`clean_title`). Anything that is not a chapter object is ignored."""
    if not isinstance(report, list):
        return ()
    starts: list[tuple[float, Any]] = []
    for item in report[: MAX_CHAPTERS * 10]:  # a hostile file may list millions: read a bounded number
        if not isinstance(item, Mapping):
            continue
        start = _seconds(item.get("start_time"))
        if start is None:
            continue
        tags = item.get("tags")
        title = tags.get("title") if isinstance(tags, Mapping) else None
        starts.append((max(0.0, start), title))
    starts.sort(key=lambda pair: pair[0])
    marks: list[ChapterMark] = []
    for start, title in starts:
        if marks and round(start * 1000) <= round(marks[-1].start * 1000):
            continue
        marks.append(ChapterMark(start, clean_title(title, len(marks) + 1)))
        if len(marks) == MAX_CHAPTERS:
            break
    return tuple(marks)


def on_timeline(marks: Iterable[ChapterMark], offset: float, duration: float) -> tuple[ChapterMark, ...]:
    """`marks` of the source moved onto an output that starts at `offset` s of the source and lasts
    `duration` s (the hook for a clipped encode; 0 and the source's duration otherwise): shifted by
    `-offset`, the chapter running at the output's start begins at 0, those starting at or after its end are
    dropped; at most one per millisecond."""
    ordered = sorted(marks, key=lambda m: m.start)
    kept: list[ChapterMark] = []
    end_ms = round(duration * 1000) if math.isfinite(duration) else None
    for mark in ordered:
        start = max(0.0, mark.start - offset)
        if end_ms is not None and round(start * 1000) >= end_ms:
            break
        if kept and round(start * 1000) <= round(kept[-1].start * 1000):
            kept[-1] = ChapterMark(start, mark.title)  # a later one starting at or before 0 replaces it
            continue
        kept.append(ChapterMark(start, mark.title))
    return tuple(kept)


def plan_chapters(
    file_id: str,
    spec_marks: Sequence[ChapterMark] | None,
    source_marks: Sequence[ChapterMark],
    offset: float,
    duration: float,
) -> ChaptersOutput | None:
    """The job's chapters output: `spec_marks` (already on the output timeline, checked against it by the
    caller) when given, else the `source_marks` moved onto it (`on_timeline` with `offset`); None when
    there are none (a source without chapters)."""
    if spec_marks is not None:
        marks, origin = on_timeline(spec_marks, 0.0, duration), "spec"
    else:
        marks, origin = on_timeline(source_marks, offset, duration), "source"
    if not marks:
        return None
    return ChaptersOutput(file_id, marks, duration, origin)  # type: ignore[arg-type]
