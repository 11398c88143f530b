"""Fault-injection machinery: the ledger printed at the end of a test session, a storage audit (objects
lost or orphaned), a secret scan of logs, artifacts and documents, an S3 link that can be cut, and an
ffmpeg killer. Used by `tests/integration/flows/test_fault_injection.py`; any test may add to `LEDGER`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.procs import ffmpeg_processes
from vodflow.storage.base import Storage

KINDS = (
    "provider 5xx",
    "provider 429",
    "provider timeout",
    "source 5xx/429",
    "source timeout",
    "S3 outage mid-upload",
    "worker kill",
    "ffmpeg crash",
    "webhook receiver down",
    "webhook 5xx/429",
    "webhook endless or trickled answer",
    "playlist or list as source",
    "gzip-bomb source",
    "trickling source",
    "cost-bomb source",
    "stalled encode",
    "signal to the CLI",
    "worker lost, run silent",
    "cost-bomb spec",
    "local file as caption URL",
    "stack state naming a foreign process",
    "untrusted stack state file",
    "file server request outside files/",
    "setting that weakens a defence",
    "caption amplification",
    "stream metadata injection",
    "ffmpeg crash before a live ladder played",
    "same job run twice at once",
    "stack stopped mid-job",
    "chunk worker died mid-piece",
    "S3 outage while publishing live",
)


@dataclass
class Row:
    faults: int = 0
    completed: int = 0
    failed_correctly: int = 0
    wrong: int = 0


@dataclass
class FaultLedger:
    """Faults injected by kind, how each job ended, and what the audits found."""

    rows: dict[str, Row] = field(default_factory=lambda: {kind: Row() for kind in KINDS})
    objects_lost: int = 0
    objects_orphaned: int = 0
    secrets_found: int = 0
    places_scanned: int = 0
    seconds: float = 0.0

    @property
    def ran(self) -> bool:
        return any(row.faults for row in self.rows.values())

    def inject(self, kind: str, count: int = 1) -> None:
        self.rows[kind].faults += count

    def job(self, kind: str, outcome: str, correct: bool = True) -> None:
        """Record a job under `kind`: `completed`, or `failed` (with the correct reason or not)."""
        row = self.rows[kind]
        if not correct:
            row.wrong += 1
        elif outcome == "completed":
            row.completed += 1
        else:
            row.failed_correctly += 1

    def figures(self) -> dict[str, Any]:
        """Everything counted, as plain data (what a pytest-xdist worker hands to the controller)."""
        return {
            "rows": {kind: vars(row).copy() for kind, row in self.rows.items()},
            **{name: getattr(self, name) for name in _TOTALS},
        }

    def add(self, figures: dict[str, Any]) -> None:
        """Add another session's `figures()` (a pytest-xdist worker's) to these."""
        for kind, counts in figures["rows"].items():
            row = self.rows[kind]
            for name, value in counts.items():
                setattr(row, name, getattr(row, name) + value)
        for name in _TOTALS:
            setattr(self, name, getattr(self, name) + figures[name])

    def render(self) -> str:
        lines = [
            "| fault | injected | jobs completed | jobs failed, correct reason | jobs ended wrongly |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        total = Row()
        for kind, row in self.rows.items():
            if not row.faults:
                lines.append(f"| {kind} | not injected in this session | | | |")
                continue
            figures = (row.faults, row.completed, row.failed_correctly, row.wrong)
            lines.append(f"| {kind} | " + " | ".join(map(str, figures)) + " |")
            for name in ("faults", "completed", "failed_correctly", "wrong"):
                setattr(total, name, getattr(total, name) + getattr(row, name))
        lines.append(
            f"| **total** | {total.faults} | {total.completed} | {total.failed_correctly} | {total.wrong} |"
        )
        lines += [
            "",
            f"objects lost: {self.objects_lost}; objects orphaned or duplicated: {self.objects_orphaned}; "
            f"secrets found in logs, artifacts and documents: {self.secrets_found} "
            f"({self.places_scanned} places scanned); suite time {self.seconds:.0f} s",
        ]
        return "\n".join(lines)


_TOTALS = ("objects_lost", "objects_orphaned", "secrets_found", "places_scanned", "seconds")
LEDGER = FaultLedger()


# Storage audit.


def _playlist_uris(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _ladder_keys(storage: Storage, folder: str) -> set[str]:
    """The master playlist, variant playlists and segments an HLS ladder's playlists name."""
    master = f"{folder}/index.m3u8"
    keys = {master}
    try:
        variants = _playlist_uris(storage.read_bytes(master).decode())
    except Exception:
        return keys
    for variant in variants:
        key = f"{folder}/{variant}"
        keys.add(key)
        base = key.rpartition("/")[0]
        try:
            keys.update(f"{base}/{segment}" for segment in _playlist_uris(storage.read_bytes(key).decode()))
        except Exception:
            continue
    return keys


