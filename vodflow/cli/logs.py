"""What the CLI shows of Prefect's logs: a failed job once, as the flow's one `job ... failed: ...` line.

Prefect's engine repeats a flow's exception twice more on the console (a traceback, then the final state).
For `JobFailed` (a job that failed for a stated reason: the document names the step and code) that is
noise; the records still reach the Prefect API, only the console drops them.
"""

from __future__ import annotations

import logging

from vodflow.errors import JobFailed


class QuietJobFailures(logging.Filter):
    """Drops the engine's repeats of a `JobFailed`: its traceback record and `Finished in state Failed`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], JobFailed):
            return False
        message = record.getMessage()
        return not (message.startswith("Finished in state Failed") and "JobFailed" in message)


def quiet_job_failures() -> None:
    """Add `QuietJobFailures` to the root logger's console handlers (Prefect's is configured on import)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, QuietJobFailures) for f in handler.filters):
            handler.addFilter(QuietJobFailures())


def repeats_job_failure(message: str) -> bool:
    """Whether a log message of the Prefect API (a handed-off run's: `vodflow.cli.handoff`) is one of the
    engine's repeats of a `JobFailed`, which the console drops (`QuietJobFailures`): its traceback, or
    `Finished in state Failed`."""
    return "JobFailed" in message and (
        message.startswith("Finished in state Failed") or "Traceback (most recent call last)" in message
    )
