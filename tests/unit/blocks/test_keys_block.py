"""The `vodflow-keys` block: strong secrets and http(s) base URLs only; a named block wins over env."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vodflow.blocks.keys import VodflowKeys, resolve_key_settings
from vodflow.errors import ConfigError

SECRET = "b" * 40


@pytest.mark.parametrize(
    "fields", [{"key_secret": "short"}, {"key_secret": SECRET, "playback_base_url": "ftp://keys.example"}]
)
def test_bad_settings_are_refused_without_quoting_the_secret(fields):
    with pytest.raises(ValidationError) as caught:
        VodflowKeys(**fields)
    assert SECRET not in str(caught.value)


def test_a_named_block_wins_over_the_environment(prefect_harness, environment):
    VodflowKeys(key_secret=SECRET, playback_base_url="https://api.example").save("keys-test", overwrite=True)
    env = {"VODFLOW_KEY_SECRET": "e" * 40, "VODFLOW_PLAYBACK_BASE_URL": "https://env.example"}
    settings = resolve_key_settings(environment({**env, "VODFLOW_KEY_BLOCK": "keys-test"}))
    assert (
        settings.key_secret.get_secret_value() == SECRET and settings.key_base_url() == "https://api.example"
    )
    plain = resolve_key_settings(environment(env))
    assert plain.key_secret.get_secret_value() == "e" * 40 and plain.key_base_url() == "https://env.example"
    assert SECRET not in repr(VodflowKeys.load("keys-test", _sync=True))
    with pytest.raises(ConfigError, match="VODFLOW_KEY_BLOCK"):
        resolve_key_settings(environment({"VODFLOW_KEY_BLOCK": "no-such-block"}))
