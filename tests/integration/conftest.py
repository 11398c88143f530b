"""Every test under `tests/integration/` needs real servers (S3, Prefect, contract servers) started by the
tests: marked `integration` here, by folder, so `pytest -m "not integration"` is the fast loop."""

from __future__ import annotations

from collections import Counter
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
    unique_ids(items)


def unique_ids(items: list[pytest.Item]) -> None:
    """Schemathesis 4 on pytest 9 gives every API operation's item its test function's id, and pytest-xdist,
    which schedules by id, would run only the first operation of each: such an item takes its name as its id
    (`test_x[GET /v1/encoder/jobs]`). Collection fails if two items still share an id."""
    from _pytest.nodeid import NodeId  # pytest 9 keeps the id in `_id` (schemathesis sets the old `_nodeid`)

    for item in items:
        original = getattr(item, "originalname", item.name)
        if item.name != original and item.nodeid.endswith(f"::{original}"):
            item._id = NodeId.parse(f"{item.nodeid.rpartition('::')[0]}::{item.name}")
    shared = [nodeid for nodeid, count in Counter(item.nodeid for item in items).items() if count > 1]
    if shared:
        raise pytest.UsageError(f"tests sharing an id (pytest-xdist runs only one of each): {shared[:5]}")
