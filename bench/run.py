"""`make bench`: vodflow against the one-command reference and the naive per-output script.

Runs, alternating and on the same generated 1080p30 sources, the reference ffmpeg command, the naive
script and `vodflow encode` of the equivalent job spec (through the CLI, against a Prefect server started
here); then the time to first playable on the longest source (`bench/playable.py`), the orchestration's
fixed cost on a 2 s source (vodflow minus the reference command, and the flow run's own from the Prefect API:
`bench/fixed_cost.py`, a CLI run and a deployment run on a worker), output quality (bitrate, SSIM, PSNR), the
Python process's peak memory for ingest + publish of a 20 MB and a 2 GB source, jobs/hour with 1, 2 and 4
jobs submitted at once, and the per-title ladder against the fixed one (`bench/pertitle.py`). Prints the
tables and writes them to `bench/results.md`.

Environment: BENCH_REPS (default 3), BENCH_SOURCES (default "10,60" seconds), BENCH_SKIP (comma list of
sections to skip: speed,dedup,playable,orchestration,quality,memory,throughput,pertitle).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dedup import dedup_effect  # noqa: E402
from bench.playable import time_to_playable  # noqa: E402
from bench.reference import LADDER, naive_commands, reference_command  # noqa: E402
from tests.prefect_server import PrefectServer  # noqa: E402
from vodflow.cli.demo import DEMO_JOB as BENCH_JOB  # noqa: E402
from vodflow.media.quality import build_quality_command, parse_quality  # noqa: E402  (the demo job is the benchmark job)
from vodflow.media.samples import make_sample  # noqa: E402

WORK = ROOT / "bench" / "work"
# vodflow stores into and works under bench/work (local storage) in every benchmark run
LOCAL_STORAGE_ENV = {
    "VODFLOW_STORAGE": "local",
    "VODFLOW_DATA_DIR": str(WORK / "data"),
    "VODFLOW_TMP_DIR": str(WORK),
}
BIN = Path(sys.executable).parent


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB, largest process of the tree) of a command."""
    wrapper = (
        "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)"
    )
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", wrapper, *cmd], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {result.stderr[-2000:]}")
    return wall, int(result.stdout.strip().splitlines()[-1])


def sample_source(seconds: int) -> Path:
    """The generated 1080p30 source of `seconds` seconds in bench/work, made on first use."""
    path = WORK / f"src-{seconds}s.mp4"
    if not path.exists():
        print(f"generating {path.name}", flush=True)
        make_sample(path, seconds=seconds)
    return path


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def run_reference(source: Path, thumb_at: float = 3.0) -> tuple[float, int]:
    out = fresh(WORK / "ref")
    (out / "hls").mkdir()
    return timed(reference_command(source, out, thumb_at))


def run_naive(source: Path) -> tuple[float, int]:
    out = fresh(WORK / "naive")
    for name, *_ in LADDER:
        (out / "hls" / name).mkdir(parents=True)
    started, peak = time.perf_counter(), 0
    for cmd in naive_commands(source, out):
        peak = max(peak, timed(cmd)[1])
    return time.perf_counter() - started, peak


def job_for(source: Path, thumb_at: float = 3.0) -> dict:
    """The benchmark job on `source`, its thumbnails taken at `thumb_at` seconds."""
    thumbnails = [{**t, "timestamp": f"00:00:{thumb_at:06.3f}"} for t in BENCH_JOB["thumbnails"]]
    return {**BENCH_JOB, "thumbnails": thumbnails, "videoUrl": str(source)}


def write_spec(job: dict, name: str = "spec.json") -> Path:
    spec = WORK / name
    spec.write_text(json.dumps(job))
    return spec


