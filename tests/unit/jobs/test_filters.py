"""The `watermark` and `loudness` spec keys (bounds, errors naming the field, remote refusals), the
watermark's place in a picture, and what the plan carries of them."""

from pathlib import Path

import pytest

from vodflow.errors import SpecError
from vodflow.jobs.document import JobDocument
from vodflow.jobs.filters import WatermarkImage, WatermarkPlan, watermark_box
from vodflow.jobs.plan import OutputPlan, with_filters
from vodflow.jobs.spec import check_remote_filters, parse_spec

GOOD = {"videoUrl": "https://example.test/v.mp4", "presets": [{"resolutions": ["360"], "format": "hls"}]}
MARK = {"url": "https://example.test/logo.png"}


def spec_with(**changes):
    return {**GOOD, **changes}


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (spec_with(watermark={}), "watermark.url", "is required"),
        (spec_with(watermark={"url": "ftp://x/logo.png"}), "watermark.url", "unsupported scheme 'ftp'"),
        (spec_with(watermark={"url": "logo\n.png"}), "watermark.url", "control characters"),
        (spec_with(watermark={**MARK, "url": "https://x/" + "a" * 2100}), "watermark.url", "at most 2048"),
        (spec_with(watermark={**MARK, "width": 0}), "watermark.width", "greater than 0"),
        (spec_with(watermark={**MARK, "width": 1.01}), "watermark.width", "less than or equal to 1"),
        (spec_with(watermark={**MARK, "margin": -0.1}), "watermark.margin", "greater than or equal to 0"),
        (spec_with(watermark={**MARK, "margin": 0.5}), "watermark.margin", "less than 0.5"),
        (spec_with(watermark={**MARK, "opacity": 0}), "watermark.opacity", "greater than 0"),
        (spec_with(watermark={**MARK, "opacity": 1.5}), "watermark.opacity", "less than or equal to 1"),
        (spec_with(watermark={**MARK, "position": "top-rigth"}), "watermark.position", "'top-right'"),
        (spec_with(watermark={**MARK, "size": 3}), "watermark.size", "unknown field"),
        (spec_with(watermark={**MARK, "images": "sometimes"}), "watermark.images", "valid boolean"),
        (spec_with(loudness={"target": -5}), "loudness.target", "less than or equal to -10"),
        (spec_with(loudness={"target": -41}), "loudness.target", "greater than or equal to -40"),
        (spec_with(loudness={"truePeak": 0.5}), "loudness.truePeak", "less than or equal to 0"),
        (spec_with(loudness={"truePeak": -10}), "loudness.truePeak", "greater than or equal to -9"),
        (spec_with(loudness={"target": "loud"}), "loudness.target", "valid number"),
        (spec_with(loudness={"lra": 7}), "loudness.lra", "unknown field"),
    ],
)
def test_bad_watermark_and_loudness_keys_are_refused_naming_the_field(data, field, reason):
    with pytest.raises(SpecError) as refused:
        parse_spec(data)
    assert refused.value.field == field
    assert reason in refused.value.reason, refused.value.reason


def test_defaults_and_the_wire_form():
    spec = parse_spec(spec_with(watermark=MARK, loudness={}))
    assert spec.wire()["watermark"] == {
        "url": MARK["url"],
        "position": "bottom-right",
        "width": 0.1,
        "margin": 0.03,
        "opacity": 1.0,
    }
    assert spec.wire()["loudness"] == {"target": -16, "truePeak": -1.5}
    plain = parse_spec(GOOD).wire()
    assert "watermark" not in plain and "loudness" not in plain


@pytest.mark.parametrize("service", ["videosdk", "mpc"])
def test_remote_encoders_refuse_both_naming_the_field(service):
    for key, value in (("watermark", MARK), ("loudness", {"target": -23})):
        with pytest.raises(SpecError) as refused:
            check_remote_filters(parse_spec(spec_with(**{key: value})), service)
        assert refused.value.field == key
        assert refused.value.reason == f"applied only by the local encoder, not by {service}"
    check_remote_filters(parse_spec(GOOD), service)


def mark(position: str, width: float = 0.2, margin: float = 0.05, size=(400, 100)) -> WatermarkPlan:
    return WatermarkPlan(WatermarkImage(Path("m.png"), *size, "png_pipe"), position, width, margin, 1.0)


@pytest.mark.parametrize(
    ("position", "box"),
    [
        ("top-left", (32, 32, 128, 32)),
        ("top-right", (640 - 128 - 32, 32, 128, 32)),
        ("bottom-left", (32, 360 - 32 - 32, 128, 32)),
        ("bottom-right", (640 - 128 - 32, 360 - 32 - 32, 128, 32)),
        ("center", ((640 - 128) // 2, (360 - 32) // 2, 128, 32)),
    ],
)
def test_the_watermark_box_follows_the_position(position, box):
    placed = watermark_box(mark(position), 640, 360)
    assert (placed.x, placed.y, placed.width, placed.height) == box


def test_the_box_scales_with_the_picture_width_and_stays_inside_it():
    small = watermark_box(mark("bottom-right"), 426, 240)
    assert (small.width, small.height) == (85, 21)  # 20 % of 426, aspect 4:1
    assert small.x == 426 - 85 - 21 and small.y == 240 - 21 - 21  # margin 5 % of 426
    tall = watermark_box(mark("top-left", width=1.0, margin=0, size=(100, 400)), 640, 360)
    assert tall.height == 360 and tall.width == 90  # never taller than the picture, aspect kept
    tiny = watermark_box(mark("top-left", width=0.001), 160, 90)
    assert tiny.width >= 2 and tiny.height >= 2


def test_with_filters_carries_the_spec_into_the_plan():
    doc = JobDocument.from_spec(parse_spec(spec_with(watermark={**MARK, "images": True}, loudness={})))
    image = WatermarkImage(Path("m.png"), 40, 10, "png_pipe")
    plan = with_filters(OutputPlan(), doc, image)
    assert plan.watermark == WatermarkPlan(image, "bottom-right", 0.1, 0.03, 1.0, True)
    assert (plan.loudness.target, plan.loudness.true_peak) == (-16, -1.5)
    assert plan.loudness.source == {} and plan.loudness.outputs == {}
    plain = with_filters(OutputPlan(), JobDocument.from_spec(parse_spec(GOOD)), None)
    assert plain.watermark is None and plain.loudness is None
