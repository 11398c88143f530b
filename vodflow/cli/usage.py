"""`vodflow usage --since DATE [--until DATE]`: what the stored jobs cost, summed per UTC day, as JSON."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vodflow.cli.output import EXIT_OK, EXIT_USER_ERROR, print_json


def cmd_usage(args: argparse.Namespace) -> int:
    from vodflow.blocks.storage import resolve_storage
    from vodflow.jobs.usage import daily_usage, parse_day
    from vodflow.settings import load_settings
    from vodflow.storage.jobstore import list_jobs

    try:
        since = parse_day(args.since, "--since")
        until = parse_day(args.until, "--until") if args.until is not None else None
        if until is not None and until < since:
            raise ValueError(f"--until: {until.isoformat()} is before --since {since.isoformat()}")
    except ValueError as exc:
        print(f"vodflow usage: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    docs = list_jobs(resolve_storage(args.storage_block, load_settings()))
    print_json(daily_usage(docs, since, until))
    return EXIT_OK


def add_parser(subparsers: Any) -> None:
    """Register `usage --since DATE [--until DATE]`."""
    usage = subparsers.add_parser(
        "usage",
        help="what the stored jobs cost, summed per day (JSON)",
        description="CPU seconds of the jobs' ffmpeg and ffprobe processes, wall seconds and bytes, "
        "summed per UTC day (the day each job ended), from the stored job documents.",
    )
    usage.add_argument("--since", required=True, metavar="DATE", help="first day, YYYY-MM-DD (UTC)")
    usage.add_argument("--until", metavar="DATE", help="last day, included (default: no end)")
    usage.set_defaults(func=cmd_usage)
