"""Captions: reading SRT and WebVTT files strictly, writing WebVTT whole and cut into HLS segments, the HLS
master's subtitle group, and the ffmpeg command that reads a source's subtitle streams out as WebVTT.

Pure functions, no I/O. A caption file is hostile input: it is read within limits (size, cues, line length),
and any mistake is a `CaptionError` naming the line and the reason, so a job can fail saying which file and
where. Cut into segments, a small file can say a lot (every cue spanning the whole video is in every
segment): segments are made one at a time, and refused (`CaptionLimitError`) past `CaptionLimits`.
What is kept of a cue is its timing and its text lines; WebVTT settings, regions, styles and notes
are dropped, and the text is written back as plain cue text (markup characters escaped, tags removed), so a
player shows it as text and nothing else.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from vodflow.jobs.plan import CaptionOutput
from vodflow.media.inputs import input_args
from vodflow.packaging.webvtt import format_time

MAX_CAPTION_BYTES = 4 << 20
MAX_CUES = 20_000
MAX_LINE_CHARS = 2_000
_TIME = re.compile(r"^(?:(\d{1,3}):)?([0-5]\d):([0-5]\d)[.,](\d{3})$")
_TAG = re.compile(
    r"</?[a-zA-Z0-9._ ]*>|</?font(?: [^<>]{0,200})?>|<\d{1,3}:\d{2}:\d{2}\.\d{3}>|<\d{2}:\d{2}\.\d{3}>"
    r"|\{\\[^{}]{0,200}\}"  # SRT's `<font color=...>` and ASS override tags (`{\an8}`) as ffmpeg leaves them
)
_ARROW = "-->"


class CaptionError(ValueError):
    """A caption file is not valid: `line` (from 1, 0 for the whole file) and `reason`."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}" if line else reason)
        self.line = line
        self.reason = reason


class CaptionLimitError(CaptionError):
    """Segmented captions would be over a limit of `CaptionLimits`; the message names its setting."""

    def __init__(self, reason: str) -> None:
        super().__init__(0, reason)


@dataclass(frozen=True)
class CaptionLimits:
    """What the segmented subtitle renditions of a job may hold (`vodflow.settings`): cues and bytes in one
    segment, and bytes in all the segments of the job (every language of every ladder). A real caption file
    shows a few cues, a few hundred bytes, per 6 s segment; a 6-hour one comes to about 1 MB a ladder."""

    segment_cues: int = 1000
    segment_bytes: int = 1 << 20
    job_bytes: int = 256 << 20

    def over_job(self) -> CaptionLimitError:
        """The error of a job whose segments come to more than `job_bytes`."""
        return CaptionLimitError(
            f"the subtitle segments of the job come to more than {self.job_bytes} bytes "
            "(VODFLOW_MAX_CAPTION_JOB_BYTES)"
        )


@dataclass(frozen=True)
class Cue:
    """One caption: shown from `start` to `end` seconds, its text lines (plain text)."""

    start: float
    end: float
    lines: tuple[str, ...]


