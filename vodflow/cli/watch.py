"""`vodflow watch ID`: the URL of a job's watch page (its ladders in hls.js or dash.js, captions, storyboard,
MP4s, thumbnails and quality), opened in a browser when this is a terminal on a desktop."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from vodflow.cli.output import EXIT_FAILED, EXIT_OK, EXIT_USER_ERROR

NO_SERVER = (
    "no server shows the watch page for this storage: start the stack (`vodflow up`), or serve the data "
    "directory with `vodflow files` and set VODFLOW_DATA_URL, or set VODFLOW_PLAYER_URL to the API's URL"
)


def can_open_browser() -> bool:
    """Whether a browser may be opened: stdout is a terminal (never in scripts and tests) on a desktop (macOS,
    Windows, or a Linux display)."""
    desktop = sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    return desktop and sys.stdout.isatty()


def watch_base(settings: Any, storage_block: str | None) -> str | None:
    """The base URL of the server that shows the storage's jobs (`<it>/watch/<job id>`), or None."""
    from vodflow.blocks.storage import resolve_storage_config

    return settings.watch_base_url(resolve_storage_config(storage_block, settings))


def cmd_watch(args: argparse.Namespace) -> int:
    from vodflow.blocks.storage import resolve_storage
    from vodflow.errors import ObjectNotFound, SpecError
    from vodflow.jobs.keys import job_id_from_ref
    from vodflow.jobs.watch import watch_url
    from vodflow.settings import load_settings
    from vodflow.storage.jobstore import load_job

    try:
        job_id = job_id_from_ref(args.job_id)
    except SpecError as exc:
        print(f"vodflow watch: invalid job id {args.job_id!r}: {exc.reason}", file=sys.stderr)
        return EXIT_USER_ERROR
    settings = load_settings()
    base = watch_base(settings, args.storage_block)
    if base is None:
        print(f"vodflow watch: {NO_SERVER}", file=sys.stderr)
        return EXIT_USER_ERROR
    url = watch_url(base, job_id)
    try:
        doc = load_job(resolve_storage(args.storage_block, settings), job_id)
    except ObjectNotFound:
        print(f"vodflow watch: no job {job_id!r}", file=sys.stderr)
        return EXIT_FAILED
    print(url, flush=True)
    if doc.status != "completed":
        print(f"vodflow watch: job {job_id} is {doc.status}: the page plays what it has published so far",
              file=sys.stderr)  # fmt: skip
    if not args.no_open and can_open_browser():
        import webbrowser

        webbrowser.open(url)
    return EXIT_OK


def add_parser(subparsers: Any) -> None:
    """Register `watch ID [--no-open]`."""
    watch = subparsers.add_parser(
        "watch",
        help="print the URL of a job's watch page (every ladder in hls.js or dash.js, captions, storyboard, "
        "MP4s, thumbnails, quality; served by the stack's file server or the API) and open it in a browser "
        "when run in a terminal on a desktop",
    )
    watch.add_argument("job_id", metavar="ID", help="a job id, or the id (UUID) of the flow run that made it")
    watch.add_argument("--no-open", action="store_true", help="print the URL only, open no browser")
    watch.set_defaults(func=cmd_watch)
