"""The `vodflow` command line: one module per subcommand, each registering its own parser."""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from vodflow.cli import (
    api,
    automations,
    cleanup,
    demo,
    encode,
    files,
    jobs,
    plan,
    playback,
    receiver,
    stack,
    usage,
    watch,
)
from vodflow.cli.output import EXIT_CODES

if TYPE_CHECKING:
    from vodflow.stack.state import StackState

# Prefect's default (20 s) is too short for its throwaway server on a loaded 2-core machine.
EPHEMERAL_STARTUP_TIMEOUT = "90"
STACK_CLIENTS = {
    "encode",
    "job",
    "cleanup",
    "demo",
    "watch",
    "usage",
}  # commands that use a running local stack
# What a shell reports for a command killed by SIGPIPE (128 + 13): `vodflow job get ID | head`.
EXIT_BROKEN_PIPE = 141


def package_version() -> str:
    try:
        return version("vodflow")
    except PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vodflow",
        description="Video-on-demand pipeline on Prefect.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vodflow {package_version()}")
    parser.add_argument("--storage-block", help="name of a vodflow-storage block (default: VODFLOW_STORAGE*)")
    commands = parser.add_subparsers(dest="command", required=True)
    for module in (
        encode,
        plan,
        jobs,
        watch,
        demo,
        stack,
        automations,
        cleanup,
        receiver,
        api,
        files,
        usage,
        playback,
    ):
        module.add_parser(commands)
    return parser


def use_running_stack(command: str) -> StackState | None:
    """Point this process at the local stack (`vodflow up`, found from any directory) when one runs and
    PREFECT_API_URL is not set: runs show in its UI, outputs go to its data directory and file server, and no
    throwaway server is started; that stack, None when it is not used. A stack that exists but is not used
    gets one line on stderr saying why."""
    from vodflow.cli.stack import stack_dir
    from vodflow.errors import ConfigError
    from vodflow.stack.local import running_stack
    from vodflow.stack.state import CONFIG_FILE, UntrustedState, client_environment, read_state

    def note(line: str) -> None:
        print(f"vodflow {command}: {line}", file=sys.stderr)

    instead = "; this job runs on a temporary Prefect server" if command in ("encode", "demo") else ""
    given = os.environ.get("PREFECT_API_URL")
    try:
        where, _ = stack_dir()
        recorded = read_state(where)
    except ConfigError:
        return None  # the command itself reports bad settings
    except UntrustedState as exc:
        note(f"the local stack is not used: {exc}")
        return None
    if recorded is None:
        if not given and (where / CONFIG_FILE).is_file():
            note(f"the local stack ({where}) is stopped{instead}; `vodflow up` starts it")
        return None
    state = running_stack(where)
    own_api = recorded.env.get("PREFECT_API_URL", "")
    if given:
        if state is not None and given.rstrip("/") != own_api:
            note(f"PREFECT_API_URL is set, so the running local stack ({own_api}) is not used")
        return None
    if state is None:
        note(f"the local stack ({where}) does not answer at {own_api}{instead}; see `vodflow status`")
        return None
    chosen = client_environment(state, os.environ)
    if (
        "VODFLOW_DATA_URL" in state.env
        and not os.environ.get("VODFLOW_DATA_URL")
        and ("VODFLOW_DATA_URL" not in chosen)
    ):
        note(
            "VODFLOW_DATA_DIR or the storage is not the stack's: its file server does not serve these outputs"
        )
    os.environ.update(chosen)
    return state


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", EPHEMERAL_STARTUP_TIMEOUT)
    # a throwaway server would report usage to Prefect (an ERROR line where it cannot): as `vodflow up` does
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    args = build_parser().parse_args(argv)
    args.stack = use_running_stack(args.command) if args.command in STACK_CLIENTS else None
    try:
        return args.func(args)
    except BrokenPipeError:
        # The reader went away (`| head`): say nothing more, and keep the interpreter's final flush of
        # stdout from failing again on the closed pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
