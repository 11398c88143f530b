"""The stack's worker: Prefect's process worker, as `prefect worker start --type process` starts it, whose
flow runs start through the stack's warm runner (`vodflow.stack.forkserver`) instead of a new interpreter
each: the command it starts for a run is the runner's client (`vodflow.stack.runclient`), which hands the run
to the runner, or starts `python -m prefect.engine` itself when no runner answers. Only this worker does so:
the pool and prefect.yaml are unchanged (workers started with `prefect worker start` run as before), and a
deployment or pool that sets its own `command` keeps it.

`python -m vodflow.stack.worker --pool POOL --name NAME --runner-socket PATH`
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from prefect.workers.process import ProcessJobConfiguration, ProcessWorker

CLIENT = Path(__file__).with_name("runclient.py")


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
        asyncio.run(worker.start(printer=print))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(f"Worker {worker.name!r} stopped!", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
