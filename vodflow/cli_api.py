"""`vodflow api`: serve the VideoSDK-compatible encoder-job HTTP API (uvicorn) against a Prefect server."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

DEFAULT_PORT = 8080


def add_api_parser(subparsers: Any) -> None:
    """Register `api [--host H] [--port P] [--block NAME]`."""
    api = subparsers.add_parser("api", help="serve the VideoSDK-compatible encoder-job HTTP API")
    api.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    api.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    api.add_argument(
        "--block", help="name of a vodflow-api block with key, secret and settings (default: VODFLOW_API_*)"
    )
    api.set_defaults(func=cmd_api)


def cmd_api(args: argparse.Namespace) -> int:
    # Prefect's client retries a busy server's 503 up to 5 times, waiting up to 32 s: an API request would
    # hang for a minute. One retry, then the API answers its own 503 and the caller retries.
    os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "1")
    import uvicorn
    from prefect.settings import get_current_settings

    from vodflow.api import create_app, settings_from_env

    try:
        if args.block:
            from blocks.api import VodflowApi

            settings = VodflowApi.load(args.block, _sync=True).get_settings()
        else:
            settings = settings_from_env()
    except ValueError as exc:
        print(f"vodflow api: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "storage_block", None):
        settings = settings.model_copy(update={"storage_block": args.storage_block})
    if not get_current_settings().api.url:
        print("vodflow api: set PREFECT_API_URL to the Prefect server that runs the jobs", file=sys.stderr)
        return 2
    try:
        app = create_app(settings)
    except ValueError as exc:
        print(f"vodflow api: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