def run_vodflow(source: Path, env: dict[str, str], thumb_at: float = 3.0) -> tuple[float, int, dict]:
    spec = write_spec(job_for(source, thumb_at))
    out = WORK / "vodflow.json"
    wrapper = (
        "import resource, subprocess, sys; r = subprocess.run(sys.argv[2:], stdout=open(sys.argv[1], 'w')); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)"
    )
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", wrapper, str(out), str(BIN / "vodflow"), "encode", str(spec)],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"vodflow failed: {result.stderr[-3000:]}")
    return wall, int(result.stdout.strip().splitlines()[-1]), json.loads(out.read_text())


def median(values: list[float]) -> float:
    return statistics.median(values)


def compare(sources: dict[int, Path], env: dict[str, str], reps: int) -> list[dict]:
    rows = []
    for seconds, source in sources.items():
        times: dict[str, list[float]] = {"reference": [], "naive": [], "vodflow": []}
        peaks: dict[str, int] = {}
        for rep in range(reps):
            for name in ("reference", "naive", "vodflow"):  # alternating, so drift hits all three
                if name == "reference":
                    wall, peak = run_reference(source)
                elif name == "naive":
                    wall, peak = run_naive(source)
                else:
                    wall, peak, _ = run_vodflow(source, env)
                times[name].append(wall)
                peaks[name] = max(peaks.get(name, 0), peak)
                print(f"  {seconds:>3} s source, run {rep + 1}/{reps}: {name:9} {wall:7.2f} s", flush=True)
        ref = median(times["reference"])
        rows.append(
            {
                "source": f"{seconds} s 1080p30",
                **{f"{k} (s)": round(median(v), 2) for k, v in times.items()},
                "vodflow/reference": round(median(times["vodflow"]) / ref, 3),
                "naive/reference": round(median(times["naive"]) / ref, 3),
                "peak RSS ref/naive/vodflow (MiB)": "/".join(str(peaks[k] // 1024) for k in times),
            }
        )
    return rows


def fixed_cost(source: Path, server_env: dict[str, str], reps: int) -> list[dict]:
    """The 2 s source through the reference command and through `vodflow encode` three ways: against a
    Prefect server (PREFECT_API_URL), against the local stack of `vodflow up` (no PREFECT_API_URL, as a user
    runs it), and in Prefect's ephemeral mode (a throwaway server per run)."""
    ephemeral_env = {k: v for k, v in server_env.items() if k != "PREFECT_API_URL"}
    ephemeral_env["PREFECT_HOME"] = str(WORK / "prefect-ephemeral")
    # A new PREFECT_HOME migrates its database on first start, past the default 20 s start-up timeout.
    ephemeral_env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
    run_vodflow(source, ephemeral_env, thumb_at=1.0)  # warm-up: migrations are not a per-run cost
    stack_env = {**ephemeral_env, "VODFLOW_STATE_DIR": str(WORK / "stack")}
    subprocess.run([str(BIN / "vodflow"), "up"], env=stack_env, cwd=ROOT, check=True, capture_output=True)
    names = ("reference", "vodflow (Prefect server)", "vodflow (local stack)", "vodflow (ephemeral)")
    results: dict[str, list[float]] = {name: [] for name in names}
    try:
        run_vodflow(source, stack_env, thumb_at=1.0)  # warm-up of the stack's server
        for _ in range(reps):
            results["reference"].append(run_reference(source, thumb_at=1.0)[0])
            results["vodflow (Prefect server)"].append(run_vodflow(source, server_env, thumb_at=1.0)[0])
            results["vodflow (local stack)"].append(run_vodflow(source, stack_env, thumb_at=1.0)[0])
            results["vodflow (ephemeral)"].append(run_vodflow(source, ephemeral_env, thumb_at=1.0)[0])
    finally:
        subprocess.run([str(BIN / "vodflow"), "down"], env=stack_env, cwd=ROOT, capture_output=True)
    ref = median(results["reference"])
    return [
        {
            "run": name,
            "median (s)": round(median(v), 2),
            "fixed cost over reference (s)": round(median(v) - ref, 2),
        }
        for name, v in results.items()
    ]


def ffprobe_json(path: Path, *args: str) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", *args, "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def quality(document: dict, source: Path) -> list[dict]:
    """Bitrate, SSIM and PSNR of each rendition against the source scaled to its size (ffmpeg's filters)."""
    rows = []
    for entry in document["files"]:
        if entry["type"] == "image":
            continue
        url_path = Path(entry["fileUrl"].removeprefix("file://"))
        targets = sorted(url_path.parent.glob("*/index.m3u8")) if entry["type"] == "x-tar" else [url_path]
        for target in targets:
            stream = ffprobe_json(target, "-select_streams", "v:0", "-show_entries", "stream=width,height")[
                "streams"
            ][0]
            w, h = stream["width"], stream["height"]
            files = list(target.parent.glob("*.ts")) if entry["type"] == "x-tar" else [target]
            duration = float(ffprobe_json(target, "-show_entries", "format=duration")["format"]["duration"])
            kbps = sum(f.stat().st_size for f in files) * 8 / duration / 1000
            log = subprocess.run(
                build_quality_command(target, source, w, h), capture_output=True, text=True
            ).stderr
            scores = parse_quality(log)
            name = f"{entry['type']} {target.parent.name if entry['type'] == 'x-tar' else 'mp4'}"
            rows.append(
                {
                    "rendition": name,
                    "size": f"{w}x{h}",
                    "total kbit/s": round(kbps),
                    "SSIM": scores.ssim,
                    "PSNR (dB)": scores.psnr,
                }
            )
    return rows


MEMORY_PROBE = r"""
import os, resource, sys, tempfile, threading
os.environ.setdefault("VODFLOW_ALLOWED_HOSTS", "127.0.0.1")  # the address guard refuses loopback by default
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from vodflow.steps.ingest import download_http
from vodflow.storage.local import LocalStorage
source = Path(sys.argv[1])
handler = partial(SimpleHTTPRequestHandler, directory=str(source.parent))
server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
with tempfile.TemporaryDirectory(dir=sys.argv[2]) as tmp:
    dest = Path(tmp) / "source"
    download_http(f"http://127.0.0.1:{server.server_address[1]}/{source.name}", dest)
    LocalStorage(Path(tmp) / "store").upload_file(dest, "files/videos/x.mp4")
server.shutdown()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def memory() -> list[dict]:
    """Peak RSS of a Python process that ingests over HTTP and publishes a 20 MB and a 2 GB source."""
    rows = []
    for label, size in (("20 MB", 20 * 10**6), ("2 GB", 2 * 10**9)):
        path = WORK / f"memory-{size}.bin"
        with path.open("wb") as out:
            out.truncate(size)  # sparse: cheap to make, still read and written byte for byte
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, str(path), str(WORK)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(
            {
                "source": label,
                "peak RSS (MiB)": round(int(result.stdout.split()[-1]) / 1024, 1),
                "ingest + publish (s)": round(time.perf_counter() - started, 1),
            }
        )
        path.unlink()
    return rows


def throughput(source: Path, env: dict[str, str], jobs: int = 4) -> list[dict]:
    """Jobs per hour: `jobs` jobs of a 10 s source submitted 1, 2 and 4 at once (each batch waited for)."""
    rows = []
    for at_once in (1, 2, 4):
        started = time.perf_counter()
        with ThreadPoolExecutor(at_once) as pool:
            for _ in range(jobs // at_once):
                list(pool.map(lambda _: run_vodflow_isolated(source, env), range(at_once)))
        wall = time.perf_counter() - started
        slots = env.get("VODFLOW_FFMPEG_SLOTS", "auto")
        rows.append(
            {
                "submitted at once": at_once,
                "ffmpeg slots per host": slots,
                "wall for 4 jobs (s)": round(wall, 1),
                "jobs/hour": round(jobs * 3600 / wall),
            }
        )
    return rows


def run_vodflow_isolated(source: Path, env: dict[str, str]) -> None:
    spec = write_spec(job_for(source), f"spec-{os.getpid()}-{time.perf_counter_ns()}.json")
    subprocess.run([str(BIN / "vodflow"), "encode", str(spec)], env=env, check=True, capture_output=True)


def table(rows: list[dict]) -> str:
    heads = list(rows[0])
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    lines += ["| " + " | ".join(str(r[h]) for h in heads) + " |" for r in rows]
    return "\n".join(lines)


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    import prefect

    return (
        f"{os.cpu_count()} cores ({cpu}), {mem} GiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, Prefect {prefect.__version__}, {ffmpeg}"
    )


def main() -> None:
    reps = int(os.environ.get("BENCH_REPS", "3"))
    lengths = [int(s) for s in os.environ.get("BENCH_SOURCES", "10,60").split(",")]
    skip = set(filter(None, os.environ.get("BENCH_SKIP", "").split(",")))
    WORK.mkdir(parents=True, exist_ok=True)
    sources = {}
    for seconds in sorted({2, *lengths}):
        sources[seconds] = sample_source(seconds)

    sections = [
        f"Machine: {machine()}",
        f"Date: {time.strftime('%Y-%m-%d')}; repetitions: {reps}; command: `make bench`",
    ]
    with PrefectServer(WORK / "prefect-home", WORK / "logs", LOCAL_STORAGE_ENV) as server:
        env = server.env
        if "speed" not in skip:
            print("speed: reference vs naive vs vodflow", flush=True)
            rows = compare({s: sources[s] for s in lengths}, env, reps)
            sections.append("## Speed (medians)\n\n" + table(rows))
        if "dedup" not in skip:
            longest = max(lengths)
            print(f"the encode's own work, {longest} s source", flush=True)
            sections.append(
                f"## The encode's own work ({longest} s source): vodflow's ffmpeg commands without Python or "
                "Prefect (`vodflow plan`) against the reference (medians)\n\n"
                + table(dedup_effect(job_for(sources[longest]), sources[longest], WORK, reps))
            )
        if "playable" not in skip:
            longest = max(lengths)
            print(f"time to first playable, {longest} s source", flush=True)
            spec = write_spec(job_for(sources[longest]), "playable.json")
            sections.append(
                f"## Time to first playable ({longest} s 1080p30 source, the demo ladder; medians)\n\n"
                + table(time_to_playable(spec, env, WORK / "data", reps))
            )
        print("fixed cost on a 2 s source", flush=True)
        sections.append(
            "## Orchestration's fixed cost (2 s source; vodflow minus the reference command)\n\n"
            + table(fixed_cost(sources[2], env, reps))
        )
        if "orchestration" not in skip:
            print("fixed cost per job from the Prefect API", flush=True)
            from bench.fixed_cost import markdown, measure

            sections.append(
                "## Orchestration's fixed cost per job (Running to ffmpeg start, plus ffmpeg end to "
                "Completed; 2 s source; `make bench-fixed`)\n\n" + markdown(*measure(reps))
            )
        if "quality" not in skip:
            print("quality", flush=True)
            _, _, document = run_vodflow(sources[lengths[0]], env)
            sections.append(
                f"## Quality of vodflow's renditions ({lengths[0]} s source, x264 preset veryfast)\n\n"
                + table(quality(document, sources[lengths[0]]))
            )
        if "throughput" not in skip:
            print("throughput", flush=True)
            sections.append(
                "## Throughput, 4 jobs of a 10 s source\n\n" + table(throughput(sources[min(lengths)], env))
            )
    if "memory" not in skip:
        print("memory", flush=True)
        sections.append("## Peak memory of the Python process, ingest (HTTP) + publish\n\n" + table(memory()))
    if "pertitle" not in skip:
        print("per-title ladder", flush=True)
        from bench.pertitle import CONTENT
        from bench.pertitle import section as pertitle_section

        sections.append(pertitle_section(12, list(CONTENT)))
    report = "# vodflow benchmark\n\n" + "\n\n".join(sections) + "\n"
    (ROOT / "bench" / "results.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
