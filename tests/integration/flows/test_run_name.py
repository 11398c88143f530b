"""Prefect flow runs of jobs are named after them: `job <job id> <source name>`, so the UI and Prefect's CLI
tell which job a run is; the source's name never carries its host, query or credentials."""

from __future__ import annotations

import shutil

import pytest
from prefect.client.orchestration import get_client

from vodflow.flows.pipeline import encode_video
from vodflow.jobs.keys import run_job_id
from vodflow.storage.jobstore import load_job

pytestmark = pytest.mark.usefixtures("prefect_harness")


def run_name(state) -> str:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(state.state_details.flow_run_id).name


def test_a_job_run_is_named_by_its_job_id_and_source(clips, storage, tmp_path):
    source = shutil.copy(clips["odd"], tmp_path / "Big Buck ?token=x.mp4")
    spec = {
        "videoUrl": f"file://{source}".replace(" ", "%20"),
        "presets": [{"format": "mp4", "resolutions": ["240"]}],
    }
    state = encode_video(spec, job_id="c4" * 12, return_state=True)
    assert state.is_completed(), state.message
    assert run_name(state) == f"job {'c4' * 12} Big Buck _token_x.mp4"

    state = encode_video({**spec, "videoUrl": str(clips["odd"])}, return_state=True)  # no job id: the run's
    assert state.is_completed(), state.message
    assert run_name(state) == f"job {run_job_id(state.state_details.flow_run_id)} odd.mp4"
    assert load_job(storage, run_job_id(state.state_details.flow_run_id)).status == "completed"
