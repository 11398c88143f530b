"""The `vodflow` command line: one module per subcommand, each registering its own parser."""

from __future__ import annotations

import argparse
import os
import sys

from vodflow.cli import api, automations, cleanup, demo, encode, files, jobs, receiver

# Prefect's default (20 s) is too short for its throwaway server on a loaded 2-core machine.
EPHEMERAL_STARTUP_TIMEOUT = "90"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vodflow", description="Video-on-demand pipeline on Prefect.")
    parser.add_argument("--storage-block", help="name of a vodflow-storage block (default: VODFLOW_STORAGE*)")
    commands = parser.add_subparsers(dest="command", required=True)
    for module in (encode, jobs, demo, automations, cleanup, receiver, api, files):
        module.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", EPHEMERAL_STARTUP_TIMEOUT)
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
