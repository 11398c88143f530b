"""HLS I-frame playlists (`EXT-X-I-FRAMES-ONLY`) of MPEG-TS and fMP4 ladders, for fast seeking: pure, no I/O.

Each keyframe of a rung is one byte range of its segment. MPEG-TS: from the PSI tables written just before it
(ffmpeg's MPEG-TS muxer repeats PAT and PMT before every video keyframe, so the range decodes on its own) to
the next video packet. fMP4: a fragment that starts on a keyframe, from its `moof` to the end of that first
sample (`vodflow.packaging.fmp4`), decoded after the playlist's `EXT-X-MAP` init segment. Its duration is the
time to the next keyframe (to the end of the rung for the last one). The master gets one
`EXT-X-I-FRAME-STREAM-INF` per rung, after its variants.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vodflow.packaging.fmp4 import Fragment

TS_PACKET = 188
TS_SYNC = 0x47
IFRAME_PLAYLIST = "iframes.m3u8"
IFRAME_TAG = "#EXT-X-I-FRAME-STREAM-INF:"
_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


@dataclass(frozen=True)
class Packet:
    """One video packet as ffprobe reports it: presentation time (s), byte position, keyframe or not."""

    time: float
    pos: int
    key: bool


@dataclass(frozen=True)
class IFrame:
    """One keyframe: the segment `uri`, its byte range (`offset`, `length`) and `start` time (s)."""

    uri: str
    offset: int
    length: int
    start: float


def read_packet_report(report: dict[str, Any]) -> tuple[list[Packet], set[int], float]:
    """From `media.probe.packet_probe_command`'s report: the video packets, every elementary stream's PID,
    and the time the segment ends (s). ValueError when it has no video stream."""
    streams = report.get("streams", [])
    video = {s["index"] for s in streams if s.get("codec_type") == "video"}
    if not video:
        raise ValueError("no video stream")
    pids = {int(str(s["id"]), 0) for s in streams if s.get("id")}
    packets = [
        Packet(float(p["pts_time"]), int(p["pos"]), "K" in p.get("flags", ""))
        for p in report.get("packets", [])
        if p.get("stream_index") in video and p.get("pos") not in (None, "N/A") and p.get("pts_time")
    ]
    fmt = report.get("format", {})
    end = float(fmt.get("start_time") or 0) + float(fmt.get("duration") or 0)
    return packets, pids, end


def packet_pid(data: bytes, offset: int) -> int | None:
    """The PID of the TS packet at `offset` of `data`, None when no TS packet starts there."""
    if offset < 0 or offset + TS_PACKET > len(data) or data[offset] != TS_SYNC:
        return None
    return ((data[offset + 1] & 0x1F) << 8) | data[offset + 2]


def range_start(data: bytes, pos: int, elementary_pids: Collection[int]) -> int:
    """Where a keyframe's range begins: its first TS packet at `pos`, moved back over the table packets (any
    PID not an elementary stream's: PAT, PMT, SDT) written just before it."""
    while (pid := packet_pid(data, pos - TS_PACKET)) is not None and pid not in elementary_pids:
        pos -= TS_PACKET
    return pos


def segment_iframes(
    uri: str, data: bytes, packets: Sequence[Packet], elementary_pids: Collection[int]
) -> list[IFrame]:
    """The keyframes of one segment (`data`, its video `packets` in any order) as byte ranges."""
    ordered = sorted(packets, key=lambda p: p.pos)
    frames = []
    for packet, following in zip(ordered, [*ordered[1:], None], strict=True):
        if not packet.key:
            continue
        start = range_start(data, packet.pos, elementary_pids)
        end = following.pos if following is not None else len(data)
        frames.append(IFrame(uri, start, end - start, packet.time))
    return frames


def fmp4_iframes(segments: Sequence[tuple[str, Sequence[Fragment]]]) -> tuple[list[IFrame], float]:
    """The keyframes of an fMP4 rung from the video fragments of its segments (URI, fragments), in order: one
    per fragment that starts on a sync sample, timed by the durations of the fragments before it; and when the
    rung ends (s). A fragment that starts elsewhere adds its time to the keyframe before it."""
    frames = []
    elapsed = 0.0
    for uri, fragments in segments:
        for fragment in fragments:
            if fragment.sync:
                frames.append(IFrame(uri, fragment.offset, fragment.length, elapsed))
            elapsed += fragment.duration
    return frames, elapsed


