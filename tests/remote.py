"""The remote services in tests: their credentials' environment variables, and a job's encode run on a
remote encoder the way the pipeline flow runs it (credentials from the named block or the environment, the
encoder from the registry), without the rest of the flow."""

from __future__ import annotations

import tempfile
from pathlib import Path

from vodflow.encoders import EncodeRequest
from vodflow.flows.pipeline import run_remotely
from vodflow.jobs.document import JobDocument
from vodflow.settings import MpcEnvironment, VideoDBEnvironment, VideoSDKEnvironment


def credential_variables() -> list[str]:
    """Every environment variable the remote services' credentials blocks fall back on."""
    return [
        v for model in (VideoSDKEnvironment, MpcEnvironment, VideoDBEnvironment) for v in model.variables()
    ]


def encode_remotely(
    encoder: str,
    doc: JobDocument,
    *,
    block: str | None = None,
    poll_interval: float = 0.01,
    max_wait: float = 5,
) -> JobDocument:
    """The job completed by `encoder`; StepError (the job's error) when the remote encode fails."""
    request = EncodeRequest(
        doc=doc, workdir=Path(tempfile.gettempdir()), poll_interval=poll_interval, max_wait=max_wait
    )
    return run_remotely(doc, encoder, block, request)
