"""Encoders' units of work as Prefect tasks: each named step a task run with the retry policy, parallel ones
submitted side by side (threads on this host, or a Dask cluster at `VODFLOW_DASK_ADDRESS`).

Each step measures the CPU of the ffmpeg and ffprobe processes it runs on a meter of its own, wherever it
runs, and hands the figures back with its result; they are added to the caller's meter (`media.usage`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from prefect import task
from prefect.cache_policies import NONE
from prefect.futures import as_completed, wait
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from vodflow.encoders.base import Call, Done
from vodflow.media.usage import Metered, current_meter, metering
from vodflow.orchestration.retries import task_retry_options

T = TypeVar("T")


class PrefectSteps:
    """`vodflow.encoders.Steps` as Prefect tasks, with the run's task retry policy."""

    def __init__(
        self,
        retries: int = 3,
        retry_delay: float = 2.0,
        parallel_slots: int = 1,
        dask_address: str | None = None,
    ) -> None:
        self.options = task_retry_options(retries, retry_delay)
        self.parallel_slots = parallel_slots
        self.dask_address = dask_address

    def _task(self, name: str, label: str = "") -> Any:
        return task(_invoke, name=name, task_run_name=label or name, cache_policy=NONE, **self.options)

    def run(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        return _counted(self._task(name)(fn, args))

    def parallel(self, calls: Sequence[Call], on_done: Done | None = None) -> list[Any]:
        """Every call as a task on the parallel runner; all are waited for before a failure is raised, and
        `on_done` is told of each that succeeded as it does."""
        with self.runner() as runner:
            futures = [
                runner.submit(self._task(c.name, c.label), {"fn": c.fn, "args": c.args}) for c in calls
            ]
            if on_done is not None:
                where = {id(future): index for index, future in enumerate(futures)}
                for future in as_completed(futures):
                    try:
                        result = future.result()
                    except Exception:  # noqa: S112 - raised below, once every call has finished
                        continue
                    on_done(where[id(future)], result.result)
            wait(futures)
            return [_counted(future.result()) for future in futures]

    def workers(self) -> int:
        """How many steps run at once: this host's ffmpeg slots, or the Dask cluster's worker threads (1 when
        the scheduler cannot be asked)."""
        if not self.dask_address:
            return max(1, self.parallel_slots)
        try:
            from distributed import Client

            with Client(self.dask_address, timeout=10) as client:
                return max(1, sum(client.nthreads().values()))
        except (OSError, TimeoutError, ValueError):
            return 1

    def runner(self) -> TaskRunner:
        """Threads on this host (as many as its ffmpeg slots, plus one for the audio), or the Dask cluster."""
        if not self.dask_address:
            return ThreadPoolTaskRunner(max_workers=max(1, self.parallel_slots) + 1)
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=self.dask_address)


def _invoke(fn: Callable[..., Any], args: tuple[Any, ...]) -> Metered:
    """What each step's task runs: the step's function on its arguments, with the CPU seconds of the
    processes it ran (a meter of its own: on a Dask worker, the caller's is out of reach). A failed attempt's
    processes go to the caller's meter where it is in reach (a thread of this host), lost on Dask."""
    caller = current_meter()
    with metering() as meter:
        try:
            result = fn(*args)
        except BaseException:
            if caller is not None:
                caller.add(meter.cpu_seconds, meter.processes)
            raise
    return Metered(result, meter.cpu_seconds, meter.processes)


def _counted(metered: Metered) -> Any:
    """A step's result, its CPU seconds added to the caller's meter."""
    if (meter := current_meter()) is not None:
        meter.add(metered.cpu_seconds, metered.processes)
    return metered.result
