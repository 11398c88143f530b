"""Processes as the tests see them, read from /proc (Linux): the one process finder of the suite. Nothing here
sends a signal; a test signals only pids it found under a process it started or by a marker of its own job."""

from __future__ import annotations

import os
from pathlib import Path


def stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (state, ppid, pgid, sid, ... start time: 19); None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def cmdline(pid: int) -> list[str] | None:
    """The arguments of `pid` (empty for a zombie or a kernel thread); None if gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.decode(errors="replace").split("\0")[:-1]


def command_line(pid: int) -> str | None:
    """The command line of a live process, as one string cut at 200 characters; None if gone or a zombie."""
    args = cmdline(pid) if alive(pid) else None
    return " ".join(args)[:200] if args is not None else None


def alive(pid: int) -> bool:
    """Whether `pid` runs (exists and is not a zombie)."""
    fields = stat(pid)
    return fields is not None and fields[0] != "Z"


def find(
    *,
    program: str | None = None,
    containing: str | None = None,
    parent: int | None = None,
    group: int | None = None,
    encoding: bool = False,
) -> list[int]:
    """Pids of the live processes that match every filter given, in pid order: `program` ends their first
    argument, an argument contains `containing`, `parent` is their parent, `group` their process group, and
    `encoding` asks for ffmpeg's `-progress` (vodflow's encodes report with it)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        fields = stat(pid)
        if fields is None or fields[0] == "Z":
            continue
        if (parent is not None and int(fields[1]) != parent) or (
            group is not None and int(fields[2]) != group
        ):
            continue
        args = cmdline(pid)
        if args is None or ((program or containing or encoding) and not args):
            continue
        if program is not None and not args[0].endswith(program):
            continue
        if containing is not None and not any(containing in arg for arg in args):
            continue
        if encoding and "-progress" not in args:
            continue
        found.append(pid)
    return sorted(found)


def ffmpeg_processes(marker: str) -> list[int]:
    """Pids of encoding ffmpeg processes (with `-progress`) whose command line contains `marker`."""
    return find(program="ffmpeg", containing=marker, encoding=True)


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children, grandchildren...)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:  # a process may end between being listed and being read
            tasks = list(Path(f"/proc/{parent}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def started_at(pid: int) -> str | None:
    """When `pid` started (clock ticks since boot): with the pid, names one process even after pid reuse."""
    fields = stat(pid)
    return fields[19] if fields is not None else None


def ancestors(pid: int) -> list[int]:
    """The parents of `pid`, nearest first, up to init."""
    chain = []
    while pid > 1 and (fields := stat(pid)) is not None:
        pid = int(fields[1])
        chain.append(pid)
    return chain
