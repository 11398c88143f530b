"""Flow runs take a spec without presets (the default ladder); the API's JobSpec still requires them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vodflow.errors import SpecError
from vodflow.jobs.keys import job_id_from_ref, run_job_id
from vodflow.jobs.spec import DEFAULT_PRESETS, RunSpec, parse_run_spec, parse_spec

REPO = Path(__file__).resolve().parents[3]
SOURCE_ONLY = {"videoUrl": "https://example.test/v.mp4"}


def test_a_source_alone_gets_the_default_ladder():
    spec = parse_run_spec(SOURCE_ONLY)
    assert [p.wire() for p in spec.presets] == list(DEFAULT_PRESETS)
    assert spec.thumbnails == [] and spec.video_url == SOURCE_ONLY["videoUrl"]


def test_null_presets_get_the_default_ladder_and_given_ones_are_kept():
    assert [p.format for p in parse_run_spec({**SOURCE_ONLY, "presets": None}).presets] == ["hls", "mp4"]
    given = {**SOURCE_ONLY, "presets": [{"format": "mp4", "resolutions": ["240"]}]}
    assert parse_run_spec(given) == parse_spec(given)


def test_the_api_spec_still_requires_presets_and_runs_refuse_empty_ones():
    with pytest.raises(SpecError) as caught:
        parse_spec(SOURCE_ONLY)
    assert (caught.value.field, caught.value.reason) == ("presets", "is required")
    with pytest.raises(SpecError, match="presets: must not be empty"):
        parse_run_spec({**SOURCE_ONLY, "presets": []})


def test_a_run_spec_accepts_a_parsed_job_spec():
    spec = parse_spec({**SOURCE_ONLY, "presets": [{"format": "hls", "resolutions": ["360"]}]})
    as_run = RunSpec.model_validate(spec)
    assert parse_run_spec(as_run) == spec


def test_the_default_ladder_is_prefect_yaml_s():
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    declared = config["definitions"]["encode_defaults"]["presets"]
    declared = [{"resolutions": p["resolutions"], "format": p["format"]} for p in declared]
    assert declared == list(DEFAULT_PRESETS)


@pytest.mark.parametrize(
    ("ref", "job_id"),
    [
        ("0f1e2d3c-4b5a-6978-8a9b-acbdcedf0011", "0f1e2d3c4b5a69788a9bacbd"),
        ("0F1E2D3C-4B5A-6978-8A9B-ACBDCEDF0011", "0f1e2d3c4b5a69788a9bacbd"),
        ("e3923bac0b86c8518a91f4e6", "e3923bac0b86c8518a91f4e6"),
        ("0f1e2d3c4b5a69788a9bacbdcedf0011", "0f1e2d3c4b5a69788a9bacbdcedf0011"),  # 32 hex: a job id
    ],
)
def test_a_job_is_named_by_its_id_or_its_flow_run_id(ref, job_id):
    assert job_id_from_ref(ref) == job_id


def test_the_run_id_rule_is_the_flow_s():
    run_id = "0f1e2d3c-4b5a-6978-8a9b-acbdcedf0011"
    assert job_id_from_ref(run_id) == run_job_id(run_id) == run_id.replace("-", "")[:24]


@pytest.mark.parametrize("ref", ["../../x", "", "a/b", ".hidden", "x" * 129])
def test_an_invalid_job_id_is_a_spec_error(ref):
    with pytest.raises(SpecError) as caught:
        job_id_from_ref(ref)
    assert caught.value.field == "job_id"
