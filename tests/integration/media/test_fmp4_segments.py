"""The fMP4 box reader on real segments: a one-rung CMAF ladder encoded with vodflow's own command, with and
without I-frame playlists (a fragment per keyframe interval, or one per segment)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import m3u8
import pytest

from tests.media import make_clip
from vodflow.jobs.plan import CmafOutput, OutputPlan, Rendition
from vodflow.media.commands import build_encode_command
from vodflow.packaging.cmaf import cmaf_dir, init_segment, media_playlist
from vodflow.packaging.fmp4 import fragments, video_track

SECONDS = 7  # segments of 6 + 1 s


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("fmp4") / "seven.mp4", 428, 240, seconds=SECONDS, audio=False)


def encode(source: Path, workdir: Path, iframes: bool) -> Path:
    """The folder of a one-rung (240) CMAF ladder of `source`."""
    out = CmafOutput("f" * 24, "p", (Rendition("240", 428, 240, 300, 64),), (), 64, None, iframes)
    cmaf_dir(workdir, out).mkdir(parents=True)
    command = build_encode_command(source, OutputPlan(cmaf=[out]), workdir, has_audio=False)
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return cmaf_dir(workdir, out)


@pytest.mark.parametrize(("iframes", "per_segment"), [(True, [3, 1]), (False, [1, 1])])
def test_real_segments_list_their_fragments_each_starting_on_a_keyframe(
    source, tmp_path, iframes, per_segment
):
    folder = encode(source, tmp_path, iframes)
    track = video_track((folder / init_segment(0)).read_bytes())
    assert track.timescale > 0
    playlist = m3u8.load(str(folder / media_playlist(0)))
    found = [fragments((folder / s.uri).read_bytes(), track) for s in playlist.segments]
    assert [len(f) for f in found] == per_segment, "a fragment per 2 s with iframes, else one per segment"
    for segment, frags in zip(playlist.segments, found, strict=True):
        assert all(f.sync for f in frags), "every fragment starts on a keyframe"
        assert sum(f.duration for f in frags) == pytest.approx(segment.duration, abs=1e-3)
        size = (folder / segment.uri).stat().st_size
        assert all(0 < f.offset and f.offset + f.length <= size for f in frags)
        assert [f.offset for f in frags] == sorted({f.offset for f in frags})
