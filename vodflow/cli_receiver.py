"""`vodflow receiver`: run the HTTP receiver that turns MinIO/S3 upload notifications into Prefect events."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

DEFAULT_PORT = 8765
TOKEN_ENV = "VODFLOW_RECEIVER_TOKEN"
INGEST_BUCKET_ENV = "VODFLOW_RECEIVER_INGEST_BUCKET"


def add_receiver_parser(subparsers: Any) -> None:
    """Register `receiver [--host H] [--port P] [--token-block NAME] [--ingest-bucket B]`."""
    receiver = subparsers.add_parser(
        "receiver", help="accept MinIO/S3 bucket notifications and emit vodflow.video.uploaded events"
    )
    receiver.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    receiver.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    receiver.add_argument(
        "--token-block", help=f"name of a Prefect Secret block with the shared token (default: ${TOKEN_ENV})"
    )
    receiver.add_argument(
        "--ingest-bucket",
        default=os.environ.get(INGEST_BUCKET_ENV) or os.environ.get("VODFLOW_S3_BUCKET"),
        help=f"the pipeline's bucket: its ingest/ objects become videoId jobs, others s3:// URLs "
        f"(default ${INGEST_BUCKET_ENV}, else $VODFLOW_S3_BUCKET, else any bucket)",
    )
    receiver.set_defaults(func=cmd_receiver)


def cmd_receiver(args: argparse.Namespace) -> int:
    from vodflow.announce import NoPrefectServer
    from vodflow.receiver import load_token, serve

    try:
        token = load_token(args.token_block)
        serve(args.host, args.port, token, ingest_bucket=args.ingest_bucket or None)
    except (ValueError, NoPrefectServer) as exc:
        print(f"vodflow receiver: {exc}", file=sys.stderr)
        return 2
    return 0
