"""The worker image (`Containerfile`, built by `make image` as `localhost/vodflow:latest`): who it runs as,
what it holds, and the demo job run inside it.

This kind of VM starts no OCI runtime (crun cannot set its rlimits), so the image's programs run in a build
step of an image derived from it, with chroot isolation: the same filesystem, user, environment and PATH a
container of the image gets. Nothing here reaches the network: the demo's Prefect server is its own temporary
one on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.needs import REPO, missing

IMAGE = "localhost/vodflow:latest"


@pytest.fixture(scope="module")
def podman() -> str:
    found = shutil.which("podman")
    if found is None or subprocess.run([found, "image", "exists", IMAGE]).returncode != 0:
        missing(f"no podman or no {IMAGE}: run `make image` (make test does)")
    return found


def inspect(podman: str) -> dict:
    out = subprocess.run(
        [podman, "image", "inspect", IMAGE], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)[0]["Config"]


def run_in_image(podman: str, tmp: Path, script: str, timeout: float = 600) -> str:
    """Run `script` (sh) as the image's user in a build step of an image derived from it; its output."""
    (tmp / "Containerfile").write_text(f"FROM {IMAGE}\nRUN {script}\n")
    done = subprocess.run(
        [podman, "build", "--isolation", "chroot", "--network", "host", "--no-cache", "--rm", "-f",
         str(tmp / "Containerfile"), str(tmp)],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout


def locked_version(name: str) -> str:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    return next(p["version"] for p in lock["package"] if p["name"] == name)


def test_the_image_runs_as_an_unprivileged_user_with_vodflow_on_its_path(podman):
    config = inspect(podman)
    assert config["User"] == "vodflow" and config["Entrypoint"] == ["tini", "--"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PATH"].startswith("/opt/vodflow/.venv/bin:")
    assert env["VODFLOW_PROJECT_DIR"] == "/opt/vodflow" and env["VODFLOW_DATA_DIR"] == "/data"
    assert not any("CA" in key and "CERT" in key for key in env), "the build's proxy CA is not kept"


def test_the_demo_job_completes_inside_the_image_with_the_locked_packages(podman, tmp_path):
    script = (
        "id -u && command -v ffmpeg && command -v vodflow && command -v prefect"
        ' && python -c \'import importlib.metadata as m; print("prefect", m.version("prefect"))\''
        " && ! python -c 'import pytest' 2>/dev/null && echo 'no test extras'"
        " && vodflow demo > /work/demo.json"
        ' && python -c \'import json; d = json.load(open("/work/demo.json"));'
        ' print("demo", d["status"], sorted(f["type"] for f in d["files"]))\''
    )

    out = run_in_image(podman, tmp_path, script)

    lines = out.splitlines()
    uid = next(line for line in lines if line.strip().isdigit())
    assert int(uid) != 0, "not root"
    assert "/usr/bin/ffmpeg" in lines, "Debian's ffmpeg"
    assert "/opt/vodflow/.venv/bin/vodflow" in lines and "/opt/vodflow/.venv/bin/prefect" in lines
    assert f"prefect {locked_version('prefect')}" in lines, "uv.lock's Prefect"
    assert "no test extras" in lines
    (demo,) = [line for line in lines if line.startswith("demo ")]
    assert demo == "demo completed ['image', 'image', 'image', 'image', 'video', 'x-tar']", demo
