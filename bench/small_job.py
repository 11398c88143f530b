"""A small job through `vodflow encode` against the local stack (issue 25: at most 2.5 s median wall): a 1 s
426x240 source to one 240p MP4, no thumbnail, `BENCH_REPS` runs (5) after a warm-up, two ways:

- handed off: `vodflow encode SPEC`, the job a run of the stack's `encode` deployment on its worker (the CLI
  never imports Prefect: `vodflow.cli.handoff`);
- here: `vodflow encode --here SPEC`, the flow run in the CLI's own process (the only way before the
  hand-off).

Each part, on this host's clock: the CLI's start and exit measured here; the flow run's creation and states
from the Prefect API; ffmpeg's start and exit from the runner's DEBUG log lines (sent to the API by the
logging configuration of bench/fixed_cost.py); the document's write from its `finishedAt`. "CLI start ->
spec validated" is the median wall of the same command on a spec whose source does not exist (it exits 2
right after the check): the interpreter's start, the imports and the validation.

`make bench-small` (`.venv/bin/python bench/small_job.py`) starts its own stack (`vodflow up`, state under
bench/work), prints each run and a markdown table of medians, and stops the stack. Environment: BENCH_REPS
(5), BENCH_MODES (`handed,here`).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fixed_cost import _when, ffmpeg_runs, logging_config  # noqa: E402
from bench.run import BIN, LOCAL_STORAGE_ENV, WORK, table  # noqa: E402
from vodflow.media.samples import make_sample  # noqa: E402
from vodflow.stack.state import load_state  # noqa: E402

PARTS = (
    "CLI start -> spec validated",
    "-> flow run created",
    "-> Running",
    "-> ffmpeg start",
    "ffmpeg",
    "-> document written",
    "-> Completed",
    "-> CLI exit",
)
MODES = {"handed": [], "here": ["--here"]}


def source() -> Path:
    path = WORK / "small-240p-1s.mp4"
    if not path.exists():
        make_sample(path, width=426, height=240, seconds=1)
    return path


def run_of(api: httpx.Client, job_id: str) -> dict:
    body = {"flow_runs": {}, "sort": "EXPECTED_START_TIME_DESC", "limit": 20}
    runs = api.post("/flow_runs/filter", json=body).raise_for_status().json()
    return next(r for r in runs if r["parameters"].get("job_id") == job_id)


def one_job(env: dict[str, str], api: httpx.Client, spec: Path, mode: str, job_id: str) -> dict[str, float]:
    """One `vodflow encode` of the small job; wall and parts (seconds)."""
    command = [str(BIN / "vodflow"), "encode", str(spec), "--job-id", job_id, *MODES[mode]]
    started = time.time()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    ended = time.time()
    if done.returncode != 0:
        raise RuntimeError(f"{mode} run failed: {done.stderr[-2000:]}")
    document = json.loads(done.stdout)
    run = run_of(api, job_id)
    states = api.get("/flow_run_states/", params={"flow_run_id": run["id"]}).raise_for_status().json()
    stamps = {s["type"]: _when(s["timestamp"]) for s in states}
    body = {"logs": {"flow_run_id": {"any_": [run["id"]]}}, "sort": "TIMESTAMP_ASC"}
    deadline = time.monotonic() + 30
    while not (ffmpegs := ffmpeg_runs(api.post("/logs/filter", json=body).raise_for_status().json())):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no ffmpeg log lines for flow run {run['id']}")
        time.sleep(0.5)
    created, running, completed = _when(run["created"]), stamps["RUNNING"], stamps["COMPLETED"]
    first, last = ffmpegs[0][1], max(end for _, _, end in ffmpegs)
    written = _when(document["finishedAt"])
    return {
        "wall": ended - started,
        "-> flow run created": created - started,
        "-> Running": running - created,
        "-> ffmpeg start": first - running,
        "ffmpeg": last - first,
        "-> document written": written - last,
        "-> Completed": completed - written,
        "-> CLI exit": ended - completed,
    }


def validation_wall(env: dict[str, str], mode: str, reps: int) -> float:
    """Median wall of the command on a spec whose source does not exist: start, imports, validation."""
    spec = WORK / "small-missing-spec.json"
    spec.write_text(json.dumps({"videoUrl": str(WORK / "no-such-source.mp4")}))
    walls = []
    for _ in range(reps):
        started = time.time()
        command = [str(BIN / "vodflow"), "encode", str(spec), *MODES[mode]]
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
        walls.append(time.time() - started)
        assert done.returncode == 2, done.stderr
    return statistics.median(walls)


@contextmanager
def local_stack(name: str) -> Iterator[tuple[dict[str, str], httpx.Client]]:
    """`vodflow up` with its state in bench/work/<name> (local storage under bench/work); (the environment
    a user's commands run with, a client of its Prefect API); `vodflow down` at the end."""
    state_dir = WORK / name
    shutil.rmtree(state_dir, ignore_errors=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "VODFLOW_"))},
        **LOCAL_STORAGE_ENV,
        "VODFLOW_STATE_DIR": str(state_dir),
        "PREFECT_LOGGING_SETTINGS_PATH": str(logging_config(WORK / f"{name}-logging.yml")),
    }
    subprocess.run([str(BIN / "vodflow"), "up"], env=env, cwd=ROOT, check=True, capture_output=True)
    try:
        state = load_state(state_dir)
        assert state is not None, f"vodflow up left no state in {state_dir}"
        with httpx.Client(base_url=state.env["PREFECT_API_URL"], timeout=30) as api:
            yield env, api
    finally:
        subprocess.run([str(BIN / "vodflow"), "down"], env=env, cwd=ROOT, capture_output=True)


def measure(reps: int, modes: list[str]) -> list[dict]:
    WORK.mkdir(parents=True, exist_ok=True)
    spec = WORK / "small-job-spec.json"
    spec.write_text(
        json.dumps({"videoUrl": str(source()), "presets": [{"format": "mp4", "resolutions": ["240"]}]})
    )
    rows = []
    with local_stack("small-job-stack") as (env, api):
        for mode in modes:
            one_job(env, api, spec, mode, f"small-{mode}-warm-{int(time.time())}")  # warm-up
            runs = []
            for i in range(reps):
                run = one_job(env, api, spec, mode, f"small-{mode}-{i}-{int(time.time())}")
                parts = "  ".join(f"{k} {v:.2f}" for k, v in run.items())
                print(f"  {mode}: {parts}", flush=True)
                runs.append(run)
            validated = validation_wall(env, mode, reps)
            row = {"run": mode, "median wall (s)": round(statistics.median(r["wall"] for r in runs), 2)}
            row[PARTS[0]] = round(validated, 2)
            for part in PARTS[1:]:
                row[part] = round(statistics.median(r[part] for r in runs), 2)
            rows.append(row)
    return rows


def main() -> None:
    modes = [m for m in os.environ.get("BENCH_MODES", "handed,here").split(",") if m]
    rows = measure(int(os.environ.get("BENCH_REPS", "5")), modes)
    print(table(rows))


if __name__ == "__main__":
    main()
