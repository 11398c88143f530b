"""Deployment pull steps (referenced from prefect.yaml) that the built-in steps do not cover."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_DIR_ENV = "VODFLOW_PROJECT_DIR"


def installed_checkout() -> Path | None:
    """The repository the vodflow package is installed from (editable install), if it is one."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "prefect.yaml").is_file() and (root / "flows").is_dir() else None


def project_directory(directory: str = "") -> dict[str, str]:
    """Pull step: the checkout flow runs start in; `directory` (prefect.yaml passes `$VODFLOW_PROJECT_DIR`),
    else the checkout vodflow is installed from. ValueError when neither names a directory.
    """
    chosen = Path(directory).expanduser() if directory.strip() else installed_checkout()
    if chosen is None or not chosen.is_dir():
        raise ValueError(f"no project directory: set {PROJECT_DIR_ENV} to the vodflow checkout on this host")
    return {"directory": str(chosen.resolve())}


def enter_project_directory(directory: str = "") -> dict[str, str]:
    """Pull step: `project_directory`, then change into it; one step where two (this and Prefect's
    `set_working_directory`) cost a run a second templating pass and a second pull-step event, about 0.2 s."""
    chosen = project_directory(directory)
    os.chdir(chosen["directory"])
    return chosen
