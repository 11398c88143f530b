"""The work pool's queues, one per job priority, as prefect.yaml declares them (`definitions.work_queues`).

A worker takes waiting runs from the pool's queues in their priority order (Prefect's: 1 first; the server
sorts the scheduled runs it hands a worker by queue priority, then by scheduled time), and a queue's
concurrency limit caps how many of its runs are Pending or Running at once (the others wait, Scheduled,
holding no worker slot). A job's spec `priority` names its queue (`flow_runs.work_queue_for`). Pure: what
to create is decided here, `vodflow.stack.deploy.ensure_queues` creates it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vodflow.orchestration.flow_runs import PRIORITIES


@dataclass(frozen=True)
class QueueSpec:
    """One queue of the pool: its name, Prefect priority (1: taken first), concurrency limit (None: none)."""

    name: str
    priority: int
    concurrency_limit: int | None = None
    description: str | None = None


# What a prefect.yaml without `work_queues` gets: the three priorities, `low` one run at a time.
DEFAULT_QUEUES = (
    QueueSpec("high", 1),
    QueueSpec("normal", 2),
    QueueSpec("low", 3, concurrency_limit=1),
)


def parse_queues(entries: Any) -> tuple[QueueSpec, ...]:
    """`definitions.work_queues` of prefect.yaml as QueueSpecs, sorted by priority; ValueError naming the
    entry for anything else than a list of {name, priority, concurrency_limit?, description?} with distinct
    names and priorities, covering every job priority (`high`, `normal`, `low`)."""
    if not isinstance(entries, list) or not entries:
        raise ValueError("work_queues: must be a non-empty list")
    queues = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or set(entry) - {
            "name",
            "priority",
            "concurrency_limit",
            "description",
        }:
            raise ValueError(
                f"work_queues[{i}]: keys allowed: name, priority, concurrency_limit, description"
            )
        name, priority, limit = entry.get("name"), entry.get("priority"), entry.get("concurrency_limit")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"work_queues[{i}].name: must be a non-empty string")
        if not _int(priority) or priority < 1:
            raise ValueError(f"work_queues[{i}].priority: must be an integer of at least 1")
        if limit is not None and (not _int(limit) or limit < 0):
            raise ValueError(f"work_queues[{i}].concurrency_limit: must be an integer of at least 0")
        description = entry.get("description")
        queues.append(QueueSpec(name, priority, limit, str(description) if description else None))
    for what in ("name", "priority"):
        values = [getattr(q, what) for q in queues]
        if len(set(values)) != len(values):
            raise ValueError(f"work_queues: two queues have the same {what}")
    if missing := [p for p in PRIORITIES if p not in {q.name for q in queues}]:
        raise ValueError(f"work_queues: no queue for priority {', '.join(missing)}")
    return tuple(sorted(queues, key=lambda q: q.priority))


def project_queues(prefect_yaml: Path) -> tuple[QueueSpec, ...]:
    """The queues prefect.yaml declares (`DEFAULT_QUEUES` when the file or the key is missing)."""
    if not prefect_yaml.is_file():
        return DEFAULT_QUEUES
    data = yaml.safe_load(prefect_yaml.read_text()) or {}
    entries = (data.get("definitions") or {}).get("work_queues")
    return DEFAULT_QUEUES if entries is None else parse_queues(entries)


def queues_to_create(declared: Iterable[QueueSpec], existing: Iterable[str]) -> list[QueueSpec]:
    """The declared queues the pool lacks, highest priority first (each created with its priority moves the
    pool's queues at that priority and below one step down: Prefect keeps priorities distinct); a queue that
    exists, declared or not, is left as it is."""
    have = set(existing)
    return sorted((q for q in declared if q.name not in have), key=lambda q: q.priority)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
