"""Segment-parallel encoding: a 2-worker Dask LocalCluster against the one-process encode of the same job.

On a generated 1080p30 source with tone audio (60 s by default) and the demo ladder (HLS 240/360/480/720/1080
+ MP4 360), runs alternately: the one-process encode (`tasks.encode.encode_renditions`, no Prefect), and
`encode_in_chunks` in a flow on a DaskTaskRunner over a LocalCluster of 2 and of 1 worker processes (1
thread each). Prints a markdown table (wall times, per-chunk times, speed-up) and the per-chunk model for
N machines and a 60-minute source, and writes both to `bench/chunked-results.md`.

    .venv/bin/python bench/chunked.py [--seconds 60] [--chunk 30] [--reps 1] [--job demo|cmaf]

`--job cmaf` encodes, instead of the demo ladder, a three-codec `cmaf` ladder (360/720/1080 in H.264, HEVC
and AV1, the audio track and the audio-only variant) with a sidecar caption and a storyboard: every output of
the chunked path (results in `bench/chunked-cmaf-results.md`).

Needs the `dask` extra. Prefect runs in a throwaway ephemeral home; the host's ffmpeg limit gets 2 slots so
both local workers may encode at once (on real machines each host has its own limit).
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work" / "chunked"
PREFECT_HOME = Path(tempfile.mkdtemp(prefix="vodflow-bench-prefect-"))
os.environ["PREFECT_HOME"] = str(PREFECT_HOME)  # before Prefect is imported: its settings are read then
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
sys.path.insert(0, str(ROOT))

from distributed import LocalCluster  # noqa: E402
from prefect import flow  # noqa: E402

from vodflow.cli.demo import DEMO_JOB  # noqa: E402
from vodflow.encoders import EncodeOptions  # noqa: E402
from vodflow.encoders.chunked import ChunkedEncodeTimes, encode_in_chunks  # noqa: E402
from vodflow.encoders.local import encode_renditions  # noqa: E402
from vodflow.jobs.document import JobDocument  # noqa: E402
from vodflow.jobs.plan import CaptionOutput, OutputPlan, plan_outputs  # noqa: E402
from vodflow.jobs.sources import Source  # noqa: E402
from vodflow.jobs.spec import parse_spec  # noqa: E402
from vodflow.media.probe import probe_source  # noqa: E402
from vodflow.media.samples import make_sample  # noqa: E402
from vodflow.orchestration.concurrency import Slots  # noqa: E402
from vodflow.tasks.steps import PrefectSteps  # noqa: E402

PRESET = "veryfast"
HOUR = 3600


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def one_process(source: Source, plan: OutputPlan) -> float:
    started = time.perf_counter()
    encode_renditions(source, plan, fresh(WORK / "single"), EncodeOptions(x264_preset=PRESET))
    return time.perf_counter() - started


@flow(name="bench-chunked", validate_parameters=False)
def run_chunked(
    source: Source, plan: OutputPlan, workdir: Path, chunk: int, address: str
) -> ChunkedEncodeTimes:
    """The chunked encode, its chunk steps as Prefect tasks on the Dask cluster at `address`."""
    options = EncodeOptions(x264_preset=PRESET, chunk_seconds=chunk, slots=Slots(2), report_progress=False)
    return encode_in_chunks(source, plan, workdir, options, PrefectSteps(dask_address=address))


def chunked(source: Source, plan: OutputPlan, workers: int, chunk: int) -> tuple[float, ChunkedEncodeTimes]:
    """Wall seconds of the whole flow (cluster start included) and the encode's own times."""
    started = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
        times = run_chunked(source, plan, fresh(WORK / f"chunked-{workers}"), chunk, c.scheduler_address)
    return time.perf_counter() - started, times


def makespan(tasks: list[float], machines: int) -> float:
    """Wall time of `tasks` taken in order, each by the machine free first (as Dask hands them out)."""
    free = [0.0] * machines
    for seconds in tasks:
        heapq.heappush(free, heapq.heappop(free) + seconds)
    return max(free)


def model(single: float, one_worker: ChunkedEncodeTimes, seconds: float, chunk: int) -> list[str]:
    """The N-machine estimate for a 60-minute source from the 1-worker run's measured times."""
    per_chunk = sum(one_worker.chunks) / seconds * chunk  # cost per second of source, times a chunk
    scale = HOUR / seconds
    audio = [a * scale for a in one_worker.audio]
    stitch, chunks = one_worker.stitch * scale, math.ceil(HOUR / chunk)
    lines = [
        f"Measured here (one machine = this {os.cpu_count()}-core VM, one chunk at a time): a {chunk} s "
        f"chunk of 1080p30 in every rendition takes t_chunk = {per_chunk:.1f} s. Scaled to a 60-minute "
        f"source: each audio bitrate takes {', '.join(f'{a:.0f}' for a in audio)} s (one task each, whole "
        f"source), the stitch t_stitch = {stitch:.0f} s (copy; scaled linearly, so an upper bound), the "
        f"one-process encode {single * scale / 60:.1f} min; the source is {chunks} chunks.",
        "",
        "```",
        "T(N) = makespan of the audio tasks, then the chunk tasks, on N machines + t_stitch",
        "     ~ max(longest audio task, (sum of audio tasks + chunks x t_chunk) / N) + t_stitch",
        "```",
        "",
        "| machines N | estimated wall | speed-up vs one process |",
        "| --- | --- | --- |",
    ]
    for n in (1, 2, 4, 8, 16, 32, 60, 120):
        wall = makespan(audio + [per_chunk] * chunks, n) + stitch
        lines.append(f"| {n} | {wall / 60:.1f} min | {single * scale / wall:.1f}x |")
    return lines


