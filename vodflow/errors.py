"""Errors that end a job, each naming the step that failed and why."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """`text` with control characters (newlines included) escaped: a message quoting user input can never
    forge a second log line."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _restore(cls: type[Exception], args: tuple[Any, ...], state: dict[str, Any]) -> Exception:
    """Rebuild a pickled error without calling its `__init__` (whose signature differs from `args`)."""
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class _Picklable(Exception):
    """Errors with keyword-rich constructors that still survive pickling (Prefect persists failed states)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), self.args, dict(self.__dict__)))


class StepError(_Picklable):
    """A pipeline step failed; `step`, `code` and `message` go into the job document's `error`.

    `transient` marks faults worth retrying (network, 429, 5xx, storage unavailable).
    Messages must never contain secrets or host paths.
    """

    def __init__(self, step: str, code: str, message: str, *, transient: bool = False) -> None:
        message = one_line(message)
        super().__init__(f"{step}: {message}")
        self.step = step
        self.code = code
        self.message = message
        self.transient = transient

    def as_document_error(self) -> dict[str, str]:
        return {"step": self.step, "code": self.code, "message": self.message}


class SpecError(StepError):
    """The job spec is invalid; `field` names the offending field (wire name, e.g. `presets[0].format`), and
    `problems` lists every (field, reason) found at once, that one first."""

    def __init__(self, field: str, reason: str, others: Sequence[tuple[str, str]] = ()) -> None:
        problems = [(field, reason), *others]
        super().__init__("validate", "invalid_spec", "; ".join(f"{f}: {r}" for f, r in problems))
        self.field = field
        self.reason = reason
        self.problems = problems


class ConfigError(StepError):
    """A setting is missing or malformed; the message names the variable (or block field), never a secret."""

    def __init__(self, message: str) -> None:
        super().__init__("run", "invalid_config", message)


class StorageError(StepError):
    """Storage failed; codes: `invalid_key`, `invalid_storage_config`, `not_found`, `storage_denied`,
    `storage_unavailable` (transient), `storage_error`. The step defaults to `publish`."""

    def __init__(
        self,
        step: str = "publish",
        code: str = "storage_error",
        message: str = "storage failed",
        *,
        transient: bool = False,
    ) -> None:
        super().__init__(step, code, message, transient=transient)


class ObjectNotFound(StorageError):
    """The object (or its bucket) does not exist."""

    def __init__(self, key: str, *, bucket: str | None = None, step: str = "publish") -> None:
        where = f"{bucket}/{key}" if bucket else key
        super().__init__(step, "not_found", f"object {where} not found")
        self.key = key
        self.bucket = bucket


class ServiceError(_Picklable):
    """An HTTP call to a service failed: names the service, the call and the object id, never a secret."""

    def __init__(
        self,
        service: str,
        call: str,
        message: str,
        *,
        object_id: str | None = None,
        status_code: int | None = None,
        transient: bool = False,
        retry_after: float | None = None,
        code: str | None = None,
        not_found: bool | None = None,
    ) -> None:
        target = f" {one_line(object_id)}" if object_id else ""
        status = f" (HTTP {status_code})" if status_code else ""
        super().__init__(f"{service} {call}{target} failed{status}: {one_line(message)}")
        self.service = service
        self.call = call
        self.object_id = object_id
        self.status_code = status_code
        self.transient = transient
        self.retry_after = retry_after
        self.code = code
        self._not_found = not_found

    @property
    def not_found(self) -> bool:
        """The object does not exist: HTTP 404, or the service's own "does not exist" answer."""
        return self._not_found if self._not_found is not None else self.status_code == 404


class JobFailed(Exception):
    """Raised by the pipeline flow after a job ended `failed`; carries the final job document."""

    def __init__(self, document: dict) -> None:
        error = document.get("error") or {}
        super().__init__(f"job {document.get('id')} failed at {error.get('step')}: {error.get('message')}")
        self.document = document
