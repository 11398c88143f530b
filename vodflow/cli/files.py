"""`vodflow files`: serve local storage read-only over HTTP so that players can open the outputs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DEFAULT_PORT = 8090


def add_parser(subparsers: Any) -> None:
    """Register `files [--dir D] [--host H] [--port P]`."""
    files = subparsers.add_parser(
        "files", help="serve the local data directory read-only over HTTP (byte ranges, CORS) for players"
    )
    files.add_argument("--dir", type=Path, help="directory to serve (default: $VODFLOW_DATA_DIR, ./data)")
    files.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    files.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    files.set_defaults(func=cmd_files)


def cmd_files(args: argparse.Namespace) -> int:
    import uvicorn

    from vodflow.settings import load_settings
    from vodflow.storage.http import create_file_app

    root = (args.dir or load_settings().data_dir).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    print(f"serving {root} at http://{args.host}:{args.port}/ (set VODFLOW_DATA_URL to it)", flush=True)
    uvicorn.run(create_file_app(root), host=args.host, port=args.port, log_level="warning")
    return 0
