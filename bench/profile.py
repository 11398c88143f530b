"""`make profile`: where a `vodflow encode` run spends the time ffmpeg does not, measured with pyinstrument.

Runs `vodflow encode` of the benchmark job on a 2 s 1080p source (thumbnails at 1 s) against a Prefect server
started here, under pyinstrument, BENCH_REPS times (default 3). Prints, per part of the run, the median
seconds, and writes the call tree of the last run to `bench/work/profile.txt`. pyinstrument's sampling adds
a little to every part; compare parts with each other, and `make bench` for absolute figures.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

from pyinstrument.frame import Frame
from pyinstrument.renderers import ConsoleRenderer
from pyinstrument.session import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import BIN, LOCAL_STORAGE_ENV, WORK, job_for, sample_source, write_spec  # noqa: E402
from tests.prefect_server import PrefectServer  # noqa: E402

# (part, functions whose time it is); the first match going down the tree wins, so nested parts never
# count twice.
PARTS = [
    ("ffmpeg (encode, and any thumbnail it could not take)", ("run_ffmpeg",)),
    ("ffprobe (ingest checks, MP4 measure)", ("run_ffprobe", "media_end")),
    ("concurrency slots (acquire, release)", ("ffmpeg_slot", "job_slot")),
    ("job document writes, artifacts, webhook", ("save_job", "finish")),
    ("uploads", ("upload_files",)),
    ("import of prefect and the pipeline", ("<module>",)),
]


ENGINES = {  # Prefect's own work around the flow and task functions: (function, file) -> part
    ("__call__", "prefect/flows.py"): "flow engine (run creation, states, heartbeat thread stop)",
    ("__call__", "prefect/tasks.py"): "task engine around the task functions",
}


def calls(frame: Frame, function: str, file_suffix: str = "") -> list[Frame]:
    """Frames of `function` (defined in a file ending with `file_suffix`) under `frame`, outermost only."""
    if frame.function == function and frame.file_path.endswith(file_suffix):
        return [frame]
    return [found for child in frame.children for found in calls(child, function, file_suffix)]


def engine_of(frame: Frame) -> str | None:
    for (function, path), part in ENGINES.items():
        if frame.function == function and frame.file_path.endswith(path):
            return part
    return None


def add(totals: dict[str, float], part: str, seconds: float) -> None:
    totals[part] = totals.get(part, 0.0) + seconds


def attribute(frame: Frame, totals: dict[str, float]) -> float:
    """Add `frame`'s time to the first part it belongs to, else look into its children; returns the seconds
    given to parts. Time inside an engine or a flow/task function that no deeper part claims is theirs."""
    for part, functions in PARTS:
        if frame.function in functions:
            add(totals, part, frame.time)
            return frame.time
    claimed = sum(attribute(child, totals) for child in frame.children)
    if frame.function == "call_with_parameters":  # how the engines call the flow and task functions
        add(totals, "vodflow's own Python in the flow and tasks (planning, checks)", frame.time - claimed)
        return frame.time
    if engine := engine_of(frame):
        add(totals, engine, frame.time - claimed)
        return frame.time
    return claimed


def breakdown(session: Session) -> dict[str, float]:
    """Seconds per part of one run; what no part claims is `everything else`."""
    root = session.root_frame()
    if root is None:
        raise RuntimeError("pyinstrument recorded nothing")
    totals: dict[str, float] = {}
    # below the `vodflow` script's own <module>, which is not an import to count
    claimed = sum(attribute(main, totals) for main in calls(root, "main", "vodflow/cli/__init__.py"))
    totals["everything else (interpreter start, CLI, process exit)"] = root.time - claimed
    return {"whole run (under the profiler)": root.time, **totals}


def main() -> None:
    reps = int(os.environ.get("BENCH_REPS", "3"))
    WORK.mkdir(parents=True, exist_ok=True)
    spec = write_spec(job_for(sample_source(2), thumb_at=1.0))
    runs: list[dict[str, float]] = []
    session_file = WORK / "profile.pyisession"
    with PrefectServer(WORK / "prefect-home", WORK / "logs", LOCAL_STORAGE_ENV) as server:
        for _ in range(reps):
            subprocess.run(
                [sys.executable, "-m", "pyinstrument", "-r", "pyisession", "-o", str(session_file)]
                + [str(BIN / "vodflow"), "encode", str(spec)],
                env=server.env,
                check=True,
                capture_output=True,
            )
            runs.append(breakdown(Session.load(str(session_file))))
    tree = ConsoleRenderer(unicode=True, color=False, show_all=False).render(Session.load(str(session_file)))
    (WORK / "profile.txt").write_text(tree)
    print(f"median of {reps} profiled runs of `vodflow encode`, 2 s source (tree: bench/work/profile.txt)")
    print("| part | seconds |\n|---|---|")
    for part in runs[0]:
        print(f"| {part} | {statistics.median(r.get(part, 0.0) for r in runs):.2f} |")


if __name__ == "__main__":
    main()
