"""The fMP4 box reader on init and media segments built here, box by box: the video track's defaults, each
fragment's byte range, duration and sync flag, and bad or truncated bytes refused with a reason."""

import pytest

from vodflow.packaging.fmp4 import Fragment, VideoTrack, boxes, fragments, video_track

SYNC, NON_SYNC = 0x02000000, 0x01010000  # sample flags as ffmpeg writes them for key and other frames
BASE_IS_MOOF, DEFAULT_DURATION, DEFAULT_SIZE, DEFAULT_FLAGS = 0x020000, 0x08, 0x10, 0x20
DATA_OFFSET, FIRST_FLAGS, DURATIONS, SIZES, FLAGS = 0x001, 0x004, 0x100, 0x200, 0x400


def u32(*values: int) -> bytes:
    return b"".join(v.to_bytes(4, "big") for v in values)


def box(kind: str, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return u32(8 + len(body)) + kind.encode() + body


def full(kind: str, flags: int, *payload: bytes, version: int = 0) -> bytes:
    return box(kind, bytes([version]) + flags.to_bytes(3, "big"), *payload)


def trak(track_id: int, handler: bytes, timescale: int, version: int = 0) -> bytes:
    times = bytes(16 if version else 8)
    return box(
        "trak",
        full("tkhd", 3, times, u32(track_id), bytes(60), version=version),
        box(
            "mdia",
            full("mdhd", 0, times, u32(timescale, 0), bytes(4), version=version),
            full("hdlr", 0, u32(0), handler, bytes(12), b"name\0"),
        ),
    )


def init(video_version: int = 0) -> bytes:
    """An audio track (id 1) and a video track (id 2, timescale 12800, trex: 512 per sample, non-sync)."""
    return box("ftyp", b"iso6", u32(0)) + box(
        "moov",
        full("mvhd", 0, bytes(96)),
        trak(1, b"soun", 48000),
        trak(2, b"vide", 12800, video_version),
        box("mvex", full("trex", 0, u32(1, 1, 1024, 0, 0)), full("trex", 0, u32(2, 1, 512, 0, NON_SYNC))),
    )


TRACK = VideoTrack(track_id=2, timescale=12800, sample_duration=512, sample_size=0, sample_flags=NON_SYNC)


def fragment(track_id: int, tfhd_flags: int, tfhd_defaults: bytes, run_flags: int, run: bytes, count: int,
             sizes: list[int]) -> bytes:  # fmt: skip
    """A moof (one traf, one trun whose data offset points at the first byte of the mdat after it) and its
    mdat of `sizes` samples (each filled with its index)."""

    def moof(offset: int) -> bytes:
        fields = u32(count) + (u32(offset) if run_flags & DATA_OFFSET else b"") + run
        return box(
            "moof",
            full("mfhd", 0, u32(1)),
            box("traf", full("tfhd", tfhd_flags, u32(track_id), tfhd_defaults), full("tfdt", 0, u32(0)),
                full("trun", run_flags, fields)),
        )  # fmt: skip

    head = len(moof(0)) + 8
    return moof(head) + box("mdat", b"".join(bytes([n]) * size for n, size in enumerate(sizes)))


def test_the_video_track_is_found_past_the_audio_one_with_its_timescale_and_trex_defaults():
    assert video_track(init()) == TRACK
    assert video_track(init(video_version=1)) == TRACK, "64-bit times in tkhd and mdhd"


def test_each_fragment_is_the_moof_up_to_the_end_of_its_first_sample_with_its_duration_and_sync_flag():
    key = fragment(2, BASE_IS_MOOF | DEFAULT_DURATION, u32(256), DATA_OFFSET | FIRST_FLAGS | SIZES,
                   u32(SYNC, 700, 90, 80), 3, [700, 90, 80])  # fmt: skip
    timed = fragment(2, BASE_IS_MOOF, b"", DATA_OFFSET | DURATIONS | SIZES | FLAGS,
                     u32(512, 300, NON_SYNC, 1024, 40, SYNC), 2, [300, 40])  # fmt: skip
    segment = box("styp", b"msdh", u32(0)) + box("sidx", bytes(24)) + key + timed
    first, second = fragments(segment, TRACK)

    moof = segment.index(b"moof") - 4
    mdat = segment.index(b"mdat", moof) + 4
    assert first == Fragment(moof, mdat + 700 - moof, 3 * 256 / 12800, sync=True)
    assert segment[mdat : mdat + 700] == bytes(700), "the range ends where the first sample does"
    later = moof + len(key)
    assert second == Fragment(later, len(timed) - 40, (512 + 1024) / 12800, sync=False)


def test_sizes_and_flags_fall_back_from_the_trun_to_the_tfhd_and_the_trex():
    from_tfhd = fragment(2, BASE_IS_MOOF | DEFAULT_SIZE | DEFAULT_FLAGS, u32(500, SYNC), DATA_OFFSET, b"",
                         4, [500] * 4)  # fmt: skip
    (frag,) = fragments(from_tfhd, TRACK)
    assert frag.sync and frag.duration == 4 * 512 / 12800, "trex duration"
    assert frag.length == len(from_tfhd) - 3 * 500
    from_trex = fragment(2, BASE_IS_MOOF | DEFAULT_SIZE, u32(500), DATA_OFFSET, b"", 2, [500] * 2)
    assert not fragments(from_trex, TRACK)[0].sync, "the trex's flags say non-sync"
    depends = fragment(
        2, BASE_IS_MOOF | DEFAULT_SIZE, u32(500), DATA_OFFSET | FIRST_FLAGS, u32(0x01000000), 1, [500]
    )
    assert not fragments(depends, TRACK)[0].sync, "sample_depends_on 1: it needs other samples"


def test_another_tracks_fragments_are_left_out():
    audio = fragment(1, BASE_IS_MOOF | DEFAULT_SIZE, u32(10), DATA_OFFSET, b"", 3, [10] * 3)
    video = fragment(2, BASE_IS_MOOF | DEFAULT_SIZE | DEFAULT_FLAGS, u32(50, SYNC), DATA_OFFSET, b"", 1, [50])
    (only,) = fragments(audio + video, TRACK)
    assert only.offset == len(audio)
    with pytest.raises(ValueError, match="no fragment of track 2"):
        fragments(audio, TRACK)


def test_every_truncation_of_a_segment_is_refused_with_a_reason():
    segment = box("styp", b"msdh", u32(0)) + fragment(
        2, BASE_IS_MOOF, b"", DATA_OFFSET | FIRST_FLAGS | SIZES, u32(SYNC, 30, 20), 2, [30, 20]
    )
    assert fragments(segment, TRACK)
    for cut in range(len(segment)):
        with pytest.raises(ValueError) as refused:
            fragments(segment[:cut], TRACK)
        assert str(refused.value), cut


@pytest.mark.parametrize(
    ("segment", "reason"),
    [
        (u32(4) + b"moof", "smaller than its header"),
        (u32(1) + b"moof" + (8).to_bytes(8, "big"), "smaller than its header"),
        (u32(1) + b"moof" + (1 << 40).to_bytes(8, "big"), "only 16 left"),
        (u32(64) + b"moof", "only 8 left"),
        (b"\0\0\0", "cut short"),
        (box("moof", box("traf", full("tfhd", 0, u32(2)))), "no sample of track 2"),
        (
            box("moof", box("traf", full("tfhd", 0, u32(2)), full("trun", SIZES, u32(0xFFFFFFFF)))),
            "more than",
        ),
        (box("moof", box("traf", full("tfhd", 0, u32(2)), full("trun", 0, u32(0)))), "no sample"),
        (box("moof", box("traf", full("tfhd", 0, u32(2)), full("trun", 0, u32(1)))), "no mdat"),
    ],
    ids=[
        "tiny",
        "tiny-64bit",
        "huge-64bit",
        "past-end",
        "header",
        "no-trun",
        "count",
        "empty-trun",
        "no-mdat",
    ],
)
def test_bad_boxes_are_refused_with_the_reason(segment, reason):
    with pytest.raises(ValueError, match=reason):
        fragments(segment, TRACK)


def test_a_first_sample_outside_the_mdat_after_its_moof_is_refused():
    run = u32(1 << 20, SYNC, 10)  # a data offset far past the mdat
    traf = box(
        "traf",
        full("tfhd", BASE_IS_MOOF, u32(2)),
        full("trun", DATA_OFFSET | FIRST_FLAGS | SIZES, u32(1), run),
    )
    with pytest.raises(ValueError, match="not inside the mdat"):
        fragments(box("moof", traf) + box("mdat", bytes(10)), TRACK)


def test_a_huge_sample_count_without_sample_entries_is_counted_not_looped():
    segment = fragment(2, BASE_IS_MOOF | DEFAULT_SIZE, u32(5), DATA_OFFSET, b"", 0xFFFFFFFF, [5])
    (frag,) = fragments(segment, TRACK)
    assert frag.duration == 0xFFFFFFFF * 512 / 12800


def test_an_init_segment_without_a_video_track_or_its_trex_is_refused():
    with pytest.raises(ValueError, match="no moov"):
        video_track(box("ftyp", b"iso6"))
    audio_only = box("moov", trak(1, b"soun", 48000), box("mvex", full("trex", 0, u32(1, 1, 1024, 0, 0))))
    with pytest.raises(ValueError, match="no video track"):
        video_track(audio_only)
    no_trex = box("moov", trak(2, b"vide", 12800), box("mvex"))
    with pytest.raises(ValueError, match="no trex box for video track 2"):
        video_track(no_trex)
    with pytest.raises(ValueError, match="timescale 0"):
        video_track(box("moov", trak(2, b"vide", 0)))
    assert [b.type for b in boxes(init())] == ["ftyp", "moov"]
