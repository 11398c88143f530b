"""A throwaway PostgreSQL cluster for tests and benchmarks: Debian's server binaries, a temp directory, a free
loopback port, trust authentication for the local `postgres` role; stopped and removed at the end.

As root the cluster runs as the `postgres` system user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.prefect_server import free_port


@dataclass(frozen=True)
class Postgres:
    port: int
    database: str

    @property
    def prefect_url(self) -> str:
        """What `PREFECT_API_DATABASE_CONNECTION_URL` needs to use this cluster."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{self.database}"


def server_binaries() -> Path | None:
    """The directory of `initdb` and `pg_ctl` (Debian keeps them out of PATH), or None without a server."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


def _as_owner(args: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *args] if owner else args


@contextmanager
def run_postgres(workdir: Path, database: str = "prefect") -> Iterator[Postgres]:
    """Start a cluster under `workdir` on a free port with `database` created; stopped when the block ends."""
    binaries = server_binaries()
    if binaries is None:
        raise RuntimeError("no PostgreSQL server: install Debian's postgresql package (make setup does)")
    owner = "postgres" if os.geteuid() == 0 else None
    if owner:  # the postgres user may not be able to reach `workdir` (pytest's temp root is 0700)
        workdir = Path(tempfile.mkdtemp(prefix="vodflow-pg-"))
    data = workdir / "pgdata"
    data.mkdir(parents=True)
    if owner:
        user = pwd.getpwnam(owner)
        for path in (workdir, data):
            os.chown(path, user.pw_uid, user.pw_gid)
    port = free_port()
    run = lambda *args: subprocess.run(_as_owner(list(args), owner), check=True, capture_output=True)  # noqa: E731
    run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -k {workdir} -c max_connections=200"
    run(
        str(binaries / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(workdir / "postgres.log"),
        "-o",
        options,
        "-w",
        "start",
    )
    try:
        for _ in range(100):
            ready = subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", str(port)], capture_output=True)
            if ready.returncode == 0:
                break
            time.sleep(0.1)
        subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "-c",
                f"CREATE DATABASE {database}",
            ],
            check=True,
            capture_output=True,
        )
        yield Postgres(port, database)
    finally:
        subprocess.run(
            _as_owner([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], owner),
            capture_output=True,
        )
        if owner:
            shutil.rmtree(workdir, ignore_errors=True)
