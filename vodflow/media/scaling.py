"""The scaling tree of one command (pure builders): each picture size is scaled once, from the smallest larger
size the command also makes, not from the decoded source every time.

A 1080p source's 720p rung is scaled from the source, the 480p rung from the 720p picture, the 360p from the
480p and so on: each scale reads a picture a step larger instead of the full one. On the demo ladder of a
1080p30 source the whole encode takes 7% less CPU; the decode and the four smaller rungs alone 2.5 CPU-s
instead of 4.2 for 10 s (`bench/scaling.py`). A cascaded rung is 52-56 dB PSNR from the directly scaled one,
and once encoded at its bitrate within 0.03 dB PSNR and 0.001 SSIM of it (`bench/results.md`). Every picture
keeps the source's display aspect ratio (the `scale` filter carries the sample aspect ratio through each step
exactly), so a rung's `setsar` or its lack is decided by its consumer, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Size = tuple[int, int]


def scaling_parents(sizes: Sequence[Size]) -> dict[Size, Size | None]:
    """For each distinct size, the size its picture is scaled from: the smallest (by area) other size of
    `sizes` at least as large in both dimensions, or None for the decoded picture."""
    distinct = sorted(set(sizes), key=lambda s: (s[0] * s[1], s))
    parents: dict[Size, Size | None] = {}
    for k, size in enumerate(distinct):
        larger = [p for p in distinct[k + 1 :] if p[0] >= size[0] and p[1] >= size[1]]
        parents[size] = larger[0] if larger else None
    return parents


def scaled_tree(roots: Sequence[Any], sizes: Sequence[Size]) -> list[Any]:
    """One ffmpeg-python stream per entry of `sizes`, in order, scaled along `scaling_parents`: every size
    scaled once and split among its consumers and the sizes scaled from it. `roots` are branches of the
    decoded picture, one per size scaled from it (`root_count`)."""
    parents = scaling_parents(sizes)
    children: dict[Size | None, list[Size]] = {}
    for size, parent in parents.items():
        children.setdefault(parent, []).append(size)
    streams: dict[Size, list[Any]] = {}

    def grow(size: Size, stream: Any) -> None:
        below = children.get(size, [])
        users = sizes.count(size)
        branches = split_ways(stream.filter("scale", size[0], size[1]), users + len(below))
        streams[size] = branches[:users]
        for child, branch in zip(below, branches[users:], strict=True):
            grow(child, branch)

    for root, branch in zip(children.get(None, []), roots, strict=True):
        grow(root, branch)
    return [streams[size].pop(0) for size in sizes]


def root_count(sizes: Sequence[Size]) -> int:
    """How many branches of the decoded picture `scaled_tree` takes for `sizes`."""
    return sum(parent is None for parent in scaling_parents(sizes).values())


def split_ways(stream: Any, count: int) -> list[Any]:
    """`stream` as `count` branches: itself when one, else through `split`."""
    if count == 1:
        return [stream]
    split = stream.filter_multi_output("split", count)
    return [split[k] for k in range(count)]
