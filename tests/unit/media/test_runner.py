"""The ffmpeg runner's DEBUG lines: when each ffmpeg starts and exits (the fixed-cost bench reads them)."""

from __future__ import annotations

import logging
import threading

import pytest

from vodflow.errors import StepError
from vodflow.media.runner import run_ffmpeg

TINY = ["ffmpeg", "-hide_banner", "-nostdin", "-f", "lavfi", "-i", "nullsrc=s=16x16:d=0.1"]


def runner_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "vodflow.media.runner"]


def test_start_and_exit_of_each_ffmpeg_are_logged_at_debug(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="vodflow.media.runner")
    run_ffmpeg([*TINY, "-f", "null", "-"], step="encode", workdir=tmp_path, timeout=60)
    started, exited = runner_lines(caplog)
    assert started.startswith("ffmpeg started (encode, pid ")
    assert exited.startswith("ffmpeg exited (encode, pid ") and exited.endswith("code 0)")


def test_a_failed_ffmpeg_logs_its_exit_code(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="vodflow.media.runner")
    with pytest.raises(StepError):
        run_ffmpeg([*TINY, "-f", "no-such-muxer", "-"], step="thumbnail", workdir=tmp_path, timeout=60)
    lines = runner_lines(caplog)
    assert lines[0].startswith("ffmpeg started (thumbnail, pid ")
    assert lines[1].startswith("ffmpeg exited (thumbnail, pid ") and not lines[1].endswith("code 0)")


def test_a_stop_signal_during_the_fork_is_held_then_raised():
    """A SIGTERM that arrives while a child is forked must not be lost in the after-fork callbacks: it is
    held, and raised once the hold ends."""
    import os
    import signal

    from vodflow.media.runner import stop_signals_held

    class Stopped(Exception):
        pass

    def stop(signum, frame):
        raise Stopped

    previous = signal.signal(signal.SIGTERM, stop)
    reached = []
    other_thread_done = threading.Event()  # the kernel may hand the signal to this thread instead
    other = threading.Thread(target=other_thread_done.wait, daemon=True)
    other.start()
    try:
        with pytest.raises(Stopped):
            with stop_signals_held():
                os.kill(os.getpid(), signal.SIGTERM)
                reached.append("after the signal, still inside the hold")
        assert reached == ["after the signal, still inside the hold"]
        assert signal.getsignal(signal.SIGTERM) is stop, "the handler is restored"
    finally:
        other_thread_done.set()
        signal.signal(signal.SIGTERM, previous)
