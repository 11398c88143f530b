"""prefect.yaml stays loadable and safe: entrypoints exist, event templates tolerate missing keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.needs import missing
from vodflow.orchestration.deploy_steps import enter_project_directory, installed_checkout, project_directory

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def config():
    return yaml.safe_load((REPO / "prefect.yaml").read_text())


def test_every_entrypoint_names_a_function_in_the_repository(config):
    for deployment in config["deployments"]:
        path, _, function = deployment["entrypoint"].partition(":")
        assert re.search(rf"^def {function}\(", (REPO / path).read_text(), re.M), deployment["name"]


def test_event_templates_read_the_payload_with_defaults(config):
    templates = re.findall(r"\{\{(.*?)\}\}", yaml.safe_dump(config))
    event_templates = [t for t in templates if "event." in t]
    assert event_templates
    for template in event_templates:
        assert ".get(" in template and "[" not in template, template


def test_upload_trigger_runs_the_pipeline_with_a_full_spec(config):
    [on_upload] = [d for d in config["deployments"] if d["name"] == "on-upload"]
    [trigger] = on_upload["triggers"]
    assert trigger["expect"] == ["vodflow.video.uploaded"]
    assert trigger["match"] == {"prefect.resource.id": "vodflow.object.*"}
    spec = trigger["parameters"]["spec"]
    assert {"videoId", "videoUrl", "presets", "thumbnails"} <= set(spec)


def test_project_directory_pull_step(tmp_path):
    assert project_directory(str(tmp_path)) == {"directory": str(tmp_path.resolve())}
    with pytest.raises(ValueError, match="VODFLOW_PROJECT_DIR"):
        project_directory(str(tmp_path / "missing"))
    if installed_checkout() is None:
        missing("vodflow is not installed from a checkout (editable install): run `make setup`")
    assert project_directory("") == {"directory": str(installed_checkout())}
    assert (Path(project_directory("  ")["directory"]) / "prefect.yaml").is_file()


def test_the_one_pull_step_enters_the_project_directory(config, tmp_path, monkeypatch):
    (step,) = config["pull"]
    assert list(step) == ["vodflow.orchestration.deploy_steps.enter_project_directory"]
    monkeypatch.chdir(REPO)
    assert enter_project_directory(str(tmp_path)) == {"directory": str(tmp_path.resolve())}
    assert Path.cwd() == tmp_path.resolve()
