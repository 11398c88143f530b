"""The encode's own work against the hand-written reference: vodflow's ffmpeg commands (as `vodflow plan`
prints them: one process for every rendition, each distinct rendition encoded once, then the copy-only MP4
remux) run as a shell script, without Python or Prefect, alternately with the reference command (which
encodes the 360p MP4 a second time). Run alone with `python bench/dedup.py`, or within `make bench`.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.reference import reference_command  # noqa: E402

BIN = Path(sys.executable).parent


def dedup_effect(job: dict, source: Path, work: Path, reps: int) -> list[dict]:
    """Median seconds of the reference command and of vodflow's planned commands on `source`."""
    spec, script, planned = work / "dedup-spec.json", work / "dedup.sh", work / "dedup-work"
    spec.write_text(json.dumps(job))
    env = {**os.environ, "VODFLOW_ALLOW_LOCAL_FILES": "true"}
    plan = subprocess.run(
        [str(BIN / "vodflow"), "plan", str(spec), "--workdir", str(planned)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    script.write_text(plan.stdout)
    times: dict[str, list[float]] = {"reference": [], "vodflow's ffmpeg commands": []}
    for rep in range(reps):
        out = work / "dedup-ref"
        shutil.rmtree(out, ignore_errors=True)
        (out / "hls").mkdir(parents=True)
        started = time.perf_counter()
        subprocess.run(reference_command(source, out), check=True)
        times["reference"].append(time.perf_counter() - started)
        shutil.rmtree(planned, ignore_errors=True)
        started = time.perf_counter()
        subprocess.run(["sh", str(script)], check=True, stdout=subprocess.DEVNULL)
        times["vodflow's ffmpeg commands"].append(time.perf_counter() - started)
        print(f"  run {rep + 1}/{reps}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
    ref = statistics.median(times["reference"])
    return [
        {
            "commands": k,
            "median (s)": round(statistics.median(v), 2),
            "/reference": round(statistics.median(v) / ref, 3),
        }
        for k, v in times.items()
    ]


if __name__ == "__main__":
    from bench.run import WORK, job_for, sample_source, table

    seconds = int(os.environ.get("BENCH_DEDUP_SOURCE", "60"))
    source = sample_source(seconds)
    print(table(dedup_effect(job_for(source), source, WORK, int(os.environ.get("BENCH_REPS", "3")))))
