"""Concurrency limits on the Prefect server: ffmpeg slots per host, and one run at a time per job.

- `Slots.ffmpeg()` wraps every ffmpeg process in a slot of the global concurrency limit
  `vodflow-ffmpeg-<hostname>`, so however many workers and runs share a host, at most that many
  ffmpeg processes run there. The limit is created on first use with `VODFLOW_FFMPEG_SLOTS` slots
  (default one per four cores of the host, see `vodflow.media.capacity`); change it with
  `prefect gcl update`. `VODFLOW_FFMPEG_SLOTS=0` turns the slot off.
- `Slots.job(job_id)` holds the one slot of `vodflow-job-<job id>` for a whole run, so two runs given
  the same job id (say an upload announced twice) never overlap: the second waits. The limit is removed
  when the run lets go of it and nobody else holds it. A run without a job id is a job of its own.

Both are no-ops outside a Prefect flow or task run (plain function calls in tests and scripts), without
PREFECT_API_URL (an ephemeral server never frees a crashed holder's slot), or with
`VODFLOW_CONCURRENCY_LIMITS=off`; and they never fail a run because the API could not be reached: the run
then goes on without the slot. On a server, a killed holder's slot is freed when its lease (60 s) expires.
Without the slot, the job's lock on the host (`vodflow.steps.workdir.job_lock`) still refuses a second run of
a job that is running there (`job_running`).
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import socket
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.concurrency.sync import concurrency
from prefect.context import FlowRunContext, TaskRunContext
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.logging import get_run_logger
from prefect.settings import PREFECT_API_URL

FFMPEG_LIMIT_PREFIX = "vodflow-ffmpeg-"
JOB_LIMIT_PREFIX = "vodflow-job-"
LEASE_SECONDS = 60.0  # the server's minimum: a crashed holder frees its slot within a minute
SLOT_POLL_SECONDS = 2.0
SLOT_WAIT_LOG_SECONDS = 30.0  # a run waiting for an ffmpeg slot says so this often

logger = logging.getLogger("vodflow.orchestration")
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def _safe_name(value: str) -> str:
    """`value` made a valid limit name (no `/`, `%`, ...); names that had to change get a short hash."""
    cleaned = _SAFE.sub("-", value)[:80]
    if cleaned == value:
        return value
    return f"{cleaned}-{hashlib.sha256(value.encode()).hexdigest()[:8]}"


def ffmpeg_limit_name(host: str | None = None) -> str:
    """`vodflow-ffmpeg-<hostname>`: the limit shared by every run on one host."""
    return FFMPEG_LIMIT_PREFIX + _safe_name((host or socket.gethostname()).lower())


def job_limit_name(job_id: str) -> str:
    """`vodflow-job-<job id>`: the limit that keeps runs of one job apart."""
    return JOB_LIMIT_PREFIX + _safe_name(job_id)


@dataclass(frozen=True)
class Slots:
    """The concurrency limits a run takes part in: `ffmpeg` slots per host (`VODFLOW_FFMPEG_SLOTS`, 0: none)
    and whether limits apply at all (`VODFLOW_CONCURRENCY_LIMITS`)."""

    ffmpeg_slots: int = 1
    enabled: bool = True

    def ffmpeg(self) -> AbstractContextManager[None]:
        """Hold one slot of this host's ffmpeg limit while the block runs."""
        return ffmpeg_slot(self.ffmpeg_slots if self.enabled else 0)

    def job(self, job_id: str | None) -> AbstractContextManager[None]:
        """Hold the one slot of the job's limit while the block runs (no-op without a job id)."""
        return job_slot(job_id if self.enabled else None)


def in_prefect_run() -> bool:
    """True when limits can apply: inside a flow or task run, against a Prefect server.

    Without PREFECT_API_URL a run talks to an ephemeral server, which does not run the service that frees
    the slots of crashed holders: a killed run would hold its slot forever, so limits are skipped there.
    """
    if not PREFECT_API_URL.value():
        return False
    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def ensure_limit(name: str, limit: int) -> None:
    """Create the global concurrency limit `name` with `limit` slots unless it exists (it is left as is)."""
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
            except ObjectAlreadyExists:
                pass


