"""`vodflow playback token JOB_ID`: mint a signed, expiring playback token for a private job (`"private":
true`), with the key `vodflow api` checks them with (VODFLOW_PLAYBACK_SECRET, else derived from
VODFLOW_API_SECRET; or a vodflow-api block's)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from vodflow.cli.output import EXIT_USER_ERROR
from vodflow.errors import ConfigError, SpecError


def add_parser(subparsers: Any) -> None:
    """Register `playback token JOB_ID [--ttl S] [--origin O]... [--ip PREFIX] [--block NAME] [--url URL]`."""
    playback = subparsers.add_parser("playback", help="signed, expiring playback links of private jobs")
    actions = playback.add_subparsers(dest="action", required=True)
    token = actions.add_parser("token", help="mint a playback token for a private job (JSON on stdout)")
    token.add_argument("job_id", metavar="JOB_ID")
    token.add_argument("--ttl", type=int, default=3600, help="seconds the token is valid (default 3600)")
    token.add_argument(
        "--origin", action="append", default=[], help="page origin allowed to play (repeatable), https://host"
    )
    token.add_argument("--ip", help="client address prefix allowed, such as 10.0.0.0/8")
    token.add_argument(
        "--block", help="name of a vodflow-api block (default: VODFLOW_API_* / VODFLOW_PLAYBACK_*)"
    )
    token.add_argument(
        "--url",
        help="the API's base URL for `playbackUrl` (default: VODFLOW_PLAYBACK_URL, else the stack's API)",
    )
    token.set_defaults(func=cmd_token)


def stack_api_url() -> str | None:
    """The running local stack's API URL (`vodflow up --api`), or None."""
    try:
        from vodflow.cli.stack import stack_dir
        from vodflow.stack.local import running_stack

        state = running_stack(stack_dir()[0])
    except Exception:  # no stack, or one that cannot be read: the URL is optional
        return None
    part = next((p for p in state.parts if p.name == "api"), None) if state else None
    return part.url if part is not None else None


def cmd_token(args: argparse.Namespace) -> int:
    from vodflow.jobs.keys import check_job_id
    from vodflow.jobs.playback import mint_playback_token
    from vodflow.settings import load_settings

    try:
        job_id = check_job_id(args.job_id)
        if args.block:
            from vodflow.blocks.api import VodflowApi

            api = VodflowApi.load(args.block, _sync=True).get_settings()
        else:
            api = load_settings().api_settings()
        api.check_secret_strength()
        if args.ttl > api.playback_max_ttl:
            raise ValueError(f"--ttl: at most {api.playback_max_ttl:g} s (VODFLOW_PLAYBACK_MAX_TTL)")
        now = time.time()
        token = mint_playback_token(
            api.playback_key(), job_id, args.ttl, origins=args.origin, ip=args.ip, now=now
        )
    except (ConfigError, SpecError, ValueError) as exc:
        print(f"vodflow playback token: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    out: dict[str, Any] = {"jobId": job_id, "token": token, "expiresAt": int(now) + args.ttl}
    if base := (args.url or api.playback_url or stack_api_url()):
        out["playbackUrl"] = f"{base.rstrip('/')}/v1/playback/{job_id}?token={token}"
    print(json.dumps(out))
    return 0
