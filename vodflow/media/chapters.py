"""Chapters and ffmpeg: the source's read with ffprobe (bounded: a hostile file may list millions), and the
pure builder of the copy-only remux that puts chapter markers into an MP4 (its streams and metadata, and the
chapters of an ffmetadata file, `vodflow.packaging.chapters.chapters_metadata`)."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vodflow.errors import StepError
from vodflow.jobs.chapters import ChapterMark, ChaptersOutput, source_chapters
from vodflow.media.commands import GLOBAL_ARGS
from vodflow.media.inputs import file_url, input_args
from vodflow.media.usage import kill_unreaped, wait_measured


def chapters_path(workdir: Path, out: ChaptersOutput) -> Path:
    """The WebVTT chapters file in the run's temp dir."""
    return workdir / f"{out.file_id}.vtt"


def build_chapters_remux_command(mp4: Path, metadata: Path, dest: Path) -> list[str]:
    """Copy `mp4`'s video, audio and metadata into `dest` (faststart), with the chapters of the ffmetadata
    file `metadata` in place of any it had (`-map_chapters 1`)."""
    return [
        "ffmpeg",
        *GLOBAL_ARGS,
        *input_args(mp4, ("mov",))[:-1], "-i", file_url(mp4),
        "-f", "ffmetadata", *input_args(metadata, ("ffmetadata",))[:-1], "-i", file_url(metadata),
        "-map", "0:v", "-map", "0:a?", "-map_metadata", "0", "-map_chapters", "1",
        "-c", "copy", "-movflags", "+faststart", "-f", "mp4", "-y", str(dest),
    ]  # fmt: skip


MAX_CHAPTER_REPORT_BYTES = 4 * 1024 * 1024  # of ffprobe's chapter lines read: a few thousand chapters
_FLAT_LINE = re.compile(r'^chapters\.chapter\.(\d+)\.(start_time|tags\.title)="(.*)"$')
_FLAT_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "f": "\f", "b": "\b", "0": "\0"}


def flat_value(text: str) -> str:
    """A value of ffprobe's `flat` writer unescaped (`\\n`, `\\"`, `\\\\`, `\\$`, ...)."""
    out, chars = [], iter(text)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            out.append(_FLAT_ESCAPES.get(nxt, nxt))
        else:
            out.append(char)
    return "".join(out)


def parse_chapter_lines(lines: Iterable[str]) -> list[dict[str, Any]]:
    """ffprobe's `flat` chapter report (`chapters.chapter.<n>.start_time="..."`, `...tags.title="..."`) as
    the chapter objects `jobs.chapters.source_chapters` reads; other lines are ignored."""
    chapters: dict[int, dict[str, Any]] = {}
    for line in lines:
        match = _FLAT_LINE.match(line.rstrip("\n"))
        if match is None:
            continue
        chapter = chapters.setdefault(int(match[1]), {})
        if match[2] == "start_time":
            chapter["start_time"] = flat_value(match[3])
        else:
            chapter["tags"] = {"title": flat_value(match[3])}
    return [chapters[n] for n in sorted(chapters)]


def probe_chapters(path: Path, timeout: float = 60.0) -> tuple[ChapterMark, ...]:
    """The source's chapters, cleaned (`jobs.chapters.source_chapters`). ffprobe's report is read as it is
    written, one line a value, at most `MAX_CHAPTER_REPORT_BYTES` (a hostile file may list millions: the
    rest is never read, the process is stopped); StepError(ingest, probe_timeout) past `timeout`."""
    cmd = ["ffprobe", "-v", "error", "-show_entries", "chapter=start_time:chapter_tags=title",
           "-of", "flat", *input_args(path)]  # fmt: skip
    lines: list[str] = []
    read = 0
    timed_out = threading.Event()
    with subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:

        def stop() -> None:
            timed_out.set()
            kill_unreaped(process)

        timer = threading.Timer(timeout, stop)
        timer.start()
        try:
            for line in process.stdout or ():
                read += len(line)
                if read > MAX_CHAPTER_REPORT_BYTES:
                    break
                lines.append(line)
        finally:
            timer.cancel()
            kill_unreaped(process)
            wait_measured(process)  # its CPU seconds on the job's meter
    if timed_out.is_set():
        raise StepError("ingest", "probe_timeout", f"ffprobe did not list the chapters within {timeout:g} s")
    return source_chapters(parse_chapter_lines(lines))
