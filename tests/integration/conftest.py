"""Every test under `tests/integration/` needs real servers (S3, Prefect, contract servers) started by the
tests: marked `integration` here, by folder, so `pytest -m "not integration"` is the fast loop."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def hdr10(tmp_path_factory) -> Path:
    """The HDR10 source of the tests that read one (tests/media.py `make_hdr10_clip`): 426x240, 4 s, tone
    audio; made once a session."""
    from tests.media import make_hdr10_clip

    return make_hdr10_clip(tmp_path_factory.mktemp("hdr10") / "hdr10.mp4", 426, 240, seconds=4)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)
