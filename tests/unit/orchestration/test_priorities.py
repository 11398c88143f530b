"""A job's `priority`: the spec field, the work queue its run is created in (the API's and `vodflow encode`'s
request), and the pool's queues read from prefect.yaml and what `vodflow up` creates of them."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from vodflow.errors import SpecError
from vodflow.jobs.document import JobDocument
from vodflow.jobs.spec import Priority, parse_run_spec, parse_spec
from vodflow.orchestration.flow_runs import PRIORITIES, create_run_request, run_parameters, work_queue_for
from vodflow.orchestration.queues import (
    DEFAULT_QUEUES,
    QueueSpec,
    parse_queues,
    project_queues,
    queues_to_create,
)

REPO = Path(__file__).resolve().parents[3]
SPEC = {"videoUrl": "https://example.com/a.mp4", "presets": [{"format": "mp4", "resolutions": ["240"]}]}


@pytest.mark.parametrize("priority", ["high", "normal", "low"])
def test_a_priority_is_kept_in_the_wire_spec_and_left_out_when_absent(priority):
    assert parse_spec({**SPEC, "priority": priority}).wire()["priority"] == priority
    assert "priority" not in parse_spec(SPEC).wire()
    assert parse_run_spec({"videoUrl": SPEC["videoUrl"], "priority": priority}).priority == priority


def test_the_document_echoes_the_priority_and_a_plain_job_s_has_none():
    doc = JobDocument.from_spec(parse_spec({**SPEC, "priority": "low"}), "job-1")
    assert doc.model_dump(by_alias=True, exclude_none=True)["priority"] == "low"
    assert doc.spec().priority == "low"
    plain = JobDocument.from_spec(parse_spec(SPEC), "job-2")
    assert "priority" not in plain.model_dump(by_alias=True, exclude_none=True)


@pytest.mark.parametrize("value", ["urgent", "HIGH", 5, 0, True, ["high"], {"level": "high"}, ""])
def test_anything_but_the_three_names_is_refused_naming_the_field(value):
    with pytest.raises(SpecError) as refused:
        parse_spec({**SPEC, "priority": value})
    assert refused.value.field == "priority" and "'high', 'normal' or 'low'" in str(refused.value)


def test_the_queue_names_are_the_spec_s_priorities():
    assert PRIORITIES == get_args(Priority)
    assert {q.name for q in DEFAULT_QUEUES} == set(PRIORITIES)


def test_a_run_waits_in_the_queue_named_by_its_priority_and_without_one_in_the_deployment_s():
    for priority in PRIORITIES:
        assert work_queue_for(run_parameters({**SPEC, "priority": priority}, "j")) == priority
    assert work_queue_for(run_parameters(SPEC, "j")) is None
    assert work_queue_for({"spec": {**SPEC, "priority": "nope"}}) is None  # never a queue made up
    assert work_queue_for({}) is None and work_queue_for({"spec": "not a mapping"}) is None


def test_vodflow_encode_creates_its_run_in_that_queue_and_a_plain_job_exactly_as_before():
    _, body = create_run_request("dep-1", run_parameters({**SPEC, "priority": "high"}, "j"), "k")
    assert body["work_queue_name"] == "high"
    _, plain = create_run_request("dep-1", run_parameters(SPEC, "j"), "k")
    assert "work_queue_name" not in plain


def test_prefect_yaml_declares_the_three_queues_high_first_low_capped_and_deploys_to_normal():
    queues = project_queues(REPO / "prefect.yaml")
    assert [(q.name, q.priority, q.concurrency_limit) for q in queues] == [
        ("high", 1, None),
        ("normal", 2, None),
        ("low", 3, 1),
    ]
    import yaml

    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    assert config["definitions"]["work_pools"]["vodflow"]["work_queue_name"] == "normal"
    assert project_queues(REPO / "no-such.yaml") == DEFAULT_QUEUES


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ("high", "non-empty list"),
        ([{"name": "high", "priority": 1}, {"name": "normal", "priority": 2}], "no queue for priority low"),
        ([{"name": "high", "priority": 0}], r"work_queues\[0\].priority"),
        ([{"name": "high", "priority": "1"}], r"work_queues\[0\].priority"),
        ([{"name": "", "priority": 1}], r"work_queues\[0\].name"),
        ([{"name": "high", "priority": 1, "concurrency_limit": -1}], r"work_queues\[0\].concurrency_limit"),
        ([{"name": "high", "priority": 1, "paused": True}], "keys allowed"),
        (
            [
                {"name": "high", "priority": 1},
                {"name": "normal", "priority": 1},
                {"name": "low", "priority": 3},
            ],
            "same priority",
        ),
    ],
)
def test_a_malformed_declaration_is_refused_naming_the_entry(entries, message):
    with pytest.raises(ValueError, match=message):
        parse_queues(entries)


def test_only_missing_queues_are_created_highest_priority_first_and_existing_ones_are_left():
    declared = parse_queues(
        [
            {"name": "low", "priority": 3, "concurrency_limit": 1},
            {"name": "high", "priority": 1},
            {"name": "normal", "priority": 2},
        ]
    )
    assert [q.name for q in queues_to_create(declared, ["default"])] == ["high", "normal", "low"]
    assert queues_to_create(declared, ["default", "high", "normal", "low"]) == []
    assert queues_to_create(declared, ["normal", "mine"]) == [QueueSpec("high", 1), QueueSpec("low", 3, 1)]
