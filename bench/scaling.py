"""Scaling in a cascade against scaling every rung from the source (`vodflow/media/scaling.py`).

On the benchmark's generated 1080p30 source and the ladder of `bench/reference.py` (240p-720p; the 1080p
rung is the source's size), two measures:
- cost: ffmpeg's CPU seconds (user + system) to decode the source and make every rung (`-f null`), each
  rung from the source (`split`, one `scale` each) or through vodflow's tree, alternating, `BENCH_REPS` times;
- quality: each rung both ways, encoded as the encode makes it (x264 `veryfast`, the rung's bitrate, maxrate
  1.07x, a 2x buffer), its PSNR and SSIM against the source scaled to the rung with lanczos (`accurate_rnd`,
  `full_chroma_int`), and unencoded against the direct scale (how far the cascade's picture is from it).

Run: `.venv/bin/python bench/scaling.py` (BENCH_SCALING_SOURCE seconds, default 10; BENCH_REPS, 3).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

import ffmpeg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.reference import LADDER  # noqa: E402
from bench.run import WORK, sample_source, table  # noqa: E402
from vodflow.media.commands import scaled_pictures  # noqa: E402
from vodflow.media.quality import QualityScores, build_quality_command, parse_quality  # noqa: E402
from vodflow.media.scaling import split_ways  # noqa: E402

RUNGS = [(w, h, kbps) for _, w, h, kbps, _ in LADDER if h < 1080]
SIZES = [(w, h) for w, h, _ in RUNGS]
QUIET = ("-nostdin", "-hide_banner", "-loglevel", "error")


def rung_streams(source: Path, cascade: bool) -> list[object]:
    """One stream per rung of `SIZES`: as vodflow's encode scales them, or each scaled from the decode."""
    video = ffmpeg.input(str(source)).video
    if cascade:
        return scaled_pictures(video, SIZES, [False] * len(SIZES), "sdr")
    return [
        branch.filter("scale", w, h)
        for branch, (w, h) in zip(split_ways(video, len(SIZES)), SIZES, strict=True)
    ]


def cpu_seconds(command: list[str]) -> float:
    """User + system CPU seconds of `command` (run to the end)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def cost(source: Path, reps: int) -> dict[str, float]:
    """Median CPU seconds of the decode and every rung, each way."""
    runs: dict[str, list[float]] = {"from the source": [], "cascade": []}
    for _ in range(reps):
        for name, cascade in (("from the source", False), ("cascade", True)):
            outputs = [ffmpeg.output(s, "-", f="null") for s in rung_streams(source, cascade)]
            command = ffmpeg.merge_outputs(*outputs).global_args(*QUIET).compile()
            runs[name].append(cpu_seconds(command))
    return {name: statistics.median(values) for name, values in runs.items()}


def scores(rendition: Path, reference: Path, width: int, height: int) -> QualityScores:
    """SSIM and PSNR of `rendition` against `reference` (already at the rung's size: not scaled again)."""
    command = build_quality_command(rendition, reference, width, height)
    return parse_quality(subprocess.run(command, capture_output=True, text=True, check=True).stderr)


def quality(source: Path, work: Path) -> list[dict]:
    """Per rung: PSNR/SSIM of the encoded rung against lanczos, each way, and the unencoded cascade against
    the unencoded direct scale."""
    work.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[Path]] = {}
    for name, cascade in (("direct", False), ("cascade", True)):
        files[name] = [work / f"{name}-{h}p.mkv" for _, h in SIZES]
        outputs = [
            ffmpeg.output(s, str(path), vcodec="ffv1")
            for s, path in zip(rung_streams(source, cascade), files[name], strict=True)
        ]
        subprocess.run(
            ffmpeg.merge_outputs(*outputs).global_args(*QUIET).overwrite_output().compile(), check=True
        )
    rows = []
    for k, (w, h, kbps) in enumerate(RUNGS):
        truth = work / f"lanczos-{h}p.mkv"
        subprocess.run(
            ["ffmpeg", *QUIET, "-y", "-i", str(source), "-vf",
             f"scale={w}:{h}:flags=lanczos+accurate_rnd+full_chroma_int", "-c:v", "ffv1", str(truth)],
            check=True,
        )  # fmt: skip
        row: dict[str, object] = {"rung": f"{w}x{h}"}
        for name in ("direct", "cascade"):
            encoded = work / f"{name}-{h}p.mp4"
            subprocess.run(
                ["ffmpeg", *QUIET, "-y", "-i", str(files[name][k]), "-c:v", "libx264", "-preset", "veryfast",
                 "-b:v", f"{kbps}k", "-maxrate", f"{int(kbps * 1.07)}k", "-bufsize", f"{2 * kbps}k",
                 "-pix_fmt", "yuv420p", str(encoded)],
                check=True,
            )  # fmt: skip
            got = scores(encoded, truth, w, h)
            row[f"{name} encoded PSNR (dB)"], row[f"{name} SSIM"] = round(got.psnr, 3), round(got.ssim, 5)
        unencoded = scores(files["cascade"][k], files["direct"][k], w, h)
        row["cascade vs direct, unencoded PSNR (dB)"] = round(unencoded.psnr, 1)
        rows.append(row)
    return rows


if __name__ == "__main__":
    source = sample_source(int(os.environ.get("BENCH_SCALING_SOURCE", "10")))
    seconds = cost(source, int(os.environ.get("BENCH_REPS", "3")))
    print(table([{"scaling": name, "CPU (s), median": round(value, 2)} for name, value in seconds.items()]))
    print()
    print(table(quality(source, WORK / "scaling")))
