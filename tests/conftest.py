"""Shared fixtures: one Prefect test harness per session, fast retries, generated media, one local storage
for a test (`storage`), the S3 server."""

from __future__ import annotations

import os
import tempfile

# Retries stay real but short in tests; set before any task module is imported.
os.environ.setdefault("VODFLOW_TASK_RETRY_DELAY", "0.2")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("VODFLOW_WEBHOOK_RETRY_DELAY", "0.05")
os.environ.setdefault("VODFLOW_WEBHOOK_WINDOW", "10")
# Test servers listen on loopback, which the address guard refuses by default (guard tests override this).
os.environ.setdefault("VODFLOW_ALLOWED_HOSTS", "127.0.0.1,localhost,::1")

# The local stack's state of the session, never the user's: `vodflow` finds a stack by VODFLOW_STATE_DIR,
# else the per-user directory under XDG_STATE_HOME (a test that needs a stack starts its own, in its own dir).
_STATE = tempfile.mkdtemp(prefix="vodflow-test-state-")
os.environ["VODFLOW_STATE_DIR"] = os.path.join(_STATE, "stack")
os.environ["XDG_STATE_HOME"] = os.path.join(_STATE, "xdg")

import pytest  # noqa: E402

from tests.user_stack import SHARED, STACK_FILES  # noqa: E402

# The files that take a minute or more on a 2-core machine, longest first: pytest-xdist (`--dist loadfile`)
# hands out files in collection order, so these start first and the short files fill in around them, instead
# of one long file running alone at the end while the other worker idles. Order only: every test still runs.
LONG_FILES = (
    "tests/integration/deployments/test_deployments.py",
    *STACK_FILES,  # one unit of work on one worker: they share a stack (tests/user_stack.py)
    "tests/integration/cli/test_stack.py",
    "tests/integration/cli/test_stack_runner.py",
    "tests/integration/cli/test_stack_restart.py",
    "tests/integration/encoders/test_chunked_equivalence.py",
    "tests/integration/api/test_api_server.py",
    "tests/integration/cli/test_cli.py",
    "tests/integration/cli/test_first_run.py",
    "tests/integration/orchestration/test_automations.py",
    "tests/integration/flows/test_pipeline_s3.py",
    "tests/integration/flows/test_pipeline_flow.py",
    "tests/integration/deployments/test_container_image.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long files first (`LONG_FILES`), the rest in their usual order; a file's tests stay together."""
    rank = {name: index for index, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(file_of(item.nodeid), len(LONG_FILES)))


def file_of(nodeid: str) -> str:
    """The test file of a test id (`tests/x/test_y.py::test_z[p]` -> `tests/x/test_y.py`)."""
    return nodeid.split("::", 1)[0]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile`, with the files of the shared stack (`STACK_FILES`) handed out as one unit: they run
    one after the other on one worker, which starts the stack once."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class StackFilesTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = file_of(nodeid)
            return "shared-stack" if path in STACK_FILES else path

    return StackFilesTogether(config, log)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """The shared stack stops (`vodflow down`) as soon as its worker runs a file that does not use it."""
    if file_of(item.nodeid) not in STACK_FILES:
        SHARED.stop()


@pytest.fixture(scope="module")
def user_stack(tmp_path_factory):
    """The stack shared by `STACK_FILES` (tests/user_stack.py), started on first use."""
    return SHARED.get(tmp_path_factory)


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
    from tests.media import lavfi

    root = tmp_path_factory.mktemp("bad")
    (root / "empty.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("this is not a video\n" * 50)
    (root / "garbage.mp4").write_bytes(bytes(range(256)) * 64)
    data = clips["landscape"].read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 3])

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


@pytest.fixture
def storage(tmp_path, monkeypatch):
    """Local storage under the test's temp directory, and the environment that makes flows, the CLI and
    the settings use it (`VODFLOW_STORAGE=local`, `VODFLOW_DATA_DIR`, `VODFLOW_TMP_DIR`)."""
    from vodflow.storage.local import LocalStorage

    monkeypatch.setenv("VODFLOW_STORAGE", "local")
    monkeypatch.setenv("VODFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VODFLOW_TMP_DIR", str(tmp_path / "tmp"))
    return LocalStorage(tmp_path / "data")


@pytest.fixture
def environment(monkeypatch):
    """`environment({"VODFLOW_X": "..."})` puts exactly these `VODFLOW_*` settings in the environment (the
    others are cleared for the test) and returns the settings read from it."""
    from vodflow.settings import load_settings

    def use(values: dict[str, str]):
        for name in [n for n in os.environ if n.startswith("VODFLOW_")]:
            monkeypatch.delenv(name)
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        return load_settings()

    return use


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3 server (SeaweedFS) on loopback ports, started once per session, on demand."""
    from tests.s3server import run_seaweedfs

    with run_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


def pytest_sessionfinish(session):
    """The shared stack stops; a pytest-xdist worker hands its fault figures to the controller, which adds
    every worker's up."""
    SHARED.stop()
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        from tests.faults import LEDGER

        workeroutput["fault_ledger"] = LEDGER.figures()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    from tests.faults import LEDGER

    figures = getattr(node, "workeroutput", {}).get("fault_ledger")
    if figures:
        LEDGER.add(figures)


def pytest_terminal_summary(terminalreporter):
    """The fault-injection figures (tests/faults.py), when the fault suite ran in this session."""
    from tests.faults import LEDGER

    if LEDGER.ran:
        terminalreporter.write_sep("=", "fault injection")
        terminalreporter.write_line(LEDGER.render())
