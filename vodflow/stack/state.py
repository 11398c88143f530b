"""What `vodflow up` started, kept in `<state dir>/stack.json`: each part's pid, URL and log, and the
environment that points a process at the stack. Pure data and file I/O; no process is started here."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

STATE_FILE = "stack.json"


class Part(BaseModel):
    """One process of the stack, in its own process group (`pid` leads it)."""

    name: str
    pid: int
    started_at: str | None = Field(default=None, description="The process's start time, to tell pid reuse.")
    url: str | None = None
    log: str


class StackState(BaseModel):
    """The running stack: its parts (in start order) and the variables a client needs to use it."""

    state_dir: str
    project_dir: str
    env: dict[str, str] = Field(default_factory=dict)
    parts: list[Part] = Field(default_factory=list)

    def part(self, name: str) -> Part | None:
        return next((p for p in self.parts if p.name == name), None)


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def load_state(state_dir: Path) -> StackState | None:
    """The recorded stack, or None when nothing was started here (or the file is unreadable)."""
    try:
        return StackState.model_validate_json(state_path(state_dir).read_text())
    except (OSError, ValidationError, ValueError):
        return None


def save_state(state: StackState) -> None:
    """Write the state file atomically (a reader never sees half of it)."""
    path = state_path(Path(state.state_dir))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state.model_dump(), indent=2))
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
