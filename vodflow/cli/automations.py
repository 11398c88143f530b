"""`vodflow automations apply`: create or update the Prefect automations declared in prefect.yaml."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def cmd_automations_apply(args: argparse.Namespace) -> int:
    from vodflow.orchestration.automations import apply_automations

    try:
        for name, what in apply_automations(Path(args.file)):
            print(f"automation {name!r} {what}", file=sys.stderr)
    except (OSError, ValueError) as exc:
        print(f"vodflow automations: {exc}", file=sys.stderr)
        return 2
    return 0


def add_parser(subparsers: Any) -> None:
    """Register `automations apply [--file prefect.yaml]`."""
    automations = subparsers.add_parser("automations", help="Prefect automations declared in prefect.yaml")
    commands = automations.add_subparsers(dest="automations_command", required=True)
    apply = commands.add_parser(
        "apply", help="create or update (by name) the automations of prefect.yaml on the Prefect server"
    )
    apply.add_argument(
        "--file", default="prefect.yaml", help="the prefect.yaml to read (default ./prefect.yaml)"
    )
    apply.set_defaults(func=cmd_automations_apply)