def audit_storage(storage: Storage) -> tuple[int, int]:
    """(lost, orphaned): objects the stored job documents list that are missing or of the wrong size, and
    objects under `files/` that no document lists (left over, or duplicated under another name)."""
    present = set(storage.list_keys("files/"))
    listed: set[str] = set()
    lost = 0
    for key in storage.list_keys("jobs/"):
        doc = json.loads(storage.read_bytes(key))
        for entry in doc.get("files", []):
            if entry["type"] == "x-tar":
                keys = _ladder_keys(storage, entry["filePath"])
                lost += len(keys - present)
            else:
                key = entry["filePath"]
                keys = {key}
                if key not in present or len(storage.read_bytes(key)) != entry["size"]:
                    lost += 1
            listed |= keys
    return lost, len(present - listed)


# Secret scan.


class LogCapture(logging.Handler):
    """Every log record formatted, from the root logger and Prefect's (which may not propagate)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:
            text = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {record.exc_info[1]!r}"
        self.lines.append(text)

    @contextmanager
    def installed(self) -> Iterator[LogCapture]:
        loggers = [logging.getLogger(), logging.getLogger("prefect")]
        for logger in loggers:
            logger.addHandler(self)
        try:
            yield self
        finally:
            for logger in loggers:
                logger.removeHandler(self)


def run_records(flow_run_id: Any) -> list[str]:
    """What a flow run left in Prefect: its logs, artifacts, and flow and task run state messages."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=5)
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        runs = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        artifacts = client.read_artifacts(flow_run_filter=runs)
        flow_run = client.read_flow_run(flow_run_id)
        task_runs = client.read_task_runs(flow_run_filter=runs)
    records = [log.message for log in logs]
    records += [json.dumps([a.key, a.description, a.data], default=str) for a in artifacts]
    records += [str(run.state.message if run.state else "") for run in [flow_run, *task_runs]]
    return records


def scrub_echoes(doc: dict) -> dict:
    """A job document without the URLs the user gave (echoed as given, by contract)."""
    return {k: v for k, v in doc.items() if k not in ("videoUrl", "webhookUrl")}


def count_secrets(secrets: Iterable[str], places: Iterable[str]) -> tuple[int, int]:
    """(occurrences, places): how many times any secret appears in any of `places`."""
    secrets = [s for s in secrets if s]
    found = scanned = 0
    for text in places:
        scanned += 1
        found += sum(text.count(secret) for secret in secrets)
    return found, scanned


# An S3 link that can be cut mid-upload.


class FlakyLink:
    """A TCP relay on loopback in front of a server; after `cut_after` requests matching `pattern` (or when
    `cut` is called) it drops every connection and refuses new ones for `down_for` seconds (an outage), then
    relays again."""

    def __init__(self, target: str, pattern: bytes, cut_after: int | None, down_for: float) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.pattern = pattern
        self.cut_after = cut_after
        self.down_for = down_for
        self.seen = 0
        self.outages = 0
        self.refused = 0
        self._down_until = 0.0
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        """Start the outage now: connections dropped, new ones refused until `restore` (or `down_for`)."""
        self.outages += 1
        self._down_until = time.monotonic() + self.down_for
        self._drop_all()

    def restore(self) -> None:
        self._down_until = 0.0

    def close(self) -> None:
        self._stopped = True
        self._listener.close()
        self._drop_all()

    def _down(self) -> bool:
        return time.monotonic() < self._down_until

    def _drop_all(self) -> None:
        with self._lock:
            for sock in self._open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._open.clear()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._down():
                self.refused += 1
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, dest: socket.socket, outbound: bool) -> None:
        try:
            while data := source.recv(65536):
                if outbound and self.pattern in data:
                    self.seen += data.count(self.pattern)
                    if self.cut_after is not None and self.seen > self.cut_after and self.outages == 0:
                        self.cut()
                        return
                if self._down():
                    self._drop_all()
                    return
                dest.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, dest):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


# ffmpeg crashes.


@contextmanager
def kill_ffmpeg_when_it_runs(marker: str, timeout: float = 60.0) -> Iterator[list[int]]:
    """SIGKILL the first encoding ffmpeg whose command line contains `marker`; yields the pids killed."""
    with signal_ffmpeg_when_it_runs(marker, signal.SIGKILL, timeout) as killed:
        yield killed


@contextmanager
def freeze_ffmpeg_when_it_runs(marker: str, timeout: float = 60.0) -> Iterator[list[int]]:
    """SIGSTOP the first encoding ffmpeg whose command line contains `marker` (a hung encoder: alive, and
    writing nothing); yields the pids frozen."""
    with signal_ffmpeg_when_it_runs(marker, signal.SIGSTOP, timeout) as frozen:
        yield frozen


@contextmanager
def signal_ffmpeg_when_it_runs(marker: str, sig: int, timeout: float = 60.0) -> Iterator[list[int]]:
    """Send `sig` to the first encoding ffmpeg whose command line contains `marker`; yields the pids."""
    killed: list[int] = []
    done = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while not done.is_set() and time.monotonic() < deadline:
            for pid in ffmpeg_processes(marker):
                time.sleep(0.2)  # let it start encoding
                try:
                    os.kill(pid, sig)
                    killed.append(pid)
                except ProcessLookupError:
                    continue
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield killed
    finally:
        done.set()
        watcher.join(timeout=5)
