"""Issue 25's figures through the local stack, as a user runs them: `vodflow up`, then `vodflow encode SPEC`
(the job handed to the stack's worker and warm runner) of the demo ladder (HLS 240-1080, MP4 360, a thumbnail)
on the generated 1080p30 sources, against the hand-written reference command (`bench/reference.py`: one
ffmpeg making the same outputs) on the same source, in alternating pairs:

- ratio: vodflow's wall (CLI start to exit) over the reference's, per pair; the median of `BENCH_REPS` pairs
  for each source length (targets: 1.00 at 30 s, 0.97 at 60 s);
- first playable: on every vodflow run, seconds from the CLI's start until the job's master playlist and the
  first segment of every rung it lists are readable in storage (`bench/playable.py`'s watcher, every 50 ms;
  target 10 s on the 60 s source).

`make bench-stack` (`.venv/bin/python bench/stack_speed.py`) starts its own stack (state under bench/work),
prints each run and a markdown table of medians, and stops the stack. Environment: BENCH_REPS (3),
BENCH_SOURCES ("30,60" seconds). Run it on a quiet machine: both commands use every core.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.playable import first_playable  # noqa: E402
from bench.run import BIN, WORK, job_for, run_reference, sample_source, table, write_spec  # noqa: E402
from bench.small_job import local_stack  # noqa: E402


def vodflow_run(spec: Path, env: dict[str, str], job_id: str) -> dict[str, float | None]:
    """One `vodflow encode` handed to the stack: wall and first playable (seconds from the CLI's start)."""
    stop = threading.Event()
    seen: dict[str, float | None] = {}
    started = time.perf_counter()
    data = Path(env["VODFLOW_DATA_DIR"])
    watcher = threading.Thread(
        target=lambda: seen.update(playable=first_playable(data, job_id, started, stop)), daemon=True
    )
    watcher.start()
    command = [str(BIN / "vodflow"), "encode", str(spec), "--job-id", job_id]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    stop.set()
    watcher.join()
    if done.returncode != 0:
        raise RuntimeError(f"vodflow failed: {done.stderr[-3000:]}")
    assert json.loads(done.stdout)["status"] == "completed"
    return {"wall": wall, "playable": seen.get("playable")}


def measure(reps: int, lengths: list[int]) -> list[dict]:
    WORK.mkdir(parents=True, exist_ok=True)
    sources = {seconds: sample_source(seconds) for seconds in lengths}
    rows = []
    with local_stack("stack-speed") as (env, _api):
        warm = write_spec(job_for(sources[lengths[0]]), "stack-speed-warm.json")
        vodflow_run(warm, env, f"stackwarm{int(time.time())}".ljust(24, "0"))  # the stack's first run
        for seconds, source in sources.items():
            spec = write_spec(job_for(source), f"stack-speed-{seconds}.json")
            pairs = []
            for rep in range(reps):
                reference, _ = run_reference(source)
                run = vodflow_run(spec, env, f"stack{seconds}r{rep}t{int(time.time())}".ljust(24, "0"))
                pairs.append({"reference": reference, **run})
                shown = f"{run['playable']:.1f} s" if run["playable"] is not None else "never"
                print(
                    f"  {seconds} s, pair {rep + 1}/{reps}: reference {reference:.1f} s, vodflow "
                    f"{run['wall']:.1f} s ({run['wall'] / reference:.3f}x), playable after {shown}",
                    flush=True,
                )
            playable = [p["playable"] for p in pairs if p["playable"] is not None]
            rows.append(
                {
                    "source": f"{seconds} s 1080p30",
                    "reference (s)": round(statistics.median(p["reference"] for p in pairs), 2),
                    "vodflow through the stack (s)": round(statistics.median(p["wall"] for p in pairs), 2),
                    "vodflow/reference (median of pairs)": round(
                        statistics.median(p["wall"] / p["reference"] for p in pairs), 3
                    ),
                    "min/max ratio": "/".join(
                        f"{f(p['wall'] / p['reference'] for p in pairs):.3f}" for f in (min, max)
                    ),
                    "first playable after CLI start (s)": round(statistics.median(playable), 1)
                    if playable
                    else "-",
                }
            )
    return rows


def main() -> None:
    lengths = [int(s) for s in os.environ.get("BENCH_SOURCES", "30,60").split(",") if s]
    print(table(measure(int(os.environ.get("BENCH_REPS", "3")), lengths)))


if __name__ == "__main__":
    main()
