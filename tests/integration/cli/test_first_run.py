"""A new user's first `vodflow demo` with no stack: nothing alarming on stderr (Prefect's throwaway server
used to log an ERROR for its usage telemetry), and the last line's command works as printed, PATH or not."""

from __future__ import annotations

import os
import subprocess

from tests.integration.cli.test_cli import cli_env, run_cli  # noqa: F401 (cli_env is a fixture)
from tests.media import make_clip
from tests.ports import free_port


def test_demo_without_a_stack_logs_no_error_and_its_last_line_runs(tmp_path, cli_env):  # noqa: F811
    # Prefect's telemetry, if attempted, goes through a proxy on loopback that refuses it: never off the host
    refused = f"http://127.0.0.1:{free_port()}"
    env = {k: v for k, v in cli_env.items() if k != "PREFECT_SERVER_ANALYTICS_ENABLED"}
    env |= {"HTTPS_PROXY": refused, "https_proxy": refused, "NO_PROXY": "127.0.0.1,localhost"}
    env["PATH"] = "/usr/bin:/bin"  # vodflow is not on it: the hint must name the program by its path
    sample = make_clip(tmp_path / "sample.mp4", 426, 240, seconds=4)
    run = run_cli(["demo", "--sample", str(sample)], env)

    assert run.code == 0, run.stderr[-3000:]
    assert [line for line in run.stderr.splitlines() if "ERROR" in line] == []
    prefix = "Job document: "
    (last,) = [line for line in run.stderr.splitlines() if line.startswith(prefix)]
    assert last.endswith(f" job get {run.document['id']}"), last
    shown = subprocess.run(
        last.removeprefix(prefix), shell=True, env=env, capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0, shown.stderr
    assert f'"id": "{run.document["id"]}"' in shown.stdout
    assert os.environ.get("PREFECT_SERVER_ANALYTICS_ENABLED") == "false"  # the suite's own: left alone
