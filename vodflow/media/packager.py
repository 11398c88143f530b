"""Runs Shaka Packager command lines built by `vodflow.packaging.cenc` (the runner apart from the builder)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from vodflow.errors import StepError
from vodflow.media.runner import dying_with_parent, stop_signals_held
from vodflow.packaging.cenc import redacted

PACKAGER_SECONDS = 120.0  # one segment of one rung: seconds at most, even on a loaded host
_TAIL = 600


def run_packager(
    args: Sequence[str],
    *,
    secrets: Sequence[str] = (),
    folder: str | None = None,
    timeout: float = PACKAGER_SECONDS,
) -> None:
    """Run one packager command; StepError (encrypt, packager_failed | packager_timeout) with its exit
    status and the tail of its output, the keys (`key=` arguments and each of `secrets`) hidden, and the
    work `folder` shown as `<work>` (no host path in a job's error). The
    process dies with its parent and is killed on timeout."""
    try:
        argv, preexec = dying_with_parent(args)
        with stop_signals_held():
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                preexec_fn=preexec,  # noqa: PLW1509 (no threads start in the child before exec)
            )
    except OSError as exc:
        raise StepError(
            "encrypt", "packager_failed", f"cannot start the packager (VODFLOW_PACKAGER): {exc.strerror}"
        ) from None
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise StepError(
            "encrypt", "packager_timeout", f"the packager did not finish within {timeout:.0f} s"
        ) from None
    except BaseException:
        process.kill()
        process.wait()
        raise
    if process.returncode != 0:
        text = " ".join(redacted(output.decode(errors="replace").split()))
        for secret in secrets:
            text = text.replace(secret, "**********").replace(secret.upper(), "**********")
        if folder:
            text = text.replace(folder, "<work>")
        raise StepError(
            "encrypt", "packager_failed", f"the packager exited {process.returncode}: {text[-_TAIL:]}"
        )
