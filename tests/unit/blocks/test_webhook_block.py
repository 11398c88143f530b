"""The webhook settings block: Prefect's block standards, validation, and a named block winning over env."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vodflow.blocks.webhook import VodflowWebhookSettings, resolve_webhook_config
from vodflow.net.webhook import new_secret


def test_config_and_policy():
    secret = new_secret()
    block = VodflowWebhookSettings(signing_secret=secret, allowed_hosts=["hooks.corp", "10.0.0.0/8"])
    config = block.get_config()
    assert config.secret == secret and config.window == 300 and config.max_attempts == 8
    assert config.policy.allowed_hosts == {"hooks.corp"}
    assert secret not in repr(block) + repr(config) + str(block.model_dump())


@pytest.mark.parametrize(
    "fields",
    [{"signing_secret": "not-whsec"}, {"signing_secret": "whsec_QUFB"}, {"allowed_hosts": ["10.0.0.0/40"]}],
)
def test_bad_settings_are_refused(fields):
    with pytest.raises(ValidationError):
        VodflowWebhookSettings(**fields)


def test_a_named_block_wins_over_the_environment(prefect_harness, environment):
    secret = new_secret()
    VodflowWebhookSettings(signing_secret=secret, allowed_hosts=["hooks.corp"], max_attempts=3).save(
        "hooks-test", overwrite=True
    )
    from_env = {"VODFLOW_WEBHOOK_SECRET": new_secret(), "VODFLOW_ALLOWED_HOSTS": "other.corp"}
    config = resolve_webhook_config(environment({**from_env, "VODFLOW_WEBHOOK_BLOCK": "hooks-test"}))
    assert config.secret == secret and config.max_attempts == 3
    assert config.policy.allowed_hosts == {"hooks.corp"}  # also the policy of source downloads
    plain = resolve_webhook_config(environment(from_env))
    assert plain.secret == from_env["VODFLOW_WEBHOOK_SECRET"] and plain.policy.allowed_hosts == {"other.corp"}
