"""Encoding progress as a Prefect progress artifact, updated while ffmpeg runs."""

from __future__ import annotations

import pytest
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterType

from tests.media import make_clip
from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import plan_outputs
from vodflow.jobs.spec import parse_spec
from vodflow.media.commands import build_encode_command
from vodflow.media.probe import probe_source
from vodflow.media.runner import run_ffmpeg
from vodflow.orchestration.progress import ArtifactProgress

pytestmark = pytest.mark.usefixtures("prefect_harness")


class Recording(ArtifactProgress):
    """ArtifactProgress that also remembers every percentage it sent to the API."""

    sent: list[float]

    def __call__(self, progress):
        before = self.artifact.sent_at
        super().__call__(progress)
        if self.artifact.sent_at != before:
            self.sent.append(progress.out_seconds if not progress.done else -1.0)


@task
def encode_with_progress(source, workdir, min_interval: float) -> tuple[list[float], str]:
    spec = {"videoUrl": str(source), "presets": [{"format": "mp4", "resolutions": ["480"]}]}
    info = probe_source(source)
    plan = plan_outputs(JobDocument.from_spec(parse_spec(spec)), info)
    reporter = Recording(info.duration, "encode", min_interval=min_interval)
    reporter.sent = []
    command = build_encode_command(source, plan, workdir, has_audio=True, x264_preset="slow")
    run_ffmpeg(
        command, step="encode", workdir=workdir, timeout=300, on_progress=reporter, progress_interval=0.1
    )
    return reporter.sent, str(reporter.artifact.artifact_id)


@flow
def progress_flow(source, workdir, min_interval: float) -> tuple[list[float], str]:
    return encode_with_progress(source, workdir, min_interval)


def read_progress(artifact_id: str):
    with get_client(sync_client=True) as client:
        only_progress = ArtifactFilter(type=ArtifactFilterType(any_=["progress"]))
        found = client.read_artifacts(artifact_filter=only_progress)
    return next(a for a in found if str(a.id) == artifact_id)


def test_progress_is_updated_while_encoding_and_ends_at_100(clips, tmp_path):
    # 8 s at x264 "slow": long enough that ffmpeg reports output time before it ends, even on a loaded host
    source = make_clip(tmp_path / "long.mp4", 854, 480, seconds=8)
    sent, artifact_id = progress_flow(source, tmp_path, min_interval=0.0)
    assert len(sent) >= 3, "reported while ffmpeg ran, not only at the end"
    assert sent[-1] == -1.0 and any(s > 0 for s in sent[:-1])
    artifact = read_progress(artifact_id)
    assert artifact.data == 100.0
    assert artifact.description.startswith("encode: 100% at ") and artifact.description.endswith("x realtime")


def test_updates_are_spaced_by_the_minimum_interval(clips, tmp_path):
    sent, artifact_id = progress_flow(clips["landscape"], tmp_path, min_interval=3600.0)
    assert len(sent) == 2, "the first report creates the artifact, then only the final 100% is sent"
    assert read_progress(artifact_id).data == 100.0
