"""`vodflow cleanup ...`: delete remote records by id, or sweep old ones; one JSON line per item on stdout.

Exit code 0 when every item was deleted, already gone, left running or kept; 1 when any failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

SERVICES = ("videosdk", "mpc", "videodb")
_ID_HELP = {
    "videosdk": ("ID", "delete VideoSDK encoder jobs"),
    "mpc": ("TASK_ID", "delete Huawei MPC transcoding task records (a waiting task is cancelled first)"),
    "videodb": ("ID", "delete VideoDB downloads"),
}


def add_parser(subparsers: Any) -> None:
    """Register `cleanup videosdk|mpc|videodb ID...` and `cleanup sweep --older-than DAYS`."""
    cleanup = subparsers.add_parser("cleanup", help="delete remote encoder jobs, task records and downloads")
    commands = cleanup.add_subparsers(dest="cleanup_command", required=True)
    for service, (metavar, help_text) in _ID_HELP.items():
        command = commands.add_parser(service, help=help_text)
        command.add_argument("ids", nargs="+", metavar=metavar)
        command.add_argument("--block", help=f"name of a {service} credentials block (default: environment)")
        if service != "videodb":  # VideoDB cancels a processing download itself
            command.add_argument(
                "--wait",
                type=float,
                default=60.0,
                metavar="SECONDS",
                help="how long to wait for a running job or task to end (default 60)",
            )
        command.set_defaults(func=cmd_cleanup, service=service)
    sweep = commands.add_parser("sweep", help="delete finished records older than DAYS on every service")
    sweep.add_argument("--older-than", type=float, required=True, metavar="DAYS", dest="older_than")
    sweep.add_argument(
        "--service",
        action="append",
        choices=SERVICES,
        dest="services",
        help="sweep only this service (repeatable; default: every configured service)",
    )
    for service in SERVICES:
        sweep.add_argument(f"--{service}-block", help=f"name of a {service} credentials block")
    sweep.set_defaults(func=cmd_sweep)


def cmd_cleanup(args: argparse.Namespace) -> int:
    from vodflow.flows.cleanup import cleanup_remote

    ids = {f"{'mpc_task' if args.service == 'mpc' else args.service}_ids": list(args.ids)}
    block = {f"{args.service}_block": args.block}
    wait = getattr(args, "wait", 0.0)
    state = cleanup_remote(**ids, **block, wait_running_seconds=wait, return_state=True)
    return print_outcomes(state)


def cmd_sweep(args: argparse.Namespace) -> int:
    from vodflow.flows.cleanup import sweep_remote

    if args.older_than < 0:
        print("vodflow cleanup sweep: --older-than must not be negative", file=sys.stderr)
        return 2
    blocks = {f"{service}_block": getattr(args, f"{service}_block") for service in SERVICES}
    state = sweep_remote(older_than_days=args.older_than, services=args.services, **blocks, return_state=True)
    return print_outcomes(state)


def print_outcomes(state: Any) -> int:
    """Print the run's outcomes as JSON lines; 1 if any failed or the run crashed before reporting."""
    from vodflow.flows.cleanup import CleanupFailed

    result = state.result(raise_on_failure=False)
    outcomes = result.outcomes if isinstance(result, CleanupFailed) else result
    if not isinstance(outcomes, list):
        print(f"vodflow cleanup: the run ended {state.name}: {state.message or result}", file=sys.stderr)
        return 1
    for item in outcomes:
        sys.stdout.write(json.dumps(item) + "\n")
    sys.stdout.flush()
    return 1 if any(item["outcome"] == "failed" for item in outcomes) else 0
