"""Dynamic range: recognising HDR10 (PQ) and HLG sources from ffprobe's report, their mastering metadata as
the encoders take it, and the filters that tone-map HDR to SDR BT.709 (pure).

ffprobe names a stream's transfer (`color_transfer`: `smpte2084` is PQ, `arib-std-b67` is HLG), primaries and
matrix; the first frame's side data carries the mastering display (primaries and white point as fractions of
50000, luminance of 10000 cd/m²) and the content light levels (MaxCLL, MaxFALL).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

DynamicRange = Literal["sdr", "hdr10", "hlg"]
PQ = "smpte2084"
HLG = "arib-std-b67"

# HDR (PQ or HLG) to SDR BT.709: linear light (float), BT.709 primaries, Hable tone curve, BT.709 transfer
# into 16-bit RGB, then the BT.709 matrix and video range.
#
# The primaries conversion leaves negative linear values (colours outside BT.709) and the transfer must
# clip them to 0, as zimg's reference BT.709 transfer does (display-referred: the inverse of the BT.1886
# EOTF, V = L^(1/2.4) for L >= 0, 0 below). The zimg 3.0.4 that Debian's ffmpeg 5.1 uses instead mirrors them
# (V = -|L|^(1/2.4): a linear -0.01 becomes -0.15) and, with float RGB going straight to YUV, those negative
# R'G'B' pull Y' down: the HDR10 test clip's mean luma was 78 where the clipped transfer gives 111 (the
# static ffmpeg 9.0.2 clips, but carried R'G'B' above 1 into Y', 116). Converting to gbrp16le between the
# transfer and the matrix clips R'G'B' to [0, 1] in every build, so 5.1 and 9.0.2 give the same picture
# (tests/integration/media/test_tonemap.py). `r=full`/`rin=full`/`min=gbr` are explicit because ffmpeg 5.1
# keeps the source's `tv` range and bt2020nc matrix tags on the RGB frames.
TONEMAP_FILTERS: list[tuple[str, dict[str, object]]] = [
    ("zscale", {"t": "linear", "npl": 100}),
    ("format", {"pix_fmts": "gbrpf32le"}),
    ("zscale", {"p": "bt709"}),
    ("tonemap", {"tonemap": "hable", "desat": 0}),
    ("zscale", {"t": "bt709", "r": "full"}),
    ("format", {"pix_fmts": "gbrp16le"}),
    ("zscale", {"min": "gbr", "rin": "full", "m": "bt709", "r": "tv"}),
    ("format", {"pix_fmts": "yuv420p"}),
]


def filter_chain(filters: list[tuple[str, dict[str, object]]]) -> str:
    """`filters` as one filtergraph chain (`zscale=t=linear:npl=100,format=...`)."""
    return ",".join(
        name + "=" + ":".join(f"{key}={value}" for key, value in arguments.items())
        for name, arguments in filters
    )


def dynamic_range(stream: dict[str, Any]) -> DynamicRange:
    """`hdr10` for a PQ stream, `hlg` for an HLG one, `sdr` otherwise (from ffprobe's stream entry)."""
    transfer = stream.get("color_transfer")
    return "hdr10" if transfer == PQ else "hlg" if transfer == HLG else "sdr"


@dataclass(frozen=True)
class MasteringDisplay:
    """Mastering display colour volume and content light levels, in the units of the HEVC SEI messages:
    chromaticities in 0.00002, luminance in 0.0001 cd/m², light levels in cd/m²."""

    green: tuple[int, int]
    blue: tuple[int, int]
    red: tuple[int, int]
    white: tuple[int, int]
    max_luminance: int
    min_luminance: int
    max_cll: int = 0
    max_fall: int = 0

    def x265_params(self) -> str:
        """libx265's `master-display=...:max-cll=...` (x265-params syntax)."""
        g, b, r, w = self.green, self.blue, self.red, self.white
        display = f"G({g[0]},{g[1]})B({b[0]},{b[1]})R({r[0]},{r[1]})WP({w[0]},{w[1]})"
        display += f"L({self.max_luminance},{self.min_luminance})"
        return f"master-display={display}:max-cll={self.max_cll},{self.max_fall}"

    def svtav1_params(self) -> str:
        """SVT-AV1's `mastering-display=...:content-light=...` (chromaticities and luminance as decimals)."""

        def xy(point: tuple[int, int]) -> str:
            return f"({point[0] / 50000:.4f},{point[1] / 50000:.4f})"

        luminance = f"L({self.max_luminance / 10000:g},{self.min_luminance / 10000:g})"
        display = f"G{xy(self.green)}B{xy(self.blue)}R{xy(self.red)}WP{xy(self.white)}{luminance}"
        return f"mastering-display={display}:content-light={self.max_cll},{self.max_fall}"


def _scaled(value: Any, unit: int) -> int:
    return round(Fraction(str(value)) * unit)


def mastering_display(side_data: list[dict[str, Any]]) -> MasteringDisplay | None:
    """The mastering metadata in a frame's `side_data_list` (ffprobe `-show_frames`), or None without it.

    ValueError when it is there but malformed (a hostile file).
    """
    entries = {entry.get("side_data_type"): entry for entry in side_data}
    display = entries.get("Mastering display metadata")
    if not display:
        return None
    light = entries.get("Content light level metadata") or {}
    try:

        def point(name: str) -> tuple[int, int]:
            return _scaled(display[f"{name}_x"], 50000), _scaled(display[f"{name}_y"], 50000)

        return MasteringDisplay(
            green=point("green"),
            blue=point("blue"),
            red=point("red"),
            white=point("white_point"),
            max_luminance=_scaled(display["max_luminance"], 10000),
            min_luminance=_scaled(display["min_luminance"], 10000),
            max_cll=int(light.get("max_content", 0)),
            max_fall=int(light.get("max_average", 0)),
        )
    except (KeyError, ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"mastering display metadata: {type(exc).__name__}") from None
