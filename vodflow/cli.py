"""The `vodflow` command line: encode a job spec, read a job document, run the demo."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vodflow.cli_api import add_api_parser
from vodflow.cli_cleanup import add_cleanup_parser
from vodflow.cli_receiver import add_receiver_parser
from vodflow.errors import SpecError, StepError

# Prefect's default (20 s) is too short for its throwaway server on a loaded 2-core machine.
EPHEMERAL_STARTUP_TIMEOUT = "90"


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT asked the command to stop (a KeyboardInterrupt, so no `except Exception` eats it)."""


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into `Interrupted` in the main thread while the block runs.

    The exception unwinds the run like Ctrl-C: ffmpeg is killed, transfers close, the flow's crash hook
    fails the job and removes its temp directory, and Prefect's temporary server is stopped at exit. Later
    signals are ignored so that this clean-up is not cut short.
    """

    def interrupt(signum: int, frame: Any) -> None:
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, signal.SIG_IGN)
        raise Interrupted(signal.Signals(signum).name)

    previous = {number: signal.signal(number, interrupt) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def failed_document(job_id: str | None, code: str, message: str) -> dict[str, Any]:
    """The document printed when a run could not even store one (Prefect unreachable, stopped early)."""
    from vodflow.jobspec import iso_now

    now = iso_now()
    document = {"status": "failed", "createdAt": now, "updatedAt": now, "finishedAt": now}
    error = {"step": "run", "code": code, "message": message}
    return ({"id": job_id} if job_id else {}) | document | {"error": error}


def _print_json(document: dict[str, Any]) -> None:
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")
    sys.stdout.flush()


def run_job(
    spec_data: Any, storage_block: str | None = None, encoder: str = "local"
) -> tuple[dict[str, Any], int]:
    """Run the pipeline flow on a spec; (final job document, exit code 0 completed / 1 failed).

    Never raises for a run that went wrong: a Prefect that cannot be reached or started, SIGTERM or Ctrl-C
    (`stop_on_signals`) all end in a `failed` document naming the reason.
    """
    from vodflow.jobspec import iso_now, new_id, parse_spec

    try:
        spec = parse_spec(spec_data)
    except SpecError as exc:
        now = iso_now()
        return {"status": "failed", "createdAt": now, "updatedAt": now, "error": exc.as_document_error()}, 1
    job_id = new_id()
    try:
        with stop_on_signals():
            from flows.pipeline import encode_video

            state = encode_video(
                spec, job_id=job_id, storage_block=storage_block, encoder=encoder, return_state=True
            )
        fallback = failed_document(job_id, "crashed", str(state.message or state.name))
    except Interrupted as exc:
        fallback = failed_document(job_id, "cancelled", f"run cancelled: stopped by {exc}")
    except Exception as exc:  # Prefect unreachable, its temporary server too slow to start...
        message = f"Prefect could not run the job: {type(exc).__name__}: {_first_line(str(exc))}"
        fallback = failed_document(job_id, "prefect_unavailable", message)
    return _stored_document(job_id, storage_block, fallback)


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:300]


def _stored_document(job_id: str, storage_block: str | None, fallback: dict[str, Any]) -> tuple[dict, int]:
    """The job's stored document (failed with `fallback`'s reason if the run left it unfinished), or
    `fallback` itself when nothing was stored; and the exit code."""
    from vodflow.jobspec import JobDocument
    from vodflow.jobstore import load_job, save_job
    from vodflow.storage import get_storage

    try:
        storage = get_storage(storage_block)
        doc: JobDocument = load_job(storage, job_id)
        if doc.status not in ("completed", "failed"):
            doc = doc.moved_to("failed", error=fallback["error"])
            save_job(storage, doc)
    except StepError:
        return fallback, 1
    return doc.wire(), 0 if doc.status == "completed" else 1


def cmd_encode(args: argparse.Namespace) -> int:
    try:
        spec_data = json.loads(Path(args.spec).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"vodflow: cannot read job spec {args.spec}: {exc}", file=sys.stderr)
        return 2
    document, code = run_job(spec_data, args.storage_block, args.encoder)
    _print_json(document)
    return code


def cmd_job_get(args: argparse.Namespace) -> int:
    from vodflow.jobstore import load_job
    from vodflow.storage import ObjectNotFound, get_storage

    try:
        _print_json(load_job(get_storage(args.storage_block), args.job_id).wire())
    except ObjectNotFound:
        print(f"vodflow: no job {args.job_id!r}", file=sys.stderr)
        return 1
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from vodflow.demo import DEMO_JOB, make_sample

    sample = Path(args.sample).resolve()
    if not sample.exists():
        print(f"vodflow demo: generating a 1080p, 20 s sample with audio at {sample}", file=sys.stderr)
        make_sample(sample)
    document, code = run_job({**DEMO_JOB, "videoUrl": str(sample)}, args.storage_block)
    _print_json(document)
    print("\nOutputs:", file=sys.stderr)
    for entry in document.get("files", []):
        print(f"  {entry['type']:6} {entry['fileUrl']}", file=sys.stderr)
    if document.get("id"):
        print(f"Job document: vodflow job get {document['id']}", file=sys.stderr)
    return code


def cmd_automations_apply(args: argparse.Namespace) -> int:
    from vodflow.automations import apply_automations

    try:
        for name, what in apply_automations(Path(args.file)):
            print(f"automation {name!r} {what}", file=sys.stderr)
    except (OSError, ValueError) as exc:
        print(f"vodflow automations: {exc}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vodflow", description="Video-on-demand pipeline on Prefect.")
    parser.add_argument("--storage-block", help="name of a vodflow-storage block (default: VODFLOW_STORAGE*)")
    commands = parser.add_subparsers(dest="command", required=True)

    encode = commands.add_parser("encode", help="run the pipeline on a job spec (JSON file)")
    encode.add_argument("spec", help="path to the job spec JSON")
    encode.add_argument("--encoder", default="local", choices=["local", "videosdk", "mpc"])
    encode.set_defaults(func=cmd_encode)

    job = commands.add_parser("job", help="read stored job documents")
    job_commands = job.add_subparsers(dest="job_command", required=True)
    get = job_commands.add_parser("get", help="print a stored job document")
    get.add_argument("job_id")
    get.set_defaults(func=cmd_job_get)

    demo = commands.add_parser("demo", help="generate a sample video and run the whole pipeline on it")
    demo.add_argument("--sample", default="data/samples/demo-1080p.mp4", help="sample path (made if missing)")
    demo.set_defaults(func=cmd_demo)

    automations = commands.add_parser("automations", help="Prefect automations declared in prefect.yaml")
    automation_commands = automations.add_subparsers(dest="automations_command", required=True)
    apply = automation_commands.add_parser(
        "apply", help="create or update (by name) the automations of prefect.yaml on the Prefect server"
    )
    apply.add_argument(
        "--file", default="prefect.yaml", help="the prefect.yaml to read (default ./prefect.yaml)"
    )
    apply.set_defaults(func=cmd_automations_apply)

    add_cleanup_parser(commands)
    add_receiver_parser(commands)
    add_api_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", EPHEMERAL_STARTUP_TIMEOUT)
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
