"""Fragmented MP4 (CMAF) segments read for their fragments: a small ISO-BMFF box reader (ISO/IEC 14496-12),
pure, no I/O.

From an init segment, the video track's id, timescale and `trex` sample defaults; from a media segment, each
fragment (`moof` + `mdat`) of that track: the byte range from its `moof` to the end of its first sample (what
an fMP4 I-frame playlist addresses), its duration and whether its first sample is a sync sample. Segments are
hostile input: every read is bounds-checked and every loop moves forward over the bytes, so bad or truncated
bytes raise ValueError naming the box and the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

# tfhd flags
_BASE_DATA_OFFSET = 0x000001
_SAMPLE_DESCRIPTION_INDEX = 0x000002
_DEFAULT_DURATION = 0x000008
_DEFAULT_SIZE = 0x000010
_DEFAULT_FLAGS = 0x000020
_DEFAULT_BASE_IS_MOOF = 0x020000
# trun flags: what each sample entry holds (4 bytes each)
_DATA_OFFSET = 0x000001
_FIRST_SAMPLE_FLAGS = 0x000004
_SAMPLE_DURATION = 0x000100
_SAMPLE_SIZE = 0x000200
_SAMPLE_FLAGS = 0x000400
_SAMPLE_CTS_OFFSET = 0x000800
# sample flags
_NON_SYNC = 0x00010000  # sample_is_non_sync_sample
_DEPENDS_ON = 0x03000000  # sample_depends_on
_DEPENDS_ON_OTHERS = 0x01000000  # ... on other samples: not an I-frame


@dataclass(frozen=True)
class Box:
    """One box: its four-character `type`, where it `start`s, where its payload (`body`) begins, its `end`."""

    type: str
    start: int
    body: int
    end: int

    def where(self) -> str:
        return f"{self.type} at byte {self.start}"


@dataclass(frozen=True)
class VideoTrack:
    """The video track of an init segment: its id, timescale (units a second) and `trex` sample defaults."""

    track_id: int
    timescale: int
    sample_duration: int
    sample_size: int
    sample_flags: int


@dataclass(frozen=True)
class Fragment:
    """One fragment of the video track: its `moof`'s `offset` in the segment, the `length` from there to the
    end of its first sample, its `duration` (s) and whether its first sample is a sync sample (a keyframe)."""

    offset: int
    length: int
    duration: float
    sync: bool


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Box]:
    """The boxes laid end to end in `data[start:end]` (size 0: to the end; size 1: a 64-bit size follows).
    ValueError for a header cut short, a size smaller than its header or one past `end`."""
    end = len(data) if end is None else end
    at = start
    while at < end:
        if end - at < 8:
            raise ValueError(f"a box header at byte {at} is cut short")
        size = int.from_bytes(data[at : at + 4], "big")
        kind = data[at + 4 : at + 8].decode("latin-1")
        body = at + 8
        if size == 1:
            if end - at < 16:
                raise ValueError(f"{kind} at byte {at}: its 64-bit size is cut short")
            size = int.from_bytes(data[body : body + 8], "big")
            body += 8
        elif size == 0:
            size = end - at
        if size < body - at:
            raise ValueError(f"{kind} at byte {at}: size {size} is smaller than its header")
        if size > end - at:
            raise ValueError(f"{kind} at byte {at}: {size} bytes, only {end - at} left")
        yield Box(kind, at, body, at + size)
        at += size


def children(data: bytes, parent: Box, kind: str) -> list[Box]:
    """The boxes of type `kind` directly inside `parent`."""
    return [box for box in boxes(data, parent.body, parent.end) if box.type == kind]


def child(data: bytes, parent: Box, kind: str) -> Box:
    """The first box of type `kind` directly inside `parent`; ValueError when there is none."""
    found = children(data, parent, kind)
    if not found:
        raise ValueError(f"{parent.where()}: no {kind} box")
    return found[0]


class _Fields:
    """Big-endian fields of one box's payload, read in order and never past its end."""

    def __init__(self, data: bytes, box: Box) -> None:
        self.data, self.box, self.at = data, box, box.body

    def left(self) -> int:
        return self.box.end - self.at

    def skip(self, size: int) -> None:
        if size > self.left():
            raise ValueError(f"{self.box.where()}: cut short")
        self.at += size

    def uint(self, size: int) -> int:
        start = self.at
        self.skip(size)
        return int.from_bytes(self.data[start : self.at], "big")

    def int32(self) -> int:
        start = self.at
        self.skip(4)
        return int.from_bytes(self.data[start : self.at], "big", signed=True)

    def full_box(self) -> tuple[int, int]:
        """A full box's version and flags."""
        return self.uint(1), self.uint(3)


