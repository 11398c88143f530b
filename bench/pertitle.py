"""`make bench-pertitle`: the per-title ladder (`"ladder": "auto"`) against the fixed ladder.

Four 720p25 sources made with ffmpeg's lavfi sources (a still slide deck, a low-motion scene, high-motion
noise, a cartoon-like flat-colour scene) are planned and encoded as one HLS ladder (360p + 720p) each way,
through vodflow's own steps (plan, per-title analysis, the one-process encode; no Prefect). Each rung's
bitrate is read from its segments and its quality measured against the source: SSIM (the metric the analysis
aims at) and VMAF (with the libvmaf of imageio-ffmpeg's static ffmpeg). Prints the table and writes it to
`bench/results.md` (section "Per-title ladder").

Environment: BENCH_PERTITLE_SECONDS (default 12), BENCH_PERTITLE_CONTENT (comma list of content names).
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vodflow.encoders.base import EncodeOptions  # noqa: E402
from vodflow.encoders.local import encode_renditions  # noqa: E402
from vodflow.jobs.document import JobDocument  # noqa: E402
from vodflow.jobs.pertitle import TARGET_SSIM_DB  # noqa: E402
from vodflow.jobs.plan import OutputPlan, plan_outputs  # noqa: E402
from vodflow.jobs.sources import Source  # noqa: E402
from vodflow.jobs.spec import parse_spec  # noqa: E402
from vodflow.media.commands import hls_dir, variant_name  # noqa: E402
from vodflow.media.probe import probe_source  # noqa: E402
from vodflow.media.quality import build_quality_command, parse_quality  # noqa: E402
from vodflow.settings import load_settings  # noqa: E402
from vodflow.steps.pertitle import probe_rungs  # noqa: E402

WORK = ROOT / "bench" / "work" / "pertitle"
RESULTS = ROOT / "bench" / "results.md"
SECTION = "## Per-title ladder"
LADDER = ["360", "720"]
SIZE, RATE = "1280x720", 25


def _held(source: str) -> str:
    """A lavfi source's first frame held as a 4 s still."""
    return f"{source}=s={SIZE}:r={RATE},trim=end_frame=1,loop=loop={4 * RATE - 1}:size=1,setpts=N/{RATE}/TB"


CONTENT = {
    "slides": (
        "still slide deck (3 stills of 4 s: bars, a fractal, a test card)",
        f"smptehdbars=s={SIZE}:r={RATE}:d=4,setsar=1,format=yuv420p[a];"
        f"{_held('mandelbrot')},setsar=1,format=yuv420p[b];{_held('testsrc2')},setsar=1,format=yuv420p[c];"
        "[a][b][c]concat=n=3",
    ),
    "low-motion": (
        "low motion (testsrc2: a still card, a moving box, counters)",
        f"testsrc2=s={SIZE}:r={RATE}",
    ),
    "cartoon": (
        "cartoon-like flat colour (Game of Life in big flat cells, a new drawing every 5th frame)",
        "life=s=320x180:r=5:seed=1:mold=10:ratio=0.1:death_color=#C83232:life_color=#00FF00,"
        f"scale={SIZE.replace('x', ':')}:flags=neighbor,fps={RATE}",
    ),
    "noise": (
        "high-motion noise (testsrc2 under strong temporal noise)",
        f"testsrc2=s={SIZE}:r={RATE},noise=alls=40:allf=t+u",
    ),
}


NOTES = """\
How to read it: `planned` is what the plan asks x264 for (the fixed ladder, or the analysis's choice);
`measured` is the ladder's video bitrate from its segments (a still picture cannot use the fixed ladder's
bits, so its fixed ladder measures far below plan). `bits saved` is 1 - auto/fixed of the measured totals.
The analysis aims at SSIM (its worst sampled scene's mean, in dB), the metric this table reports next to VMAF
(libvmaf's default model, computed at each rung's own size against the source scaled to it). `analysis` is
the per-title analysis's wall time (sample, probe encodes, SSIM), not counted in the encode; the 2 cores were
shared with other work while this ran, so times are upper bounds."""


def make_source(name: str, seconds: float) -> Path:
    """The content's source: its lavfi graph for `seconds`, x264 CRF 8 (near-lossless), no audio."""
    dest = WORK / f"{name}.mp4"
    graph = f"{CONTENT[name][1]},trim=duration={seconds},format=yuv420p[v]"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-filter_complex", graph, "-map", "[v]",
         "-c:v", "libx264", "-preset", "ultrafast", "-crf", "8", str(dest)],
        check=True,
    )  # fmt: skip
    return dest


