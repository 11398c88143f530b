"""The retry policy of Prefect tasks: transient faults only (`vodflow.net.retry.is_transient`), with jittered
exponential delays from the settings, applied where the flow wires its tasks."""

from __future__ import annotations

from typing import Any

from vodflow.net.retry import is_transient


def retry_condition(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retry a failed task run only when its exception is transient."""
    try:
        state.result()
    except Exception as exc:  # the failed state re-raises the task's exception
        return is_transient(exc)
    return False


def task_retry_options(retries: int = 3, base_delay: float = 2.0) -> dict[str, Any]:
    """Keyword arguments for `@task` or `Task.with_options` that apply the policy (`VODFLOW_TASK_RETRIES`,
    `VODFLOW_TASK_RETRY_DELAY`)."""
    return {
        "retries": retries,
        "retry_delay_seconds": [base_delay * 2**i for i in range(max(retries, 1))],
        "retry_jitter_factor": 0.5,
        "retry_condition_fn": retry_condition,
    }