def video_track(init: bytes) -> VideoTrack:
    """The first video track (`hdlr` `vide`) of an init segment, with its `trex` defaults; ValueError when
    the segment has none or a box is unreadable."""
    moovs = [box for box in boxes(init) if box.type == "moov"]
    if not moovs:
        raise ValueError("no moov box")
    moov = moovs[0]
    for trak in children(init, moov, "trak"):
        mdia = child(init, trak, "mdia")
        hdlr = _Fields(init, child(init, mdia, "hdlr"))
        hdlr.full_box()
        hdlr.skip(4)  # pre_defined
        if hdlr.uint(4) != int.from_bytes(b"vide", "big"):
            continue
        tkhd = _Fields(init, child(init, trak, "tkhd"))
        version, _ = tkhd.full_box()
        tkhd.skip(16 if version == 1 else 8)  # creation and modification times
        track_id = tkhd.uint(4)
        mdhd = _Fields(init, child(init, mdia, "mdhd"))
        version, _ = mdhd.full_box()
        mdhd.skip(16 if version == 1 else 8)
        timescale = mdhd.uint(4)
        if timescale == 0:
            raise ValueError(f"{mdhd.box.where()}: timescale 0")
        for trex_box in children(init, child(init, moov, "mvex"), "trex"):
            trex = _Fields(init, trex_box)
            trex.full_box()
            if trex.uint(4) == track_id:
                trex.skip(4)  # default_sample_description_index
                return VideoTrack(track_id, timescale, trex.uint(4), trex.uint(4), trex.uint(4))
        raise ValueError(f"no trex box for video track {track_id}")
    raise ValueError("no video track")


def fragments(segment: bytes, track: VideoTrack) -> list[Fragment]:
    """The fragments of `track` in a media segment, in order (other tracks' fragments left out). ValueError
    when a box is unreadable, a fragment has no sample, its first sample is not inside the `mdat` right after
    its `moof`, or the segment has no fragment of the track."""
    top = list(boxes(segment))
    found = []
    for moof, following in zip(top, [*top[1:], None], strict=True):
        if moof.type != "moof":
            continue
        for index, traf in enumerate(children(segment, moof, "traf")):
            first = _first_sample(segment, moof, traf, index == 0, track)
            if first is None:
                continue
            start, size, duration, flags = first
            if following is None or following.type != "mdat":
                raise ValueError(f"{moof.where()}: no mdat box after it")
            if start < following.body or start + size > following.end:
                raise ValueError(f"{moof.where()}: its first sample is not inside the mdat after it")
            sync = not flags & _NON_SYNC and flags & _DEPENDS_ON != _DEPENDS_ON_OTHERS
            found.append(Fragment(moof.start, start + size - moof.start, duration / track.timescale, sync))
    if not found:
        raise ValueError(f"no fragment of track {track.track_id}")
    return found


def _first_sample(
    data: bytes, moof: Box, traf: Box, first_traf: bool, track: VideoTrack
) -> tuple[int, int, int, int] | None:
    """Where the traf's first sample starts and its size, the traf's duration (timescale units) and the first
    sample's flags; None when the traf is another track's."""
    tfhd = _Fields(data, child(data, traf, "tfhd"))
    _, flags = tfhd.full_box()
    if tfhd.uint(4) != track.track_id:
        return None
    if flags & _BASE_DATA_OFFSET:
        base = tfhd.uint(8)
    elif flags & _DEFAULT_BASE_IS_MOOF or first_traf:
        base = moof.start
    else:
        raise ValueError(f"{tfhd.box.where()}: data not based on its moof")
    if flags & _SAMPLE_DESCRIPTION_INDEX:
        tfhd.skip(4)
    duration = tfhd.uint(4) if flags & _DEFAULT_DURATION else track.sample_duration
    size = tfhd.uint(4) if flags & _DEFAULT_SIZE else track.sample_size
    sample_flags = tfhd.uint(4) if flags & _DEFAULT_FLAGS else track.sample_flags
    first: tuple[int, int] | None = None  # where the first sample starts, its size
    first_flags = sample_flags
    total = 0
    for trun_box in children(data, traf, "trun"):
        trun = _Fields(data, trun_box)
        _, run = trun.full_box()
        count = trun.uint(4)
        offset = trun.int32() if run & _DATA_OFFSET else 0
        given_flags = trun.uint(4) if run & _FIRST_SAMPLE_FLAGS else None
        fields = [run & bit for bit in (_SAMPLE_DURATION, _SAMPLE_SIZE, _SAMPLE_FLAGS, _SAMPLE_CTS_OFFSET)]
        if count * 4 * sum(map(bool, fields)) > trun.left():
            raise ValueError(f"{trun_box.where()}: {count} samples, more than the box holds")
        if count == 0:
            continue
        entries = (
            [[trun.uint(4) if field else None for field in fields] for _ in range(count)]
            if any(fields)
            else []
        )
        if run & _SAMPLE_DURATION:
            total += sum(entry[0] or 0 for entry in entries)
        else:
            total += count * duration
        if first is None:
            _, entry_size, entry_flags, _ = entries[0] if entries else (None,) * 4
            first = (base + offset, entry_size if entry_size is not None else size)
            if given_flags is not None:
                first_flags = given_flags
            elif entry_flags is not None:
                first_flags = entry_flags
    if first is None:
        raise ValueError(f"{moof.where()}: no sample of track {track.track_id}")
    return first[0], first[1], total, first_flags