def parse_captions(data: bytes) -> list[Cue]:
    """The cues of an SRT or WebVTT file (WebVTT when it starts with `WEBVTT`), in start order.

    Raises CaptionError for a file that is too large, not UTF-8, or malformed at some line.
    """
    if len(data) > MAX_CAPTION_BYTES:
        raise CaptionError(0, f"larger than {MAX_CAPTION_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CaptionError(line, "not UTF-8 text") from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for number, line in enumerate(lines, 1):
        if len(line) > MAX_LINE_CHARS:
            raise CaptionError(number, f"longer than {MAX_LINE_CHARS} characters")
        if "\0" in line:
            raise CaptionError(number, "holds a NUL character")
    first = lines[0].strip() if lines else ""
    cues = _parse_webvtt(lines) if first.startswith("WEBVTT") else _parse_srt(lines)
    if not cues:
        raise CaptionError(0, "holds no cue")
    return sorted(cues, key=lambda c: (c.start, c.end))


def parse_time(value: str, line: int) -> float:
    """`[HH:]MM:SS.mmm` (`,` as in SRT accepted) as seconds; CaptionError naming `line` otherwise."""
    match = _TIME.match(value.strip())
    if not match:
        raise CaptionError(line, f"bad timestamp {value.strip()[:40]!r}")
    hours, minutes, seconds, millis = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def _timing(line: str, number: int) -> tuple[float, float]:
    if _ARROW not in line:
        raise CaptionError(number, "expected a timing line `start --> end`")
    left, right = line.split(_ARROW, 1)
    start = parse_time(left, number)
    end = parse_time(right.strip().split()[0] if right.strip() else "", number)
    if end <= start:
        raise CaptionError(number, "the cue ends before it starts")
    return start, end


def _cue(start: float, end: float, text: list[str], number: int) -> Cue:
    lines = tuple(clean for line in text if (clean := _TAG.sub("", line).strip()))
    if not lines:
        raise CaptionError(number, "a cue without text")
    return Cue(start, end, lines)


def _blocks(lines: list[str], first: int = 0) -> list[tuple[int, list[str]]]:
    """Blank-line separated blocks: (number of the block's first line, its lines)."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = first
    for number, line in enumerate(lines[first:], first + 1):
        if line.strip():
            if not current:
                start = number
            current.append(line)
        elif current:
            blocks.append((start, current))
            current = []
    if current:
        blocks.append((start, current))
    if len(blocks) > MAX_CUES + 1:
        raise CaptionError(0, f"more than {MAX_CUES} cues")
    return blocks


def _parse_srt(lines: list[str]) -> list[Cue]:
    cues = []
    for number, block in _blocks(lines):
        if not block[0].strip().isdigit():
            raise CaptionError(number, "expected a cue number")
        if len(block) < 2:
            raise CaptionError(number + 1, "expected a timing line `start --> end`")
        start, end = _timing(block[1], number + 1)
        cues.append(_cue(start, end, block[2:], number + 2))
    return cues


def _parse_webvtt(lines: list[str]) -> list[Cue]:
    header = lines[0].strip()
    if header != "WEBVTT" and not header.startswith(("WEBVTT ", "WEBVTT\t")):
        raise CaptionError(1, "expected `WEBVTT` alone on the first line")
    body = next((i for i, line in enumerate(lines) if not line.strip()), len(lines))  # header lines end here
    cues = []
    for number, block in _blocks(lines, body):
        head = block[0].strip()
        if head.startswith(("NOTE", "STYLE", "REGION")) and _ARROW not in head:
            continue
        offset = 0 if _ARROW in head else 1  # an optional cue identifier before the timing line
        if offset and (len(block) < 2 or _ARROW not in block[1]):
            raise CaptionError(number, "expected a timing line `start --> end`")
        start, end = _timing(block[offset], number + offset)
        if not any(_TAG.sub("", line).strip() for line in block[offset + 1 :]):
            continue  # a WebVTT cue may be empty (ffmpeg writes mov_text's gaps so): nothing to show
        cues.append(_cue(start, end, block[offset + 1 :], number + offset + 1))
    return cues


def _escape(line: str) -> str:
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cue_text(cue: Cue) -> str:
    body = "\n".join(_escape(line.replace(_ARROW, "->")) for line in cue.lines)
    return f"{format_time(cue.start)} --> {format_time(cue.end)}\n{body}\n"


def webvtt(cues: list[Cue], header: str = "") -> str:
    """A WebVTT file of `cues`; `header` lines go right after `WEBVTT` (HLS's `X-TIMESTAMP-MAP`)."""
    head = "WEBVTT\n" + (f"{header}\n" if header else "")
    return head + "".join(f"\n{_cue_text(cue)}" for cue in cues)


def segment_count(duration: float, segment_seconds: float) -> int:
    """How many `segment_seconds` segments cover `duration` (at least one)."""
    return max(1, math.ceil(duration / segment_seconds - 1e-9))


def _segment_cues(
    cues: Sequence[Cue], duration: float, segment_seconds: float, head: int, limits: CaptionLimits
) -> Iterator[tuple[list[str], int]]:
    """The cue texts of each segment in turn (a cue shown during a segment is in it) and its size in bytes
    with its `head`, lazily: cues enter in start order and leave once ended, each written once.
    CaptionLimitError at the first segment with more cues or bytes than `limits` allow, before its text
    is made."""
    pending = deque(sorted(cues, key=lambda c: (c.start, c.end)))
    shown: list[tuple[Cue, str, int]] = []  # (cue, its text, its size in bytes)
    for index in range(segment_count(duration, segment_seconds)):
        start, end = index * segment_seconds, min(duration, (index + 1) * segment_seconds)
        shown = [entry for entry in shown if entry[0].end > start]
        while pending and pending[0].start < end:
            cue = pending.popleft()
            if cue.end > start:
                text = f"\n{_cue_text(cue)}"
                shown.append((cue, text, len(text.encode())))
            if len(shown) > limits.segment_cues:
                raise CaptionLimitError(
                    f"segment {index} ({start:g}-{end:g} s) shows more than {limits.segment_cues} cues "
                    "(VODFLOW_MAX_CAPTION_SEGMENT_CUES)"
                )
        size = head + sum(entry[2] for entry in shown)
        if size > limits.segment_bytes:
            raise CaptionLimitError(
                f"segment {index} ({start:g}-{end:g} s) comes to {size} bytes, more than "
                f"{limits.segment_bytes} (VODFLOW_MAX_CAPTION_SEGMENT_BYTES)"
            )
        yield [entry[1] for entry in shown], size


def _segment_head(mpegts: int) -> str:
    return f"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:00:00:00.000\n"


def hls_segments(
    cues: Sequence[Cue],
    duration: float,
    segment_seconds: float,
    mpegts: int = 0,
    limits: CaptionLimits | None = None,
) -> Iterator[str]:
    """WebVTT segments for an HLS subtitle rendition, one at a time: one per `segment_seconds` of the
    `duration`, each with the cues shown during it (a cue spanning a boundary is in both, as RFC 8216
    allows) and the `X-TIMESTAMP-MAP` that places it on the media timeline: `mpegts` (90 kHz) is the
    media's timestamp at 0 s (the first MPEG-TS segment's start, which ffmpeg does not put at 0; 0 for
    fMP4). CaptionLimitError, when it comes to it, at the first segment over the per-segment `limits`."""
    head = _segment_head(mpegts)
    limits = limits or CaptionLimits()
    for texts, _ in _segment_cues(cues, duration, segment_seconds, len(head.encode()), limits):
        yield head + "".join(texts)


# The largest X-TIMESTAMP-MAP time (MPEG-TS timestamps are 33 bits): reckoning a rendition's size before
# the encode, which sets the real one.
MAX_MPEGTS = (1 << 33) - 1


def segmented_bytes(
    cues: Sequence[Cue], duration: float, segment_seconds: float, limits: CaptionLimits, mpegts: int = 0
) -> int:
    """The bytes `hls_segments` would make, reckoned without making them; CaptionLimitError as it raises,
    and once the total is over `limits.job_bytes`."""
    head = len(_segment_head(mpegts).encode())
    total = 0
    for _, size in _segment_cues(cues, duration, segment_seconds, head, limits):
        total += size
        if total > limits.job_bytes:
            raise limits.over_job()
    return total


def subtitle_playlist(duration: float, segment_seconds: float, name: str = "seg_{:05d}.vtt") -> str:
    """The VOD media playlist of `hls_segments(..., duration, segment_seconds)`, segments named `name`."""
    count = segment_count(duration, segment_seconds)
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{math.ceil(segment_seconds)}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
    ]
    for index in range(count):
        length = min(duration, (index + 1) * segment_seconds) - index * segment_seconds
        lines += [f"#EXTINF:{length:.6f},", name.format(index)]
    return "\n".join([*lines, "#EXT-X-ENDLIST", ""])


SUBTITLE_GROUP = "subs"
SUBTITLE_PLAYLIST = "index.m3u8"
GLOBAL_ARGS = ("-nostdin", "-hide_banner", "-loglevel", "error")


def subtitle_folder(caption: CaptionOutput) -> str:
    """Where a ladder keeps a language's subtitle rendition (`subs/<language>`), relative to its master."""
    return f"{SUBTITLE_GROUP}/{caption.language}"


def whole_file(caption: CaptionOutput) -> str:
    """Where a CMAF ladder keeps a language's whole WebVTT file (the DASH text track), relative to its MPD."""
    return f"{SUBTITLE_GROUP}/{caption.language}.vtt"


def _quoted(value: str) -> str:
    return "".join(c for c in value if c not in '"\r\n')


def subtitle_media(captions: Sequence[CaptionOutput]) -> list[str]:
    """The master's `EXT-X-MEDIA:TYPE=SUBTITLES` lines, one per language; none is DEFAULT (subtitles stay
    off until chosen), every one AUTOSELECT (a player may pick it by the viewer's language)."""
    return [
        f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{SUBTITLE_GROUP}",LANGUAGE="{_quoted(c.language)}",'
        f'NAME="{_quoted(c.label)}",DEFAULT=NO,AUTOSELECT=YES,'
        f'URI="{subtitle_folder(c)}/{SUBTITLE_PLAYLIST}"'
        for c in captions
    ]


def with_subtitles(master: str, captions: Sequence[CaptionOutput]) -> str:
    """An HLS master with the subtitle group: the `EXT-X-MEDIA` lines before the first variant and
    `SUBTITLES="subs"` on every `EXT-X-STREAM-INF`. Unchanged without captions; ValueError for a master
    without variants or one that has a subtitle group already."""
    if not captions:
        return master
    lines = master.splitlines()
    variants = [i for i, line in enumerate(lines) if line.startswith("#EXT-X-STREAM-INF:")]
    if not lines or lines[0] != "#EXTM3U" or not variants:
        raise ValueError("not an HLS master playlist")
    if any("SUBTITLES=" in lines[i] for i in variants):
        raise ValueError("the master has subtitles already")
    for i in variants:
        lines[i] += f',SUBTITLES="{SUBTITLE_GROUP}"'
    first = variants[0]
    return "\n".join([*lines[:first], *subtitle_media(captions), *lines[first:]]) + "\n"


def build_subtitle_extract_command(source: Path, outputs: Sequence[tuple[int, Path]]) -> list[str]:
    """One ffmpeg command that writes subtitle streams of `source` as WebVTT files: (index among the source's
    subtitle streams, destination) pairs; the source opened with the input allow-list, nothing decoded but
    the subtitles, each file ended once it is larger than a caption file may be (the reader refuses it)."""
    if not outputs:
        raise ValueError("no subtitle stream to extract")
    args = ["ffmpeg", *GLOBAL_ARGS, "-y", *_input(source)]
    for index, dest in outputs:
        args += ["-map", f"0:s:{index}", "-c:s", "webvtt", "-fs", str(MAX_CAPTION_BYTES + 1)]
        args += ["-f", "webvtt", str(dest)]
    return args


def _input(source: Path) -> list[str]:
    """`input_args` ends with the input name; ffmpeg wants `-i` before it."""
    *options, name = input_args(source)
    return [*options, "-i", name]
