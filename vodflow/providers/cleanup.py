"""Cleanup of remote records: delete VideoSDK jobs, MPC task records and VideoDB downloads, one outcome each.

An outcome is `{"service", "id", "outcome", "detail"}` with `outcome` one of `deleted`, `already_gone`
(not found is success), `left_running` (not final within the wait), `kept_final` (the service refuses to
delete a finished record: VideoSDK deletes only queued jobs) or `failed`. Functions here never raise for
a service fault; they report it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from vodflow.errors import ServiceError
from vodflow.providers import mpc, videodb, videosdk
from vodflow.providers.mpc import MpcClient
from vodflow.providers.polling import poll_until
from vodflow.providers.videodb import VideoDBClient
from vodflow.providers.videosdk import VideoSDKClient

Service = Literal["videosdk", "mpc", "videodb"]
SERVICES: tuple[Service, ...] = ("videosdk", "mpc", "videodb")
OutcomeKind = Literal["deleted", "already_gone", "left_running", "kept_final", "failed"]
Sleep = Callable[[float], Any]


def outcome(service: str, item_id: Any, result: OutcomeKind, detail: str = "") -> dict[str, str]:
    return {"service": service, "id": str(item_id), "outcome": result, "detail": detail}


def _failed(service: str, item_id: Any, exc: Exception) -> dict[str, str]:
    detail = str(exc) if isinstance(exc, ServiceError) else f"{type(exc).__name__}: {exc}"
    return outcome(service, item_id, "failed", detail)


def delete_videosdk_job(
    client: VideoSDKClient,
    job_id: str,
    *,
    wait_running: float = 0.0,
    poll_interval: float = 5.0,
    sleep: Sleep = time.sleep,
) -> dict[str, str]:
    """Delete one encoder job. VideoSDK deletes only queued jobs: a processing one is waited for (at most
    `wait_running` s), and a finished job whose delete is refused is reported `kept_final`."""
    try:
        client.delete_job(job_id)
        return outcome("videosdk", job_id, "deleted")
    except ServiceError as exc:
        if exc.not_found:
            return outcome("videosdk", job_id, "already_gone")
        if exc.status_code != 400:
            return _failed("videosdk", job_id, exc)
        refusal = exc
    try:
        job = client.get_job(job_id)
        status = str(job.get("status"))
        if status == "queued":
            return _failed("videosdk", job_id, refusal)
        if not videosdk.is_final(job):
            job, done = poll_until(
                lambda: client.get_job(job_id),
                videosdk.is_final,
                interval=poll_interval,
                max_wait=wait_running,
                sleep=sleep,
            )
            if not done:
                detail = (
                    f"still {job.get('status')} after {wait_running:g}s; VideoSDK deletes only queued jobs"
                )
                return outcome("videosdk", job_id, "left_running", detail)
            client.delete_job(job_id)  # it finished while we waited: the service may accept it now
            return outcome("videosdk", job_id, "deleted", f"after it ended {job.get('status')}")
        return outcome("videosdk", job_id, "kept_final", f"job is {status}; delete refused: {refusal}")
    except ServiceError as exc:
        if exc.not_found:
            return outcome("videosdk", job_id, "already_gone")
        if exc.status_code == 400:
            return outcome("videosdk", job_id, "kept_final", f"delete refused once the job ended: {exc}")
        return _failed("videosdk", job_id, exc)


def delete_mpc_task_record(
    client: MpcClient,
    task_id: str | int,
    *,
    wait_running: float = 0.0,
    poll_interval: float = 5.0,
    sleep: Sleep = time.sleep,
) -> dict[str, str]:
    """Delete one MPC task record. Only final tasks' records can go: a waiting task is cancelled first, a
    running one waited for (at most `wait_running` s) or left and reported `left_running`."""
    try:
        int(task_id)
    except (TypeError, ValueError):
        return outcome("mpc", task_id, "failed", "an MPC task id is an integer")
    try:
        current = client.get_task(task_id)
        if current is None:
            return outcome("mpc", task_id, "already_gone")
        notes = []
        if str(current.get("status")).upper() == "WAITING":
            try:
                client.cancel_task(task_id)
                notes.append("cancelled while waiting")
            except ServiceError as exc:
                if exc.not_found:
                    return outcome("mpc", task_id, "already_gone")
                if exc.code != mpc.NOT_WAITING:
                    raise
        if notes or not mpc.is_final(current):
            current, done = poll_until(
                lambda: client.get_task(task_id),
                lambda t: t is None or mpc.is_final(t),
                interval=poll_interval,
                max_wait=wait_running,
                sleep=sleep,
            )
            if current is None:
                return outcome("mpc", task_id, "already_gone")
            if not done:
                notes.append(f"still {current.get('status')} after {wait_running:g}s; the record is kept")
                return outcome("mpc", task_id, "left_running", "; ".join(notes))
        notes.append(f"task was {current.get('status')}")
        client.delete_task_record(task_id)
        return outcome("mpc", task_id, "deleted", "; ".join(notes))
    except ServiceError as exc:
        if exc.not_found:
            return outcome("mpc", task_id, "already_gone")
        return _failed("mpc", task_id, exc)


def delete_videodb_download(client: VideoDBClient, download_id: str) -> dict[str, str]:
    """Delete one download record (the service cancels it first if it is still processing)."""
    try:
        client.delete_download(download_id)
        return outcome("videodb", download_id, "deleted")
    except ServiceError as exc:
        if exc.not_found:
            return outcome("videodb", download_id, "already_gone")
        return _failed("videodb", download_id, exc)


def delete_one(
    service: Service, client: Any, item_id: str, *, wait_running: float, poll_interval: float
) -> dict:
    """The delete of `service` for one id, as an outcome; unexpected errors are reported, not raised."""
    try:
        if service == "videosdk":
            return delete_videosdk_job(
                client, item_id, wait_running=wait_running, poll_interval=poll_interval
            )
        if service == "mpc":
            return delete_mpc_task_record(
                client, item_id, wait_running=wait_running, poll_interval=poll_interval
            )
        return delete_videodb_download(client, item_id)
    except Exception as exc:
        return _failed(service, item_id, exc)


# Sweep: which records are final and older than a cutoff.

_COMPACT = re.compile(r"^\d{14}$")


def parse_time(value: Any) -> datetime | None:
    """A UTC datetime from ISO-8601, `yyyymmddhhmmss` or epoch seconds/milliseconds; None if unreadable."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, int | float) or (
            isinstance(value, str) and value.isdigit() and not _COMPACT.match(value)
        ):
            seconds = float(value)
            return datetime.fromtimestamp(seconds / 1000 if seconds > 1e11 else seconds, UTC)
        text = str(value).strip()
        if _COMPACT.match(text):
            return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _older(record: dict[str, Any], fields: tuple[str, ...], cutoff: datetime) -> bool:
    for name in fields:
        when = parse_time(record.get(name))
        if when is not None:
            return when < cutoff
    return False  # age unknown: keep it


