"""Flow runs of encoder-API jobs in memory, standing in for Prefect at the API's boundary (`JobRuns`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vodflow.api.runs import RunInfo, RunsUnavailable


@dataclass
class FakeRuns:
    """Flow runs in memory; a cancelled run moves to `after_cancel`; `down` makes every call fail."""

    runs: dict[str, RunInfo] = field(default_factory=dict)
    started: list[dict[str, Any]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    marked_cancelled: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    after_cancel: str = "CANCELLED"
    down: bool = False

    def _check(self) -> None:
        if self.down:
            raise RunsUnavailable(
                "Prefect flow run lookup failed: ConnectError: http://10.9.8.7:4200/api refused"
            )

    def start(self, job_id: str, parameters: dict[str, Any]) -> RunInfo:
        self._check()
        self.started.append(parameters)
        self.runs[job_id] = RunInfo(id=f"run-{job_id}", state="SCHEDULED")
        return self.runs[job_id]

    def set(self, job_id: str, state: str, **kwargs: Any) -> None:
        self.runs[job_id] = RunInfo(id=f"run-{job_id}", state=state, **kwargs)

    def find(self, job_ids: list[str]) -> dict[str, RunInfo]:
        self._check()
        return {job_id: self.runs[job_id] for job_id in job_ids if job_id in self.runs}

    def read(self, run_id: str) -> RunInfo:
        self._check()
        return next(run for run in self.runs.values() if run.id == run_id)

    def cancel(self, run_id: str) -> None:
        self._check()
        self.cancelled.append(run_id)
        job_id = run_id.removeprefix("run-")
        self.set(job_id, self.after_cancel, start_time=self.runs[job_id].start_time)

    def mark_cancelled(self, run_id: str) -> None:
        self._check()
        self.marked_cancelled.append(run_id)
        self.set(run_id.removeprefix("run-"), "CANCELLED")

    def forget(self, job_id: str) -> None:
        self._check()
        self.forgotten.append(job_id)
