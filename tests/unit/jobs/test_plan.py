import pytest

from vodflow.errors import StepError
from vodflow.jobs.document import JobDocument
from vodflow.jobs.ladder import scaled_size
from vodflow.jobs.plan import plan_outputs
from vodflow.jobs.sources import SourceInfo
from vodflow.jobs.spec import parse_spec


def source(width, height, duration=10.0):
    return SourceInfo(duration, width, height, 0, True, "h264", "mov,mp4,m4a,3gp,3g2,mj2", 25.0)


@pytest.mark.parametrize(
    ("size", "resolution", "expected"),
    [
        ((1920, 1080), "360", (640, 360)),
        ((1080, 1920), "360", (360, 640)),
        ((1080, 1920), "480", (480, 854)),
        ((641, 361), "240", (426, 240)),
        ((3840, 2160), "4k", (3840, 2160)),
        ((1280, 720), "1080", None),
        ((720, 720), "720", (720, 720)),
    ],
)
def test_scaled_size_keeps_aspect_even_and_never_upscales(size, resolution, expected):
    assert scaled_size(*size, resolution) == expected


def doc_for(presets, thumbnails=()):
    return JobDocument.from_spec(
        parse_spec({"videoUrl": "/x.mp4", "presets": presets, "thumbnails": list(thumbnails)})
    )


def test_plan_skips_upscales_and_lists_thumbnail_variants():
    doc = doc_for(
        [
            {"format": "hls", "resolutions": ["240", "360", "1080"]},
            {"format": "mp4", "resolutions": ["360", "720"]},
        ],
        [
            {
                "timestamp": "00:00:02",
                "resolutions": ["360", "720"],
                "formats": ["jpg", "webp"],
                "filters": ["none", "blur"],
            }
        ],
    )
    plan = plan_outputs(doc, source(854, 480))
    assert [r.resolution for r in plan.hls[0].renditions] == ["240", "360"]
    assert [m.rendition.resolution for m in plan.mp4] == ["360"]
    assert len(plan.thumbnails) == 4
    assert {(s.format, s.resolution) for s in plan.skipped} == {
        ("hls", "1080"),
        ("mp4", "720"),
        ("thumbnail", "720"),
    }
    assert all("upscale" in s.reason for s in plan.skipped)
    ids = [plan.hls[0].file_id, plan.mp4[0].file_id, *(t.file_id for t in plan.thumbnails)]
    assert len(set(ids)) == len(ids)


def test_thumbnail_past_the_end_is_a_validation_error():
    doc = doc_for(
        [{"format": "mp4", "resolutions": ["240"]}], [{"timestamp": "00:00:10", "resolutions": ["240"]}]
    )
    with pytest.raises(StepError) as caught:
        plan_outputs(doc, source(640, 360, duration=10.0))
    assert caught.value.step == "validate"
    assert "thumbnails[0].timestamp" in caught.value.message


def test_nothing_to_encode_fails_clearly():
    with pytest.raises(StepError) as caught:
        plan_outputs(doc_for([{"format": "hls", "resolutions": ["720"]}]), source(320, 180))
    assert caught.value.code == "nothing_to_encode"
