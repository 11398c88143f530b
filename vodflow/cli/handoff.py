"""`vodflow encode` on the running local stack: the job handed to the stack's worker over HTTP.

Run in this process, a job pays a fresh interpreter importing Prefect and starting its flow engine: seconds
for a job whose ffmpeg takes a fraction of one. With `vodflow up` running, the CLI instead validates the spec
as always (exit 2 before anything), makes its local paths absolute, creates a run of the `vodflow-encode/
encode` deployment through Prefect's REST API (the parameters the UI and the encoder-job API send: the spec
and the job id), follows the run's state (every `POLL_SECONDS`) and copies its log lines to stderr, then
prints the document the run stored, read from storage by the job's id, with the usual exit codes. Prefect
is never imported here: httpx only. The run is an ordinary deployment run: the UI shows it with its task
runs, logs and artifacts.

A terminal shows the run's log lines (progress every 30 s) instead of the live bar of a run in this
process. The job runs here instead, with one line on stderr saying why, for `--encoder videosdk|mpc` (their
credentials are this shell's), a storage block (`--storage-block`, VODFLOW_STORAGE_BLOCK: read through
Prefect), and when a VODFLOW_* setting of this shell differs from the worker's (`setting_differences`): the
worker runs the job with its own environment, and a job must not change with where it runs. `--here` runs it
here without a word.

SIGTERM or Ctrl-C asks the run to stop (Cancelling, as `prefect flow-run cancel` does: its worker ends it and
its hook fails the job) and waits up to VODFLOW_STOP_GRACE_SECONDS for it to end; a second signal ends the
wait at once. A server that does not answer for VODFLOW_PREFECT_LOST_SECONDS ends the command with
`prefect_unavailable`, as for a run in this process; so does a run its worker has not started within
`PICKUP_SECONDS`. Either way the document is the job's stored one, failed with that reason if the run left
it unfinished.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from vodflow.cli.encode import checked_job_id, failed_document, prepare_spec, stored_document
from vodflow.cli.logs import repeats_job_failure
from vodflow.cli.output import EXIT_FAILED
from vodflow.cli.run_events import RunEvents
from vodflow.jobs.sources import parse_video_url
from vodflow.net.retry import call_with_retry
from vodflow.orchestration.flow_runs import (
    FINAL_STATES,
    NOT_STARTED_STATES,
    create_run_request,
    deployment_path,
    log_line,
    logs_request,
    run_parameters,
    run_path,
    run_state,
    set_state_request,
    ui_run_url,
)
from vodflow.stack.processes import is_running
from vodflow.stack.state import StackState

POLL_SECONDS = 0.2  # between two reads of the run's state: the end of a short job is seen this late at worst
EVENTS_FALLBACK_SECONDS = 2.0  # between two reads while its events stream is live (a read on each event)
LOG_SECONDS = 1.0  # between two reads of its log lines
PICKUP_SECONDS = 60.0  # the worker starts a run within this, or the stack counts as unable to run it
HOOK_SECONDS = 5.0  # what a cancelled or crashed run's hook gets to fail its document before this does
REQUEST_SECONDS = 10.0
CREATE_ATTEMPTS = 6
BUSY_SECONDS = 0.05  # first back-off of a create: SQLite's busy answer (503) passes in milliseconds
# Settings a flow run never reads (the stack's, the API's, the receiver's, this command's): they may differ.
CLIENT_ONLY = frozenset(
    {
        "VODFLOW_STATE_DIR",
        "VODFLOW_STACK_ID",
        "VODFLOW_DATABASE_URL",
        "VODFLOW_PREFECT_LOST_SECONDS",
        "VODFLOW_STOP_GRACE_SECONDS",
    }
)
CLIENT_ONLY_PREFIXES = ("VODFLOW_API_", "VODFLOW_RECEIVER_")
PATH_SETTINGS = frozenset({"VODFLOW_DATA_DIR", "VODFLOW_TMP_DIR", "VODFLOW_PROJECT_DIR"})


def _vodflow_settings(environ: Mapping[str, str], cwd: str | None) -> dict[str, str]:
    """The VODFLOW_* variables a flow run reads, by upper-case name (pydantic-settings ignores the case),
    empty ones left out (as the settings do); paths made absolute against `cwd` (None: left as they are)."""
    chosen = {}
    for name, value in environ.items():
        key = name.upper()
        if (
            not key.startswith("VODFLOW_")
            or not value
            or key in CLIENT_ONLY
            or key.startswith(CLIENT_ONLY_PREFIXES)
        ):
            continue
        if key in PATH_SETTINGS and cwd is not None:
            value = os.path.normpath(os.path.join(cwd, os.path.expanduser(value)))
        chosen[key] = value
    return chosen


def setting_differences(ours: Mapping[str, str], workers: Mapping[str, str], cwd: str) -> list[str]:
    """The names of the VODFLOW_* settings a flow run reads whose values in `ours` (this process's
    environment, its relative paths against `cwd`) and `workers` (the worker's) differ, sorted."""
    mine = _vodflow_settings(ours, cwd)
    theirs = _vodflow_settings(workers, None)
    return sorted(name for name in mine.keys() | theirs.keys() if mine.get(name) != theirs.get(name))


def worker_environment(stack: StackState) -> dict[str, str] | None:
    """The environment the stack's worker started with (what its flow runs inherit); None when the worker
    does not run or its environment cannot be read."""
    part = stack.part("worker")
    if part is None or not is_running(part, stack.stack_id):
        return None
    try:
        raw = Path(f"/proc/{part.pid}/environ").read_bytes()
    except OSError:
        return None
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {key.decode(errors="replace"): value.decode(errors="replace") for key, value in pairs}


def not_handed_off(
    stack: StackState, storage_block: str | None, encoder: str, environ: Mapping[str, str]
) -> str | None:
    """Why this job cannot go to the stack's worker, None when it can."""
    if encoder != "local":
        return f"--encoder {encoder} uses this shell's credentials"
    if storage_block or environ.get("VODFLOW_STORAGE_BLOCK"):
        return "a storage block is read through Prefect"
    workers = worker_environment(stack)
    if workers is None:
        return "the stack's worker does not run (see `vodflow status`)"
    if differ := setting_differences(environ, workers, os.getcwd()):
        return f"{', '.join(differ)} differ from the stack worker's"
    return None


def absolute_sources(spec: Any) -> Any:
    """The spec with its local source and caption paths absolute (the worker runs in another directory)."""

    def absolute(url: str) -> str:
        ref = parse_video_url(url)
        if ref.kind != "local" or not ref.path or os.path.isabs(ref.path):
            return url
        return os.path.abspath(ref.path)

    update: dict[str, Any] = {}
    if spec.video_url:
        update["video_url"] = absolute(spec.video_url)
    if spec.captions:
        update["captions"] = [c.model_copy(update={"url": absolute(c.url)}) for c in spec.captions]
    return spec.model_copy(update=update)


class Signals:
    """SIGTERM and SIGINT counted instead of raised while the block runs: the loop decides what to do."""

    def __init__(self) -> None:
        self.names: list[str] = []

    @property
    def first(self) -> str | None:
        return self.names[0] if self.names else None

    @property
    def twice(self) -> bool:
        return len(self.names) > 1

    @contextmanager
    def caught(self) -> Iterator[Signals]:
        def note(signum: int, frame: Any) -> None:
            self.names.append(signal.Signals(signum).name)

        previous = {number: signal.signal(number, note) for number in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)


@dataclass
class Ended:
    """How following a run ended: its last state seen (type and message), and whether it is final."""

    state: str = ""
    message: str = ""
    start_time: str | None = None
    lost: bool = False  # the server stopped answering
    signalled: bool = False  # a signal came (the first one while running, a second one while stopping)
    late: bool = False  # the worker did not start it in time (running), or it did not stop in time

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


class StackRun:
    """One flow run of the stack's `encode` deployment, created, followed and cancelled over HTTP."""

    def __init__(
        self,
        client: httpx.Client,
        lost_after: float,
        out: Any = None,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.client = client
        self.sleep = sleep
        self.lost_after = lost_after
        self.out = out or sys.stderr
        self.run_id: str | None = None
        self.run_name: str | None = None
        self._seen_logs: set[str] = set()
        self._logs_after: str | None = None
        self._logs_at = 0.0
        self.events: RunEvents | None = None

    def _call(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        """The JSON answer; HTTPError when there is none (a non-JSON answer counts as an HTTP error)."""
        response = self.client.request(method, path, json=body, timeout=timeout or REQUEST_SECONDS)
        response.raise_for_status()
        try:
            return response.json()
        except ValueError as exc:
            raise httpx.DecodingError(f"not JSON: {exc}", request=response.request) from None

    def create(self, parameters: dict[str, Any]) -> str:
        """Create the run; its id. A busy server (5xx: SQLite answers 503 when two writes meet, for
        milliseconds) or a failed connection is asked again by the one retry policy, soon at first
        (`BUSY_SECONDS`, jittered), `CREATE_ATTEMPTS` times in all: the idempotency key makes a repeated
        create return the run the first one made. HTTPError when it refuses (4xx, never repeated) or stays
        away."""
        key = f"vodflow-cli-{uuid.uuid4()}"

        def once() -> str:
            deployment = self._call("GET", deployment_path())
            path, body = create_run_request(str(deployment["id"]), parameters, key)
            return str(self._call("POST", path, body)["id"])

        self.run_id = call_with_retry(
            once, attempts=CREATE_ATTEMPTS, base=BUSY_SECONDS, cap=2.0, sleep=self.sleep
        )
        return self.run_id

    def watch(self, api_url: str) -> None:
        """Follow the run's events from now on (`RunEvents`): its state is then read when one comes and every
        `EVENTS_FALLBACK_SECONDS`, not every `POLL_SECONDS`."""
        assert self.run_id is not None
        self.events = RunEvents(api_url, self.run_id)

    def close(self) -> None:
        if self.events is not None:
            self.events.close()

    def _state_due(self, read_at: float) -> bool:
        """Whether to read the run's state now: at once without a live events stream, else on an event or
        when the last read is `EVENTS_FALLBACK_SECONDS` old."""
        events = self.events
        if events is None or not events.live:
            return True
        if events.changed.is_set() or time.monotonic() - read_at >= EVENTS_FALLBACK_SECONDS:
            events.changed.clear()  # one that comes during the read asks for another
            return True
        return False

    def _pause(self) -> None:
        """`POLL_SECONDS`, or less when an event comes (signals are looked at after each pause)."""
        events = self.events
        if events is not None and events.live:
            events.changed.wait(POLL_SECONDS)
        else:
            time.sleep(POLL_SECONDS)

    def follow(self, signals: Signals, stopping: bool, until: float | None = None) -> Ended:
        """Read the run's state until it is final, the server is lost, or (running) the first signal comes or
        the worker has not started it by `until`, or (stopping) a second signal comes or `until` passes."""
        assert self.run_id is not None
        answered = time.monotonic()
        read_at = float("-inf")
        last = Ended()
        while True:
            if self._state_due(read_at):
                read_at = time.monotonic()
                try:
                    timeout = min(REQUEST_SECONDS, self.lost_after)
                    run = self._call("GET", run_path(self.run_id), timeout=timeout)
                    answered = time.monotonic()
                    state, message = run_state(run)
                    self.run_name = run.get("name") or self.run_name
                    last = Ended(state, message, run.get("start_time"))
                except httpx.HTTPError:
                    if time.monotonic() - answered >= self.lost_after:
                        last.lost = True
                        return last
                if last.final:
                    self.relay_logs(force=True)
                    return last
            self.relay_logs()
            now = time.monotonic()
            if stopping:
                last.signalled = signals.twice
                last.late = until is not None and now >= until
            else:
                last.signalled = signals.first is not None
                last.late = until is not None and now >= until and last.state in NOT_STARTED_STATES
            if last.signalled or last.late:
                return last
            self._pause()

    def cancel(self, message: str) -> None:
        """Ask the run to stop (best effort: a server that is gone cannot be asked)."""
        assert self.run_id is not None
        path, body = set_state_request(self.run_id, "CANCELLING", message)
        try:
            self._call("POST", path, body)
        except httpx.HTTPError:
            pass

    def force_cancelled(self, message: str) -> None:
        """Mark a run that never started Cancelled: with no process, nobody else would (best effort)."""
        assert self.run_id is not None
        path, body = set_state_request(self.run_id, "CANCELLED", message, force=True)
        try:
            self._call("POST", path, body)
        except httpx.HTTPError:
            pass

    def relay_logs(self, force: bool = False) -> None:
        """Print the run's new log lines (INFO and above, as Prefect's console does) on stderr."""
        now = time.monotonic()
        if self.run_id is None or (not force and now - self._logs_at < LOG_SECONDS):
            return
        self._logs_at = now
        path, body = logs_request(self.run_id, self._logs_after)
        try:
            logs = self._call("POST", path, body)
        except httpx.HTTPError:
            return
        for log in logs:
            key = str(log.get("id") or (log.get("timestamp"), log.get("message")))
            if key in self._seen_logs:
                continue
            self._seen_logs.add(key)
            self._logs_after = log.get("timestamp") or self._logs_after
            if int(log.get("level") or 0) >= 20 and not repeats_job_failure(str(log.get("message", ""))):
                print(log_line(log, self.run_name), file=self.out, flush=True)


def hand_off(
    spec_data: Any,
    stack: StackState,
    storage_block: str | None,
    encoder: str,
    *,
    job_id: str | None = None,
    x264_preset: str | None = None,
) -> tuple[dict[str, Any], int] | None:
    """Run the job as a flow run of the stack's `encode` deployment; (final document, exit code), or None
    when it must run in this process (the reason said on stderr). UserError before anything for an invalid
    spec or job id, or a local source that does not exist or is not allowed (this shell's settings: the
    worker's are the same, or the job is not handed off)."""
    from vodflow.settings import load_settings

    spec = prepare_spec(spec_data)
    job_id = checked_job_id(job_id)
    if reason := not_handed_off(stack, storage_block, encoder, os.environ):
        print(
            f"vodflow encode: not handed to the local stack ({reason}): this job runs here", file=sys.stderr
        )
        return None
    settings = load_settings()
    api = stack.env["PREFECT_API_URL"].rstrip("/")
    parameters = run_parameters(absolute_sources(spec).wire(), job_id, x264_preset=x264_preset)
    signals = Signals()
    with signals.caught(), httpx.Client(base_url=api, timeout=REQUEST_SECONDS, trust_env=False) as client:
        run = StackRun(client, settings.prefect_lost_seconds)
        try:
            run_id = run.create(parameters)
        except httpx.HTTPError as exc:
            detail = f"{type(exc).__name__}: {_first_line(str(exc))}"
            if isinstance(exc, httpx.HTTPStatusError):  # what the server said: a parameter it refused...
                detail += f": {_first_line(exc.response.text)}"
            fallback = failed_document(
                job_id, "prefect_unavailable", f"Prefect could not run the job: {detail}"
            )
            return _document(settings, job_id, None, fallback)
        print(
            f"vodflow encode: handed to the local stack: flow run {ui_run_url(api, run_id)}", file=sys.stderr
        )
        run.watch(api)
        try:
            ended = run.follow(signals, stopping=False, until=time.monotonic() + PICKUP_SECONDS)
            if ended.signalled or ended.late:
                why = f"stopped by {signals.first}" if ended.signalled else "its worker did not start it"
                run.cancel(f"vodflow encode: {why}")
                grace = time.monotonic() + settings.stop_grace_seconds
                stopped = run.follow(signals, stopping=True, until=grace)
                if not stopped.final and not stopped.start_time:
                    run.force_cancelled(f"vodflow encode: {why} (it never started)")
                stopped.signalled, stopped.late = ended.signalled, ended.late
                ended = stopped
        finally:
            run.close()
        fallback = _fallback(ended, job_id, api, settings.prefect_lost_seconds, signals)
        return _document(settings, job_id, ended, fallback)  # a signal now would cut the document short


def _fallback(ended: Ended, job_id: str, api: str, lost_after: float, signals: Signals) -> dict[str, Any]:
    """The failed document for a run that did not store a final one, naming why."""
    if ended.signalled:
        return failed_document(job_id, "cancelled", f"run cancelled: stopped by {signals.first}")
    if ended.lost:
        silent = f"has not answered for {lost_after:g} s"
        message = f"Prefect could not run the job: the Prefect server at {api} {silent}"
        return failed_document(job_id, "prefect_unavailable", message)
    if ended.late:
        message = (
            f"Prefect could not run the job: the stack's worker did not start it within {PICKUP_SECONDS:g} s"
        )
        return failed_document(job_id, "prefect_unavailable", message)
    reason = "cancelled" if ended.state == "CANCELLED" else "crashed"
    return failed_document(job_id, reason, f"run {reason}: {ended.message or ended.state}")


def _document(settings: Any, job_id: str, ended: Ended | None, fallback: dict[str, Any]) -> tuple[dict, int]:
    """The job's stored document (`stored_document`: failed with `fallback`'s reason if the run left it
    unfinished), once the hook of a cancelled or crashed run had `HOOK_SECONDS` to fail it. A run that
    refused to start because another run of the job holds it (`job_running`) gets a document of its own:
    the stored one is the other run's."""
    from vodflow.storage.jobstore import load_job

    if ended is not None and ended.state == "FAILED" and (refused := refusal(ended.message, job_id)):
        return failed_document(job_id, "job_running", refused), EXIT_FAILED
    try:
        storage = settings.storage_config().open()
    except Exception:
        return fallback, EXIT_FAILED
    if ended is not None and ended.state in ("CANCELLED", "CRASHED"):
        deadline = time.monotonic() + HOOK_SECONDS
        while time.monotonic() < deadline:
            try:
                if load_job(storage, job_id).status in ("completed", "failed"):
                    break
            except Exception:  # nothing stored: the run never began the job
                break
            time.sleep(POLL_SECONDS)
    return stored_document(storage, job_id, fallback)


def refusal(message: str, job_id: str) -> str | None:
    """The `job_running` error's message in a failed run's state message (Prefect's `Flow run encountered
    an exception: StepError: run: MESSAGE`), None when the run failed otherwise."""
    for marker in (f"job {job_id} is running on this host already", f"job {job_id}: its lock keeps changing"):
        if (at := message.find(marker)) >= 0:
            return message[at:]
    return None


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:300]
