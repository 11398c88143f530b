"""Remote services as Prefect tasks: one record deleted, the expired records of a service found."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import task
from prefect.cache_policies import NONE

from vodflow.providers.cleanup import Service, delete_one, expired_records


@task(name="delete-remote-record", task_run_name="delete-{service}-{item_id}", cache_policy=NONE)
def delete_remote_record(
    service: Service, client: Any, item_id: str, wait_running: float = 0.0, poll_interval: float = 5.0
) -> dict[str, str]:
    return delete_one(service, client, item_id, wait_running=wait_running, poll_interval=poll_interval)


@task(name="find-expired-records", cache_policy=NONE)
def find_expired_records(service: Service, client: Any, cutoff: datetime) -> list[str]:
    return expired_records(service, client, cutoff)
