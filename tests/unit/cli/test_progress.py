"""The terminal progress bar: its text for a given report, and the process-local listeners that feed it."""

from __future__ import annotations

import io

import pytest

from vodflow.cli.progress import eta_seconds, format_eta, progress_bar_if_tty, progress_text
from vodflow.media.runner import Progress
from vodflow.orchestration.progress import (
    ArtifactProgress,
    add_progress_listener,
    has_progress_listeners,
    progress_description,
    source_speed,
)


@pytest.mark.parametrize(
    ("progress", "text"),
    [
        (Progress(out_seconds=0.0, speed=0.0), "encode [----------]   0%    -    ETA --:--"),
        (Progress(out_seconds=8.0, speed=9.0, elapsed=4.0), "encode [####------]  40%  2.00x  ETA 0:06"),
        (Progress(out_seconds=19.9, elapsed=39.8), "encode [#########-] 100%  0.50x  ETA 0:00"),
        (
            Progress(out_seconds=20.0, speed=3.0, done=True, elapsed=16.0),
            "encode [##########] 100%  1.25x  ETA 0:00",
        ),
    ],
)
def test_the_bar_shows_percent_speed_and_eta(progress, text):
    assert progress_text("encode", progress, 20.0, width=10) == text


def test_eta_and_its_format():
    assert eta_seconds(Progress(out_seconds=30.0, elapsed=60.0), 3630.0) == 7200.0
    assert format_eta(7200.0) == "2:00:00" and format_eta(61.4) == "1:01" and format_eta(None) == "--:--"
    assert eta_seconds(Progress(out_seconds=1.0, elapsed=1.0), 0.0) is None


def test_the_speed_is_source_seconds_over_wall_seconds_not_ffmpegs():
    """A 120 s source encoded in 293 s with a storyboard: ffmpeg's output time jumped to the last tile sheet's
    time (495 s) at the end and it said 1.69x; the run went at 0.41x realtime."""
    final = Progress(out_seconds=495.0, speed=1.69, done=True, elapsed=293.0)
    assert source_speed(final, 120.0) == pytest.approx(120.0 / 293.0)
    assert progress_description("encode", final, 120.0) == "encode: 100% at 0.41x realtime"
    assert progress_text("encode", final, 120.0, width=10).endswith("100%  0.41x  ETA 0:00")
    # midway, the output time past the source's end (the tile's time) counts as the whole source at most
    running = Progress(out_seconds=495.0, speed=1.69, elapsed=100.0)
    assert source_speed(running, 120.0) == pytest.approx(1.2)
    assert progress_description("encode", Progress(out_seconds=3.0), 120.0) == "encode: 2%"


def test_reports_are_logged_every_log_interval_and_once_finished(caplog):
    reporter = ArtifactProgress(120.0, "quality", log_interval=0.0)
    with caplog.at_level("INFO", logger="vodflow.progress"):
        reporter(Progress(out_seconds=30.0, elapsed=60.0))
        reporter(Progress(out_seconds=120.0, done=True, elapsed=240.0))
    assert [r.getMessage() for r in caplog.records] == [
        "quality: 25% at 0.50x realtime",
        "quality: 100% at 0.50x realtime (120.0 s of source in 240.00 s)",
    ]


def test_listeners_get_every_report_outside_a_task_run_and_can_be_removed():
    seen: list[tuple[str, float, float]] = []
    remove = add_progress_listener(lambda label, p, total: seen.append((label, p.out_seconds, total)))
    try:
        assert has_progress_listeners()
        reporter = ArtifactProgress(10.0, "encode")
        assert not reporter.enabled  # no task run: no artifact, the listener still hears
        reporter(Progress(out_seconds=2.5, speed=1.0))
        reporter(Progress(out_seconds=10.0, speed=1.0, done=True))
    finally:
        remove()
    assert seen == [("encode", 2.5, 10.0), ("encode", 10.0, 10.0)]
    ArtifactProgress(10.0, "encode")(Progress(out_seconds=5.0))
    assert len(seen) == 2 and not has_progress_listeners()


def test_a_failing_listener_never_fails_the_encode(caplog):
    called: list[float] = []
    heard: list[float] = []

    def broken(label: str, progress: Progress, total: float) -> None:
        called.append(progress.out_seconds)
        raise RuntimeError("terminal gone")

    removers = [
        add_progress_listener(broken),
        add_progress_listener(lambda _l, p, _t: heard.append(p.out_seconds)),
    ]
    try:
        with caplog.at_level("WARNING", logger="vodflow"):
            ArtifactProgress(10.0, "encode")(Progress(out_seconds=1.0))
            ArtifactProgress(10.0, "encode")(Progress(out_seconds=2.0))
    finally:
        for remove in removers:
            remove()
    assert called == [1.0, 2.0], "the failing listener was called with every report"
    assert heard == [1.0, 2.0], "the listener after it still heard every report"
    assert [r.getMessage() for r in caplog.records].count("progress listener failed: RuntimeError") == 2


def test_without_a_terminal_nothing_is_installed_or_drawn(monkeypatch):
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    with progress_bar_if_tty():
        assert not has_progress_listeners()
        ArtifactProgress(10.0, "encode")(Progress(out_seconds=5.0, speed=1.0))
    assert stderr.getvalue() == ""


def test_on_a_terminal_the_bar_listens_while_the_run_lasts():
    with progress_bar_if_tty(enabled=True):
        assert has_progress_listeners()
        ArtifactProgress(10.0, "encode")(Progress(out_seconds=5.0, speed=1.0))
    assert not has_progress_listeners()
