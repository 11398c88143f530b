"""The `preview` and `chapters` keys: spec validation (caps, order, titles), the remote refusal, the source's
chapters read as hostile input, their move onto the output's timeline, and the planners."""

from __future__ import annotations

import math

import pytest

from vodflow.errors import SpecError, StepError
from vodflow.jobs.chapters import (
    MAX_CHAPTER_TITLE,
    MAX_CHAPTERS,
    ChapterMark,
    ChaptersOutput,
    clean_title,
    on_timeline,
    source_chapters,
)
from vodflow.jobs.extras import plan_job_chapters, plan_preview, preview_size
from vodflow.jobs.sources import SourceInfo
from vodflow.jobs.spec import check_remote_outputs, parse_spec

GOOD = {"videoUrl": "https://example.test/v.mp4", "presets": [{"resolutions": ["360"], "format": "mp4"}]}


def spec_with(**changes):
    return {**GOOD, **changes}


def source(duration: float = 20.0, width: int = 640, height: int = 360, chapters=()) -> SourceInfo:
    return SourceInfo(duration, width, height, 0, True, "h264", "mov,mp4", 25.0, chapters=tuple(chapters))


def chapter(start: str, title: str = "t") -> dict[str, str]:
    return {"start": start, "title": title}


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"preview": {"format": "png"}}, "preview.format", "allowed: 'gif' or 'webp'"),
        ({"preview": {"format": "gif", "duration": 10.5}}, "preview.duration", "less than or equal to 10"),
        ({"preview": {"format": "gif", "duration": 0}}, "preview.duration", "greater than 0"),
        ({"preview": {"format": "gif", "fps": 31}}, "preview.fps", "less than or equal to 30"),
        ({"preview": {"format": "gif", "width": 1282}}, "preview.width", "less than or equal to 1280"),
        ({"preview": {"format": "webp", "width": 321}}, "preview.width", "must be even"),
        ({"preview": {"format": "gif", "start": "1:00"}}, "preview.start", "malformed"),
        ({"preview": {"format": "gif", "loop": 2}}, "preview.loop", "unknown field"),
        ({"chapters": []}, "chapters", "must not be empty"),
        ({"chapters": "sauce"}, "chapters", "allowed: a list of chapters or 'source'"),
        ({"chapters": 3}, "chapters", "allowed: a list of chapters or 'source'"),
        ({"chapters": [chapter("00:00:01"), chapter("00:00:01")]}, "chapters", "[1] starts at or before [0]"),
        ({"chapters": [chapter("00:00:05"), chapter("00:00:01")]}, "chapters", "must be in order"),
        (
            {"chapters": [chapter("00:00:01.0001"), chapter("00:00:01.0004")]},
            "chapters",
            "at least 1 ms apart",
        ),
        ({"chapters": [chapter("00:00:01", "a\nb")]}, "chapters[0].title", "line breaks"),
        ({"chapters": [chapter("00:00:01", "a\x00")]}, "chapters[0].title", "control characters"),
        ({"chapters": [chapter("00:00:01", "00:01 --> 00:02")]}, "chapters[0].title", "'-->'"),
        ({"chapters": [chapter("00:00:01", " ")]}, "chapters[0].title", "must not be empty"),
        ({"chapters": [chapter("00:00:01", "x" * 121)]}, "chapters[0].title", "at most 120 characters"),
        ({"chapters": [chapter("00:00:0x")]}, "chapters[0].start", "malformed"),
        ({"chapters": [{"start": "00:00:00", "titel": "a"}]}, "chapters[0].titel", "did you mean 'title'"),
        (
            {"chapters": [chapter(f"00:00:{i // 10:02d}.{i % 10}") for i in range(MAX_CHAPTERS + 1)]},
            "chapters",
            f"at most {MAX_CHAPTERS} items",
        ),
    ],
)
def test_bad_preview_and_chapters_are_refused_naming_the_field(changes, field, reason):
    with pytest.raises(SpecError) as refused:
        parse_spec(spec_with(**changes))
    assert refused.value.field == field, str(refused.value)
    assert reason in refused.value.reason
    assert len(refused.value.problems) == 1, "one mistake, one error (no second union branch)"


