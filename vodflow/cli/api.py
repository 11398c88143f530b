"""`vodflow api`: serve the VideoSDK-compatible encoder-job HTTP API (uvicorn) against a Prefect server."""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial
from typing import Any

from vodflow.errors import StepError

DEFAULT_PORT = 8080


def add_parser(subparsers: Any) -> None:
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

    from vodflow.api.app import create_app
    from vodflow.blocks.api import VodflowApi
    from vodflow.blocks.keys import resolve_key_settings
    from vodflow.blocks.storage import resolve_storage
    from vodflow.keys.provider import read_content_key
    from vodflow.settings import load_settings

    try:
        settings = load_settings()
        api = (
            VodflowApi.load(args.block, _sync=True).get_settings() if args.block else settings.api_settings()
        )
        if getattr(args, "storage_block", None):
            api = api.model_copy(update={"storage_block": args.storage_block})
        if not get_current_settings().api.url:
            raise ValueError("set PREFECT_API_URL to the Prefect server that runs the jobs")
        storage = resolve_storage(api.storage_block, settings)
        keys = resolve_key_settings(settings)  # the key and ClearKey routes read the jobs' sealed keys
        app = create_app(
            api,
            storage,
            allowed_buckets=settings.bucket_allow_list(),
            limits=settings.limits(),
            key_lookup=partial(read_content_key, storage, keys),
        )
    except (ValueError, StepError) as exc:
        print(f"vodflow api: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
