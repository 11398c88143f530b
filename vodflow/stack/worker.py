"""The stack's worker: Prefect's process worker, as `prefect worker start --type process` starts it, whose
flow runs start through the stack's warm runner (`vodflow.stack.forkserver`) instead of a new interpreter
each: the command it starts for a run is the runner's client (`vodflow.stack.runclient`), which hands the run
to the runner, or starts `python -m prefect.engine` itself when no runner answers. Only this worker does so:
the pool and prefect.yaml are unchanged (workers started with `prefect worker start` run as before), and a
deployment or pool that sets its own `command` keeps it.

It asks for runs when the server's events say there may be one to start (streamed over Prefect's events
websocket: a run scheduled by the API, the UI, the CLI or an automation, a run ended and its slot freed, a
pool or queue resumed; `WAKE_EVENTS`), and otherwise every `IDLE_POLL_SECONDS`: asking every 0.5 s cost the
stack's server 5% of a core while nothing ran, CPU an encode on a small machine lost. Runs scheduled ahead
are still started on time (the worker takes those due within its prefetch window, 10 s, longer than the idle
poll).

`python -m vodflow.stack.worker --pool POOL --name NAME --runner-socket PATH`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shlex
import sys
from pathlib import Path
from typing import Any

from prefect.workers.process import ProcessJobConfiguration, ProcessWorker

CLIENT = Path(__file__).with_name("runclient.py")
IDLE_POLL_SECONDS = 5.0  # without a wake (or with the events stream down)
# A run to start (scheduled, late, waiting again), a slot freed (a run ended), a pool or queue resumed
RUN_STATES = ("Scheduled", "Late", "AwaitingRetry", "AwaitingConcurrencySlot")
END_STATES = ("Completed", "Failed", "Cancelled", "Crashed")
STATUSES = ("ready", "not-ready")
WAKE_EVENTS = [
    *(f"prefect.flow-run.{state}" for state in (*RUN_STATES, *END_STATES)),
    *(f"prefect.{part}.{status}" for part in ("work-pool", "work-queue") for status in STATUSES),
]


def client_command(socket: Path) -> str:
    """The command line of the runner's client: no site-packages, no PYTHON* variables, the stdlib only."""
    return shlex.join([sys.executable, "-I", "-S", str(CLIENT), str(socket)])


def runner_configuration(command: str) -> type[ProcessJobConfiguration]:
    """The process job configuration with `command` for runs whose deployment and pool set none."""

    class RunnerJobConfiguration(ProcessJobConfiguration):
        def prepare_for_flow_run(self, *args: Any, **kwargs: Any) -> None:
            super().prepare_for_flow_run(*args, **kwargs)
            if not self._command_configured:
                self.command = command
                self._command_configured = True

    return RunnerJobConfiguration


def poll_when_woken(worker: ProcessWorker, wake: asyncio.Event) -> None:
    """Make the worker's poll wait for `wake` (set on each of `WAKE_EVENTS`) or `IDLE_POLL_SECONDS`, whichever
    comes first; its polls stay PREFECT_WORKER_QUERY_SECONDS apart. (On the instance: a subclass would
    replace Prefect's registered `process` worker type.)"""
    poll = worker.get_and_submit_flow_runs

    async def poll_when_woken() -> list[Any]:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), IDLE_POLL_SECONDS)
        wake.clear()
        return await poll()

    worker.get_and_submit_flow_runs = poll_when_woken  # type: ignore[method-assign]


async def wake_on_scheduled_runs(wake: asyncio.Event) -> None:
    """Set `wake` on each of the server's `WAKE_EVENTS`, and once on each (re)connection (what happened while
    nothing listened); a broken stream is opened again 1-3 s later."""
    from prefect.events.clients import get_events_subscriber
    from prefect.events.filters import EventFilter, EventNameFilter

    while True:
        try:
            events = EventFilter(event=EventNameFilter(name=WAKE_EVENTS))
            async with get_events_subscriber(filter=events) as subscriber:
                wake.set()
                async for _ in subscriber:
                    wake.set()
        except Exception as exc:  # the polls go on every IDLE_POLL_SECONDS meanwhile
            print(f"worker: the events stream broke ({type(exc).__name__}); polling meanwhile", flush=True)
        await asyncio.sleep(random.uniform(1.0, 3.0))


async def serve(worker: ProcessWorker) -> None:
    """Run the worker with its wake-up stream; the stream ends with it."""
    wake = asyncio.Event()
    poll_when_woken(worker, wake)
    listener = asyncio.create_task(wake_on_scheduled_runs(wake))
    try:
        await worker.start(printer=print)
    finally:
        listener.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vodflow.stack.worker", description=__doc__)
    parser.add_argument("--pool", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--runner-socket", type=Path, required=True)
    args = parser.parse_args(argv)

    from prefect.settings import PREFECT_WORKER_HEARTBEAT_SECONDS, PREFECT_WORKER_PREFETCH_SECONDS
    from prefect.utilities.processutils import setup_signal_handlers_worker

    setup_signal_handlers_worker(os.getpid(), "the process worker", print)  # as `prefect worker start`
    worker = ProcessWorker(
        name=args.name,
        work_pool_name=args.pool,
        prefetch_seconds=PREFECT_WORKER_PREFETCH_SECONDS.value(),
        heartbeat_interval_seconds=int(PREFECT_WORKER_HEARTBEAT_SECONDS.value()),
    )
    worker.job_configuration = runner_configuration(client_command(args.runner_socket))
    try:
        asyncio.run(serve(worker))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(f"Worker {worker.name!r} stopped!", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
