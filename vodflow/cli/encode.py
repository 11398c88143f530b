"""`vodflow encode SPEC.json`: run the pipeline flow on a job spec; the final document on stdout.

Exit codes: `vodflow.cli.output.EXIT_CODES`. The spec is read, validated and its local source checked here,
before Prefect starts: a user error is one line on stderr and exit 2, in a second instead of after Prefect's
start-up. With the local stack running (`vodflow up`), the job is handed to its worker over HTTP instead of
run in this process (`vodflow.cli.handoff`; `--here` runs it here all the same).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from vodflow.cli.guard import RunGuard
from vodflow.cli.output import EXIT_CODES, EXIT_FAILED, EXIT_OK, EXIT_USER_ERROR, UserError, print_json
from vodflow.errors import SpecError, StepError

if TYPE_CHECKING:
    from vodflow.jobs.limits import Limits
    from vodflow.storage.base import Storage

X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT asked the command to stop (a KeyboardInterrupt, so no `except Exception` eats it)."""


@contextmanager
def stop_on_signals(guard: RunGuard | None = None) -> Iterator[None]:
    """Turn SIGTERM and SIGINT into `Interrupted` in the main thread while the block runs.

    The exception unwinds the run like Ctrl-C: ffmpeg is killed, transfers close, the flow's crash hook
    fails the job and removes its temp directory, and Prefect's temporary server is stopped at exit. A run
    on a server (`guard`) that has not unwound after the guard's grace time, or gets a second signal, ends
    at once with its document (`RunGuard.give_up`); without a server later signals are ignored so that the
    clean-up is not cut short.
    """
    told: list[int] = []

    def interrupt(signum: int, frame: Any) -> None:
        if told:
            if guard is not None and guard.active:
                guard.give_up()
            return
        told.append(signum)
        if guard is not None:
            guard.stopping()
        raise Interrupted(signal.Signals(signum).name)

    previous = {number: signal.signal(number, interrupt) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def failed_document(job_id: str | None, code: str, message: str) -> dict[str, Any]:
    """The document printed when a run could not even store one (Prefect unreachable, stopped early)."""
    from vodflow.jobs.document import iso_now

    now = iso_now()
    document = {"status": "failed", "createdAt": now, "updatedAt": now, "finishedAt": now}
    error = {"step": "run", "code": code, "message": message}
    return ({"id": job_id} if job_id else {}) | document | {"error": error}


def check_spec(spec_data: Any, allow_local_files: bool, limits: Limits | None = None) -> Any:
    """The validated spec (presets left out: the default ladder) whose local source and caption files, if
    any, exist, and which asks for no more than `limits` (a `Limits`; default ones when None) allow.

    UserError naming the field and the reason otherwise: what the flow would refuse anyway, without waiting
    for Prefect to start.
    """
    from vodflow.jobs.cost import JobTooLarge, check_spec_size
    from vodflow.jobs.limits import Limits
    from vodflow.jobs.sources import parse_video_url
    from vodflow.jobs.spec import parse_run_spec

    try:
        spec = parse_run_spec(spec_data)
        check_spec_size(spec, limits or Limits())
    except JobTooLarge as exc:
        raise UserError(f"job too large: {exc.message}") from None
    except SpecError as exc:
        raise UserError(f"invalid job spec: {exc.message}") from None
    rerun = spec.rerun_of or spec.add_to  # its source is the first job's kept original, when there is one
    urls = [("videoUrl", spec.video_url)] if spec.video_url and not rerun else []
    urls += [(f"captions[{i}].url", caption.url) for i, caption in enumerate(spec.captions or ())]
    for side in ("prepend", "append"):  # intros and outros
        urls += [(f"{side}[{i}].url", insert.url) for i, insert in enumerate(getattr(spec, side) or ())]
    for field, url in urls:
        if (ref := parse_video_url(url)).kind == "local":
            if not allow_local_files:
                raise UserError(f"{field}: local files are not allowed (VODFLOW_ALLOW_LOCAL_FILES=false)")
            if not Path(ref.path or "").is_file():
                raise UserError(f"{field}: no such file: {ref.path}")
    return spec


def prepare_spec(spec_data: Any) -> Any:
    """`check_spec` with the settings of this process; UserError for a bad spec, source or setting."""
    from vodflow.settings import load_settings

    try:
        settings = load_settings()
    except StepError as exc:  # a malformed VODFLOW_* variable
        raise UserError(exc.message) from None
    return check_spec(spec_data, settings.allow_local_files, settings.limits())


def run_job(
    spec_data: Any,
    storage_block: str | None = None,
    encoder: str = "local",
    *,
    job_id: str | None = None,
    x264_preset: str | None = None,
) -> tuple[dict[str, Any], int]:
    """Run the pipeline flow on a spec; (final job document, exit code 0 completed / 1 failed).

    UserError (nothing run) for an invalid spec or job id, or a local source that does not exist. Never
    raises for a run that went wrong: a Prefect that cannot be reached or started, SIGTERM or Ctrl-C
    (`stop_on_signals`) all end in a `failed` document naming the reason.
    """
    from vodflow.cli.logs import quiet_job_failures

    spec = prepare_spec(spec_data)
    job_id = checked_job_id(job_id)
    guard = run_guard(job_id, storage_block)
    try:
        with stop_on_signals(guard):
            from vodflow.cli.progress import progress_bar_if_tty
            from vodflow.flows.pipeline import encode_video

            quiet_job_failures()
            guard.watch()
            try:
                with progress_bar_if_tty():
                    state = encode_video(
                        spec,
                        job_id=job_id,
                        storage_block=storage_block,
                        encoder=encoder,
                        x264_preset=x264_preset,
                        return_state=True,
                    )
            finally:
                guard.quiet()
        refused = _refusal(state)
        if refused is not None and guard.finish():  # another run of the job is at work: not our document
            return failed_document(job_id, refused.code, refused.message), EXIT_FAILED
        fallback = failed_document(job_id, "crashed", str(state.message or state.name))
    except Interrupted as exc:
        fallback = failed_document(job_id, "cancelled", f"run cancelled: stopped by {exc}")
    except Exception as exc:  # Prefect unreachable, its temporary server too slow to start...
        message = f"Prefect could not run the job: {type(exc).__name__}: {_first_line(str(exc))}"
        fallback = failed_document(job_id, "prefect_unavailable", message)
    if guard.lost:
        message = f"Prefect could not run the job: {guard.lost}"
        fallback = failed_document(job_id, "prefect_unavailable", message)
    if not guard.finish():
        threading.Event().wait()  # the guard is writing the document and ending the process
    document, code = _stored_document(job_id, storage_block, fallback)
    if guard.lost:  # Prefect's exit handlers would retry the server that is gone: the document is final
        _exit_now(document, code)
    return document, code


def checked_job_id(job_id: str | None) -> str:
    """`job_id` if valid, else a new id when None; UserError for an invalid one."""
    from vodflow.jobs.document import new_id
    from vodflow.jobs.keys import check_job_id

    try:
        return check_job_id(job_id) if job_id else new_id()
    except SpecError as exc:
        raise UserError(f"invalid --job-id: {exc.reason}") from None


def run_guard(job_id: str, storage_block: str | None) -> RunGuard:
    """The guard of a run on the Prefect server in PREFECT_API_URL (an inactive one without)."""
    import os

    from vodflow.settings import load_settings

    settings = load_settings()

    def last_resort(code: str, message: str) -> None:
        from vodflow.steps.workdir import leave_job

        with suppress(Exception):
            leave_job(job_id, settings.tmp_dir)
        _exit_now(*_stored_document(job_id, storage_block, failed_document(job_id, code, message)))

    return RunGuard(
        os.environ.get("PREFECT_API_URL"),
        settings.prefect_lost_seconds,
        settings.stop_grace_seconds,
        last_resort,
    )


def _exit_now(document: dict[str, Any], code: int) -> NoReturn:
    """Print the document and end the process without Prefect's exit handlers (ffmpeg dies with it)."""
    import os

    with suppress(Exception):
        print_json(document)
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _refusal(state: Any) -> StepError | None:
    """The error of a run that refused to start because another run of its job holds the job (`job_running`);
    None for any other state."""
    if not state.is_failed():
        return None
    try:
        error = state.result(raise_on_failure=False)
    except Exception:
        return None
    return error if isinstance(error, StepError) and error.code == "job_running" else None


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:300]


