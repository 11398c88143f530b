"""Every long phase of a job says how far it is: the per-title analysis logs each probe as it begins, the
encode and the quality measurement log their percent and a speed that is source seconds over wall seconds
(with a storyboard, ffmpeg's own speed counts the last tile sheet's time as output)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.media import make_clip
from vodflow.flows.pipeline import encode_video

pytestmark = pytest.mark.usefixtures("prefect_harness")

SECONDS = 2.0


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("progress") / "source.mp4", 426, 240, seconds=SECONDS)


def test_analysis_encode_and_quality_log_their_progress(source, storage, caplog):
    spec = {
        "videoUrl": str(source),
        "presets": [{"format": "hls", "resolutions": ["240"], "ladder": "auto"}],
        "storyboard": {"interval": 1, "width": 160},  # cannot fill a sheet: ffmpeg's speed would lie
        "quality": True,
    }
    caplog.set_level("INFO")
    doc = encode_video(spec, job_id="f7" * 12)

    assert doc["status"] == "completed", doc.get("error")
    lines = [record.getMessage() for record in caplog.records]
    assert "analysis: sample of 1 scenes" in lines
    assert any(re.fullmatch(r"analysis: probe 1 of at most 4 \(240p at \d+ kbit/s\)", x) for x in lines)
    assert any(re.fullmatch(r"analysis: \d probes for 1 rung in [\d.]+ s", x) for x in lines)
    for label in ("encode", "quality of 1 rendition"):
        pattern = rf"{label}: 100% at ([\d.]+)x realtime \(([\d.]+) s of source in ([\d.]+) s\)"
        (found,) = [m for x in lines if (m := re.fullmatch(pattern, x))]
        speed, done, wall = (float(g) for g in found.groups())
        assert done == pytest.approx(SECONDS, abs=0.05), "the source's duration, not the last sheet's time"
        assert speed == pytest.approx(done / wall, rel=0.05, abs=0.01)
