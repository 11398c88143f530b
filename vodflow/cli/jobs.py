"""`vodflow job get ID` and `vodflow job list`: stored job documents, as JSON on stdout; on stderr, the watch
page of each that published files (when a server shows it: `vodflow watch`). `vodflow job rerun ID [SPEC]
[--add]` encodes a job again (or adds MP4s to it) as a new job; `vodflow job delete ID` removes an ended job
with its outputs and kept original."""

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


def open_storage(storage_block: str | None) -> Any:
    """The job storage: a block's (through Prefect), else the settings' without importing Prefect, so a
    rerun handed to the local stack starts as fast as `vodflow encode`."""
    from vodflow.settings import load_settings

    settings = load_settings()
    if storage_block is None and settings.storage_block is None:
        return settings.storage_config().open()
    from vodflow.blocks.storage import resolve_storage

    return resolve_storage(storage_block, settings)


def load_ref(ref: str, storage_block: str | None) -> Any:
    """The stored document `ref` names; UserError (printed by the caller) when it is invalid or missing."""
    from vodflow.cli.encode import UserError
    from vodflow.errors import ObjectNotFound, SpecError
    from vodflow.jobs.keys import job_id_from_ref
    from vodflow.storage.jobstore import load_job

    try:
        job_id = job_id_from_ref(ref)
    except SpecError as exc:
        raise UserError(f"invalid job id {ref!r}: {exc.reason}") from None
    try:
        return load_job(open_storage(storage_block), job_id)
    except ObjectNotFound:
        raise UserError(f"no job {job_id!r}") from None


def cmd_job_rerun(args: argparse.Namespace) -> int:
    """Encode the job again as a new job (`rerunOf`), SPEC's keys replacing its own; with `--add`, make only
    SPEC's MP4 presets and append them to the job (`addTo`: prints the job's updated document). Runs as
    `vodflow encode` does: handed to the local stack when one runs, else here."""
    from vodflow.cli.encode import UserError, read_spec_file, run_job
    from vodflow.errors import SpecError
    from vodflow.jobs.rerun import added_spec, rerun_spec

    try:
        first = load_ref(args.job_id, args.storage_block)
        changes = read_spec_file(args.spec) if args.spec else None
        try:
            spec = added_spec(first, changes) if args.add else rerun_spec(first, changes)
        except SpecError as exc:
            raise UserError(f"invalid rerun spec: {exc.message}") from None
        spec_data = spec.wire()
        handed = None
        if (stack := getattr(args, "stack", None)) is not None and not args.here:
            from vodflow.cli.handoff import hand_off

            handed = hand_off(spec_data, stack, args.storage_block, "local")
        document, code = handed or run_job(spec_data, args.storage_block, "local")
        if args.add and code == EXIT_OK:
            document = load_ref(first.id, args.storage_block).wire()
    except UserError as exc:
        print(f"vodflow job rerun: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    print_json(document)
    return code


def cmd_job_delete(args: argparse.Namespace) -> int:
    """Delete an ended job: its outputs, its kept original and its document (the API's delete, without a
    run to stop: a job still queued or processing is refused)."""
    from vodflow.api.jobs import output_keys
    from vodflow.cli.encode import UserError
    from vodflow.jobs.keys import job_key

    try:
        doc = load_ref(args.job_id, args.storage_block)
    except UserError as exc:
        print(f"vodflow job delete: {exc}", file=sys.stderr)
        return EXIT_FAILED if str(exc).startswith("no job") else EXIT_USER_ERROR
    if doc.status not in ("completed", "failed"):
        print(f"vodflow job delete: job {doc.id} is {doc.status}; cancel its run first", file=sys.stderr)
        return EXIT_FAILED
    storage = open_storage(args.storage_block)
    keys, prefixes = output_keys(doc)
    for prefix in prefixes:
        storage.delete_prefix(prefix)
    storage.delete_keys([*keys, job_key(doc.id)])
    print_json(doc.wire())
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
    rerun = job_commands.add_parser(
        "rerun",
        help="encode a job again as a new job (from its kept original), or add MP4s to it (--add)",
        description="Encode an ended job again as a new job linked to it (`rerunOf`), from its kept original "
        "(`keepOriginal`) or else its source; SPEC (a JSON object of spec keys: presets, thumbnails...) "
        "replaces the first job's keys. With --add, SPEC's MP4 presets alone are encoded and appended to the "
        "completed job's files (its other files untouched); the job's updated document is printed.",
    )
    rerun.add_argument("job_id", metavar="ID", help="the job to encode again")
    rerun.add_argument("spec", nargs="?", help="JSON file of spec keys replacing the job's own")
    rerun.add_argument("--add", action="store_true", help="add SPEC's MP4 presets to the completed job")
    rerun.add_argument("--here", action="store_true", help="run in this process even when the stack runs")
    rerun.set_defaults(func=cmd_job_rerun)
    delete = job_commands.add_parser(
        "delete", help="delete an ended job: its outputs, kept original and document"
    )
    delete.add_argument(
        "job_id", metavar="ID", help="a job id, or the id (UUID) of the flow run that made it"
    )
    delete.set_defaults(func=cmd_job_delete)