def _stored_document(job_id: str, storage_block: str | None, fallback: dict[str, Any]) -> tuple[dict, int]:
    """`stored_document` in the storage of `storage_block` (else the settings'); `fallback` itself when
    that storage cannot be opened (its block on a server that is gone)."""
    from vodflow.blocks.storage import resolve_storage
    from vodflow.settings import load_settings

    try:
        storage = resolve_storage(storage_block, load_settings())
    except Exception:
        return fallback, EXIT_FAILED
    return stored_document(storage, job_id, fallback)


def stored_document(storage: Storage, job_id: str, fallback: dict[str, Any]) -> tuple[dict, int]:
    """The job's stored document (failed with `fallback`'s reason if the run left it unfinished), or
    `fallback` itself when nothing was stored; and the exit code."""
    from vodflow.storage.jobstore import load_job, save_job

    try:
        doc = load_job(storage, job_id)
        if doc.status not in ("completed", "failed"):
            if doc.files:  # ladders that played while encoding: removed, as the run's crash hook does
                from vodflow.steps.publish import remove_outputs

                remove_outputs(storage, doc.files)
            doc = doc.moved_to("failed", error=fallback["error"], files=[], playable_at=None)
            save_job(storage, doc)
    except Exception:  # nothing stored, or the storage unreachable
        return fallback, EXIT_FAILED
    return doc.wire(), EXIT_OK if doc.status == "completed" else EXIT_FAILED