def test_good_preview_and_chapters_keep_their_wire_form():
    spec = parse_spec(
        spec_with(
            preview={"format": "webp", "start": "00:00:02.5", "fps": 12, "width": 480},
            chapters=[chapter("00:00:00", "Intro = a; #b \\ c"), chapter("00:01:00.5", "Q&A <live>")],
        )
    )
    assert spec.wire()["preview"] == {
        "format": "webp", "start": "00:00:02.5", "duration": 3, "fps": 12, "width": 480,
    }  # fmt: skip
    assert [c.seconds for c in spec.chapters] == [0, 60.5]
    assert parse_spec(spec_with(chapters="source")).chapters == "source"
    assert "preview" not in parse_spec(GOOD).wire() and "chapters" not in parse_spec(GOOD).wire()


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"preview": {"format": "gif"}}, "preview"), ({"chapters": "source"}, "chapters")],
)
@pytest.mark.parametrize("service", ["videosdk", "mpc"])
def test_remote_encoders_refuse_preview_and_chapters(changes, field, service):
    with pytest.raises(SpecError) as refused:
        check_remote_outputs(parse_spec(spec_with(**changes)), service)
    assert refused.value.field == field
    assert refused.value.reason == f"made only by the local encoder, not by {service}"
    check_remote_outputs(parse_spec(GOOD), service)


def test_source_chapters_are_read_as_hostile_input():
    report = [
        {"start_time": "12.5", "tags": {"title": "Later"}},
        {"start_time": "-3", "tags": {"title": "Before the start"}},
        {"start_time": "nan", "tags": {"title": "Not a time"}},
        {"start_time": "inf"},
        "not a chapter",
        {"tags": {"title": "No start"}},
        {"start_time": "12.5004", "tags": {"title": "Same millisecond"}},
        {"start_time": "5", "tags": {"title": "Line\nbreak --> and\x00 NUL\r\n"}},
        {"start_time": "7", "tags": {"title": "\n\t "}},
        {"start_time": "9", "tags": "not an object"},
        {"start_time": "10", "tags": {"title": "y" * 5000}},
    ]
    marks = source_chapters(report)
    assert [m.start for m in marks] == [0.0, 5.0, 7.0, 9.0, 10.0, 12.5]
    assert marks[0].title == "Before the start"
    assert marks[1].title == "Line break -> and NUL"
    assert (marks[2].title, marks[3].title) == ("Chapter 3", "Chapter 4")
    assert marks[4].title == "y" * MAX_CHAPTER_TITLE
    assert marks[5].title == "Later"
    assert source_chapters("nope") == () and source_chapters(None) == ()


def test_a_source_with_thousands_of_chapters_keeps_the_first_hundred():
    marks = source_chapters([{"start_time": str(i), "tags": {"title": f"c{i}"}} for i in range(50_000)])
    assert len(marks) == MAX_CHAPTERS and marks[-1].title == f"c{MAX_CHAPTERS - 1}"


@pytest.mark.parametrize(
    ("title", "cleaned"),
    [("a-->b", "a->b"), ("a--->b", "a->b"), ("a\u2028b", "a b"), ("", "Chapter 7"), (None, "Chapter 7")],
)
def test_clean_title(title, cleaned):
    assert clean_title(title, 7) == cleaned


def test_on_timeline_shifts_clamps_and_drops():
    marks = [ChapterMark(0, "a"), ChapterMark(4, "b"), ChapterMark(10, "c"), ChapterMark(20, "d")]
    assert on_timeline(marks, 0, 30) == tuple(marks)
    # an output of the source's 5 s to 15 s: b runs at its start, c 5 s in, d past its end
    assert on_timeline(marks, 5, 10) == (ChapterMark(0, "b"), ChapterMark(5, "c"))
    assert on_timeline(marks, 0, 10) == tuple(marks[:2]), "a chapter starting at the end is dropped"
    assert on_timeline(marks, 0, math.inf) == tuple(marks)


