"""`vodflow files`: serve local storage's published outputs read-only over HTTP for players to open."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path
from typing import Any

# Fixed by default: published fileUrls hold the port, so a server restarted on another one would break them.
DEFAULT_PORT = 8090


def add_parser(subparsers: Any) -> None:
    """Register `files [--dir D] [--host H] [--port P]`."""
    files = subparsers.add_parser(
        "files",
        help="serve the published outputs (files/) of the local data directory read-only over HTTP (byte "
        f"ranges, CORS) for players; port {DEFAULT_PORT} unless --port",
    )
    files.add_argument("--dir", type=Path, help="data directory (default: $VODFLOW_DATA_DIR, ./data)")
    files.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    files.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; 0: a free one, printed on start)",
    )
    files.set_defaults(func=cmd_files)


def cmd_files(args: argparse.Namespace) -> int:
    import uvicorn

    from vodflow.jobs.keys import PUBLISHED_PREFIX
    from vodflow.settings import load_settings
    from vodflow.storage.http import create_file_app

    root = (args.dir or load_settings().data_dir).expanduser().resolve()
    (root / PUBLISHED_PREFIX).mkdir(parents=True, exist_ok=True)
    listener = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((args.host, args.port))
        listener.listen(128)  # connections wait in the backlog until the server takes them
    except OSError as exc:
        listener.close()
        print(f"vodflow files: cannot listen on {args.host}:{args.port}: {exc.strerror}; choose another "
              "--port (0: a free one)", file=sys.stderr)  # fmt: skip
        return 2
    port = listener.getsockname()[1]
    base = f"http://{f'[{args.host}]' if ':' in args.host else args.host}:{port}"
    default = " (the default)" if args.port == DEFAULT_PORT else ""
    print(
        f"serving {root / PUBLISHED_PREFIX} (published outputs only) at {base}/{PUBLISHED_PREFIX} on port "
        f"{port}{default}; set VODFLOW_DATA_URL={base} for runs",
        flush=True,
    )
    server = uvicorn.Server(uvicorn.Config(create_file_app(root), log_level="warning"))
    server.run(sockets=[listener])
    return 0
