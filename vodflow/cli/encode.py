"""`vodflow encode SPEC.json`: run the pipeline flow on a job spec; the final document on stdout.

Exit 0 completed, 1 failed (the document is still printed: also when Prefect cannot be reached or the run is
stopped by SIGTERM or Ctrl-C), 2 when the spec file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vodflow.cli.output import print_json
from vodflow.errors import SpecError, StepError


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
    from vodflow.jobs.document import iso_now

    now = iso_now()
    document = {"status": "failed", "createdAt": now, "updatedAt": now, "finishedAt": now}
    error = {"step": "run", "code": code, "message": message}
    return ({"id": job_id} if job_id else {}) | document | {"error": error}


def run_job(
    spec_data: Any, storage_block: str | None = None, encoder: str = "local"
) -> tuple[dict[str, Any], int]:
    """Run the pipeline flow on a spec; (final job document, exit code 0 completed / 1 failed).

    Never raises for a run that went wrong: a Prefect that cannot be reached or started, SIGTERM or Ctrl-C
    (`stop_on_signals`) all end in a `failed` document naming the reason.
    """
    from vodflow.jobs.document import iso_now, new_id
    from vodflow.jobs.spec import parse_spec

    try:
        spec = parse_spec(spec_data)
    except SpecError as exc:
        now = iso_now()
        return {"status": "failed", "createdAt": now, "updatedAt": now, "error": exc.as_document_error()}, 1
    job_id = new_id()
    try:
        with stop_on_signals():
            from vodflow.flows.pipeline import encode_video

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
    from vodflow.blocks.storage import resolve_storage
    from vodflow.jobs.document import JobDocument
    from vodflow.settings import load_settings
    from vodflow.storage.jobstore import load_job, save_job

    try:
        storage = resolve_storage(storage_block, load_settings())
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
    print_json(document)
    return code


def add_parser(subparsers: Any) -> None:
    """Register `encode SPEC [--encoder local|videosdk|mpc]`."""
    encode = subparsers.add_parser("encode", help="run the pipeline on a job spec (JSON file)")
    encode.add_argument("spec", help="path to the job spec JSON")
    encode.add_argument("--encoder", default="local", choices=["local", "videosdk", "mpc"])
    encode.set_defaults(func=cmd_encode)
