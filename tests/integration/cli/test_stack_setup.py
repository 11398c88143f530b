"""`vodflow up`'s Prefect set-up in one process (vodflow/stack/deploy.py) against a real Prefect server: the
work pool made as `prefect work-pool create --type process` makes it, an existing pool left as it is, its
priority queues made ahead of the default queue (existing ones left as they are), and a prefect.yaml that
does not deploy reported with exit 1 before any automation is applied. A whole `up` that deploys and applies
the automations, with runs through its worker: test_stack.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.prefect_server import BIN
from vodflow.orchestration.queues import project_queues
from vodflow.stack.deploy import ensure_pool, ensure_queues

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.usefixtures("prefect_harness")


def api_env() -> dict[str, str]:
    """The environment of a process talking to the session's Prefect server."""
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return env | {"PREFECT_API_URL": str(PREFECT_API_URL.value()), "PREFECT_SERVER_ANALYTICS_ENABLED": "0"}


def test_the_pool_is_made_as_prefects_cli_makes_it_and_an_existing_one_is_left():
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolUpdate

    made = subprocess.run(
        [str(BIN / "prefect"), "work-pool", "create", "by-cli", "--type", "process"],
        env=api_env(), capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr

    assert ensure_pool("by-vodflow") is True
    with get_client(sync_client=True) as client:
        cli, ours = client.read_work_pool("by-cli"), client.read_work_pool("by-vodflow")
        assert (ours.type, ours.base_job_template) == (cli.type, cli.base_job_template)
        client.update_work_pool("by-vodflow", WorkPoolUpdate(concurrency_limit=3))
        assert ensure_pool("by-vodflow") is False
        assert client.read_work_pool("by-vodflow").concurrency_limit == 3, "an existing pool is never changed"


def test_the_priority_queues_are_made_ahead_of_the_default_one_once_and_a_changed_one_is_left():
    from prefect.client.orchestration import get_client

    declared = project_queues(REPO / "prefect.yaml")
    ensure_pool("queued")
    assert ensure_queues("queued", declared) == ["high", "normal", "low"]
    with get_client(sync_client=True) as client:
        queues = {q.name: q for q in client.read_work_queues(work_pool_name="queued")}
        assert [n for n, _ in sorted(queues.items(), key=lambda q: q[1].priority)] == [
            "high", "normal", "low", "default"
        ]  # fmt: skip
        assert (queues["high"].concurrency_limit, queues["low"].concurrency_limit) == (None, 1)
        client.update_work_queue(queues["low"].id, concurrency_limit=4)
        client.delete_work_queue_by_id(queues["normal"].id)
        assert ensure_queues("queued", declared) == ["normal"], "only the missing one is made again"
        queues = {q.name: q for q in client.read_work_queues(work_pool_name="queued")}
    assert queues["low"].concurrency_limit == 4, "a queue the user changed is left as it is"
    assert queues["normal"].priority == 2


def test_a_prefect_yaml_that_does_not_deploy_exits_1_and_applies_no_automation(tmp_path):
    shutil.copy(REPO / "prefect.yaml", tmp_path / "prefect.yaml")
    broken = (tmp_path / "prefect.yaml").read_text().replace("entrypoint: ", "entrypoint: no/such/", 1)
    (tmp_path / "prefect.yaml").write_text(broken)

    done = subprocess.run(
        [sys.executable, "-m", "vodflow.stack.deploy", "--pool", "set-up-test"],
        env=api_env(), cwd=tmp_path, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip

    assert done.returncode == 1, done.stdout + done.stderr
    assert "`prefect deploy --all` failed" in done.stderr
    assert "work pool set-up-test: created" in done.stdout and "automation " not in done.stdout
    assert "work queues created: high, normal, low" in done.stdout
