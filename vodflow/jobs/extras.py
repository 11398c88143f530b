"""Planning a job's animated preview and its chapters (pure): what to make, at which size, on which timeline.

Both are on the output's timeline: `offset` (s of the source where the output starts) and `duration` (s of
the output) are the hook for an encode that keeps only part of the source; a whole-source encode passes 0
and the source's duration.
"""

from __future__ import annotations

from dataclasses import dataclass

from vodflow.errors import StepError
from vodflow.jobs.chapters import ChapterMark, ChaptersOutput, plan_chapters
from vodflow.jobs.keys import IMAGES_PREFIX
from vodflow.jobs.sources import SourceInfo
from vodflow.jobs.spec import Chapter, Preview


@dataclass(frozen=True)
class PreviewOutput:
    """The animated preview: `frames` frames at `fps` from `start` s of the source (its timeline: the
    output's start plus the asked start), `width` x `height` (even, the source's aspect)."""

    file_id: str
    format: str  # gif or webp
    start: float
    fps: int
    frames: int
    width: int
    height: int

    @property
    def key(self) -> str:
        return f"{IMAGES_PREFIX}{self.file_id}.{self.format}"


def preview_size(width: int, source_width: int, source_height: int) -> tuple[int, int]:
    """The preview's picture: `width` (at most the source's, made even), the height keeping the source's
    aspect ratio, rounded to even, at least 2."""
    fitted = max(2, min(width, source_width - source_width % 2))
    height = max(2, round(fitted * source_height / source_width / 2) * 2)
    return fitted, height


def _past_the_end(field: str, timestamp: str, duration: float) -> StepError:
    return StepError(
        "validate", "invalid_spec", f"{field}: {timestamp} is past the end of the {duration:.3f} s source"
    )


def plan_preview(
    preview: Preview | None,
    file_id: str,
    source: SourceInfo,
    offset: float = 0.0,
    duration: float | None = None,
) -> PreviewOutput | None:
    """The preview of the spec, if any: it starts at `preview.start` of the output (StepError(validate,
    invalid_spec) when that is at or past its end) and is cut at the output's end (fewer frames)."""
    if preview is None:
        return None
    length = source.duration if duration is None else duration
    if preview.seconds >= length:
        raise _past_the_end("preview.start", preview.start, length)
    seconds = min(preview.duration, length - preview.seconds)
    frames = max(1, round(seconds * preview.fps))
    width, height = preview_size(preview.width, source.width, source.height)
    return PreviewOutput(
        file_id, preview.format, offset + preview.seconds, preview.fps, frames, width, height
    )


def plan_job_chapters(
    chapters: list[Chapter] | str | None,
    file_id: str,
    source: SourceInfo,
    offset: float = 0.0,
    duration: float | None = None,
) -> ChaptersOutput | None:
    """The job's chapters: the spec's list (on the output's timeline; StepError(validate, invalid_spec)
    naming the first that starts at or past its end), or with `"source"` the source's moved onto it; None
    when the spec asks for none or the source has none."""
    if chapters is None:
        return None
    length = source.duration if duration is None else duration
    marks: list[ChapterMark] | None = None
    if isinstance(chapters, list):
        for i, chapter in enumerate(chapters):
            if chapter.seconds >= length:
                raise _past_the_end(f"chapters[{i}].start", chapter.start, length)
        marks = [ChapterMark(c.seconds, c.title) for c in chapters]
    return plan_chapters(file_id, marks, source.chapters, offset, length)
