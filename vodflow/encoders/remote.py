"""What remote encoders share: their result, a bounded wait for the remote job to end, and cancelling it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from vodflow.errors import ServiceError, StepError
from vodflow.jobs.document import FileEntry, JobErrorInfo, JobStatus
from vodflow.providers import MissingCredentials
from vodflow.providers.polling import poll_until

T = TypeVar("T")


@dataclass
class RemoteEncodeResult:
    """What a remote encode produced: the remote id, vodflow's status, the output files and any error."""

    remote_id: str
    status: JobStatus
    files: list[FileEntry] = field(default_factory=list)
    error: JobErrorInfo | None = None


def remote_logger() -> logging.Logger | logging.LoggerAdapter:
    """The run's logger inside a Prefect run, else a plain one."""
    try:
        from prefect import get_run_logger

        return get_run_logger()
    except Exception:
        return logging.getLogger("vodflow.encoders")


def service_step_error(exc: ServiceError) -> StepError:
    """A service fault as the encode step's error (transient ones are retried)."""
    return StepError("encode", "remote_service_error", str(exc), transient=exc.transient)


def configured(service: str, make: Callable[[], T]) -> T:
    """`make()`; missing credentials or a bad setting become the encode step's `remote_config` error."""
    try:
        return make()
    except (MissingCredentials, ValueError) as exc:
        raise StepError("encode", "remote_config", f"{service}: {exc}") from exc


def remote_error(code: str | None, message: str | None, default_code: str) -> JobErrorInfo:
    return JobErrorInfo(
        step="encode", code=str(code or default_code), message=str(message or "the remote encoder failed")
    )


def _cancel_quietly(service: str, remote_id: str, cancel: Callable[[], Any]) -> str:
    try:
        cancel()
    except ServiceError as exc:
        remote_logger().warning("could not cancel %s job %s: %s", service, remote_id, exc)
        return f"cancel refused: {exc}"
    except Exception as exc:  # interrupted runs still try to cancel; never mask the original error
        remote_logger().warning("could not cancel %s job %s: %s", service, remote_id, type(exc).__name__)
        return f"cancel failed ({type(exc).__name__})"
    remote_logger().info("cancelled %s job %s", service, remote_id)
    return "cancelled"


def await_remote(
    service: str,
    remote_id: str,
    *,
    fetch: Callable[[], dict[str, Any]],
    is_final: Callable[[dict[str, Any]], bool],
    cancel: Callable[[], Any],
    to_result: Callable[[dict[str, Any]], RemoteEncodeResult],
    poll_interval: float,
    max_wait: float,
    sleep: Callable[[float], Any] = time.sleep,
) -> RemoteEncodeResult:
    """Poll until final. On timeout: cancel, return a failed result. Interrupted: cancel, re-raise."""
    try:
        last, done = poll_until(fetch, is_final, interval=poll_interval, max_wait=max_wait, sleep=sleep)
    except BaseException as exc:
        _cancel_quietly(service, remote_id, cancel)
        if isinstance(exc, ServiceError):
            raise service_step_error(exc) from exc
        raise
    if done:
        return to_result(last)
    note = _cancel_quietly(service, remote_id, cancel)
    message = f"{service} job {remote_id} not finished after {max_wait:g}s ({last.get('status')}); {note}"
    return RemoteEncodeResult(
        remote_id, "failed", [], JobErrorInfo(step="encode", code="remote_timeout", message=message)
    )


def raise_unless_completed(result: RemoteEncodeResult) -> RemoteEncodeResult:
    """`result` when completed; StepError(encode) with the remote job's own reason otherwise."""
    if result.status != "completed":
        error = result.error
        raise StepError(
            "encode", error.code if error else "remote_failed", error.message if error else "failed"
        )
    return result
