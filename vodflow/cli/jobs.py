"""`vodflow job get ID` and `vodflow job list`: stored job documents, as JSON on stdout; on stderr, the watch
page of each that published files (when a server shows it: `vodflow watch`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vodflow.cli.output import EXIT_FAILED, EXIT_OK, EXIT_USER_ERROR, print_json

DEFAULT_PER_PAGE = 20


def cmd_job_get(args: argparse.Namespace) -> int:
    from vodflow.blocks.storage import resolve_storage
    from vodflow.errors import ObjectNotFound, SpecError
    from vodflow.jobs.keys import job_id_from_ref
    from vodflow.settings import load_settings
    from vodflow.storage.jobstore import load_job

    try:
        job_id = job_id_from_ref(args.job_id)
    except SpecError as exc:
        print(f"vodflow job get: invalid job id {args.job_id!r}: {exc.reason}", file=sys.stderr)
        return EXIT_USER_ERROR
    settings = load_settings()
    try:
        doc = load_job(resolve_storage(args.storage_block, settings), job_id)
    except ObjectNotFound:
        print(f"vodflow job get: no job {job_id!r}", file=sys.stderr)
        return EXIT_FAILED
    print_json(doc.wire())
    print_watch_links(settings, args.storage_block, [doc])
    return EXIT_OK


def print_watch_links(settings: Any, storage_block: str | None, docs: list[Any]) -> None:
    """`watch <id>: <url>` on stderr for each job with published files, when a server shows the watch page
    (stdout keeps the documents alone)."""
    from vodflow.cli.watch import watch_base
    from vodflow.jobs.watch import watch_url

    published = [doc for doc in docs if doc.files]
    base = watch_base(settings, storage_block) if published else None
    if base is None:
        return
    for doc in published:
        print(f"watch {doc.id}: {watch_url(base, doc.id)}", file=sys.stderr)


def cmd_job_list(args: argparse.Namespace) -> int:
    """One page of stored jobs, newest first: `{"pageInfo": {...}, "data": [documents]}` (the API's shape), or
    with `--table` a line a job with what it cost (`usage`)."""
    from vodflow.blocks.storage import resolve_storage
    from vodflow.settings import load_settings
    from vodflow.storage.jobstore import job_page

    if args.page < 1 or args.per_page < 1:
        print("vodflow job list: --page and --per-page must be at least 1", file=sys.stderr)
        return EXIT_USER_ERROR
    settings = load_settings()
    docs, page_info = job_page(resolve_storage(args.storage_block, settings), args.page, args.per_page)
    if args.table:
        from vodflow.jobs.usage import usage_table

        print(usage_table(docs))
        print_watch_links(settings, args.storage_block, docs)
        return EXIT_OK
    print_json({"pageInfo": page_info, "data": [doc.wire() for doc in docs]})
    print_watch_links(settings, args.storage_block, docs)
    return EXIT_OK


def add_parser(subparsers: Any) -> None:
    """Register `job get ID` and `job list [--page N] [--per-page N]`."""
    job = subparsers.add_parser("job", help="read stored job documents")
    job_commands = job.add_subparsers(dest="job_command", required=True)
    get = job_commands.add_parser("get", help="print a stored job document")
    get.add_argument("job_id", metavar="ID", help="a job id, or the id (UUID) of the flow run that made it")
    get.set_defaults(func=cmd_job_get)
    listing = job_commands.add_parser("list", help="print a page of stored jobs, newest first")
    listing.add_argument("--page", type=int, default=1, help="page number, from 1 (default 1)")
    listing.add_argument(
        "--per-page", type=int, default=DEFAULT_PER_PAGE, help=f"jobs per page (default {DEFAULT_PER_PAGE})"
    )
    listing.add_argument(
        "--table",
        action="store_true",
        help="one line a job (id, status, finished, CPU seconds, wall seconds, bytes out) instead of JSON",
    )
    listing.set_defaults(func=cmd_job_list)
