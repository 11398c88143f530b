"""`vodflow job get ID`: print a stored job document."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vodflow.cli.output import print_json


def cmd_job_get(args: argparse.Namespace) -> int:
    from vodflow.blocks.storage import resolve_storage
    from vodflow.errors import ObjectNotFound
    from vodflow.settings import load_settings
    from vodflow.storage.jobstore import load_job

    try:
        print_json(load_job(resolve_storage(args.storage_block, load_settings()), args.job_id).wire())
    except ObjectNotFound:
        print(f"vodflow: no job {args.job_id!r}", file=sys.stderr)
        return 1
    return 0


def add_parser(subparsers: Any) -> None:
    """Register `job get ID`."""
    job = subparsers.add_parser("job", help="read stored job documents")
    job_commands = job.add_subparsers(dest="job_command", required=True)
    get = job_commands.add_parser("get", help="print a stored job document")
    get.add_argument("job_id")
    get.set_defaults(func=cmd_job_get)