def vmaf_ffmpeg() -> str:
    """imageio-ffmpeg's static ffmpeg (it has libvmaf)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def measure(
    plan: OutputPlan, workdir: Path, source: Path, seconds: float
) -> dict[str, tuple[float, float, float]]:
    """Per rung: (kbit/s of its segments, SSIM, VMAF) against the source."""
    (out,) = plan.hls
    rungs = {}
    for rendition in out.renditions:
        folder = hls_dir(workdir, out) / variant_name(rendition)
        kbps = sum(p.stat().st_size for p in folder.glob("seg_*.ts")) * 8 / 1000 / seconds
        command = build_quality_command(
            folder / "index.m3u8", source, rendition.width, rendition.height, vmaf=True, ffmpeg=vmaf_ffmpeg()
        )
        log = subprocess.run(command, capture_output=True, text=True, check=True).stderr
        scores = parse_quality(log)
        rungs[rendition.resolution] = (kbps, scores.ssim, scores.vmaf or float("nan"))
    return rungs


def run_content(name: str, seconds: float) -> dict[str, object]:
    """Fixed and auto ladders of one content: rung figures, analysis time, skipped rungs."""
    path = make_source(name, seconds)
    settings = load_settings()
    source = Source(path, probe_source(path, settings.limits()))
    options = EncodeOptions(x264_preset="veryfast", report_progress=False)
    result: dict[str, object] = {}
    for ladder in ("fixed", "auto"):
        spec = parse_spec(
            {"videoUrl": str(path), "presets": [{"format": "hls", "resolutions": LADDER, "ladder": ladder}]}
        )
        doc = JobDocument.from_spec(spec, f"bench-{name}-{ladder}")
        workdir = WORK / f"{name}-{ladder}"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        plan = plan_outputs(doc, source.info)
        started = time.perf_counter()
        if plan.auto_rungs:
            probes = probe_rungs(source, plan.auto_rungs, workdir, x264_preset=options.x264_preset)
            plan = plan_outputs(doc, source.info, probes=probes)
        analysis = time.perf_counter() - started
        encode_renditions(source, plan, workdir, options)
        result[ladder] = {
            "rungs": measure(plan, workdir, path, source.info.duration),
            "analysis": analysis,
            "skipped": [s.resolution for s in plan.skipped],
            "planned": {r.resolution: r.video_kbps for r in plan.hls[0].renditions},
        }
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def table(results: dict[str, dict[str, object]]) -> str:
    rows = [
        "| content | ladder | planned kbit/s (360/720) | measured kbit/s total | SSIM 360/720 | VMAF 360/720 "
        "| bits saved | analysis (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        fixed_total = sum(k for k, _, _ in result["fixed"]["rungs"].values())
        for ladder in ("fixed", "auto"):
            r = result[ladder]
            rungs = r["rungs"]
            total = sum(k for k, _, _ in rungs.values())
            planned = "/".join(str(r["planned"].get(res, "dropped")) for res in LADDER)
            ssim = "/".join(f"{rungs[res][1]:.4f}" if res in rungs else "-" for res in LADDER)
            vmaf = "/".join(f"{rungs[res][2]:.2f}" if res in rungs else "-" for res in LADDER)
            saved = f"{(1 - total / fixed_total) * 100:.1f}%" if ladder == "auto" else ""
            analysis = f"{r['analysis']:.1f}" if ladder == "auto" else ""
            rows.append(
                f"| {name} | {ladder} | {planned} | {total:.0f} | {ssim} | {vmaf} | {saved} | {analysis} |"
            )
    return "\n".join(rows)


def machine() -> str:
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    vmaf = subprocess.run([vmaf_ffmpeg(), "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    return (
        f"{os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}; encode: "
        f"{version.split(' Copyright')[0]}; VMAF: {vmaf.split(' Copyright')[0]} (imageio-ffmpeg)"
    )


def write_section(text: str) -> None:
    """Replace (or add) the "Per-title ladder" section of bench/results.md."""
    current = RESULTS.read_text() if RESULTS.exists() else "# vodflow benchmark\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    updated = (
        pattern.sub(lambda _: text, current) if pattern.search(current) else current.rstrip() + "\n\n" + text
    )
    RESULTS.write_text(updated)


def section(seconds: float, names: list[str]) -> str:
    """Run the contents `names` and return the "Per-title ladder" section (table and how it was made)."""
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = {}
    for name in names:
        results[name] = run_content(name, seconds)
        print(f"{name}: done at {time.perf_counter() - started:.0f} s", flush=True)
    contents = "\n".join(f"- {name}: {CONTENT[name][0]}" for name in names)
    return (
        f"{SECTION}\n\nMachine: {machine()}\n\nDate: {datetime.now(UTC):%Y-%m-%d}; command: "
        f"`make bench-pertitle`; {seconds:g} s 720p25 sources, HLS ladder {'/'.join(LADDER)}, x264 veryfast, "
        f"target SSIM {TARGET_SSIM_DB:g} dB; whole run {time.perf_counter() - started:.0f} s\n\n"
        f"{contents}\n\n{table(results)}\n\n{NOTES}\n"
    )


def main() -> None:
    seconds = float(os.environ.get("BENCH_PERTITLE_SECONDS", "12"))
    names = [n for n in os.environ.get("BENCH_PERTITLE_CONTENT", ",".join(CONTENT)).split(",") if n]
    text = section(seconds, names)
    print(text)
    if set(names) == set(CONTENT):
        write_section(text)


if __name__ == "__main__":
    main()
