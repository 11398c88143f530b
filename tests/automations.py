"""prefect.yaml with the crash automation's window shortened, for the tests that wait for it to fire."""

from __future__ import annotations

from pathlib import Path

SHIPPED = Path(__file__).resolve().parents[1] / "prefect.yaml"
SHIPPED_WINDOW = "      within: 90\n"


def short_window_copy(folder: Path, window: int, name: str = "prefect.yaml") -> Path:
    """A copy of the shipped prefect.yaml under `folder` whose crash trigger waits `window` seconds instead of
    90, everything else as shipped."""
    text = SHIPPED.read_text()
    assert text.count(SHIPPED_WINDOW) == 1
    copy = folder / name
    copy.write_text(text.replace(SHIPPED_WINDOW, f"      within: {window}\n"))
    return copy
