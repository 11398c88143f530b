"""Measured quality: ffmpeg commands that compare renditions with their source scaled to each one's size
(SSIM, PSNR, and VMAF where the ffmpeg in use has libvmaf), and reading their reports (pure builders and
parsers).

The source is scaled with bicubic straight to each size, so what is measured is what encoding lost, not the
resize; the encode scales the same way but in a cascade (`media.scaling`), which is part of what it measures
(52-56 dB PSNR from the direct scale before encoding). Debian's ffmpeg 5.1 has no libvmaf; the static ffmpeg
in the `imageio-ffmpeg` wheel has it.
`build_quality_command` measures one file (the benchmark); `build_job_quality_command` measures every
rendition of a job from one decode of the source, split to each comparison.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vodflow.media.color import TONEMAP_FILTERS, filter_chain
from vodflow.media.inputs import SOURCE_DEMUXERS, concat_url, file_url, input_options
from vodflow.packaging.hls import finished_segments

# Each metric filter's summary line, by filter name.
_SUMMARIES = {
    "ssim": r"SSIM .*?All:([\d.]+)",
    "psnr": r"PSNR .*?average:([\d.]+|inf)",
    "libvmaf": r"VMAF score:\s*([\d.]+)",
}
_MAP = re.compile(r'^#EXT-X-MAP:.*?URI="([^"]+)"', re.MULTILINE)


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


def _scores(log: str, instance: str | None = None) -> QualityScores | None:
    """The scores logged by the metric filters named `<filter>@<instance>`, or by any (`instance` None);
    None when the SSIM or PSNR summary is missing."""
    found = [
        re.search((rf"\[{name}@{instance} @ [^\]]*\] " if instance else r"\b") + summary, log)
        for name, summary in _SUMMARIES.items()
    ]
    ssim, psnr, vmaf = found
    if not (ssim and psnr):
        return None
    return QualityScores(
        ssim=float(ssim.group(1)),
        psnr=float("inf") if psnr.group(1) == "inf" else float(psnr.group(1)),
        vmaf=float(vmaf.group(1)) if vmaf else None,
    )


def parse_quality(log: str) -> QualityScores:
    """The scores in an ffmpeg log of `build_quality_command`; ValueError when SSIM or PSNR is missing."""
    scores = _scores(log)
    if scores is None:
        raise ValueError("no SSIM/PSNR summary in the ffmpeg log")
    return scores


def has_libvmaf(filters_listing: str) -> bool:
    """Whether `ffmpeg -hide_banner -filters` lists the libvmaf filter."""
    return any(line.split()[1:2] == ["libvmaf"] for line in filters_listing.splitlines() if line.strip())


# A PSNR of identical pictures is infinite; the document carries this instead (JSON has no infinity).
PSNR_CAP = 100.0


@dataclass(frozen=True)
class QualityTarget:
    """One rendition to measure: a `label` for its scores, the files ffmpeg reads as one stream (an MP4, or
    an HLS or CMAF rung's segments in order, a CMAF rung's init segment first), their container (`mpegts` or
    `mov`) and the rendition's picture size."""

    label: str
    files: tuple[Path, ...]
    demuxer: str
    width: int
    height: int
    tonemap: bool = False  # an SDR rendition of an HDR source: its reference is tone-mapped as it was


def rung_files(playlist: str) -> list[str]:
    """The files a rung's media playlist plays, in order: its init segment (`EXT-X-MAP`, fMP4) if any, then
    its media segments (URIs as written, relative to the playlist)."""
    init = _MAP.search(playlist)
    return ([init.group(1)] if init else []) + finished_segments(playlist)


def _input(url: str, demuxers: tuple[str, ...], protocols: str) -> list[str]:
    options = input_options(demuxers, protocols)
    return ["-format_whitelist", options["format_whitelist"], "-protocol_whitelist", protocols, "-i", url]


def _target_input(target: QualityTarget) -> list[str]:
    if len(target.files) == 1:
        return _input(file_url(target.files[0]), (target.demuxer,), "file")
    return _input(concat_url(target.files), (target.demuxer,), "concat,file")


def build_job_quality_command(
    source: Path, targets: Sequence[QualityTarget], *, vmaf: bool = False, ffmpeg: str = "ffmpeg"
) -> list[str]:
    """One ffmpeg command whose log (stderr, `info` level) holds the scores of every target against `source`:
    the source is decoded once and split, each branch scaled straight to the target's size (`scale=W:H`,
    bicubic; tone-mapped first for a `tonemap` target, as the encode tone-maps it); both start at 0 and are
    compared as 8-bit 4:2:0 (an HDR10 rung kept as such too: PQ-coded values on both sides). Target `i`'s
    filters are named `q<i>` (`parse_job_quality` reads them back). ValueError when there is no target."""
    if not targets:
        raise ValueError("no rendition to measure")
    metrics = ["ssim", "psnr", *(["libvmaf"] if vmaf else [])]
    n = len(metrics)
    branches = "".join(f"[s{i}]" for i in range(len(targets)))
    graph = [f"[0:v]setpts=PTS-STARTPTS,split={len(targets)}{branches}"]
    for i, target in enumerate(targets):
        tonemap = filter_chain(TONEMAP_FILTERS) + "," if target.tonemap else ""
        ref = "".join(f"[r{i}_{k}]" for k in range(n))
        dist = "".join(f"[d{i}_{k}]" for k in range(n))
        graph += [
            f"[s{i}]{tonemap}scale={target.width}:{target.height},setsar=1,format=yuv420p,split={n}{ref}",
            f"[{i + 1}:v]setpts=PTS-STARTPTS,setsar=1,format=yuv420p,split={n}{dist}",
            *(f"[d{i}_{k}][r{i}_{k}]{metric}@q{i}[o{i}_{k}]" for k, metric in enumerate(metrics)),
        ]
    inputs = _input(file_url(source), SOURCE_DEMUXERS, "file")
    for target in targets:
        inputs += _target_input(target)
    maps = [arg for i in range(len(targets)) for k in range(n) for arg in ("-map", f"[o{i}_{k}]")]
    return [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "info", *inputs,
        "-filter_complex", ";".join(graph), *maps, "-f", "null", "-",
    ]  # fmt: skip


def parse_job_quality(log: str, targets: Sequence[QualityTarget]) -> dict[str, QualityScores]:
    """Each target's scores (by label) in the log of `build_job_quality_command`; ValueError naming the first
    target whose SSIM or PSNR summary is missing."""
    scores = {}
    for i, target in enumerate(targets):
        found = _scores(log, f"q{i}")
        if found is None:
            raise ValueError(f"{target.label}: no SSIM/PSNR summary in the ffmpeg log")
        scores[target.label] = found
    return scores


def rounded(scores: QualityScores) -> QualityScores:
    """Scores as the job document lists them: SSIM to 4 decimals, PSNR (dB) and VMAF to 2, PSNR at most
    `PSNR_CAP` (identical pictures)."""
    psnr = PSNR_CAP if math.isinf(scores.psnr) else min(PSNR_CAP, scores.psnr)
    return QualityScores(
        ssim=round(scores.ssim, 4),
        psnr=round(psnr, 2),
        vmaf=None if scores.vmaf is None else round(scores.vmaf, 2),
    )
