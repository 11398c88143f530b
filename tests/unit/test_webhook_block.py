"""The webhook settings block: Prefect's block standards, validation, and a named block winning over env."""

from __future__ import annotations

import pytest
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from pydantic import ValidationError

from blocks.webhook import VodflowWebhookSettings
from vodflow.netguard import current_policy
from vodflow.webhook import load_webhook_config, new_secret


class TestVodflowWebhookSettingsBlock(BlockStandardTestSuite):
    @pytest.fixture
    def block(self):
        return VodflowWebhookSettings

    def test_has_a_valid_image(self, block) -> None:
        # The standard test downloads the logo; tests stay off the internet, and a logo is optional.
        assert block._logo_url is None


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


def test_a_named_block_wins_over_the_environment(prefect_harness, monkeypatch):
    secret = new_secret()
    VodflowWebhookSettings(signing_secret=secret, allowed_hosts=["hooks.corp"], max_attempts=3).save(
        "hooks-test", overwrite=True
    )
    monkeypatch.setenv("VODFLOW_WEBHOOK_SECRET", new_secret())
    monkeypatch.setenv("VODFLOW_WEBHOOK_BLOCK", "hooks-test")
    config = load_webhook_config()
    assert config.secret == secret and config.max_attempts == 3
    assert current_policy().allowed_hosts == {"hooks.corp"}
