"""Content keys sealed at rest in the job's storage, apart from what is published."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import SecretStr

from vodflow.errors import ConfigError
from vodflow.keys.provider import (
    ContentKey,
    StoredKeyProvider,
    content_keys_key,
    key_provider,
    read_content_key,
    remove_content_keys,
)
from vodflow.settings import Settings
from vodflow.storage.local import LocalStorage

SECRET = "s" * 40


@pytest.fixture
def store(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path / "data")


def test_keys_are_random_kept_sealed_under_keys_and_read_back(store):
    provider = StoredKeyProvider(store, SecretStr(SECRET))
    keys = provider.keys_for("job-1", ["a/0", "a/1"])
    assert [k.label for k in keys] == ["a/0", "a/1"] and len({k.key for k in keys}) == 2
    assert content_keys_key("job-1") == "keys/job-1.json" and not content_keys_key("job-1").startswith(
        "files/"
    )
    raw = store.read_bytes("keys/job-1.json")
    for k in keys:  # neither the key in hex nor in base64 is in the stored record
        assert k.key.hex().encode() not in raw and base64.b64encode(k.key) not in raw and k.key not in raw
        assert provider.read("job-1", k.kid_hex) == k.key
    assert [e["kid"] for e in json.loads(raw)["keys"]] == [k.kid_hex for k in keys]
    assert provider.read("job-1", "00" * 16) is None and provider.read("job-2", keys[0].kid_hex) is None
    assert provider.read("job-1", "../../etc") is None


def test_another_secret_or_a_record_moved_to_another_job_does_not_open(store):
    keys = StoredKeyProvider(store, SECRET).keys_for("job-1", ["a/0"])
    assert StoredKeyProvider(store, "t" * 40).read("job-1", keys[0].kid_hex) is None
    store.upload_bytes(store.read_bytes("keys/job-1.json"), "keys/job-2.json")
    assert StoredKeyProvider(store, SECRET).read("job-2", keys[0].kid_hex) is None  # the job id is sealed in


def test_no_secret_or_a_short_one_is_a_config_error_naming_the_setting(store, monkeypatch):
    monkeypatch.delenv("VODFLOW_KEY_SECRET", raising=False)
    with pytest.raises(ConfigError, match="VODFLOW_KEY_SECRET is not set"):
        key_provider(store, Settings())
    with pytest.raises(ConfigError, match="VODFLOW_KEY_SECRET: must be at least 32") as caught:
        StoredKeyProvider(store, "short-secret")
    assert "short-secret" not in str(caught.value)
    with pytest.raises(ConfigError, match="VODFLOW_KEY_SECRET"):
        read_content_key(store, Settings(), "job-1", "00" * 16)


def test_read_content_key_for_the_endpoints_and_removal_with_the_job(store):
    settings = Settings(key_secret=SecretStr(SECRET))
    (key,) = key_provider(store, settings).keys_for("job-1", ["a/0"])
    assert read_content_key(store, settings, "job-1", key.kid_hex) == key.key
    assert read_content_key(store, settings, "../job-1", key.kid_hex) is None
    assert read_content_key(store, settings, "job-9", key.kid_hex) is None
    remove_content_keys(store, "job-1")
    assert not store.exists("keys/job-1.json")
    assert read_content_key(store, settings, "job-1", key.kid_hex) is None
    remove_content_keys(store, "job-1")  # gone already is fine


def test_a_content_key_never_shows_its_key():
    key = ContentKey.generate("x")
    assert key.key.hex() not in repr(key) and key.kid.hex() in repr(key)
    assert "s" * 40 not in repr(StoredKeyProvider(LocalStorage.__new__(LocalStorage), "s" * 40))
    with pytest.raises(ValueError):
        ContentKey(b"1" * 15, b"2" * 16)


def test_key_base_url_is_the_playback_base_or_the_player_url():
    assert Settings(playback_base_url="https://api.example").key_base_url() == "https://api.example"
    assert Settings(player_url="http://127.0.0.1:8000").key_base_url() == "http://127.0.0.1:8000"
    with pytest.raises(ConfigError, match="VODFLOW_PLAYBACK_BASE_URL"):
        Settings(_env_file=None).model_copy(update={"player_url": None}).key_base_url()
