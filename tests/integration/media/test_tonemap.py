"""The HDR → SDR tone-map chain (`TONEMAP_FILTERS`) on a synthetic HDR10 clip, checked against an expectation
computed here from the chain's own linear-light output (the frame right after `tonemap`), so the test checks
the last steps (BT.709 transfer, matrix, range) independently of the tone curve:

- each linear R, G, B clipped to [0, 1] (BT.709 cannot carry the negative values the BT.2020 → BT.709
  primaries conversion leaves, nor values above SDR white);
- BT.709 transfer as zimg applies it by default (display-referred, the inverse of the BT.1886 EOTF with black
  at 0): V = L^(1/2.4);
- Y' = 0.2126 R' + 0.7152 G' + 0.0722 B' (BT.709 luma), 8-bit video range: 16 + 219 Y', rounded.

The first frame's mean luma must match within half a code value, with Debian's ffmpeg 5.1 (the encoder) and
the static ffmpeg of imageio-ffmpeg: the chain that went straight from float RGB to YUV gave 78 on 5.1
(negative R'G'B' kept) and 116 on 9.0.2 (R'G'B' above 1 kept) against the expected 111.
"""

from __future__ import annotations

import subprocess
from array import array
from pathlib import Path

import imageio_ffmpeg
import pytest

from vodflow.media.color import TONEMAP_FILTERS, filter_chain

WIDTH, HEIGHT = 426, 240  # the size of the `hdr10` fixture (tests/integration/conftest.py)
BUILDS = {"debian": "ffmpeg", "static": imageio_ffmpeg.get_ffmpeg_exe()}


def first_frame(ffmpeg: str, source: Path, chain: str) -> bytes:
    """The first frame of `source` through the filter `chain`, as raw bytes."""
    command = [ffmpeg, "-v", "error", "-i", str(source), "-frames:v", "1", "-vf", chain]
    command += ["-f", "rawvideo", "-"]
    return subprocess.run(command, check=True, capture_output=True).stdout


def expected_mean_luma(linear: bytes) -> float:
    """The mean 8-bit video-range Y' of a gbrpf32le linear-light frame, computed as the module says."""
    values = array("f", linear)
    n = WIDTH * HEIGHT
    assert len(values) == 3 * n

    def encoded(plane: int) -> list[float]:
        return [min(max(v, 0.0), 1.0) ** (1 / 2.4) for v in values[plane * n : (plane + 1) * n]]

    g, b, r = encoded(0), encoded(1), encoded(2)  # gbrp plane order
    luma = [round(16 + 219 * (0.2126 * r[i] + 0.7152 * g[i] + 0.0722 * b[i])) for i in range(n)]
    return sum(luma) / n


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_tone_mapped_luma_matches_the_clipped_bt709_transfer_of_the_linear_light(hdr10, build):
    ffmpeg = BUILDS[build]
    until_tonemap = TONEMAP_FILTERS[: [name for name, _ in TONEMAP_FILTERS].index("tonemap") + 1]
    linear = first_frame(ffmpeg, hdr10, filter_chain(until_tonemap) + ",format=gbrpf32le")
    assert min(array("f", linear)) < 0, "the clip has colours outside BT.709: the clipping is exercised"
    picture = first_frame(ffmpeg, hdr10, filter_chain(TONEMAP_FILTERS))
    assert len(picture) == WIDTH * HEIGHT * 3 // 2  # yuv420p
    luma = picture[: WIDTH * HEIGHT]
    assert sum(luma) / len(luma) == pytest.approx(expected_mean_luma(linear), abs=0.5)
