"""What the chunked encoder's tests share: a Dask cluster of two worker processes, each with a temp directory
of its own, and a scratch prefix in a fresh bucket of the session's S3 server."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from distributed.diagnostics.plugin import WorkerPlugin
from pydantic import SecretStr

from vodflow.storage.config import StorageConfig
from vodflow.storage.scratch import Scratch


class OwnTempDir(WorkerPlugin):
    """Worker plugin: each worker's temp directory (`tempfile`, TMPDIR) is a folder of its own, and it
    counts the tasks it starts executing."""

    name = "own-temp-dir"

    def __init__(self) -> None:
        self.executed = 0

    def setup(self, worker: Any) -> None:
        folder = Path(worker.local_directory) / "own-tmp"
        folder.mkdir(exist_ok=True)
        os.environ["TMPDIR"] = str(folder)
        tempfile.tempdir = str(folder)

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if finish == "executing":
            self.executed += 1


def worker_state(dask_worker: Any) -> tuple[str, list[str], int]:
    """(its temp directory, what is in it, tasks executed) of one worker, read there."""
    folder = tempfile.gettempdir()
    return folder, sorted(os.listdir(folder)), dask_worker.plugins[OwnTempDir.name].executed


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    from distributed import Client, LocalCluster

    root = tmp_path_factory.mktemp("dask")
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            local_directory=str(root),
        ) as cluster,
        Client(cluster) as client,
    ):
        client.register_plugin(OwnTempDir())
        folders = [folder for folder, _, _ in client.run(worker_state).values()]
        assert len(set(folders)) == 2 and all(Path(f).is_relative_to(root) for f in folders)
        yield cluster, client


@pytest.fixture
def scratch(s3_server):
    bucket = f"chunks-{uuid.uuid4().hex[:8]}"
    config = StorageConfig(
        kind="s3",
        endpoint=s3_server.endpoint,
        access_key=s3_server.access_key,
        secret_key=SecretStr(s3_server.secret_key),
        bucket=bucket,
    )
    return Scratch(config, f"job-{uuid.uuid4().hex[:8]}")
