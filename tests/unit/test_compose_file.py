"""deploy/compose.yaml stays consistent with the code it starts (its engines cannot run here: no OCI runtime
starts on this kind of VM and no image registry is reachable): every vodflow command parses with vodflow's own
CLI, every `VODFLOW_*` variable is a setting, every secret comes from deploy/.env (never written in the file),
and nothing is published beyond 127.0.0.1."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.needs import REPO
from vodflow.cli import build_parser
from vodflow.settings import Settings

COMPOSE = REPO / "deploy" / "compose.yaml"
SECRETS = {"POSTGRES_PASSWORD", "S3_ACCESS_KEY", "S3_SECRET_KEY", "VODFLOW_API_KEY", "VODFLOW_API_SECRET",
           "VODFLOW_RECEIVER_TOKEN"}  # fmt: skip


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_every_vodflow_command_parses_and_every_setting_exists(services):
    parser = build_parser()
    settings = {f"VODFLOW_{name.upper()}" for name in Settings.model_fields}
    for name, service in services.items():
        command = service.get("command", [])
        if command[:1] == ["vodflow"]:
            parser.parse_args(command[1:])  # SystemExit on an unknown command or option
        for key in service.get("environment", {}):
            assert not key.startswith("VODFLOW_") or key in settings, f"{name}: {key} is no setting"
    assert {"prefect", "setup", "worker", "api", "receiver", "postgres", "s3"} <= set(services)


def test_secrets_come_from_the_env_file_and_ports_stay_on_loopback(services):
    text = COMPOSE.read_text()
    for secret in SECRETS:
        assert re.search(rf"\$\{{{secret}(:\?[^}}]*)?\}}", text), f"{secret} is read from deploy/.env"
    for name, service in services.items():
        for key, value in service.get("environment", {}).items():
            if key in SECRETS:
                assert str(value).startswith("${"), f"{name}: {key} is written in the file"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert "deploy/.env" in (REPO / ".gitignore").read_text().splitlines()
