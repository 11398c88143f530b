"""A ladder per title: each rung's bitrate chosen from probe encodes of the title, rungs that add too little
dropped (pure decisions; the probe encodes are run elsewhere).

For every rung, short probe encodes of sampled scenes at a few bitrates (the encode's rate control) give
points (kbit/s, quality). The rung gets the bitrate at which its curve reaches the target quality
(interpolated linearly in log-bitrate, the shape rate-quality curves have), never more than the fixed
ladder's bitrate (so complex titles lose nothing against it) and never less than `floor` of it. A rung whose
bitrate ends up within `min_step` of the rung kept below it adds too little: it is dropped, with the reason.
A smaller rung that costs as much as a larger one, or nearly as much as the top one (which always stays), is
dropped instead: the larger picture is better for those bits.

Quality is SSIM in decibels (`ssim_db`): SSIM measures the same on every ffmpeg (VMAF needs libvmaf), and in
dB it is close to linear in log-bitrate, as the interpolation assumes. `TARGET_SSIM_DB` is what the encode
aims at; the per-title benchmark (`bench/pertitle.py`) reports VMAF next to it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# The quality every rung of an `auto` ladder aims at: SSIM 0.992 (21 dB; see bench/results.md for the VMAF
# this gives), and the least share of the fixed ladder's bitrate a rung keeps.
TARGET_SSIM_DB = 21.0
FLOOR = 0.2


@dataclass(frozen=True)
class ProbePoint:
    """One probe encode of a rung: its bitrate and the quality it measured (higher is better)."""

    kbps: float
    quality: float


@dataclass(frozen=True)
class RungChoice:
    """A rung's outcome: the bitrate chosen (kbit/s) and why; `dropped` rungs are left out of the ladder."""

    resolution: str
    kbps: int
    reason: str
    dropped: bool = False


def ssim_db(ssim: float) -> float:
    """SSIM (0-1) in decibels, `-10 log10(1 - ssim)`; identical pictures (SSIM 1) give 100 dB."""
    return 100.0 if ssim >= 1.0 else min(100.0, -10 * math.log10(1 - ssim))


def bitrate_for_quality(points: Sequence[ProbePoint], target: float) -> float | None:
    """The bitrate at which the rate-quality curve through `points` reaches `target` (log-linear between the
    two points around it); None when even the highest probe stays below it."""
    ordered = sorted(points, key=lambda p: p.kbps)
    if not ordered:
        raise ValueError("no probe points")
    if ordered[0].quality >= target:
        return ordered[0].kbps  # not below what was probed: quality under the lowest point is not known
    for low, high in zip(ordered, ordered[1:], strict=False):
        if low.quality < target <= high.quality:
            share = (target - low.quality) / (high.quality - low.quality)
            return math.exp(math.log(low.kbps) + share * (math.log(high.kbps) - math.log(low.kbps)))
    return None


def choose_ladder(
    rungs: Sequence[tuple[str, int, Sequence[ProbePoint]]],
    target: float,
    *,
    floor: float = FLOOR,
    min_step: float = 0.2,
) -> list[RungChoice]:
    """Each rung (resolution, fixed-ladder kbit/s, probe points), smallest first: its bitrate, or dropped.

    Raises ValueError when rungs are not in increasing size order of fixed bitrate.
    """
    if any(a[1] > b[1] for a, b in zip(rungs, rungs[1:], strict=False)):
        raise ValueError("rungs must come smallest first")
    choices: list[RungChoice] = []
    kept: list[int] = []  # indexes in `choices` of the rungs kept so far
    for index, (resolution, fixed, points) in enumerate(rungs):
        needed = bitrate_for_quality(points, target)
        if needed is None or needed >= fixed:
            kbps, reason = fixed, "the fixed ladder's bitrate: the target quality needs it or more"
        else:
            kbps = max(round(needed), round(fixed * floor))
            reason = f"reaches the target quality at {round(needed)} kbit/s (fixed ladder: {fixed})"
        top = index == len(rungs) - 1
        # smaller rungs that cost as much as this one (or, below the top, nearly as much) give less picture
        # for those bits: dropped
        while kept and (
            choices[kept[-1]].kbps >= kbps or (top and kbps < choices[kept[-1]].kbps * (1 + min_step))
        ):
            i = kept.pop()
            below = choices[i]
            choices[i] = RungChoice(
                below.resolution,
                below.kbps,
                f"adds too little: the {resolution} rung above needs {kbps} kbit/s, within "
                f"{round(min_step * 100)}% of its {below.kbps} kbit/s or less",
                dropped=True,
            )
        if kept and not top and kbps < choices[kept[-1]].kbps * (1 + min_step):
            kept_below = choices[kept[-1]].kbps
            choices.append(
                RungChoice(
                    resolution,
                    kbps,
                    f"adds too little: {kbps} kbit/s is within {round(min_step * 100)}% of the rung below "
                    f"({kept_below} kbit/s)",
                    dropped=True,
                )
            )
            continue
        kept.append(len(choices))
        choices.append(RungChoice(resolution, kbps, reason))
    return choices