def read_spec_file(path: str) -> Any:
    """The JSON in `path`; UserError when it cannot be read or is not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise UserError(f"cannot read job spec {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"job spec {path} is not valid JSON: {exc}") from None


def cmd_encode(args: argparse.Namespace) -> int:
    try:
        spec_data = read_spec_file(args.spec)
        handed = None
        if (stack := getattr(args, "stack", None)) is not None and not args.here:
            from vodflow.cli.handoff import hand_off

            handed = hand_off(
                spec_data,
                stack,
                args.storage_block,
                args.encoder,
                job_id=args.job_id,
                x264_preset=args.x264_preset,
            )
        document, code = handed or run_job(
            spec_data, args.storage_block, args.encoder, job_id=args.job_id, x264_preset=args.x264_preset
        )
    except UserError as exc:
        print(f"vodflow encode: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    print_json(document)
    return code


def add_parser(subparsers: Any) -> None:
    """Register `encode SPEC [--encoder local|videosdk|mpc] [--job-id ID] [--x264-preset P]`."""
    encode = subparsers.add_parser(
        "encode",
        help="run the pipeline on a job spec (JSON file)",
        description="Run the pipeline flow on a job spec and print the final job document as JSON on stdout "
        "(logs on stderr; a progress bar when stderr is a terminal). With the local stack running (`vodflow "
        "up`), the job is a run of its `encode` deployment, handed to its worker (the run's log lines on "
        "stderr, no progress bar; Ctrl-C or SIGTERM cancels the run); --here runs it in this process.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    encode.add_argument(
        "spec", help="path to the job spec JSON (VideoSDK shape; without presets: HLS 240-1080 + 360 MP4)"
    )
    encode.add_argument(
        "--encoder",
        default="local",
        choices=["local", "videosdk", "mpc"],
        help="where to encode: local = ffmpeg on this machine (default); videosdk = VideoSDK's encoder API; "
        "mpc = Huawei Cloud MPC (remote ones need their credentials: block or environment)",
    )
    encode.add_argument(
        "--job-id",
        help="job id to use (1-128 letters, digits, '.', '_', '-'); a rerun with the same id and spec "
        "returns the stored document (default: a new id)",
    )
    encode.add_argument(
        "--x264-preset",
        choices=X264_PRESETS,
        help="x264 speed/quality trade-off for local encodes (default: VODFLOW_X264_PRESET, veryfast)",
    )
    encode.add_argument(
        "--here",
        action="store_true",
        help="run the flow in this process even when the local stack runs (its server still records the "
        "run; the default hands the job to the stack's worker: `vodflow.cli.handoff`)",
    )
    encode.set_defaults(func=cmd_encode)
