"""What `vodflow up` started, kept in `<state dir>/stack.json`: each part's pid and identity (start time,
command line, boot), URL and log, and the environment that points a process at the stack; what it chose once
and reuses on every start (ports, data directory), kept in `<state dir>/config.json`; and where the state
directory is. Pure data and file I/O; no process is started here."""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator

STATE_FILE = "stack.json"
CONFIG_FILE = "config.json"  # kept by `down`: the next `up` listens where the last one did
LEGACY_DIR = ".vodflow"  # the state directory of earlier versions, in the checkout
STACK_ID_VARIABLE = "VODFLOW_STACK_ID"  # in every part's environment: what ties a process to its stack


class UntrustedState(RuntimeError):
    """The state file cannot be trusted to name processes: `down` reports it and leaves it alone."""


class Part(BaseModel):
    """One process of the stack, leading its own session and process group (`pid`), and what proves that a
    process is this one and not another that got its pid: start time, command line and boot."""

    name: str
    pid: int = Field(gt=1, description="Never 0, 1 or negative: those name the caller's group or init.")
    started_at: str = Field(pattern=r"^[0-9]+$", description="Start time, clock ticks since boot (/proc).")
    cmdline: list[str] = Field(min_length=1, description="/proc/<pid>/cmdline as it started.")
    boot_id: str = Field(min_length=1, description="The boot it started in; a reboot ends every part.")
    url: str | None = None
    log: str


class StackState(BaseModel):
    """The running stack: its parts (in start order) and the variables a client needs to use it."""

    state_dir: str
    project_dir: str
    stack_id: str = Field(default_factory=lambda: secrets.token_hex(16), pattern=r"^[0-9a-f]{32}$")
    env: dict[str, str] = Field(default_factory=dict)
    parts: list[Part] = Field(default_factory=list)

    def part(self, name: str) -> Part | None:
        return next((p for p in self.parts if p.name == name), None)


class StackConfig(BaseModel):
    """What the first `vodflow up` of a state directory chose and every later one reuses, so that the URLs a
    stack published (fileUrls, thumbnails, UI links) still answer after a restart."""

    ports: dict[str, int] = Field(default_factory=dict, description="Each part's port, by part name.")
    data_dir: str | None = Field(default=None, description="The absolute data directory the files serve.")

    @field_validator("ports")
    @classmethod
    def _ports(cls, ports: dict[str, int]) -> dict[str, int]:
        if bad := [name for name, port in ports.items() if not 0 < port < 65536]:
            raise ValueError(f"not a TCP port: {bad[0]}")
        return ports


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def _read_own(path: Path) -> str | None:
    """The text of `path`, None when it does not exist; UntrustedState when it cannot be read or is owned or
    writable by another user."""
    try:
        with path.open("rb") as file:
            info = os.fstat(file.fileno())
            text = file.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UntrustedState(f"{path}: cannot read it ({exc.strerror})") from None
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UntrustedState(f"{path}: owned or writable by another user")
    return text.decode(errors="replace")


def _validated(model: type[BaseModel], text: str, path: Path) -> BaseModel:
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise UntrustedState(f"{path}: {where}: {first['msg']}") from None


def read_state(state_dir: Path) -> StackState | None:
    """The recorded stack, None when nothing was started here; UntrustedState when the file is unreadable,
    invalid (a pid of 1 or less, no start time, command line or boot), or writable by another user."""
    path = state_path(state_dir)
    text = _read_own(path)
    return None if text is None else _validated(StackState, text, path)  # type: ignore[return-value]


def read_config(state_dir: Path) -> StackConfig:
    """What earlier stacks of `state_dir` chose (empty when none started there); UntrustedState when the file
    is unreadable, invalid or writable by another user (it names the directory the file server serves)."""
    path = state_dir / CONFIG_FILE
    text = _read_own(path)
    return StackConfig() if text is None else _validated(StackConfig, text, path)  # type: ignore[return-value]


def save_config(state_dir: Path, config: StackConfig) -> None:
    _write_own(state_dir / CONFIG_FILE, config.model_dump())


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """The per-user state directory: `$XDG_STATE_HOME/vodflow`, else `~/.local/state/vodflow`."""
    xdg = environ.get("XDG_STATE_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "vodflow"
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "state" / "vodflow"


def find_state_dir(
    chosen: Path | None, environ: Mapping[str, str], checkouts: Iterable[Path | None]
) -> tuple[Path, str]:
    """The stack's state directory and why it is that one: `chosen` (`--state-dir`, `VODFLOW_STATE_DIR`),
    else the `.vodflow` an earlier version made in one of `checkouts` (the current directory, the vodflow
    checkout), else the per-user one. Absolute, so that any directory finds the same stack."""
    if chosen is not None:
        return chosen.expanduser().resolve(), "chosen"
    for checkout in checkouts:
        if checkout is not None and (checkout / LEGACY_DIR).is_dir():
            return (checkout / LEGACY_DIR).resolve(), "the checkout's"
    return default_state_dir(environ).resolve(), "the per-user default"


def load_state(state_dir: Path) -> StackState | None:
    """The recorded stack, or None when nothing was started here or the file cannot be trusted."""
    try:
        return read_state(state_dir)
    except UntrustedState:
        return None


def save_state(state: StackState) -> None:
    """Write the state file atomically (a reader never sees half of it), readable by its owner only."""
    _write_own(state_path(Path(state.state_dir)), state.model_dump())


def _write_own(path: Path, data: object) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(json.dumps(data, indent=2))
    os.replace(tmp, path)


def forget_state(state_dir: Path) -> None:
    state_path(state_dir).unlink(missing_ok=True)


def client_environment(state: StackState, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables a CLI process takes from the stack: those the stack recorded that `environ` lacks.

    The data URL comes only with the stack's own data directory and local storage: with another directory or
    S3, published URLs would point at files the stack's file server does not have.
    """
    chosen = {k: v for k, v in state.env.items() if not environ.get(k)}
    own_dir = state.env.get("VODFLOW_DATA_DIR", "")
    data_dir = environ.get("VODFLOW_DATA_DIR") or own_dir
    other_dir = Path(data_dir).expanduser().resolve() != Path(own_dir)
    other_storage = (environ.get("VODFLOW_STORAGE") or "local") != "local" or environ.get(
        "VODFLOW_STORAGE_BLOCK"
    )
    if other_dir or other_storage:
        chosen.pop("VODFLOW_DATA_URL", None)
    return chosen
