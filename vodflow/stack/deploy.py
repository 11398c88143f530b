"""`vodflow up`'s Prefect set-up in one process: the work pool (created when missing, never overwritten) and
its queues, one per job priority (prefect.yaml's `work_queues`: the missing ones created, existing ones
left as they are), `prefect deploy --all` of the project's prefect.yaml and its automations.

Run as `python -m vodflow.stack.deploy --pool NAME` in the project directory (prefect.yaml there), against the
server in PREFECT_API_URL; exit 0 when all three are done, 1 naming the step that failed. One interpreter
instead of three (`prefect work-pool create`, `prefect deploy --all`, `vodflow automations apply`): each
Prefect process costs seconds of CPU before it does anything, which every `up` paid three times.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vodflow.orchestration.queues import QueueSpec, project_queues, queues_to_create


def ensure_pool(name: str) -> bool:
    """Create the process work pool `name` with Prefect's default job template, as `prefect work-pool create
    NAME --type process` does, unless it exists (then it is left as it is); whether it was created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=template))
        except ObjectAlreadyExists:  # an earlier `up` made it, or the user did: it stays as it is
            return False
    return True


def ensure_queues(pool: str, declared: Sequence[QueueSpec]) -> list[str]:
    """Create the `declared` queues the pool lacks, with their priority and concurrency limit, highest
    priority first; the names created. A queue that exists (made earlier, or by the user) is not touched."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectAlreadyExists

    created = []
    with get_client(sync_client=True) as client:
        existing = [queue.name for queue in client.read_work_queues(work_pool_name=pool)]
        for queue in queues_to_create(declared, existing):
            try:
                client.create_work_queue(
                    name=queue.name,
                    work_pool_name=pool,
                    priority=queue.priority,
                    concurrency_limit=queue.concurrency_limit,
                    description=queue.description,
                )
            except ObjectAlreadyExists:  # made meanwhile (another `up`): it stays as it is
                continue
            created.append(queue.name)
    return created


def deploy_all() -> int:
    """`prefect --no-prompt deploy --all` in this process (Prefect's own command, as its console script runs
    it); its exit code."""
    from prefect.cli import app

    argv = sys.argv
    sys.argv = ["prefect", "--no-prompt", "deploy", "--all"]
    try:
        app()
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else int(done.code is not None)
    finally:
        sys.argv = argv
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vodflow.stack.deploy", description=__doc__)
    parser.add_argument("--pool", required=True, help="the work pool prefect.yaml's deployments use")
    args = parser.parse_args(argv)
    from vodflow.orchestration.automations import apply_automations

    print(f"work pool {args.pool}: {'created' if ensure_pool(args.pool) else 'exists'}", flush=True)
    created = ensure_queues(args.pool, project_queues(Path("prefect.yaml")))
    print(f"work queues created: {', '.join(created) or 'none'}", flush=True)
    if code := deploy_all():
        print(f"`prefect deploy --all` failed ({code})", file=sys.stderr, flush=True)
        return 1
    for name, what in apply_automations(Path("prefect.yaml")):
        print(f"automation {name}: {what}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
