"""The encoder-job API's Prefect side: start a job's flow run, find it again, cancel it.

A job's flow run carries the tag `vodflow-job:<job id>`; that tag is the only link between the two, so the
public job document gets no extra field. Every Prefect failure is a `RunsUnavailable` naming the call.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelled, Cancelling

from vodflow.jobs.document import iso_time
from vodflow.net.busy import BusyHintTransport
from vodflow.net.deadline import DeadlineTransport, io_deadline
from vodflow.orchestration.concurrency import job_limit_name
from vodflow.orchestration.flow_runs import work_queue_for
from vodflow.orchestration.runs import JOB_TAG_PREFIX, job_tag

FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})


@dataclass(frozen=True)
class RunInfo:
    """What the API needs of a flow run: its id, state type (`RUNNING`, ...), message and times (ISO)."""

    id: str
    state: str
    message: str = ""
    start_time: str | None = None
    end_time: str | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


class RunsUnavailable(Exception):
    """Prefect could not be asked (unreachable, or the deployment is missing)."""


class JobRuns(Protocol):
    """Flow runs of jobs; `PrefectJobRuns` talks to a Prefect server, tests use a fake."""

    def start(self, job_id: str, parameters: dict[str, Any]) -> RunInfo: ...
    def find(self, job_ids: Sequence[str]) -> dict[str, RunInfo]: ...
    def read(self, run_id: str) -> RunInfo: ...
    def cancel(self, run_id: str) -> None: ...
    def mark_cancelled(self, run_id: str) -> None: ...
    def forget(self, job_id: str) -> None: ...


def run_info(run: FlowRun) -> RunInfo:
    state = run.state
    return RunInfo(
        id=str(run.id),
        state=state.type.value if state else "SCHEDULED",
        message=(state.message or state.name or "") if state else "",
        start_time=iso_time(run.start_time) if run.start_time else None,
        end_time=iso_time(run.end_time) if run.end_time else None,
    )


class PrefectJobRuns:
    """Flow runs of one deployment (`flow name/deployment name`) on the server in `PREFECT_API_URL`.

    Every call ends within `call_timeout` seconds of network time (a busy server answers 503 and Prefect's
    client retries, after a tenth of a second: `BusyHintTransport`; `vodflow api` keeps those retries few), so
    an API request never hangs on Prefect.
    """

    def __init__(self, deployment: str, call_timeout: float = 10.0) -> None:
        self.deployment = deployment
        self.call_timeout = call_timeout
        self._deployment_id: UUID | None = None  # looked up once; again if the deployment is recreated

    @contextmanager
    def _client(self, call: str) -> Iterator[SyncPrefectClient]:
        settings = {"transport": BusyHintTransport(DeadlineTransport()), "timeout": self.call_timeout}
        try:
            with (
                io_deadline(self.call_timeout),
                get_client(sync_client=True, httpx_settings=settings) as client,
            ):
                yield client
        except RunsUnavailable:
            raise
        except Exception as exc:  # httpx errors, Prefect's HTTP status errors, ObjectNotFound
            raise RunsUnavailable(f"Prefect {call} failed: {type(exc).__name__}: {exc}") from exc

    def start(self, job_id: str, parameters: dict[str, Any]) -> RunInfo:
        """Create the job's flow run of the deployment (one per job id: the job id is the idempotency key),
        in the work queue of its spec's `priority` (none: the deployment's queue)."""
        with self._client(f"start of a {self.deployment} run") as client:
            for attempt in range(2):
                if self._deployment_id is None:
                    self._deployment_id = client.read_deployment_by_name(self.deployment).id
                try:
                    run = client.create_flow_run_from_deployment(
                        self._deployment_id,
                        parameters=parameters,
                        tags=[job_tag(job_id)],
                        idempotency_key=job_id,
                        work_queue_name=work_queue_for(parameters),
                    )
                    return run_info(run)
                except ObjectNotFound:
                    self._deployment_id = None
                    if attempt:
                        raise
        raise AssertionError("unreachable")  # pragma: no cover

    def find(self, job_ids: Sequence[str]) -> dict[str, RunInfo]:
        """The newest flow run of each job that has one."""
        if not job_ids:
            return {}
        tags = [job_tag(job_id) for job_id in job_ids]
        with self._client("flow run lookup") as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(any_=tags)),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                limit=max(len(tags) * 2, 10),
            )
        found: dict[str, RunInfo] = {}
        for run in runs:
            for tag in run.tags:
                if tag in tags:
                    found.setdefault(tag.removeprefix(JOB_TAG_PREFIX), run_info(run))
        return found

    def read(self, run_id: str) -> RunInfo:
        with self._client(f"read of flow run {run_id}") as client:
            return run_info(client.read_flow_run(run_id))

    def cancel(self, run_id: str) -> None:
        """Ask the run to stop, as `prefect flow-run cancel` does (a run not yet started ends at once)."""
        with self._client(f"cancel of flow run {run_id}") as client:
            client.set_flow_run_state(run_id, Cancelling(message="Cancelled through the encoder-job API"))

    def mark_cancelled(self, run_id: str) -> None:
        """Force a run that can no longer start (Cancelling, never Running) to Cancelled.

        Prefect only lets a Cancelling run go to Cancelled; when its process ended before its worker saw
        the request, nobody would say so until the server's cancellation cleanup, minutes later.
        """
        with self._client(f"cancel of flow run {run_id}") as client:
            message = "Cancelled through the encoder-job API before it started"
            client.set_flow_run_state(run_id, Cancelled(message=message), force=True)

    def forget(self, job_id: str) -> None:
        """Remove the job's concurrency limit (`job_slot`), once its run has stopped."""
        with self._client(f"removal of {job_limit_name(job_id)}") as client:
            try:
                client.delete_global_concurrency_limit_by_name(job_limit_name(job_id))
            except ObjectNotFound:
                pass