CMAF_JOB = {
    "presets": [
        {"format": "cmaf", "resolutions": ["360", "720", "1080"], "codecs": ["h264", "hevc", "av1"],
         "audioOnly": True, "iframes": True},
    ],
    "storyboard": {"interval": 5, "width": 160},
}  # fmt: skip


def with_captions(plan: OutputPlan, seconds: float) -> OutputPlan:
    """The plan with an English sidecar caption: a cue every 4 s over the whole source."""
    vtt = WORK / "en.vtt"
    cues = [f"{_time(t)} --> {_time(t + 3)}\nLine {t // 4}\n" for t in range(0, int(seconds) - 3, 4)]
    vtt.write_text("WEBVTT\n\n" + "\n".join(cues))
    return dataclasses.replace(plan, captions=[CaptionOutput("c" * 24, "en", "English", vtt)])


def _time(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.000"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--chunk", type=int, default=30)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--job", choices=("demo", "cmaf"), default="demo")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.out = args.out or ROOT / "bench" / (
        "chunked-results.md" if args.job == "demo" else "chunked-cmaf-results.md"
    )

    sample = make_sample(fresh(WORK) / "source.mp4", seconds=args.seconds, fps=30)
    job = DEMO_JOB if args.job == "demo" else CMAF_JOB
    body = {"videoUrl": str(sample), **{k: v for k, v in job.items() if k in ("presets", "storyboard")}}
    doc = JobDocument.from_spec(parse_spec(body))
    source = Source(sample, probe_source(sample))
    plan = plan_outputs(doc, source.info)
    if args.job == "cmaf":
        plan = with_captions(plan, args.seconds)

    load_before = os.getloadavg()[0]
    singles, flows = [], {2: [], 1: []}
    timings: dict[int, list[ChunkedEncodeTimes]] = {2: [], 1: []}
    for _ in range(args.reps):  # alternated, so a noisy neighbour hurts every variant alike
        singles.append(one_process(source, plan))
        for workers in (2, 1):
            wall, times = chunked(source, plan, workers, args.chunk)
            flows[workers].append(wall)
            timings[workers].append(times)

    single = statistics.median(singles)
    best = {w: min(ts, key=lambda t: t.total) for w, ts in timings.items()}
    rows = [
        "| variant | encode wall (s) | flow wall incl. cluster start (s) | per-chunk (s) "
        "| audio per track (s) | package (s) | speed-up |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| one process (1 ffmpeg) | {single:.1f} | - | - | - | - | 1.00x |",
    ]
    for workers in (2, 1):
        t = best[workers]
        chunk_times = ", ".join(f"{c:.1f}" for c in t.chunks)
        rows.append(
            f"| chunked, Dask LocalCluster {workers} worker(s) x 1 thread | {t.total:.1f} "
            f"| {min(flows[workers]):.1f} | {chunk_times} | {', '.join(f'{a:.1f}' for a in t.audio)} "
            f"| {t.stitch:.1f} "
            f"| {single / t.total:.2f}x |"
        )
    header = [
        f"# Chunked encode ({args.job} job): {args.seconds:.0f} s 1080p30 source, {args.chunk} s chunks",
        "",
        f"Host: {platform.node()}, {os.cpu_count()} cores, {platform.python_version()}, x264 `{PRESET}`; "
        f"runs: {args.reps} of each, alternated (median one-process, best chunked); 1-minute load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after (other work on the host inflates every "
        "figure). Job: "
        + (
            "HLS 240/360/480/720/1080 + MP4 360 (the chunked path encodes the 360 rendition once for both)."
            if args.job == "demo"
            else "CMAF 360/720/1080 in H.264, HEVC and AV1, audio-only variant, I-frames, a sidecar caption "
            "and a storyboard (5 s tiles)."
        ),
        "",
    ]
    text = (
        "\n".join(
            [
                *header,
                *rows,
                "",
                "## 60-minute source on N machines (model)",
                "",
                *model(single, best[1], args.seconds, args.chunk),
            ]
        )
        + "\n"
    )
    print(text)
    args.out.write_text(text)
    shutil.rmtree(PREFECT_HOME, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
