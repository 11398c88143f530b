"""What the tests need from the machine beyond Python: the tools `make test` installs (ffmpeg, PostgreSQL,
Chromium, Node and the npm packages, curl, procps).

Out of CI a test whose tool is missing is skipped with the `make` target that installs it; under CI (`CI` set
to anything but "", "0" or "false": `.ci/run` exports CI=true) it fails, so a broken CI machine cannot pass by
skipping what it could not run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[1]


def under_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the tests run on a CI machine, where every tool must be there."""
    return environ.get("CI", "").strip().lower() not in ("", "0", "false")


def missing(reason: str) -> NoReturn:
    """Skip the test for want of `reason`, or fail it under CI."""
    if under_ci():
        pytest.fail(f"{reason} (CI: a missing tool fails the test)", pytrace=False)
    pytest.skip(reason)


def tool(name: str, install: str = "make test") -> str:
    """The path of the command `name` on PATH; a missing one skips the test (fails it under CI)."""
    found = shutil.which(name)
    if found is None:
        missing(f"this test needs `{name}`: run `{install}`")
    return found


def chromium_path(environ: Mapping[str, str] = os.environ) -> Path | None:
    """Chromium as `make browser` finds or installs it: $CHROMIUM, else `chromium` on PATH, else Debian's
    /usr/bin/chromium; None when none of them is there."""
    if environ.get("CHROMIUM"):
        named = Path(environ["CHROMIUM"])
        return named if named.is_file() else None
    on_path = shutil.which("chromium", path=environ.get("PATH", os.defpath))
    if on_path:
        return Path(on_path)
    debian = Path("/usr/bin/chromium")
    return debian if debian.is_file() else None


def packager() -> str:
    """Shaka Packager's path as vodflow finds it (VODFLOW_PACKAGER, node_modules, PATH); missing: skip (fail
    under CI)."""
    from vodflow.errors import ConfigError
    from vodflow.settings import load_settings

    try:
        return load_settings().packager_path()
    except ConfigError:
        missing(
            "cenc needs Shaka Packager: run `make packager` (npm's shaka-packager) or set VODFLOW_PACKAGER"
        )
