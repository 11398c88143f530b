"""The orchestration's fixed cost per job, as issue 14 defines it: from the flow run's Running state to the
start of ffmpeg, plus from the end of ffmpeg to the run's Completed state.

Both ends are read back from the Prefect API: the state history of the flow run (state timestamps) and the
run's log lines that `vodflow.media.runner` writes at DEBUG when each ffmpeg starts and exits (sent to the API
through a logging configuration made here: Prefect's own plus that logger), and its task runs for the steps
in between. A job may run more than one ffmpeg (the encode, then the copy-only remux of an MP4 that shares an
HLS rung): the time while one runs is ffmpeg's, the gaps between them count as the orchestration's. Measured
three ways on the 2 s source, against the local stack (`vodflow up`):
`vodflow encode --here` (the flow run in the CLI's process), a run of the `encode` deployment picked up by
the stack's worker (as the UI starts one, and what `vodflow encode` without `--here` makes:
bench/small_job.py), and a job created with `POST /v1/encoder/jobs` on the stack's API (`vodflow up --api`).
For each, also from the request (the CLI's start, the POST) to the first ffmpeg's start: what a user waits
before any encoding, the issue-25 target for the API and the UI (at most 1.5 s median).

`make bench-fixed` prints the runs and the medians; `make bench` writes them into results.md.
Environment: BENCH_REPS (default 3); BENCH_FIXED_KINDS, the kinds of run to measure (default
`cli,deployment,api`).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import BIN, LOCAL_STORAGE_ENV, WORK, job_for, sample_source, write_spec  # noqa: E402
from vodflow.net.retry import call_with_retry  # noqa: E402
from vodflow.orchestration.runs import job_tag  # noqa: E402
from vodflow.providers.videosdk import mint_token  # noqa: E402
from vodflow.stack.state import load_state  # noqa: E402

RUNNER_LOGGER = "vodflow.media.runner"
FLOW_NAME = "vodflow-encode"
CLI_RUN = "CLI run (`vodflow encode`) against the local stack"
DEPLOYMENT_RUN = "deployment run (`encode`) on the stack's process worker"
API_RUN = "API job (`POST /v1/encoder/jobs`) on the stack's process worker"
API_KEY, API_SECRET = "bench-key", "bench-secret-" + "s" * 32
# steps that are not the orchestration's: before Running, and while an ffmpeg runs
OUTSIDE_FIXED_COST = re.compile(r"Scheduled -> |Pending -> |ffmpeg \d+ \(\w+\) start -> ")
RUNNER_LINE = re.compile(r"ffmpeg (started|exited) \((\w+), pid (\d+)")  # vodflow.media.runner's
RUN_SUFFIX = re.compile(r"-[0-9a-f]{3}$")  # Prefect's task run names: `ingest-26c`


@dataclass
class Timeline:
    """Seconds from the flow run's Running state to the first ffmpeg's start, between one ffmpeg's exit and
    the next one's start, and from the last ffmpeg's exit to Completed; the steps (`segments`: from one event
    to the next, in order), and the time outside the run (`outside`: the CLI's wall time minus the run, or a
    deployment run's wait from Scheduled to Running)."""

    before_ffmpeg: float
    between_ffmpeg: float
    after_ffmpeg: float
    ffmpeg: float  # while at least one ffmpeg runs
    segments: dict[str, float]
    outside: float = 0.0
    first_ffmpeg: float = 0.0  # when the first ffmpeg started (epoch seconds)
    to_ffmpeg: float = 0.0  # from the request (the CLI's start, the POST) to the first ffmpeg's start

    @property
    def fixed(self) -> float:
        return self.before_ffmpeg + self.between_ffmpeg + self.after_ffmpeg


def logging_config(path: Path) -> Path:
    """Prefect's default logging configuration plus the runner's DEBUG lines to the API, written to `path`."""
    from prefect.logging.configuration import DEFAULT_LOGGING_SETTINGS_PATH

    config = yaml.safe_load(DEFAULT_LOGGING_SETTINGS_PATH.read_text())
    config["loggers"][RUNNER_LOGGER] = {"level": "DEBUG", "handlers": ["api"], "propagate": False}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _when(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def ffmpeg_runs(logs: list[dict]) -> list[tuple[str, float, float]]:
    """(step, start, exit) of each ffmpeg in the runner's log lines, in start order; [] until every one that
    started has exited."""
    starts: dict[str, tuple[str, float]] = {}
    exits: dict[str, float] = {}
    for log in logs:
        if match := RUNNER_LINE.match(log["message"]):
            verb, step, pid = match.groups()
            if verb == "started":
                starts[pid] = (step, _when(log["timestamp"]))
            else:
                exits[pid] = _when(log["timestamp"])
    if not starts or set(starts) != set(exits):
        return []
    return sorted(((step, start, exits[pid]) for pid, (step, start) in starts.items()), key=lambda r: r[1])


def timeline(api: httpx.Client, flow_run_id: str) -> Timeline:
    """The run's timeline from its state history, its task runs and the runner's log lines (waits for the
    logs to land)."""
    states = api.get("/flow_run_states/", params={"flow_run_id": flow_run_id}).raise_for_status().json()
    stamps = {s["type"]: _when(s["timestamp"]) for s in states}
    body = {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "sort": "TIMESTAMP_ASC"}
    deadline = time.monotonic() + 30
    # logs are sent in batches, after the run's last state at worst
    while not (ffmpegs := ffmpeg_runs(api.post("/logs/filter", json=body).raise_for_status().json())):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no complete ffmpeg log lines for flow run {flow_run_id}")
        time.sleep(0.5)
    events = [("Running", stamps["RUNNING"]), ("Completed", stamps["COMPLETED"])]
    # before Running, outside the fixed cost: a deployment run's wait for a worker, and its process start
    events += [(name.title(), stamps[name]) for name in ("SCHEDULED", "PENDING") if name in stamps]
    running, busy_until, between = 0.0, ffmpegs[0][1], 0.0
    for i, (step, start, end) in enumerate(ffmpegs, 1):
        events += [(f"ffmpeg {i} ({step}) start", start), (f"ffmpeg {i} ({step}) end", end)]
        between += max(0.0, start - busy_until)  # no ffmpeg ran in between: the orchestration's time
        running += max(0.0, end - max(start, busy_until))
        busy_until = max(busy_until, end)
    body = {"flow_runs": {"id": {"any_": [flow_run_id]}}}
    for task_run in api.post("/task_runs/filter", json=body).raise_for_status().json():
        if task_run["start_time"] and task_run["end_time"]:
            name = RUN_SUFFIX.sub("", task_run["name"])
            events.append((f"{name} start", _when(task_run["start_time"])))
            events.append((f"{name} end", _when(task_run["end_time"])))
    events.sort(key=lambda e: e[1])
    return Timeline(
        before_ffmpeg=ffmpegs[0][1] - stamps["RUNNING"],
        between_ffmpeg=between,
        after_ffmpeg=stamps["COMPLETED"] - busy_until,
        ffmpeg=running,
        segments={f"{a} -> {b}": tb - ta for (a, ta), (b, tb) in itertools.pairwise(events)},
        first_ffmpeg=ffmpegs[0][1],
    )


def latest_run(api: httpx.Client) -> str:
    body = {"flows": {"name": {"any_": [FLOW_NAME]}}, "sort": "EXPECTED_START_TIME_DESC", "limit": 1}
    return api.post("/flow_runs/filter", json=body).raise_for_status().json()[0]["id"]


def cli_run(env: dict[str, str], api: httpx.Client, spec: Path) -> Timeline:
    """`vodflow encode SPEC` against the running stack; the timeline of the flow run it made."""
    started, since = time.perf_counter(), time.time()
    command = [str(BIN / "vodflow"), "encode", str(spec), "--here"]  # run here, not handed to the worker
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"vodflow encode exited {done.returncode}: {done.stderr[-2000:]}")
    wall = time.perf_counter() - started
    run = timeline(api, latest_run(api))
    run.outside = wall - (run.fixed + run.ffmpeg)
    run.to_ffmpeg = run.first_ffmpeg - since
    return run


def wait_completed(api: httpx.Client, run_id: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while (state := api.get(f"/flow_runs/{run_id}").raise_for_status().json()["state_type"]) != "COMPLETED":
        if state in ("FAILED", "CRASHED", "CANCELLED") or time.monotonic() > deadline:
            raise RuntimeError(f"flow run {run_id} ended {state}")
        time.sleep(0.5)


def waited(api: httpx.Client, run_id: str, since: float) -> Timeline:
    """The timeline of a run a worker picked up; `outside` its wait from Scheduled to Running, `to_ffmpeg`
    from `since` (the request) to its first ffmpeg."""
    run = timeline(api, run_id)
    states = api.get("/flow_run_states/", params={"flow_run_id": run_id}).raise_for_status().json()
    stamps = {s["type"]: _when(s["timestamp"]) for s in states}
    run.outside = stamps["RUNNING"] - stamps["SCHEDULED"]
    run.to_ffmpeg = run.first_ffmpeg - since
    return run


def deployment_run(api: httpx.Client, deployment_id: str, spec: dict, timeout: float = 300) -> Timeline:
    """A run of the encode deployment, as the UI starts one; its timeline once a worker completed it."""

    def create() -> httpx.Response:  # a busy SQLite server answers 503 for a moment: asked again
        return api.post(f"/deployments/{deployment_id}/create_flow_run", json={"parameters": {"spec": spec}})

    since = time.time()
    run_id = call_with_retry(lambda: create().raise_for_status(), attempts=6, base=1.0).json()["id"]
    wait_completed(api, run_id, timeout)
    return waited(api, run_id, since)


def api_run(api: httpx.Client, jobs_url: str, job: dict) -> Timeline:
    """A job created with `POST /v1/encoder/jobs` (the API starts a run of the encode deployment); its
    timeline once the stack's worker completed it."""
    token = mint_token(API_KEY, API_SECRET)
    since = time.time()
    created = httpx.post(jobs_url, json=job, headers={"Authorization": token}, timeout=30).raise_for_status()
    body = {"flow_runs": {"tags": {"all_": [job_tag(created.json()["id"])]}}}
    deadline = time.monotonic() + 60
    while not (runs := api.post("/flow_runs/filter", json=body).raise_for_status().json()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no flow run for job {created.json()['id']}")
        time.sleep(0.2)
    wait_completed(api, runs[0]["id"])
    return waited(api, runs[0]["id"], since)


def summary(runs: list[Timeline]) -> dict[str, float]:
    return {
        "Running -> ffmpeg start (s)": round(statistics.median(r.before_ffmpeg for r in runs), 2),
        "between ffmpegs (s)": round(statistics.median(r.between_ffmpeg for r in runs), 2),
        "ffmpeg end -> Completed (s)": round(statistics.median(r.after_ffmpeg for r in runs), 2),
        "sum (s)": round(statistics.median(r.fixed for r in runs), 2),
        "ffmpeg (s)": round(statistics.median(r.ffmpeg for r in runs), 2),
        "outside the run (s)": round(statistics.median(r.outside for r in runs), 2),
        "request -> first ffmpeg start (s)": round(statistics.median(r.to_ffmpeg for r in runs), 2),
    }


def steps(runs: list[Timeline]) -> list[dict]:
    """The median of each segment between consecutive events, in the order of the last run."""
    medians = {name: statistics.median(r.segments.get(name, 0.0) for r in runs) for name in runs[-1].segments}
    return [{"from -> to": name, "median (s)": round(seconds, 3)} for name, seconds in medians.items()]


def report(label: str, runs: list[Timeline]) -> None:
    for r in runs:
        step, seconds = max(
            ((name, t) for name, t in r.segments.items() if not OUTSIDE_FIXED_COST.match(name)),
            key=lambda item: item[1],
        )
        print(
            f"  {label}: {r.before_ffmpeg:.3f} + {r.between_ffmpeg:.3f} + {r.after_ffmpeg:.3f} = "
            f"{r.fixed:.3f} s (longest step: {step}, {seconds:.3f} s; request -> ffmpeg {r.to_ffmpeg:.3f} s)",
            flush=True,
        )
    for row in steps(runs):
        print(f"    {row['from -> to']:40} {row['median (s)']:.3f}", flush=True)


def measure(
    reps: int, kinds: tuple[str, ...] = ("cli", "deployment", "api")
) -> tuple[list[dict], dict[str, list[dict]]]:
    """Median timelines of `reps` CLI runs, `reps` deployment runs and `reps` API jobs on the 2 s source
    against the local stack (`vodflow up --api`: server, deployments, the warm runner, one worker, the API),
    each kind after a warm-up run: the summary rows, and the steps between events per kind of run."""
    WORK.mkdir(parents=True, exist_ok=True)
    job = job_for(sample_source(2), thumb_at=1.0)
    spec = write_spec(job, "fixed-cost-spec.json")
    state_dir = WORK / "fixed-cost-stack"
    shutil.rmtree(state_dir, ignore_errors=True)  # a fresh server: no runs, pools or limits from before
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
        **LOCAL_STORAGE_ENV,
        "VODFLOW_STATE_DIR": str(state_dir),
        "PREFECT_LOGGING_SETTINGS_PATH": str(logging_config(WORK / "fixed-cost-logging.yml")),
        "VODFLOW_API_KEY": API_KEY,
        "VODFLOW_API_SECRET": API_SECRET,
        "VODFLOW_API_ALLOW_LOCAL_FILES": "true",  # the source is a file on this machine
    }
    subprocess.run([str(BIN / "vodflow"), "up", "--api"], env=env, cwd=ROOT, check=True, capture_output=True)
    rows, breakdown = [], {}
    try:
        state = load_state(state_dir)
        assert state is not None, f"vodflow up left no state in {state_dir}"
        api_url = state.env["PREFECT_API_URL"]
        with httpx.Client(base_url=api_url, timeout=30) as api:
            deployment_id = api.get("/deployments/name/vodflow-encode/encode").raise_for_status().json()["id"]
            jobs_url = f"{state.part('api').url}/v1/encoder/jobs"
            for kind, label, run, one in (
                ("cli", "CLI run", CLI_RUN, lambda: cli_run(env, api, spec)),
                (
                    "deployment",
                    "deployment run",
                    DEPLOYMENT_RUN,
                    lambda: deployment_run(api, deployment_id, job),
                ),
                ("api", "API job", API_RUN, lambda: api_run(api, jobs_url, job)),
            ):
                if kind not in kinds:
                    continue
                one()  # warm-up: the server's first answers are slow
                runs = [one() for _ in range(reps)]
                report(label, runs)
                rows.append({"run": run, **summary(runs)})
                breakdown[run] = steps(runs)
    finally:
        subprocess.run([str(BIN / "vodflow"), "down"], env=env, cwd=ROOT, capture_output=True)
    return rows, breakdown


def markdown(rows: list[dict], breakdown: dict[str, list[dict]]) -> str:
    """The summary table, then each kind of run's steps: what results.md shows."""
    from bench.run import table

    parts = [table(rows)]
    for run, segments in breakdown.items():
        parts.append(f"Steps of the {run} (median seconds from one event to the next):\n\n{table(segments)}")
    return "\n\n".join(parts)


def main() -> None:
    kinds = tuple(os.environ.get("BENCH_FIXED_KINDS", "cli,deployment,api").split(","))
    rows, breakdown = measure(int(os.environ.get("BENCH_REPS", "3")), kinds)
    print(markdown(rows, breakdown))


if __name__ == "__main__":
    main()
