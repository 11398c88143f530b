"""Time to first playable with and without short first segments: `bench/playable.py`'s runs (publishing while
encoding) of the benchmark job, alternating `VODFLOW_FIRST_SEGMENT_SECONDS=0` and `=2` on one Prefect server.
Run alone with `python bench/first_segment.py` (BENCH_REPS, default 1; BENCH_OFFSET numbers the jobs past
those of an earlier run, whose documents are still in bench/work)."""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.playable import one_run  # noqa: E402
from bench.run import LOCAL_STORAGE_ENV, WORK, job_for, sample_source, table, write_spec  # noqa: E402
from tests.prefect_server import PrefectServer  # noqa: E402

if __name__ == "__main__":
    reps, offset = int(os.environ.get("BENCH_REPS", "1")), int(os.environ.get("BENCH_OFFSET", "0"))
    WORK.mkdir(parents=True, exist_ok=True)
    spec = write_spec(job_for(sample_source(60)), "playable.json")
    runs: dict[int, list[dict]] = {0: [], 2: []}
    with PrefectServer(WORK / "prefect-home", WORK / "logs", LOCAL_STORAGE_ENV) as server:
        for rep in range(reps):
            for first in runs:
                env = {**server.env, "VODFLOW_FIRST_SEGMENT_SECONDS": str(first)}
                job_id = f"{rep + offset:02d}{first}".ljust(24, "c")
                runs[first].append(one_run(spec, env, WORK / "data", job_id, live=True))
                print(f"  run {rep + 1}/{reps}, first segment {first} s: {runs[first][-1]}", flush=True)

    def med(results: list[dict], key: str) -> float | str:
        known = [r[key] for r in results if r.get(key) is not None]
        return round(statistics.median(known), 1) if known else "-"

    rows = [
        {
            "first segment (s)": first or "6 (off)",
            "job wall (s)": med(results, "wall"),
            "playable after command start (s)": med(results, "playable"),
            "playable after `startedAt` (s)": med(results, "playable_after_start"),
        }
        for first, results in runs.items()
    ]
    print(table(rows))
