"""Flow runs of vodflow's deployments through Prefect's REST API, as pure builders: the parameters of an
`encode` run (the encoder-job API's and the CLI's), and the paths and bodies that create a run, follow its
state and logs, and cancel it. No I/O and no Prefect import: `vodflow encode` hands a job to a running stack
with them without paying Prefect's start-up (`vodflow.cli.handoff`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

ENCODE_FLOW = "vodflow-encode"
ENCODE_DEPLOYMENT = "encode"
CLI_TAG = "vodflow-cli"  # on the runs `vodflow encode` hands to a stack, beside the deployment's tags
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})
NOT_STARTED_STATES = frozenset({"SCHEDULED", "PENDING"})
# The spec's `priority` values (`vodflow.jobs.spec.Priority`, a test keeps them equal), each the name of a
# queue of the pool; not imported from there: this module stays free of pydantic for `vodflow encode`.
PRIORITIES = ("high", "normal", "low")
LOG_LEVELS = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}


def run_parameters(
    spec: Mapping[str, Any],
    job_id: str,
    *,
    storage_block: str | None = None,
    encoder: str = "local",
    x264_preset: str | None = None,
) -> dict[str, Any]:
    """The parameters of an `encode_video` run: the spec (its wire form), the job id, and the options that
    differ from the flow's defaults (a deployment checks them against its parameter schema)."""
    parameters: dict[str, Any] = {"spec": dict(spec), "job_id": job_id}
    if storage_block:
        parameters["storage_block"] = storage_block
    if encoder != "local":
        parameters["encoder"] = encoder
    if x264_preset:
        parameters["x264_preset"] = x264_preset
    return parameters


def work_queue_for(parameters: Mapping[str, Any]) -> str | None:
    """The work queue an `encode` run waits in: its spec's `priority`, the name of one of the pool's queues
    (prefect.yaml's `work_queues`, made by `vodflow up`); None without one: the deployment's own queue."""
    spec = parameters.get("spec")
    priority = spec.get("priority") if isinstance(spec, Mapping) else None
    return priority if priority in PRIORITIES else None


def deployment_path(flow: str = ENCODE_FLOW, deployment: str = ENCODE_DEPLOYMENT) -> str:
    """GET: the deployment `flow/deployment` (its `id`)."""
    return f"/deployments/name/{quote(flow, safe='')}/{quote(deployment, safe='')}"


def create_run_request(
    deployment_id: str, parameters: Mapping[str, Any], idempotency_key: str, tags: list[str] | None = None
) -> tuple[str, dict[str, Any]]:
    """POST: a flow run of the deployment, as the UI's "Run" makes one (the deployment's own tags are
    added by the server), in the work queue of its spec's priority (`work_queue_for`; none: the
    deployment's). The key makes a repeated request return the run the first one made."""
    body = {
        "parameters": dict(parameters),
        "idempotency_key": idempotency_key,
        "tags": list(tags if tags is not None else [CLI_TAG]),
    }
    if queue := work_queue_for(parameters):
        body["work_queue_name"] = queue
    return f"/deployments/{deployment_id}/create_flow_run", body


def run_path(run_id: str) -> str:
    """GET: the flow run (`state_type`, `state`, `start_time`, `infrastructure_pid`...)."""
    return f"/flow_runs/{run_id}"


def set_state_request(
    run_id: str, state_type: str, message: str, force: bool = False
) -> tuple[str, dict[str, Any]]:
    """POST: propose a state (`CANCELLING` asks a run to stop, as `prefect flow-run cancel` does)."""
    body = {"state": {"type": state_type, "message": message}, "force": force}
    return f"/flow_runs/{run_id}/set_state", body


def logs_request(run_id: str, after: str | None = None, limit: int = 200) -> tuple[str, dict[str, Any]]:
    """POST: the run's log lines, oldest first, those after the timestamp `after` (exclusive) only."""
    logs: dict[str, Any] = {"flow_run_id": {"any_": [run_id]}}
    if after:
        logs["timestamp"] = {"after_": after}
    return "/logs/filter", {"logs": logs, "sort": "TIMESTAMP_ASC", "limit": limit}


def run_events_url(api_url: str) -> str:
    """The events stream's websocket beside `api_url` (`http://host:port/api` -> `ws://host:port/api/events/out`)."""
    base = api_url.rstrip("/")
    scheme, _, rest = base.partition("://")
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/events/out"


def run_events_subscription(run_id: str, now: datetime) -> list[dict[str, Any]]:
    """The messages that subscribe a websocket of `run_events_url` to the flow run's own events from `now` on
    (Prefect's protocol: an `auth` message, answered `auth_success`, then the filter; no backfill)."""
    window = {
        "since": (now - timedelta(minutes=1)).isoformat(),
        "until": (now + timedelta(days=365)).isoformat(),
    }
    events = {
        "occurred": window,
        "event": {"prefix": ["prefect.flow-run."]},
        "resource": {"id": [f"prefect.flow-run.{run_id}"]},
    }
    return [{"type": "auth", "token": None}, {"type": "filter", "filter": events, "backfill": False}]


def run_state(run: Mapping[str, Any]) -> tuple[str, str]:
    """(state type, message) of a flow run as the API returns it; SCHEDULED for a run without a state."""
    state = run.get("state") or {}
    kind = str(state.get("type") or run.get("state_type") or "SCHEDULED")
    return kind, str(state.get("message") or state.get("name") or "")


def ui_run_url(api_url: str, run_id: str) -> str:
    """The run's page in the Prefect UI served beside `api_url` (`http://host:port/api`)."""
    return f"{api_url.rstrip('/').removesuffix('/api')}/runs/flow-run/{run_id}"


def log_line(log: Mapping[str, Any], run_name: str | None = None) -> str:
    """A log record of the API as Prefect's console prints it: `12:00:01.234 | INFO    | name - msg`, the
    name `Flow run 'RUN_NAME'` or `Task run` for the engine's records of the run (`run_name` given), else
    the logger's."""
    when = str(log.get("timestamp") or "")
    try:
        clock = datetime.fromisoformat(when.replace("Z", "+00:00")).astimezone().strftime("%H:%M:%S.%f")[:-3]
    except ValueError:
        clock = when
    level = LOG_LEVELS.get(int(log.get("level") or 0), str(log.get("level")))
    name = str(log.get("name", ""))
    if run_name and name in ("prefect.flow_runs", "prefect.task_runs"):
        name = "Task run" if log.get("task_run_id") else f"Flow run '{run_name}'"
    return f"{clock} | {level:<7} | {name} - {log.get('message', '')}"
