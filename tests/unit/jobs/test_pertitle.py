"""Per-title ladder decisions on synthetic rate-quality curves."""

import math

import pytest

from vodflow.jobs.pertitle import ProbePoint, bitrate_for_quality, choose_ladder, ssim_db


def curve(scale: float) -> list[ProbePoint]:
    """A rate-quality curve `quality = 100 - scale / kbps`-like, probed at four bitrates."""
    return [ProbePoint(k, 100 - scale / k) for k in (100, 400, 1600, 6400)]


def test_bitrate_is_interpolated_in_log_rate():
    points = [ProbePoint(100, 80), ProbePoint(400, 90)]
    assert bitrate_for_quality(points, 85) == pytest.approx(200)
    assert bitrate_for_quality(points, 95) is None
    assert bitrate_for_quality(points, 70) == 100, "never below what was probed"
    with pytest.raises(ValueError):
        bitrate_for_quality([], 90)


def test_a_simple_title_gets_lower_bitrates_and_loses_rungs_that_add_little():
    easy = 500.0  # reaches quality 95 at 100 kbit/s-ish everywhere
    rungs = [("240", 400, curve(easy)), ("360", 800, curve(easy * 1.05)), ("720", 2800, curve(easy * 4))]
    choices = choose_ladder(rungs, target=95, floor=0.1)
    assert [c.resolution for c in choices] == ["240", "360", "720"]
    assert choices[0].kbps < 400 and not choices[0].dropped
    assert choices[1].dropped and "within 20%" in choices[1].reason
    assert not choices[2].dropped, "the top rung always stays"
    assert sum(c.kbps for c in choices if not c.dropped) < 0.7 * (400 + 2800)


def test_a_complex_title_keeps_the_fixed_ladder():
    hard = 200_000.0  # never reaches 95 within the probes
    rungs = [("240", 400, curve(hard)), ("360", 800, curve(hard)), ("1080", 5000, curve(hard))]
    choices = choose_ladder(rungs, target=95)
    assert [(c.kbps, c.dropped) for c in choices] == [(400, False), (800, False), (5000, False)]


def test_floor_and_order():
    flat = [ProbePoint(100, 99.0), ProbePoint(200, 99.5)]
    (only,) = choose_ladder([("1080", 5000, flat)], target=95, floor=0.2)
    assert only.kbps == 1000 and math.isclose(only.kbps / 5000, 0.2)
    with pytest.raises(ValueError):
        choose_ladder([("1080", 5000, flat), ("240", 400, flat)], target=95)


def test_a_top_rung_close_to_the_rung_below_replaces_it():
    hard = [ProbePoint(400, 10.0), ProbePoint(800, 12.0)]  # never reaches the target: the fixed bitrate
    cheap = [ProbePoint(280, 18.0), ProbePoint(490, 21.0), ProbePoint(840, 23.0)]  # 22 at ~650 kbit/s
    rungs = [("240", 400, hard), ("360", 800, hard), ("480", 1400, cheap)]
    choices = choose_ladder(rungs, target=22)
    assert [(c.resolution, c.dropped) for c in choices] == [("240", False), ("360", True), ("480", False)]
    assert choices[2].kbps < 800 * 1.2
    assert "480 rung above" in choices[1].reason and choices[1].kbps == 800


def test_a_smaller_rung_costing_more_than_a_larger_one_is_dropped():
    hard = [ProbePoint(400, 10.0)]
    easy = [ProbePoint(160, 25.0)]
    rungs = [("240", 400, hard), ("360", 800, easy), ("720", 2800, [ProbePoint(2000, 23.0)])]
    choices = choose_ladder(rungs, target=22)
    assert [(c.resolution, c.kbps, c.dropped) for c in choices] == [
        ("240", 400, True),
        ("360", 160, False),
        ("720", 2000, False),
    ]
    assert "the 360 rung above needs 160 kbit/s" in choices[0].reason


def test_ssim_in_decibels():
    assert ssim_db(0.99) == pytest.approx(20.0)
    assert ssim_db(0.9) == pytest.approx(10.0)
    assert ssim_db(1.0) == 100.0
