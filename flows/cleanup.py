"""Cleanup of remote records: by id (`cleanup_remote`) or by age (`sweep_remote`, for a scheduled deployment).

Every item gets an outcome (see `vodflow.providers.cleanup`); a table artifact lists them all, and the run
ends Failed (raising `CleanupFailed`) when any item failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from vodflow.blocks.huawei_mpc import HuaweiMpcCredentials
from vodflow.blocks.videodb import VideoDBCredentials
from vodflow.blocks.videosdk import VideoSDKCredentials
from vodflow.errors import one_line
from vodflow.providers import MissingCredentials
from vodflow.providers.cleanup import SERVICES, Service, outcome
from vodflow.tasks.remote import delete_remote_record, find_expired_records

MAX_PARALLEL_DELETES = 8


class CleanupFailed(Exception):
    """At least one item could not be cleaned up; `outcomes` holds every item's outcome."""

    def __init__(self, outcomes: list[dict[str, str]]) -> None:
        failed = [o for o in outcomes if o["outcome"] == "failed"]
        names = ", ".join(f"{o['service']} {o['id']}" for o in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        super().__init__(f"{len(failed)} of {len(outcomes)} item(s) failed: {names}{more}")
        self.outcomes = outcomes

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.outcomes,))


ACCOUNTS = {"videosdk": VideoSDKCredentials, "mpc": HuaweiMpcCredentials, "videodb": VideoDBCredentials}


def service_client(service: Service, block_name: str | None) -> Any:
    """A client from the named credentials block, else from the environment; MissingCredentials if neither."""
    try:
        return ACCOUNTS[service].resolve(block_name).get_client()
    except MissingCredentials:
        raise
    except ValueError as exc:  # an unknown block name, or invalid block data
        raise MissingCredentials(f"{service}: {exc}") from exc


def _delete_all(
    service: Service, ids: Sequence[Any], client: Any, wait_running: float, poll_interval: float
) -> list[dict[str, str]]:
    futures = delete_remote_record.map(
        unmapped(service),
        unmapped(client),
        [str(i) for i in ids],
        wait_running=unmapped(wait_running),
        poll_interval=unmapped(poll_interval),
    )
    return [future.result() for future in futures]


def _report(outcomes: list[dict[str, str]], key: str, title: str) -> list[dict[str, str]]:
    """Log and publish the outcomes as a table artifact; raise CleanupFailed if any failed."""
    logger = get_run_logger()
    for item in outcomes:
        log = logger.error if item["outcome"] == "failed" else logger.info
        log("%s %r: %s %s", item["service"], item["id"], item["outcome"], one_line(item["detail"]))
    counts: dict[str, int] = {}
    for item in outcomes:
        counts[item["outcome"]] = counts.get(item["outcome"], 0) + 1
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "nothing to do"
    create_table_artifact(
        key=key,
        table=outcomes or [{"service": "-", "id": "-", "outcome": "-", "detail": "nothing to do"}],
        description=f"{title}: {summary}",
    )
    if counts.get("failed"):
        raise CleanupFailed(outcomes)
    return outcomes


@flow(name="vodflow-cleanup-remote", task_runner=ThreadPoolTaskRunner(max_workers=MAX_PARALLEL_DELETES))
def cleanup_remote(
    videosdk_ids: list[str] | None = None,
    mpc_task_ids: list[str | int] | None = None,
    videodb_ids: list[str] | None = None,
    videosdk_block: str | None = None,
    mpc_block: str | None = None,
    videodb_block: str | None = None,
    wait_running_seconds: float = 60.0,
    poll_interval: float = 5.0,
) -> list[dict[str, str]]:
    """Delete VideoSDK encoder jobs, MPC task records and VideoDB downloads given by id.

    Not found counts as done. An MPC task still running is waited for at most `wait_running_seconds`.
    Blocks given by name win over the environment. Raises CleanupFailed (after the artifact) if any failed.
    """
    outcomes: list[dict[str, str]] = []
    work: list[tuple[Service, Sequence[Any], str | None]] = [
        ("videosdk", videosdk_ids or [], videosdk_block),
        ("mpc", mpc_task_ids or [], mpc_block),
        ("videodb", videodb_ids or [], videodb_block),
    ]
    for service, ids, block in work:
        if not ids:
            continue
        try:
            client = service_client(service, block)
        except MissingCredentials as exc:
            outcomes += [outcome(service, i, "failed", f"not configured: {exc}") for i in ids]
            continue
        with client:
            outcomes += _delete_all(service, ids, client, wait_running_seconds, poll_interval)
    return _report(outcomes, "vodflow-cleanup-remote", "Remote cleanup")


@flow(name="vodflow-sweep-remote", task_runner=ThreadPoolTaskRunner(max_workers=MAX_PARALLEL_DELETES))
def sweep_remote(
    older_than_days: float = 7,
    services: list[Service] | None = None,
    videosdk_block: str | None = None,
    mpc_block: str | None = None,
    videodb_block: str | None = None,
) -> list[dict[str, str]]:
    """Delete every record in a final state older than `older_than_days`, on each service.

    Without `services`, every configured service is swept (the others are skipped with a log line); a
    service named in `services` but not configured is a failure.
    """
    logger = get_run_logger()
    cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
    blocks = {"videosdk": videosdk_block, "mpc": mpc_block, "videodb": videodb_block}
    outcomes: list[dict[str, str]] = []
    for service in services or SERVICES:
        try:
            client = service_client(service, blocks[service])
        except MissingCredentials as exc:
            if services is None and not blocks[service]:
                logger.info("%s not configured, not swept", service)
            else:
                outcomes.append(outcome(service, "*", "failed", f"not configured: {exc}"))
            continue
        with client:
            try:
                ids = find_expired_records(service, client, cutoff)
            except Exception as exc:
                outcomes.append(outcome(service, "*", "failed", f"listing failed: {exc}"))
                continue
            logger.info("%s: %d record(s) final and older than %s", service, len(ids), cutoff.isoformat())
            outcomes += _delete_all(service, ids, client, 0.0, 0.0)
    return _report(outcomes, "vodflow-sweep-remote", f"Sweep of records older than {older_than_days:g} days")
