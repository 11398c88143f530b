"""Measured quality: one ffmpeg that compares a rendition with its source scaled to the rendition's size
(SSIM, PSNR, and VMAF where the ffmpeg in use has libvmaf), and reading its report (pure builders, parsers).

The source is scaled with bicubic, as the encode scales it, so what is measured is what encoding lost, not the
resize. Debian's ffmpeg 5.1 has no libvmaf; the static ffmpeg in the `imageio-ffmpeg` wheel has it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_SSIM = re.compile(r"\bSSIM .*?All:([\d.]+)")
_PSNR = re.compile(r"\bPSNR .*?average:([\d.]+|inf)")
_VMAF = re.compile(r"VMAF score:\s*([\d.]+)")


@dataclass(frozen=True)
class QualityScores:
    """SSIM (0-1), PSNR (dB; inf for identical pictures) and VMAF (0-100, None where not measured)."""

    ssim: float
    psnr: float
    vmaf: float | None = None


def build_quality_command(
    rendition: Path, source: Path, width: int, height: int, *, vmaf: bool = False, ffmpeg: str = "ffmpeg"
) -> list[str]:
    """An ffmpeg command whose log (stderr, `info` level) holds the scores of `rendition` against `source`."""
    metrics = ["ssim", "psnr", *(["libvmaf"] if vmaf else [])]
    n = len(metrics)
    dist = "".join(f"[d{i}]" for i in range(n))
    ref = "".join(f"[r{i}]" for i in range(n))
    graph = [
        f"[1:v]scale={width}:{height}:flags=bicubic,setsar=1,split={n}{ref}",
        f"[0:v]setsar=1,split={n}{dist}",
        *(f"[d{i}][r{i}]{metric}" for i, metric in enumerate(metrics)),
    ]
    return [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "info",
        "-i", str(rendition), "-i", str(source),
        "-lavfi", ";".join(graph), "-f", "null", "-",
    ]  # fmt: skip


def parse_quality(log: str) -> QualityScores:
    """The scores in an ffmpeg log of `build_quality_command`; ValueError when SSIM or PSNR is missing."""
    ssim, psnr, vmaf = _SSIM.search(log), _PSNR.search(log), _VMAF.search(log)
    if not (ssim and psnr):
        raise ValueError("no SSIM/PSNR summary in the ffmpeg log")
    return QualityScores(
        ssim=float(ssim.group(1)),
        psnr=float("inf") if psnr.group(1) == "inf" else float(psnr.group(1)),
        vmaf=float(vmaf.group(1)) if vmaf else None,
    )


def has_libvmaf(filters_listing: str) -> bool:
    """Whether `ffmpeg -hide_banner -filters` lists the libvmaf filter."""
    return any(line.split()[1:2] == ["libvmaf"] for line in filters_listing.splitlines() if line.strip())
