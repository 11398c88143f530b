"""The preview step with the real ffmpeg on sources whose stored picture is not what is shown: a rotated
phone clip and an anamorphic one (non-square pixels) get previews of the shown picture's aspect; an HDR10
source's preview is tone-mapped as its thumbnails are."""

from __future__ import annotations

from pathlib import Path
from subprocess import run

import pytest

from tests.media import ffmpeg, make_clip, make_rotated
from vodflow.jobs.extras import plan_preview
from vodflow.jobs.plan import OutputPlan, ThumbnailOutput
from vodflow.jobs.sources import Source
from vodflow.jobs.spec import Preview
from vodflow.media.commands import build_thumbnail_command, thumbnail_path
from vodflow.media.preview import preview_info, preview_path
from vodflow.media.probe import probe_source
from vodflow.steps.extras import make_extras


def preview_of(path: Path, workdir: Path, fmt: str, width: int) -> tuple[int, int, int]:
    info = probe_source(path)
    asked = Preview(format=fmt, start="00:00:00.5", duration=1, fps=10, width=width)
    plan = OutputPlan(dynamic_range=info.dynamic_range, preview=plan_preview(asked, "p", info))
    workdir.mkdir(exist_ok=True)
    make_extras(Source(path, info), plan, workdir)
    got = preview_info(preview_path(workdir, plan.preview), fmt)
    return got.width, got.height, got.frames


@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_a_rotated_source_gives_a_portrait_preview(tmp_path, fmt):
    landscape = make_clip(tmp_path / "landscape.mp4", 854, 480, seconds=2, audio=False)
    rotated = make_rotated(landscape, tmp_path / "rotated.mp4", 90)
    assert preview_of(rotated, tmp_path / "work", fmt, 240) == (240, 428, 10)


def test_an_anamorphic_source_gives_a_preview_of_its_shown_aspect(tmp_path):
    square = make_clip(tmp_path / "square.mp4", 480, 360, seconds=2, audio=False)
    wide = tmp_path / "anamorphic.mp4"
    ffmpeg("-i", str(square), "-vf", "setsar=4/3", "-c:v", "libx264", "-preset", "ultrafast", str(wide))
    assert preview_of(wide, tmp_path / "work", "gif", 320) == (320, 180, 10), "640x360 shown"


def mean_luma(picture: Path, tmp: Path) -> float:
    """The mean 8-bit luma of the first frame of `picture`."""
    raw = tmp / "luma.raw"
    ffmpeg("-i", str(picture), "-frames:v", "1", "-vf", "format=gray", "-f", "rawvideo", str(raw))
    data = raw.read_bytes()
    return sum(data) / len(data)


def test_an_hdr10_source_gives_a_tone_mapped_preview(hdr10, tmp_path):
    """The preview's first frame is as bright as the thumbnail taken at the same time (tone-mapped by the
    thumbnail path), not as the untouched decode."""
    info = probe_source(hdr10)
    assert info.dynamic_range == "hdr10"
    asked = Preview(format="gif", start="00:00:01", duration=1, fps=5, width=320)
    out = plan_preview(asked, "p", info)
    mapped, flat = tmp_path / "mapped", tmp_path / "flat"
    for folder, source_range in ((mapped, "hdr10"), (flat, "sdr")):
        folder.mkdir()
        make_extras(Source(hdr10, info), OutputPlan(dynamic_range=source_range, preview=out), folder)
    assert preview_info(preview_path(mapped, out), "gif").frames == 5
    thumb = ThumbnailOutput("t", "t", 1.0, "240", 320, 180, "jpg", "none")
    run(build_thumbnail_command(hdr10, [thumb], tmp_path, "hdr10"), check=True)
    reference = mean_luma(thumbnail_path(tmp_path, thumb), tmp_path)
    graded = mean_luma(preview_path(mapped, out), tmp_path)
    untouched = mean_luma(preview_path(flat, out), tmp_path)
    assert abs(graded - reference) < 3 < abs(untouched - reference), (graded, reference, untouched)
