"""`vodflow receiver`: run the HTTP receiver that turns MinIO/S3 upload notifications into Prefect events."""

from __future__ import annotations

import argparse
import sys
from typing import Any

DEFAULT_PORT = 8765


def add_parser(subparsers: Any) -> None:
    """Register `receiver [--host H] [--port P] [--token-block NAME] [--ingest-bucket B]`."""
    receiver = subparsers.add_parser(
        "receiver", help="accept MinIO/S3 bucket notifications and emit vodflow.video.uploaded events"
    )
    receiver.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    receiver.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    receiver.add_argument(
        "--token-block",
        help="name of a Prefect Secret block with the shared token (default: $VODFLOW_RECEIVER_TOKEN)",
    )
    receiver.add_argument(
        "--ingest-bucket",
        help="the pipeline's bucket: its ingest/ objects become videoId jobs, others s3:// URLs "
        "(default $VODFLOW_RECEIVER_INGEST_BUCKET, else $VODFLOW_S3_BUCKET, else any bucket)",
    )
    receiver.set_defaults(func=cmd_receiver)


def load_token(token_block: str | None, from_settings: str | None) -> str:
    """The shared token: from a Prefect `Secret` block when named, else `VODFLOW_RECEIVER_TOKEN`.

    ValueError when neither gives a token of at least `MIN_RECEIVER_TOKEN_LENGTH` characters (the receiver
    never runs open, nor with a guessable token), naming where the token came from but never quoting it.
    """
    from vodflow.settings import MIN_RECEIVER_TOKEN_LENGTH

    if token_block:
        from prefect.blocks.system import Secret

        token, source = str(Secret.load(token_block).get()), f"the Secret block {token_block!r}"
    else:
        token, source = from_settings or "", "VODFLOW_RECEIVER_TOKEN"
    if not token.strip():
        raise ValueError("no receiver token: set VODFLOW_RECEIVER_TOKEN or name a Secret block")
    if len(token.strip()) < MIN_RECEIVER_TOKEN_LENGTH:
        raise ValueError(
            f"the receiver token ({source}) must be at least {MIN_RECEIVER_TOKEN_LENGTH} characters long, "
            "as the API's secret (e.g. `openssl rand -hex 24`)"
        )
    return token.strip()


def cmd_receiver(args: argparse.Namespace) -> int:
    from vodflow.errors import StepError
    from vodflow.settings import load_settings
    from vodflow.uploads.announce import NoPrefectServer
    from vodflow.uploads.receiver import serve

    try:
        settings = load_settings()
        secret = settings.receiver_token.get_secret_value() if settings.receiver_token else None
        token = load_token(args.token_block, secret)
        bucket = args.ingest_bucket or settings.receiver_ingest_bucket
        if bucket is None and "s3_bucket" in settings.model_fields_set:  # VODFLOW_S3_BUCKET is set
            bucket = settings.s3_bucket
        serve(args.host, args.port, token, ingest_bucket=bucket)
    except (ValueError, NoPrefectServer, StepError) as exc:
        print(f"vodflow receiver: {exc}", file=sys.stderr)
        return 2
    return 0
