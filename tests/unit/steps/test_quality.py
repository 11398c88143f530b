"""The quality step's choices: which ffmpeg measures (with VMAF or without), what each rendition is."""

from __future__ import annotations

import sys
import types

import pytest

from vodflow.errors import StepError
from vodflow.jobs.plan import CmafOutput, HlsOutput, Mp4Output, OutputPlan, Rendition
from vodflow.steps import quality
from vodflow.steps.quality import QualityTool, quality_targets, quality_tool

R240 = Rendition("240", 426, 240, 400, 64)
R360 = Rendition("360", 640, 360, 800, 96)


@pytest.fixture
def listings(monkeypatch):
    """Which ffmpeg lists libvmaf (by name; None: cannot be run), with the tool cache cleared around it."""
    found: dict[str, bool | None] = {}
    monkeypatch.setattr(quality, "_lists_libvmaf", lambda ffmpeg: found.get(ffmpeg))
    bundled = types.SimpleNamespace(get_ffmpeg_exe=lambda: "/wheel/ffmpeg")
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", bundled)
    quality_tool.cache_clear()
    yield found
    quality_tool.cache_clear()


def test_the_configured_ffmpeg_measures_with_vmaf_only_when_it_has_libvmaf(listings):
    listings.update({"/opt/ffmpeg": False, "/wheel/ffmpeg": True})
    assert quality_tool("/opt/ffmpeg") == QualityTool("/opt/ffmpeg", False)
    with pytest.raises(StepError) as missing:
        quality_tool("/nowhere/ffmpeg")
    assert missing.value.code == "quality_ffmpeg" and "/nowhere" not in missing.value.message


def test_the_wheel_ffmpeg_is_taken_when_it_has_libvmaf_else_the_one_on_the_path(listings, monkeypatch):
    listings.update({"/wheel/ffmpeg": True, "ffmpeg": False})
    assert quality_tool() == QualityTool("/wheel/ffmpeg", True)
    quality_tool.cache_clear()
    listings["/wheel/ffmpeg"] = False
    assert quality_tool() == QualityTool("ffmpeg", False)
    quality_tool.cache_clear()
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # not installed
    listings["ffmpeg"] = True
    assert quality_tool() == QualityTool("ffmpeg", True)


def test_each_rung_and_mp4_is_a_target_read_from_its_playlist(tmp_path):
    plan = OutputPlan(
        hls=[HlsOutput("ladder", "p0", (R240, R360))],
        cmaf=[CmafOutput("cmaf", "p1", (R240,), (), 64)],
        mp4=[Mp4Output("file", "p2", R360)],
    )
    for name in ("240p", "360p"):
        (tmp_path / "ladder" / name).mkdir(parents=True)
        (tmp_path / "ladder" / name / "index.m3u8").write_text(
            "#EXTM3U\n#EXTINF:6.0,\nseg_00000.ts\n#EXTINF:1.0,\nseg_00001.ts\n#EXT-X-ENDLIST\n"
        )
    (tmp_path / "cmaf").mkdir()
    (tmp_path / "cmaf" / "media_0.m3u8").write_text(
        '#EXTM3U\n#EXT-X-MAP:URI="init-0.m4s"\n#EXTINF:6.0,\nseg-0-00001.m4s\n#EXT-X-ENDLIST\n'
    )
    targets = quality_targets(plan, tmp_path)

    assert [(t.label, t.demuxer, t.width, t.height) for t in targets] == [
        ("ladder/240p", "mpegts", 426, 240),
        ("ladder/360p", "mpegts", 640, 360),
        ("cmaf/240p", "mov", 426, 240),
        ("file", "mov", 640, 360),
    ]
    assert targets[1].files == (tmp_path / "ladder/360p/seg_00000.ts", tmp_path / "ladder/360p/seg_00001.ts")
    assert targets[2].files == (tmp_path / "cmaf/init-0.m4s", tmp_path / "cmaf/seg-0-00001.m4s")
    assert targets[3].files == (tmp_path / "file.mp4",)
    (tmp_path / "cmaf" / "media_0.m3u8").unlink()
    with pytest.raises(StepError, match="cmaf/240p: no playlist"):
        quality_targets(plan, tmp_path)
