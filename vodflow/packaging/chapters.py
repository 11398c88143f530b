"""The job's chapters as files (pure): a WebVTT chapters track (what web players read: hls.js and dash.js
take no chapters from a master or an MPD, a `<track kind="chapters">` does) and an ffmetadata file of
`[CHAPTER]` entries (what ffmpeg muxes into an MP4 as chapter markers)."""

from __future__ import annotations

from vodflow.jobs.chapters import ChaptersOutput
from vodflow.packaging.webvtt import format_time

METADATA_NAME = "chapters.ffmeta"  # in the run's temp dir, beside the chapters track
_FFMETA_SPECIAL = ("\\", "=", ";", "#", "\n")


def webvtt_text(title: str) -> str:
    """A title as WebVTT cue text: `&`, `<` and `>` as character references, on one line (`-->` cannot
    remain: its `>` is escaped)."""
    text = " ".join(title.split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def ffmetadata_value(value: str) -> str:
    """A value of an ffmetadata file: `\\`, `=`, `;`, `#` and a line break escaped with a backslash (ffmpeg's
    `doc/metadata.texi`); other control characters dropped."""
    out = []
    for char in value:
        if char in _FFMETA_SPECIAL:
            out.append("\\" + char)
        elif ord(char) >= 0x20 and char != "\x7f":
            out.append(char)
    return "".join(out)


def chapters_track(chapters: ChaptersOutput) -> str:
    """The WebVTT chapters file: one cue per chapter, numbered, from its start to the next one's."""
    lines = ["WEBVTT", ""]
    for number, (start, end, title) in enumerate(chapters.spans(), 1):
        lines += [str(number), f"{format_time(start / 1000)} --> {format_time(end / 1000)}"]
        lines += [webvtt_text(title), ""]
    return "\n".join(lines)


def chapters_metadata(chapters: ChaptersOutput) -> str:
    """The ffmetadata file of the chapters (millisecond time base), for `-map_chapters`."""
    lines = [";FFMETADATA1"]
    for start, end, title in chapters.spans():
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={start}", f"END={end}"]
        lines.append(f"title={ffmetadata_value(title)}")
    return "\n".join(lines) + "\n"
