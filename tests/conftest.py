"""Shared fixtures: one Prefect test harness per session, fast retries, generated media."""

from __future__ import annotations

import os

# Retries stay real but short in tests; set before any task module is imported.
os.environ.setdefault("VODFLOW_TASK_RETRY_DELAY", "0.2")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("VODFLOW_WEBHOOK_RETRY_DELAY", "0.05")
os.environ.setdefault("VODFLOW_WEBHOOK_WINDOW", "10")
# Test servers listen on loopback, which the address guard refuses by default (guard tests override this).
os.environ.setdefault("VODFLOW_ALLOWED_HOSTS", "127.0.0.1,localhost,::1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect API for flow-level tests (started once per session, on demand)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    """Small generated sources: landscape with audio, portrait without, odd-sized, rotated."""
    from tests.media import make_clip, make_rotated

    root = tmp_path_factory.mktemp("clips")
    landscape = make_clip(root / "landscape.mp4", 854, 480, seconds=3)
    return {
        "landscape": landscape,
        "portrait": make_clip(root / "portrait.mp4", 360, 640, seconds=3, audio=False),
        "odd": make_clip(root / "odd.mp4", 641, 361, seconds=2),
        "rotated": make_rotated(landscape, root / "rotated.mp4", 90),
    }


@pytest.fixture(scope="session")
def bad_sources(tmp_path_factory, clips):
    """Files that are not playable videos."""
    import subprocess

    root = tmp_path_factory.mktemp("bad")
    (root / "empty.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("this is not a video\n" * 50)
    (root / "garbage.mp4").write_bytes(bytes(range(256)) * 64)
    data = clips["landscape"].read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 3])

    def lavfi(source: str, *output: str) -> None:
        """Make a file from one of ffmpeg's lavfi sources."""
        base = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", source]
        subprocess.run([*base, *output], check=True)

    lavfi(
        "testsrc2=size=320x240:duration=1",
        "-frames:v",
        "1",
        "-f",
        "image2",
        "-c:v",
        "png",
        str(root / "image.mp4"),
    )
    lavfi("sine=duration=2", "-c:a", "aac", str(root / "audio-only.mp4"))
    return root


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3 server (SeaweedFS) on loopback ports, started once per session, on demand."""
    from tests.s3server import run_seaweedfs

    with run_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


def pytest_terminal_summary(terminalreporter):
    """The fault-injection figures (tests/faults.py), when the fault suite ran in this session."""
    from tests.faults import LEDGER

    if LEDGER.ran:
        terminalreporter.write_sep("=", "fault injection")
        terminalreporter.write_line(LEDGER.render())
