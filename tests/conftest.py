"""Shared fixtures: one Prefect test harness per session, fast retries, generated media."""

from __future__ import annotations

import os

# Retries stay real but short in tests; set before any task module is imported.
os.environ.setdefault("VODFLOW_TASK_RETRY_DELAY", "0.2")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect API for flow-level tests (started once per session, on demand)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
