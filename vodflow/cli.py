"""The `vodflow` command line: encode a job spec, read a job document, run the demo."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vodflow.cli_api import add_api_parser
from vodflow.cli_cleanup import add_cleanup_parser
from vodflow.cli_receiver import add_receiver_parser
from vodflow.errors import SpecError, StepError


def _print_json(document: dict[str, Any]) -> None:
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")
    sys.stdout.flush()


def run_job(
    spec_data: Any, storage_block: str | None = None, encoder: str = "local"
) -> tuple[dict[str, Any], int]:
    """Run the pipeline flow on a spec; (final job document, exit code 0 completed / 1 failed).

    The job id is the flow run's (no `job_id` parameter): a new job shares its id with no other run, so
    the run needs no per-job concurrency slot.
    """
    from flows.pipeline import encode_video, run_job_id
    from vodflow.jobspec import JobDocument, iso_now, parse_spec
    from vodflow.jobstore import load_job
    from vodflow.storage import get_storage

    try:
        spec = parse_spec(spec_data)
    except SpecError as exc:
        now = iso_now()
        return {"status": "failed", "createdAt": now, "updatedAt": now, "error": exc.as_document_error()}, 1
    state = encode_video(spec, storage_block=storage_block, encoder=encoder, return_state=True)
    job_id = run_job_id(state.state_details.flow_run_id)
    try:
        doc: JobDocument = load_job(get_storage(storage_block), job_id)
    except StepError:
        return {
            "id": job_id,
            "status": "failed",
            "error": {"step": "run", "code": "crashed", "message": state.message or state.name},
        }, 1
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

    add_cleanup_parser(commands)
    add_receiver_parser(commands)
    add_api_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
