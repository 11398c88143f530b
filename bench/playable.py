"""Time to first playable: how long after a run starts its HLS ladder plays, and what publishing while
encoding costs the whole job.

`vodflow encode` of the benchmark job (the demo ladder) runs against the benchmark's Prefect server,
alternately with publishing while encoding on (the default) and off (`VODFLOW_PUBLISH_WHILE_ENCODING=false`,
the ladder appears when the job is done). A watcher reads local storage every 50 ms and notes when the job's
master playlist and the first segment of every rung it lists are readable. Run alone with
`python bench/playable.py` (BENCH_REPS, BENCH_PLAYABLE_SOURCE seconds, default 60), or within `make bench`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vodflow.jobs.document import iso_parse  # noqa: E402
from vodflow.jobs.keys import job_key  # noqa: E402

BIN = Path(sys.executable).parent


def first_playable(data: Path, job_id: str, started: float, stop: threading.Event) -> float | None:
    """Seconds from `started` until the job's ladder (master + one segment of every rung) is readable."""
    document = data / job_key(job_id)
    while not stop.wait(0.05):
        try:
            doc = json.loads(document.read_text())
        except (OSError, ValueError):
            continue
        ladders = [f for f in doc.get("files", []) if f.get("type") == "x-tar"]
        if ladders and all(readable(data / f["filePath"]) for f in ladders):
            return time.perf_counter() - started
    return None


def readable(folder: Path) -> bool:
    """The master playlist and, for each variant it lists, that variant's playlist and first segment."""
    try:
        master = (folder / "index.m3u8").read_text()
    except OSError:
        return False
    variants = [line for line in master.splitlines() if line and not line.startswith("#")]
    for variant in variants:
        playlist = folder / variant
        try:
            first = next(line for line in playlist.read_text().splitlines() if line.endswith(".ts"))
        except (OSError, StopIteration):
            return False
        if not (playlist.parent / first).is_file():
            return False
    return bool(variants)


def one_run(spec: Path, env: dict[str, str], data: Path, job_id: str, live: bool) -> dict[str, float | None]:
    """One `vodflow encode`: its wall time and, with publishing while encoding, the time to playable."""
    env = {**env, "VODFLOW_PUBLISH_WHILE_ENCODING": "true" if live else "false"}
    stop = threading.Event()
    result: dict[str, float | None] = {}
    started = time.perf_counter()
    watcher = threading.Thread(
        target=lambda: result.update(playable=first_playable(data, job_id, started, stop)), daemon=True
    )
    watcher.start()
    command = [str(BIN / "vodflow"), "encode", str(spec), "--job-id", job_id]
    run = subprocess.run(command, env=env, capture_output=True, text=True)
    result["wall"] = time.perf_counter() - started
    stop.set()
    watcher.join()
    if run.returncode != 0:
        raise RuntimeError(f"vodflow failed: {run.stderr[-3000:]}")
    doc = json.loads(run.stdout)
    result["playable_after_start"] = None
    if doc.get("playableAt") and result.get("playable") is not None:
        result["playable_after_start"] = seconds_between(doc["startedAt"], doc["playableAt"])
    return result


def seconds_between(earlier: str, later: str) -> float:
    return (iso_parse(later) - iso_parse(earlier)).total_seconds()


def time_to_playable(spec: Path, env: dict[str, str], data: Path, reps: int) -> list[dict]:
    """Alternating runs with and without publishing while encoding; medians."""
    import statistics

    runs: dict[bool, list[dict]] = {True: [], False: []}
    for rep in range(reps):
        for live in (True, False):
            job_id = f"{rep:02d}{int(live)}".ljust(24, "b")
            result = one_run(spec, env, data, job_id, live)
            runs[live].append(result)
            shown = f"{result['playable']:.1f} s" if result.get("playable") else "at the end"
            print(f"  run {rep + 1}/{reps}, live={live}: wall {result['wall']:.1f} s, playable {shown}")

    def med(values: list[float | None]) -> float | str:
        known = [v for v in values if v is not None]
        return round(statistics.median(known), 1) if known else "-"

    rows = []
    for live, results in runs.items():
        rows.append(
            {
                "publishing": "while encoding (default)" if live else "at the end",
                "job wall (s)": med([r["wall"] for r in results]),
                "playable after command start (s)": med([r["playable"] for r in results]),
                "playable after `startedAt` (s)": med([r["playable_after_start"] for r in results]),
            }
        )
    on, off = (statistics.median(r["wall"] for r in runs[x]) for x in (True, False))
    rows.append(
        {
            "publishing": "while encoding / at the end",
            "job wall (s)": round(on / off, 3),
            "playable after command start (s)": "",
            "playable after `startedAt` (s)": "",
        }
    )
    return rows


if __name__ == "__main__":
    from bench.run import LOCAL_STORAGE_ENV, WORK, job_for, sample_source, table, write_spec
    from tests.prefect_server import PrefectServer

    reps = int(os.environ.get("BENCH_REPS", "3"))
    seconds = int(os.environ.get("BENCH_PLAYABLE_SOURCE", "60"))
    WORK.mkdir(parents=True, exist_ok=True)
    spec = write_spec(job_for(sample_source(seconds)), "playable.json")
    with PrefectServer(WORK / "prefect-home", WORK / "logs", LOCAL_STORAGE_ENV) as server:
        print(table(time_to_playable(spec, server.env, WORK / "data", reps)))
