"""`vodflow demo`: a generated 1080p sample with audio through the whole pipeline, on embedded defaults."""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from vodflow.cli.encode import run_job
from vodflow.cli.output import EXIT_CODES, EXIT_USER_ERROR, UserError, print_json
from vodflow.jobs.spec import DEFAULT_PRESETS

DEMO_JOB: dict[str, Any] = {
    "presets": [dict(preset) for preset in DEFAULT_PRESETS],
    "thumbnails": [
        {
            "timestamp": "00:00:03",
            "resolutions": ["360"],
            "formats": ["jpg", "webp"],
            "filters": ["none", "blur"],
        }
    ],
}


def own_command(argv0: str | None = None) -> str:
    """How to run this vodflow again from here: `vodflow` when that name on the PATH is this program, else
    the path it was started by (`.venv/bin/vodflow`), quoted for a shell."""
    started_as = argv0 or sys.argv[0]
    program = Path(started_as)
    if program.name != "vodflow":  # run as a module: the script beside this Python
        program = Path(sys.executable).parent / "vodflow"
    on_path = shutil.which("vodflow")
    if on_path and Path(on_path).resolve() == program.resolve():
        return "vodflow"
    return shlex.quote(str(program))


def cmd_demo(args: argparse.Namespace) -> int:
    from vodflow.media.samples import make_sample

    sample = Path(args.sample).resolve()
    if not sample.exists():
        print(f"vodflow demo: generating a 1080p, 20 s sample with audio at {sample}", file=sys.stderr)
        make_sample(sample)
    try:
        document, code = run_job({**DEMO_JOB, "videoUrl": str(sample)}, args.storage_block)
    except UserError as exc:
        print(f"vodflow demo: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    print_json(document)
    print("\nOutputs:", file=sys.stderr)
    for entry in document.get("files", []):
        print(f"  {entry['type']:6} {entry['fileUrl']}", file=sys.stderr)
    if document.get("id"):
        print(f"Job document: {own_command()} job get {document['id']}", file=sys.stderr)
    return code


def add_parser(subparsers: Any) -> None:
    """Register `demo [--sample PATH]`."""
    demo = subparsers.add_parser(
        "demo",
        help="generate a sample video and run the whole pipeline on it",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--sample", default="data/samples/demo-1080p.mp4", help="sample path (made if missing)")
    demo.set_defaults(func=cmd_demo)
