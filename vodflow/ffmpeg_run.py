"""Running ffmpeg: bounded in time, killed with its run, errors reported without host paths."""

from __future__ import annotations

import signal
import subprocess
import tempfile
from pathlib import Path

from vodflow.errors import StepError


def encode_timeout(duration: float, *, factor: float = 20.0, floor: float = 300.0) -> float:
    """Seconds an encode of a `duration`-second source may take before it is considered stuck."""
    return max(floor, duration * factor)


def describe_failure(stderr: str, workdir: Path, source: Path | None = None) -> str:
    """The last meaningful ffmpeg error lines, with temp and source paths replaced by neutral names."""
    text = stderr.replace(str(workdir), "<work>")
    if source is not None:
        text = text.replace(str(source), "<source>")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(lines[-3:])[:500] or "ffmpeg exited without a message"


def run_ffmpeg(
    args: list[str], *, step: str, workdir: Path, timeout: float, source: Path | None = None
) -> None:
    """Run an ffmpeg command; StepError(step, "ffmpeg_failed" | "ffmpeg_timeout") when it fails.

    The process is killed if the caller is interrupted (cancellation, timeout) so no ffmpeg outlives its run.
    """
    with tempfile.TemporaryFile(mode="w+", dir=workdir) as errors:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors)
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise StepError(step, "ffmpeg_timeout", f"ffmpeg did not finish within {timeout:.0f} s") from None
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()
        if returncode != 0:
            errors.seek(0)
            message = describe_failure(errors.read()[-20000:], workdir, source)
            raise StepError(step, "ffmpeg_failed", f"ffmpeg failed: {message}")
