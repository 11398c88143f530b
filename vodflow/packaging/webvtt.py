"""WebVTT's timestamps, shared by the caption renditions and the storyboard tracks (pure)."""

from __future__ import annotations


def format_time(seconds: float) -> str:
    """Seconds as WebVTT's `HH:MM:SS.mmm`."""
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"
