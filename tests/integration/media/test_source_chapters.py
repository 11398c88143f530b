"""The source's chapters read with the real ffprobe: hostile titles cleaned, a source listing thousands of
chapters read only as far as the bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.media import ffmpeg, make_clip
from vodflow.jobs.chapters import MAX_CHAPTERS
from vodflow.media import chapters as media_chapters
from vodflow.media.chapters import probe_chapters

MANY = 5000


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> Path:
    """A 2 s Matroska clip listing MANY chapters of 1 ms each, titles with a line break, quotes, an arrow."""
    root = tmp_path_factory.mktemp("many-chapters")
    plain = make_clip(root / "plain.mkv", 160, 90, seconds=2, audio=False)
    entries = [
        f'[CHAPTER]\nTIMEBASE=1/1000\nSTART={i}\nEND={i + 1}\ntitle=c{i} "q"\\\n--> $x\n' for i in range(MANY)
    ]
    metadata = root / "many.ffmeta"
    metadata.write_text(";FFMETADATA1\n" + "".join(entries))
    dest = root / "many.mkv"
    ffmpeg("-i", str(plain), "-f", "ffmetadata", "-i", str(metadata), "-map", "0", "-map_chapters", "1",
           "-c", "copy", str(dest))  # fmt: skip
    return dest


def test_a_source_with_thousands_of_chapters_keeps_the_first_hundred_cleaned(many):
    marks = probe_chapters(many)
    assert len(marks) == MAX_CHAPTERS
    assert marks[0].start == 0 and marks[1].start == pytest.approx(0.001)
    assert [m.title for m in marks[:2]] == ['c0 "q" -> $x', 'c1 "q" -> $x']


def test_the_report_is_read_only_as_far_as_the_bound(many, monkeypatch):
    monkeypatch.setattr(media_chapters, "MAX_CHAPTER_REPORT_BYTES", 2000)
    marks = probe_chapters(many)
    assert 0 < len(marks) < 40, "about 90 bytes a chapter: the rest of the report is never read"
    assert marks[0].title == 'c0 "q" -> $x'


def test_a_source_without_chapters_has_none(tmp_path):
    assert probe_chapters(make_clip(tmp_path / "plain.mp4", 160, 90, seconds=1, audio=False)) == ()