@contextmanager
def ffmpeg_slot(slots: int = 1) -> Iterator[None]:
    """Hold one slot of this host's ffmpeg limit (made with `slots` slots; 0: none) while the block runs."""
    if not slots or not in_prefect_run():
        yield
        return
    name = ffmpeg_limit_name()
    with ExitStack() as stack:
        try:
            ensure_limit(name, slots)
            _wait_for_slot(stack, name)
        except Exception as exc:  # no API, no permission: run without the slot rather than fail the job
            _run_logger().warning("running ffmpeg without the %s slot: %s", name, exc)
        yield


class _BusySlotFilter(logging.Filter):
    """Drops the ERROR Prefect's slot service logs for each request the server answered 423 (every slot
    taken): `_wait_for_slot` asks again and says it waits, and a run in line for a slot has no error."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) != 2 or args[0] != "ConcurrencySlotAcquisitionWithLeaseService":
            return True
        item = args[1]
        future = item[-1] if isinstance(item, tuple) and item else None
        if not isinstance(future, Future) or not future.done() or future.cancelled():
            return True
        response = getattr(future.exception(), "response", None)
        return getattr(response, "status_code", None) != 423


_BUSY_SLOT_FILTER = _BusySlotFilter()
logging.getLogger("prefect._internal.concurrency").addFilter(_BUSY_SLOT_FILTER)


def _pause(seconds: float) -> None:
    time.sleep(seconds)


def _is_busy(exc: BaseException) -> bool:
    cause = exc.__cause__
    return isinstance(cause, httpx.HTTPStatusError) and cause.response.status_code == 423


def _wait_for_slot(stack: ExitStack, name: str) -> None:
    """Enter a slot of `name`, asking again every 0.5-1 x SLOT_POLL_SECONDS while every slot is taken.

    Prefect's own wait sleeps for the server's Retry-After, which grows with how long holders keep their
    slot (up to 30 s): a 20 s encode left the next queued job idle for most of that after the slot was free.
    A few waiting jobs per host asking every second or two cost the server little.
    """
    told_at: float | None = None
    while True:
        try:
            stack.enter_context(concurrency(name, occupy=1, lease_duration=LEASE_SECONDS, max_retries=0))
            if told_at is not None:
                _run_logger().info("got an ffmpeg slot of %s", name)
            return
        except ConcurrencySlotAcquisitionError as exc:
            if not _is_busy(exc):
                raise
        if told_at is None or time.monotonic() - told_at >= SLOT_WAIT_LOG_SECONDS:
            _run_logger().info("waiting for an ffmpeg slot (%s)", _slot_usage(name))
            told_at = time.monotonic()
        _pause(random.uniform(0.5, 1.0) * SLOT_POLL_SECONDS)


def _slot_usage(name: str) -> str:
    """`1 of 1 in use` for the limit `name`, or its name when it cannot be read."""
    try:
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(name)
        return f"{limit.active_slots} of {limit.limit} in use on {name}"
    except Exception:  # informative only
        return name


@contextmanager
def job_slot(job_id: str | None) -> Iterator[None]:
    """Hold the single slot of `vodflow-job-<job_id>` while the block runs; waits while another run has it.

    No-op for `job_id` None (a run whose job id comes from its flow run id shares it with nobody).
    """
    if not job_id or not in_prefect_run():
        yield
        return
    name = job_limit_name(job_id)
    with ExitStack() as stack:
        stack.callback(_delete_if_idle, name)  # registered first, so it runs after the slot is released
        try:
            for attempt in range(3):
                ensure_limit(name, 1)
                try:
                    # strict: a limit removed meanwhile raises instead of silently running unlocked;
                    # a failed lease renewal must not cancel an encode halfway, so it only warns
                    slot = concurrency(
                        name,
                        occupy=1,
                        lease_duration=LEASE_SECONDS,
                        strict=True,
                        raise_on_lease_renewal_failure=False,
                    )
                    stack.enter_context(slot)
                    break
                except Exception:
                    # the previous holder removed the limit while this run waited: create it again
                    if attempt == 2:
                        raise
        except Exception as exc:
            _run_logger().warning("running job %s without the %s slot: %s", job_id, name, exc)
        yield


def _delete_if_idle(name: str) -> None:
    """Remove a per-job limit nobody holds; errors are only logged (a stale limit is harmless)."""
    try:
        with get_client(sync_client=True) as client:
            if client.read_global_concurrency_limit_by_name(name).active_slots == 0:
                client.delete_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        pass
    except Exception as exc:
        logger.debug("could not remove %s: %s", name, exc)


def _run_logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        return get_run_logger()
    except Exception:
        return logger
