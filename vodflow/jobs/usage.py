"""What jobs cost, summed per UTC day for `vodflow usage --since DATE`, and the table that `vodflow job list
--table` prints. Pure: the documents are read by the caller."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date
from typing import Any

from vodflow.jobs.document import JobDocument, iso_parse

SUMMED = ("cpuSeconds", "wallSeconds", "bytesIn", "bytesOut", "storedBytes")


def parse_day(value: str, option: str) -> date:
    """`value` as a UTC day: `YYYY-MM-DD`, or an ISO-8601 time (its UTC day); ValueError naming `option`."""
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        when = iso_parse(text)
    except ValueError:
        raise ValueError(f"{option}: {value[:40]!r} is not a date (YYYY-MM-DD or an ISO-8601 time)") from None
    return when.astimezone(UTC).date()


def job_day(doc: JobDocument) -> date:
    """The UTC day a job's cost falls on: when it finished (else when it was created)."""
    return iso_parse(doc.finished_at or doc.created_at).astimezone(UTC).date()


def _empty() -> dict[str, Any]:
    return {"jobs": 0, "cpuUnknownJobs": 0, **dict.fromkeys(SUMMED, 0)}


def _add(total: dict[str, Any], doc: JobDocument) -> None:
    assert doc.usage is not None
    usage = doc.usage.wire()
    total["jobs"] += 1
    if "cpuSeconds" not in usage:
        total["cpuUnknownJobs"] += 1
    for key in SUMMED:
        total[key] += usage.get(key, 0)


def daily_usage(docs: Iterable[JobDocument], since: date, until: date | None = None) -> dict[str, Any]:
    """The cost of the jobs that ended from `since` to `until` (both included, UTC days), summed per day
    (days without jobs left out) and in all. Jobs without `usage` (not ended, or made before vodflow
    measured) are not counted. `cpuUnknownJobs`: jobs whose CPU is not known (remote encoders)."""
    if until is not None and until < since:
        raise ValueError(f"--until: {until.isoformat()} is before --since {since.isoformat()}")
    days: dict[date, dict[str, Any]] = {}
    total = _empty()
    for doc in docs:
        day = job_day(doc)
        if doc.usage is None or day < since or (until is not None and day > until):
            continue
        _add(days.setdefault(day, _empty()), doc)
        _add(total, doc)
    rounded = [{"day": day.isoformat(), **_rounded(days[day])} for day in sorted(days)]
    return {
        "since": since.isoformat(),
        "until": until.isoformat() if until else None,
        "days": rounded,
        "total": _rounded(total),
    }


def _rounded(sums: dict[str, Any]) -> dict[str, Any]:
    return {**sums, "cpuSeconds": round(sums["cpuSeconds"], 3), "wallSeconds": round(sums["wallSeconds"], 3)}


def usage_table(docs: Sequence[JobDocument]) -> str:
    """One line a job: id, status, when it finished, CPU seconds (`-` unknown or not ended), wall seconds and
    bytes out; aligned columns under a header."""
    rows = [("ID", "STATUS", "FINISHED", "CPU_S", "WALL_S", "BYTES_OUT")]
    for doc in docs:
        usage = doc.usage
        cpu = f"{usage.cpu_seconds:.1f}" if usage and usage.cpu_seconds is not None else "-"
        wall = f"{usage.wall_seconds:.1f}" if usage else "-"
        out = str(usage.bytes_out) if usage else "-"
        rows.append((doc.id, doc.status, doc.finished_at or "-", cpu, wall, out))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )
