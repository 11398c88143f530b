"""The automations of prefect.yaml on a real Prefect server, applied as `vodflow up` applies them (each time).

A vodflow run sends one heartbeat and falls silent (its host died, or `vodflow down` cut it off); the
automations are applied again meanwhile, as the next `vodflow up` does. `vodflow-crash-silent-runs` must
still mark the run Crashed: an apply that gave the trigger a new id made the server forget the heartbeat it
had counted under the old one, and the run stayed Running for ever.

The test applies a copy of prefect.yaml whose window is a few seconds instead of 90 (what is tested is that
the trigger still fires after an apply, not how long it waits); the shipped 90 s window and 30 s heartbeat are
asserted on the file itself.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml

from tests.automations import short_window_copy
from tests.faults import LEDGER
from tests.prefect_server import BIN, PrefectServer

REPO = Path(__file__).resolve().parents[3]
WINDOW = 10  # seconds without a heartbeat before the copy's trigger fires (Prefect's shortest)


def test_the_shipped_automation_waits_90_s_for_a_30_s_heartbeat():
    """Three missed beats: the window and the heartbeat of prefect.yaml, as docs and the README promise."""
    shipped = yaml.safe_load((REPO / "prefect.yaml").read_text())
    (crash,) = [a for a in shipped["automations"] if a["name"] == "vodflow-crash-silent-runs"]
    assert crash["trigger"]["within"] == 90
    assert crash["actions"][0]["message"] == "No heartbeat for 90 s; its worker or host is gone."
    frequencies = {
        deployment["name"]: deployment["work_pool"]["job_variables"]["env"].get(
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
        )
        for deployment in shipped["deployments"]
    }
    assert set(frequencies.values()) == {"30"}, frequencies


def apply(server: PrefectServer, file: Path) -> str:
    done = subprocess.run(
        [str(BIN / "vodflow"), "automations", "apply", "--file", str(file)],
        env=server.env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stderr


def silent_run(api: str, flow_id: str, name: str) -> str:
    """A Running vodflow run that sends one heartbeat and falls silent; its id."""
    body = {"flow_id": flow_id, "name": name, "tags": ["vodflow"], "state": {"type": "RUNNING"}}
    run = httpx.post(f"{api}/flow_runs/", json=body).raise_for_status().json()
    heartbeat = {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": "prefect.flow-run.heartbeat",
        "resource": {"prefect.resource.id": f"prefect.flow-run.{run['id']}", "prefect.resource.name": name},
        "related": [{"prefect.resource.id": "prefect.tag.vodflow", "prefect.resource.role": "tag"}],
    }
    httpx.post(f"{api}/events", json=[heartbeat]).raise_for_status()
    return run["id"]


def crashed(api: str, run_id: str, seconds: float) -> dict | None:
    """The run once Crashed, within `seconds`; None if it is still not."""
    deadline = time.monotonic() + seconds
    while (state := httpx.get(f"{api}/flow_runs/{run_id}").json())["state_type"] != "CRASHED":
        if time.monotonic() >= deadline:
            return None
        time.sleep(1)
    return state


def test_a_silent_run_is_marked_crashed_though_the_automations_were_applied_again(tmp_path):
    with PrefectServer(tmp_path / "home", tmp_path / "logs") as server:
        api = server.api_url
        automations = short_window_copy(tmp_path, WINDOW)
        assert "'vodflow-crash-silent-runs' created" in apply(server, automations)
        flow = httpx.post(f"{api}/flows/", json={"name": "vodflow-encode"}).raise_for_status().json()
        # The server's triggers start and load a new automation a little after the API answers (on SQLite
        # the load is a task after the commit): a heartbeat sent before then is never counted. A first
        # silent run, crashed, shows they count heartbeats (a busy machine may need a second one).
        deadline = time.monotonic() + 120
        while crashed(api, silent_run(api, flow["id"], "warm-up"), WINDOW + 20) is None:
            assert time.monotonic() < deadline, f"no silent run was crashed: {server.log_tail('server')}"

        run_id = silent_run(api, flow["id"], "cut-off")
        deadline = time.monotonic() + 60
        beats = {"filter": {"event": {"name": ["prefect.flow-run.heartbeat"]}}}
        while len(httpx.post(f"{api}/events/filter", json=beats).raise_for_status().json()["events"]) < 2:
            assert time.monotonic() < deadline, "the heartbeat was never recorded"
            time.sleep(0.5)
        LEDGER.inject("worker lost, run silent")

        again = apply(server, automations)  # what the next `vodflow up` does

        state = crashed(api, run_id, 120)  # WINDOW s without a heartbeat, plus the trigger's evaluation
        assert state is not None, f"still not crashed: {server.log_tail('server')}"
        assert "heartbeat" in state["state"]["message"]
        LEDGER.job("worker lost, run silent", "failed")
        assert "'vodflow-crash-silent-runs' unchanged" in again  # nothing to update: nothing reloaded
