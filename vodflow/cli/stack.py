"""`vodflow up`, `vodflow status`, `vodflow down`: the local stack in the background, on loopback."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vodflow.cli.output import EXIT_FAILED, EXIT_USER_ERROR
from vodflow.errors import ConfigError

STATE_DIRS = (
    "State, pids, logs and the ports and data directory each start reuses: --state-dir, else "
    "$VODFLOW_STATE_DIR, else the .vodflow of the current directory or of the vodflow checkout where an "
    "earlier version made one, else $XDG_STATE_HOME/vodflow (~/.local/state/vodflow)."
)


def tcp_port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text}")
    return port


def add_state_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", type=Path, help="the stack's state directory (see `vodflow up -h`)")


def add_parser(subparsers: Any) -> None:
    """Register `up [--port P] [--files-port P] [--api-port P] [--receiver-port P] [--database-url URL]
    [--api] [--receiver] [--no-files] [--state-dir D]`, `status`, `down`."""
    up = subparsers.add_parser(
        "up",
        help="start the local stack: Prefect server and UI, deployments, a worker, a file server",
        description="Start, in the background on 127.0.0.1, a Prefect server (SQLite in the state directory, "
        "or --database-url), the work pool and deployments of prefect.yaml, one worker whose runs start in a "
        "warm runner (Prefect and the flows imported once) and a read-only file server for local storage; "
        "with --api and --receiver also those. Finds a running stack instead of "
        "starting a second one, and starts beside it the --api or --receiver it lacks. The first start picks "
        "free ports and every later one reuses them (links published before a restart keep working); a "
        "--*port option changes one. " + STATE_DIRS,
    )
    for option, part in (("--port", "Prefect server's"), ("--files-port", "file server's"),
                         ("--api-port", "API's"), ("--receiver-port", "receiver's")):  # fmt: skip
        up.add_argument(
            option, type=tcp_port, help=f"the {part} port (default: the last one used, else a free one)"
        )
    up.add_argument(
        "--database-url",
        help="Prefect's database, e.g. postgresql+asyncpg://... (default $VODFLOW_DATABASE_URL, else SQLite "
        "in the state directory)",
    )
    up.add_argument("--api", action="store_true", help="also serve the encoder-job API (needs VODFLOW_API_*)")
    up.add_argument(
        "--receiver", action="store_true", help="also run the upload receiver (needs VODFLOW_RECEIVER_TOKEN)"
    )
    up.add_argument("--no-files", action="store_true", help="do not serve the local data directory over HTTP")
    up.add_argument("--project", type=Path, help="the vodflow checkout with prefect.yaml (default: found)")
    add_state_dir(up)
    up.set_defaults(func=cmd_up)
    status = subparsers.add_parser("status", help="show what the local stack runs and where")
    add_state_dir(status)
    status.set_defaults(func=cmd_status)
    down = subparsers.add_parser(
        "down",
        help="stop exactly what `vodflow up` started (safe to repeat)",
        description="Stop what `vodflow up` started and forget it. A recorded pid that now names another "
        "process (after a reboot or pid reuse) is not signalled; a state file that cannot be trusted "
        "(invalid, a pid of 1 or less, no recorded identity, writable by others) is reported, left as it "
        "is, and the exit status is 1.",
    )
    add_state_dir(down)
    down.set_defaults(func=cmd_down)


def stack_dir(chosen: Path | None = None) -> tuple[Path, str]:
    """The stack's state directory and why (`find_state_dir`): `chosen`, else $VODFLOW_STATE_DIR, else the
    search. ConfigError for a malformed VODFLOW_* variable."""
    import os

    from vodflow.orchestration.deploy_steps import installed_checkout
    from vodflow.settings import load_settings
    from vodflow.stack.state import find_state_dir

    given = chosen or load_settings().state_dir
    return find_state_dir(given, os.environ, (Path.cwd(), installed_checkout()))


def project_dir(given: Path | None) -> Path:
    """The checkout whose prefect.yaml is deployed: given, else the current directory, else the one vodflow is
    installed from. ConfigError when none has a prefect.yaml."""
    from vodflow.orchestration.deploy_steps import installed_checkout

    for candidate in (given, Path.cwd(), installed_checkout()):
        if candidate is not None and (candidate / "prefect.yaml").is_file():
            return candidate.resolve()
        if given is not None:
            break
    raise ConfigError("no prefect.yaml: run `vodflow up` in the vodflow checkout, or pass --project DIR")


def cmd_up(args: argparse.Namespace) -> int:
    import os

    from vodflow.settings import load_settings
    from vodflow.stack.local import PortInUse, StackRunning, UpOptions, up
    from vodflow.stack.state import UntrustedState

    try:
        settings = load_settings()
        if args.api:
            # missing or weak credentials are refused now, not in the API's log once the rest has started
            settings.api_settings().check_secret_strength()
        if args.receiver and not settings.receiver_token:
            raise ConfigError(
                "--receiver needs VODFLOW_RECEIVER_TOKEN (the token bucket notifications carry)"
            )
        if args.receiver:
            from vodflow.cli.receiver import load_token

            load_token(None, settings.receiver_token.get_secret_value())  # ValueError: too short
        database = args.database_url or (
            settings.database_url.get_secret_value() if settings.database_url else None
        )
        ports = {"server": args.port, "files": args.files_port, "api": args.api_port,
                 "receiver": args.receiver_port}  # fmt: skip
        options = UpOptions(
            state_dir=stack_dir(args.state_dir)[0],
            project_dir=project_dir(args.project),
            data_dir=settings.data_dir if "data_dir" in settings.model_fields_set else None,
            bin_dir=Path(sys.executable).parent,
            python=sys.executable,
            ports={name: port for name, port in ports.items() if port},
            database_url=database,
            serve_files=settings.storage == "local" and not args.no_files,
            api=args.api,
            receiver=args.receiver,
        )
        state, started = up(
            options, os.environ, say=lambda line: print(f"vodflow up: {line}", file=sys.stderr)
        )
    except (ConfigError, ValueError, PortInUse, StackRunning) as exc:
        print(f"vodflow up: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except UntrustedState as exc:
        print(f"vodflow up: {untrusted(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except (RuntimeError, OSError) as exc:
        print(f"vodflow up: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if not started:
        print("vodflow up: the stack is already running", file=sys.stderr)
    elif "server" not in started:
        print(f"vodflow up: the stack was running; started {', '.join(started)}", file=sys.stderr)
    print_parts(state)
    return 0


def print_parts(state: Any) -> list[Any]:
    """Print each part's state, URL and log; the rows (`PartStatus`) as they were checked."""
    from vodflow.stack.local import status

    rows = status(state)
    for row in rows:
        shown = "stopped" if not row.running else "not answering" if row.answering is False else "up"
        print(f"{row.name:<9} {shown:<14} {row.part.url or '-':<28} log {row.part.log}")
    print(f"Prefect UI: {state.part('server').url}   state: {state.state_dir}")
    if api := state.part("api"):
        print(
            f"Private playback: {api.url}/v1/playback/<job id>?token=...  (`vodflow playback token <job id>`)"
        )
    return rows


