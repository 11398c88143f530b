"""Short first segments on disk: ffmpeg's parts joined into a rung's segments, once, by whoever is first."""

import pytest

from tests.unit.media.test_hls import listed, parts_playlist
from vodflow.media.segments import join_parts, settle_rung
from vodflow.packaging.hls import Join


def write_parts(rung, count):
    rung.mkdir(exist_ok=True)
    for i in range(count):
        (rung / f"part_{i:05d}.ts").write_bytes(bytes([i]) * 188)


def test_settling_joins_the_parts_and_lists_the_segments(tmp_path):
    write_parts(tmp_path, 7)
    text = settle_rung(tmp_path, parts_playlist(["2.000000"] * 7, "VOD", ended=True))
    assert [uri for _, uri in listed(text)] == [f"seg_{i:05d}.ts" for i in range(5)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"seg_{i:05d}.ts" for i in range(5)]
    assert (tmp_path / "seg_00001.ts").read_bytes() == bytes([1]) * 188
    assert (tmp_path / "seg_00003.ts").read_bytes() == b"".join(bytes([i]) * 188 for i in (3, 4, 5))
    assert (tmp_path / "seg_00004.ts").read_bytes() == bytes([6]) * 188


def test_a_growing_rung_then_its_end_each_segment_made_once(tmp_path):
    write_parts(tmp_path, 5)
    settle_rung(tmp_path, parts_playlist(["2.000000"] * 5))
    assert (tmp_path / "part_00003.ts").is_file(), "a group not complete is left as parts"
    made = (tmp_path / "seg_00002.ts").stat().st_ino
    (tmp_path / "part_00005.ts").write_bytes(bytes([5]) * 188)
    text = settle_rung(tmp_path, parts_playlist(["2.000000"] * 6, "VOD", ended=True))
    assert listed(text)[-1] == ("6.000000", "seg_00003.ts")
    assert (tmp_path / "seg_00002.ts").stat().st_ino == made, "a segment made is not made again"
    assert not list(tmp_path.glob("part_*")) and not list(tmp_path.glob(".*"))


def test_a_segment_another_joiner_made_is_left_as_it_is_and_a_lost_part_is_an_error(tmp_path):
    (tmp_path / "seg_00003.ts").write_bytes(b"whole")  # made by the publisher, which took the parts
    join_parts(tmp_path, Join("seg_00003.ts", ("part_00003.ts", "part_00004.ts", "part_00005.ts")))
    assert (tmp_path / "seg_00003.ts").read_bytes() == b"whole"
    with pytest.raises(FileNotFoundError):
        join_parts(tmp_path, Join("seg_00004.ts", ("part_00006.ts", "part_00007.ts")))
    assert list(tmp_path.iterdir()) == [tmp_path / "seg_00003.ts"], "no temporary file left"


def test_the_setting_reaches_the_encode_options_and_only_lengths_vodflow_can_cut_are_taken(monkeypatch):
    from vodflow.errors import ConfigError
    from vodflow.flows.pipeline import encode_options
    from vodflow.settings import load_settings

    assert encode_options(load_settings(), None).first_segment_seconds == 2, "on by default"
    monkeypatch.setenv("VODFLOW_FIRST_SEGMENT_SECONDS", "0")
    assert encode_options(load_settings(), None).first_segment_seconds == 0
    for bad in ("1", "3", "6", "-2"):
        monkeypatch.setenv("VODFLOW_FIRST_SEGMENT_SECONDS", bad)
        with pytest.raises(ConfigError, match="VODFLOW_FIRST_SEGMENT_SECONDS"):
            load_settings()