def durations(frames: Sequence[IFrame], end: float) -> list[float]:
    """Each keyframe's duration: the time to the next one, `end` (s) for the last."""
    starts = [frame.start for frame in frames]
    return [later - start for start, later in zip(starts, [*starts[1:], end], strict=True)]


def iframe_playlist(frames: Sequence[IFrame], end: float, init: str | None = None) -> str:
    """The I-frame media playlist (VOD) of a rung's keyframes; `end` is when the rung ends (s, in the
    keyframes' time base). MPEG-TS: version 4; fMP4: version 7 with `init`, the init segment, as its
    `EXT-X-MAP`. ValueError when there are none."""
    if not frames:
        raise ValueError("no keyframes")
    spans = durations(frames, end)
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{4 if init is None else 7}",
        f"#EXT-X-TARGETDURATION:{target_duration(spans)}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-I-FRAMES-ONLY",
        *([f'#EXT-X-MAP:URI="{init}"'] if init is not None else []),
    ]
    for frame, span in zip(frames, spans, strict=True):
        lines += [f"#EXTINF:{span:.6f},", f"#EXT-X-BYTERANGE:{frame.length}@{frame.offset}", frame.uri]
    return "\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n"


def target_duration(spans: Sequence[float]) -> int:
    """EXT-X-TARGETDURATION of a playlist whose entries last `spans` (s): the longest, rounded up."""
    return max(1, math.ceil(max(spans) - 1e-6))


def peak_bandwidth(frames: Sequence[IFrame], end: float) -> int:
    """BANDWIDTH of an I-frame playlist: its peak segment bit rate (RFC 8216, 4.3.4.2), the highest bit rate
    of any run of consecutive keyframes lasting 0.5 to 1.5 times the target duration (so a last keyframe of a
    frame's length does not count alone); the whole playlist's rate when no run fits."""
    spans = durations(frames, end)
    target = target_duration(spans)
    peak = 0.0
    for i in range(len(frames)):
        size, seconds = 0, 0.0
        for frame, span in zip(frames[i:], spans[i:], strict=True):
            size, seconds = size + frame.length, seconds + span
            if seconds > 1.5 * target:
                break
            if seconds >= 0.5 * target:
                peak = max(peak, size * 8 / seconds)
    if not peak:
        peak = sum(f.length for f in frames) * 8 / max(sum(spans), 1e-3)
    return math.ceil(peak)


def _attributes(line: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in _ATTRIBUTE.findall(line.split(":", 1)[1])}


def with_iframe_streams(master: str, streams: Mapping[str, tuple[int, str]]) -> str:
    """`master` with an `EXT-X-I-FRAME-STREAM-INF` after its variants for each variant URI in `streams`
    (`360p/index.m3u8`: the BANDWIDTH and URI of its I-frame playlist): its RESOLUTION and the video codec of
    its CODECS. Lines of an earlier rewrite are dropped first, so rewriting twice changes nothing."""
    lines = [line for line in master.splitlines() if not line.startswith(IFRAME_TAG)]
    added = []
    for line, uri in zip(lines, [*lines[1:], ""], strict=True):
        if not line.startswith("#EXT-X-STREAM-INF:") or uri not in streams:
            continue
        bandwidth, iframes = streams[uri]
        attributes = _attributes(line)
        video = [c for c in attributes.get("CODECS", "").split(",") if c.startswith(("avc1", "hvc1", "hev1"))]
        parts = [f"BANDWIDTH={bandwidth}"]
        if "RESOLUTION" in attributes:
            parts.append(f"RESOLUTION={attributes['RESOLUTION']}")
        if video:
            parts.append(f'CODECS="{video[0]}"')
        parts.append(f'URI="{iframes}"')
        added.append(IFRAME_TAG + ",".join(parts))
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join([*lines, *added]) + "\n"
