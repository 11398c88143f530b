"""The ffmpeg runner's DEBUG lines: when each ffmpeg starts and exits (the fixed-cost bench reads them)."""

from __future__ import annotations

import logging
import threading
import time

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


def test_an_encode_whose_reports_wait_for_a_storyboard_sheet_is_not_stalled(tmp_path):
    """ffmpeg reports no progress until every output has its header; a tile output has none until its sheet
    fills. Segments written meanwhile are progress: 6 s of paced encode with a 2 s stall limit completes."""
    command = [
        "ffmpeg", "-hide_banner", "-nostdin", "-re", "-f", "lavfi", "-i", "testsrc2=s=160x90:r=25:d=6",
        "-filter_complex", "[0:v]split=2[a][b];[b]fps=1,tile=10x10[t]",
        "-map", "[a]", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
        "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod", str(tmp_path / "index.m3u8"),
        "-map", "[t]", "-frames:v", "1", str(tmp_path / "sheet_%03d.jpg"), "-y",
    ]  # fmt: skip
    started = time.monotonic()
    run_ffmpeg(command, step="encode", workdir=tmp_path, timeout=60, stall_timeout=2)
    assert time.monotonic() - started > 4, "paced by -re: longer than the stall limit"
    assert len(list(tmp_path.glob("index*.ts"))) >= 5


def test_an_encode_that_writes_nothing_is_still_stopped_as_stalled(tmp_path):
    command = [
        "ffmpeg", "-hide_banner", "-nostdin", "-re", "-f", "lavfi", "-i", "testsrc2=s=160x90:r=25:d=30",
        "-vf", "fps=1,tile=10x10", "-frames:v", "1", str(tmp_path / "sheet_%03d.jpg"), "-y",
    ]  # fmt: skip
    with pytest.raises(StepError) as stalled:
        run_ffmpeg(command, step="encode", workdir=tmp_path, timeout=60, stall_timeout=2)
    assert stalled.value.code == "stalled"