def expired_videosdk_jobs(client: VideoSDKClient, cutoff: datetime) -> list[str]:
    return [
        str(job["id"])
        for job in client.all_jobs()
        if job.get("id")
        and videosdk.is_final(job)
        and _older(job, ("finishedAt", "updatedAt", "createdAt"), cutoff)
    ]


def expired_mpc_tasks(client: MpcClient, cutoff: datetime) -> list[str]:
    found: dict[str, None] = {}
    created_before = cutoff.strftime("%Y%m%d%H%M%S")
    for status in sorted(mpc.FINAL_STATUSES):
        for record in client.list_tasks(status=status, end_time=created_before):
            if (
                record.get("task_id") is not None
                and mpc.is_final(record)
                and _older(record, ("end_time", "create_time"), cutoff)
            ):
                found[str(record["task_id"])] = None
    return list(found)


def expired_videodb_downloads(client: VideoDBClient, cutoff: datetime) -> list[str]:
    return [
        str(item["id"])
        for item in client.all_downloads()
        if item.get("id") and videodb.is_final(item) and _older(item, ("updated_at", "created_at"), cutoff)
    ]


def expired_records(service: Service, client: Any, cutoff: datetime) -> list[str]:
    """Ids of `service` records in a final state and older than `cutoff`; ServiceError if listing fails."""
    finder = {
        "videosdk": expired_videosdk_jobs,
        "mpc": expired_mpc_tasks,
        "videodb": expired_videodb_downloads,
    }
    return finder[service](client, cutoff)