def cmd_status(args: argparse.Namespace) -> int:
    from vodflow.stack.state import UntrustedState, read_state

    try:
        where, why = stack_dir(args.state_dir)
        state = read_state(where)
    except ConfigError as exc:
        print(f"vodflow status: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except UntrustedState as exc:
        print(f"vodflow status: {untrusted(exc)}", file=sys.stderr)
        return EXIT_FAILED
    if state is None or not state.parts:
        print(
            f"vodflow: the local stack is not running (state: {where}, {why}; start it with `vodflow up`)",
            file=sys.stderr,
        )
        return 3
    rows = print_parts(state)  # each part checked once
    if api_url := state.env.get("PREFECT_API_URL"):  # what Prefect's own CLI needs to see this stack
        print(f"For the prefect CLI: export PREFECT_API_URL={api_url}")
    healthy = all(row.running and row.answering is not False for row in rows)
    return 0 if healthy else 1


def cmd_down(args: argparse.Namespace) -> int:
    from vodflow.stack.local import down
    from vodflow.stack.state import UntrustedState

    try:
        stopped = down(
            stack_dir(args.state_dir)[0], warn=lambda line: print(f"vodflow down: {line}", file=sys.stderr)
        )
    except ConfigError as exc:
        print(f"vodflow down: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except UntrustedState as exc:
        print(f"vodflow down: {untrusted(exc)}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"vodflow down: stopped {', '.join(stopped)}" if stopped else "vodflow down: nothing was running",
        file=sys.stderr,
    )
    return 0


def untrusted(exc: Exception) -> str:
    return (
        f"the state file cannot be trusted, so nothing was signalled and it is left as it is: {exc}; stop "
        "what it names yourself if anything, then remove it"
    )
