"""Reading and rewriting the HLS media playlists ffmpeg writes (pure text functions, no I/O).

While a job encodes, ffmpeg writes EVENT playlists (`#EXT-X-PLAYLIST-TYPE:EVENT`): each lists the segments
finished so far, and the last one written ends with `#EXT-X-ENDLIST`. `as_vod` turns the final one into the
VOD playlist a finished ladder publishes, byte for byte what ffmpeg writes with `-hls_playlist_type vod`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

EVENT_TYPE = "#EXT-X-PLAYLIST-TYPE:EVENT"
VOD_TYPE = "#EXT-X-PLAYLIST-TYPE:VOD"


def finished_segments(playlist: str) -> list[str]:
    """The segment URIs a media playlist lists, in order; a last line without its newline (a playlist caught
    mid-write) does not count."""
    complete = playlist[: playlist.rfind("\n") + 1]
    segments = []
    expecting_uri = False
    for line in complete.splitlines():
        line = line.strip()
        if line.startswith("#EXTINF:"):
            expecting_uri = True
        elif line and not line.startswith("#") and expecting_uri:
            segments.append(line)
            expecting_uri = False
    return segments


def is_event_playlist(playlist: str) -> bool:
    return EVENT_TYPE in playlist.splitlines()


def as_vod(playlist: str) -> str:
    """An EVENT playlist as a VOD one (its type line changed, nothing else); ValueError if it is not an
    ended EVENT playlist."""
    lines = playlist.split("\n")
    if EVENT_TYPE not in lines or "#EXT-X-ENDLIST" not in (line.strip() for line in lines):
        raise ValueError("not a finished EVENT playlist")
    return "\n".join(VOD_TYPE if line == EVENT_TYPE else line for line in lines)


# Short first segments. ffmpeg 5.1's `hls_init_time` cannot give them to an EVENT or VOD playlist (with no
# sliding window it makes every segment short), so with them on the hls muxer cuts a part at every keyframe
# (`part_%05d.ts`, every 2 s) and vodflow joins the parts into the ladder's segments (`seg_%05d.ts`): one
# segment per part for the first `SHORT_START_SECONDS`, then one per `SEGMENT_SECONDS`. MPEG-TS parts of one
# muxer join end to end: each starts with its PAT and PMT, and the continuity counters run on.
SEGMENT_SECONDS = 6
SHORT_START_SECONDS = 6
FIRST_SEGMENT_SECONDS = 2  # the keyframe interval: ffmpeg cuts the parts at keyframes
SHORT_SEGMENT_CHOICES = (0, FIRST_SEGMENT_SECONDS)  # 0: none
PART_NAME = re.compile(r"part_\d{5,9}\.ts")
TARGET_DURATION = "#EXT-X-TARGETDURATION:"
EXTINF = "#EXTINF:"
ENDLIST = "#EXT-X-ENDLIST"


def check_first_segment(seconds: int) -> None:
    """ValueError unless `seconds` is a short first segment length vodflow can cut (0: none)."""
    if seconds not in SHORT_SEGMENT_CHOICES:
        raise ValueError(f"first segment length must be one of {SHORT_SEGMENT_CHOICES} s, not {seconds}")


def segment_name(index: int) -> str:
    """A ladder segment's file name (the hls muxer's `seg_%05d.ts`)."""
    return f"seg_{index:05d}.ts"


@dataclass(frozen=True)
class Join:
    """One segment of a rung and the parts it is made of, in order."""

    segment: str
    parts: tuple[str, ...]


def regrouped(playlist: str, part_seconds: int = 2) -> tuple[str, list[Join]]:
    """A media playlist of `part_seconds` parts (ffmpeg's, EVENT or VOD) as the rung publishes it, and how its
    segments are made of the parts: a segment per part for the first `SHORT_START_SECONDS`, then one per
    `SEGMENT_SECONDS` of parts; a last group not yet complete is left out until the playlist ends. The
    durations are summed, the target duration is at least `SEGMENT_SECONDS` (it may not change while the
    playlist grows) and at least every segment's, rounded; every other line is kept. A playlist without
    parts comes back unchanged, with no joins. ValueError for a part name ffmpeg does not write or a tag
    between the segments."""
    complete = playlist[: playlist.rfind("\n") + 1]
    lines = complete.splitlines()
    if not any(PART_NAME.fullmatch(line) for line in lines):
        return playlist, []
    first = next((i for i, line in enumerate(lines) if line.startswith(EXTINF)), len(lines))
    header, body = lines[:first], lines[first:]
    entries: list[tuple[Decimal, str]] = []
    ended = False
    duration: Decimal | None = None
    for line in body:
        if line.startswith(EXTINF):
            try:
                duration = Decimal(line[len(EXTINF) :].split(",")[0])
            except InvalidOperation:
                raise ValueError(f"unreadable segment duration: {line[:40]!r}") from None
            if not duration.is_finite() or duration < 0:
                raise ValueError(f"unreadable segment duration: {line[:40]!r}")
        elif line == ENDLIST:
            ended = True
        elif line and not line.startswith("#") and duration is not None:
            entries.append((duration, line))
            duration = None
        elif line:
            raise ValueError(f"unexpected line in a media playlist: {line[:40]!r}")
    if not all(PART_NAME.fullmatch(uri) for _, uri in entries):
        raise ValueError("a media playlist of parts names a file that is not a part")
    short, per_segment = SHORT_START_SECONDS // part_seconds, SEGMENT_SECONDS // part_seconds
    groups = [entries[i : i + 1] for i in range(min(short, len(entries)))]
    groups += [entries[i : i + per_segment] for i in range(short, len(entries), per_segment)]
    if groups and not ended and len(groups) > short and len(groups[-1]) < per_segment:
        groups.pop()
    joins = [Join(segment_name(k), tuple(uri for _, uri in group)) for k, group in enumerate(groups)]
    seconds = [sum((d for d, _ in group), Decimal(0)) for group in groups]
    target = max([SEGMENT_SECONDS, *(int(s + Decimal("0.5")) for s in seconds)])
    out = [f"{TARGET_DURATION}{target}" if line.startswith(TARGET_DURATION) else line for line in header]
    for join, length in zip(joins, seconds, strict=True):
        out += [f"{EXTINF}{length:.6f},", join.segment]
    if ended:
        out.append(ENDLIST)
    return "\n".join(out) + "\n", joins