def test_chapter_spans_end_where_the_next_begins():
    out = ChaptersOutput("c", (ChapterMark(0, "a"), ChapterMark(2.5, "b")), 8.0004, "spec")
    assert out.spans() == [(0, 2500, "a"), (2500, 8000, "b")]
    assert out.key == "files/captions/c.vtt"


def test_plan_job_chapters_the_spec_wins_and_the_source_is_opt_in():
    info = source(chapters=[ChapterMark(0, "src a"), ChapterMark(8, "src b")])
    spec = parse_spec(spec_with(chapters=[chapter("00:00:01", "spec")]))
    planned = plan_job_chapters(spec.chapters, "f", info)
    assert planned.marks == (ChapterMark(1, "spec"),) and planned.origin == "spec"
    from_source = plan_job_chapters("source", "f", info)
    assert [m.title for m in from_source.marks] == ["src a", "src b"] and from_source.origin == "source"
    assert from_source.duration == 20.0
    assert plan_job_chapters(None, "f", info) is None, "left out: none, even when the source has some"
    assert plan_job_chapters("source", "f", source()) is None, "a source without chapters: no file"
    clipped = plan_job_chapters("source", "f", info, offset=5, duration=10)
    assert clipped.marks == (ChapterMark(0, "src a"), ChapterMark(3, "src b"))


def test_a_spec_chapter_past_the_end_fails_naming_it():
    spec = parse_spec(spec_with(chapters=[chapter("00:00:01"), chapter("00:00:20")]))
    with pytest.raises(StepError) as failed:
        plan_job_chapters(spec.chapters, "f", source(duration=20))
    assert (failed.value.step, failed.value.code) == ("validate", "invalid_spec")
    assert failed.value.message == "chapters[1].start: 00:00:20 is past the end of the 20.000 s source"


@pytest.mark.parametrize(
    ("width", "source_size", "size"),
    [
        (320, (640, 360), (320, 180)),
        (320, (1920, 1080), (320, 180)),
        (320, (360, 640), (320, 568)),  # portrait: 568.9 rounded to even
        (1280, (426, 240), (426, 240)),  # never wider than the source
        (1280, (427, 240), (426, 240)),  # an odd source width made even
        (16, (1000, 10), (16, 2)),  # at least 2 high
    ],
)
def test_preview_size_keeps_the_aspect_in_even_numbers(width, source_size, size):
    assert preview_size(width, *source_size) == size
    assert all(n % 2 == 0 for n in preview_size(width, *source_size))


def test_plan_preview_counts_frames_and_cuts_at_the_end():
    spec = parse_spec(spec_with(preview={"format": "gif", "start": "00:00:02", "duration": 3, "fps": 10}))
    out = plan_preview(spec.preview, "p", source())
    assert (out.start, out.frames, out.fps, out.width, out.height) == (2.0, 30, 10, 320, 180)
    assert out.key == "files/images/p.gif"
    near_end = parse_spec(spec_with(preview={"format": "webp", "start": "00:00:19", "duration": 3, "fps": 7}))
    assert plan_preview(near_end.preview, "p", source()).frames == 7, "1 s left of the source"
    assert plan_preview(spec.preview, "p", source(), offset=5, duration=10).start == 7.0
    assert plan_preview(None, "p", source()) is None


def test_a_preview_starting_past_the_end_fails_naming_it():
    spec = parse_spec(spec_with(preview={"format": "gif", "start": "00:00:20"}))
    with pytest.raises(StepError) as failed:
        plan_preview(spec.preview, "p", source(duration=20))
    assert failed.value.message == "preview.start: 00:00:20 is past the end of the 20.000 s source"
