"""The live progress bar of `vodflow encode` and `vodflow demo` on a terminal: percent, speed and ETA.

Drawn with rich on stderr, through the console Prefect's log handler already writes to, so log lines
scroll above the bar. Installed only when stderr is a TTY; otherwise the output is unchanged.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from vodflow.media.runner import Progress
from vodflow.orchestration.progress import (
    add_progress_listener,
    progress_percent,
    source_seconds_done,
    source_speed,
)

BAR_WIDTH = 30


def format_eta(seconds: float | None) -> str:
    """`M:SS` (or `H:MM:SS`); `--:--` when unknown."""
    if seconds is None:
        return "--:--"
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def eta_seconds(progress: Progress, total_seconds: float) -> float | None:
    """Seconds left at the speed so far (`source_speed`: source seconds per wall second); None if unknown."""
    if progress.done:
        return 0.0
    speed = source_speed(progress, total_seconds)
    if speed <= 0 or total_seconds <= 0:
        return None
    return max(0.0, total_seconds - source_seconds_done(progress, total_seconds)) / speed


def progress_text(label: str, progress: Progress, total_seconds: float, width: int = BAR_WIDTH) -> str:
    """One line: `encode [#######-------]  42%  1.85x  ETA 0:12` for a report on a `total_seconds` source."""
    percent = progress_percent(progress, total_seconds)
    filled = int(width * percent / 100)
    bar = "#" * filled + "-" * (width - filled)
    speed_x = source_speed(progress, total_seconds)
    speed = f"{speed_x:.2f}x" if speed_x > 0 else "  -  "
    eta = format_eta(eta_seconds(progress, total_seconds))
    return f"{label} [{bar}] {percent:3.0f}%  {speed}  ETA {eta}"


def _prefect_console() -> Any:
    """The rich Console of Prefect's console log handler (so logs print above the bar), or a new one."""
    from prefect.logging.handlers import PrefectConsoleHandler
    from rich.console import Console

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler):
            return handler.console
    return Console(file=sys.stderr)


@contextmanager
def terminal_progress() -> Iterator[None]:
    """While the block runs, draw every encode progress report as a bar on stderr (a transient rich Live)."""
    from rich.live import Live
    from rich.text import Text

    live = Live(
        Text(""),
        console=_prefect_console(),
        transient=True,
        auto_refresh=False,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    lock = threading.Lock()

    def draw(label: str, progress: Progress, total_seconds: float) -> None:
        with lock:
            live.update(Text(progress_text(label, progress, total_seconds)), refresh=True)

    with live:
        remove = add_progress_listener(draw)
        try:
            yield
        finally:
            remove()


@contextmanager
def progress_bar_if_tty(enabled: bool | None = None) -> Iterator[None]:
    """`terminal_progress()` when stderr is a terminal (or `enabled` says so), else nothing at all."""
    if enabled if enabled is not None else sys.stderr.isatty():
        with terminal_progress():
            yield
    else:
        yield
