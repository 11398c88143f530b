"""The credentials blocks: environment settings, a named block wins, no leaks (standards: elsewhere)."""

from __future__ import annotations

import pytest

from tests.remote import credential_variables
from vodflow.blocks.huawei_mpc import HuaweiMpcCredentials
from vodflow.blocks.videodb import VideoDBCredentials
from vodflow.blocks.videosdk import VideoSDKCredentials
from vodflow.providers import MissingCredentials


@pytest.fixture
def clean_env(monkeypatch):
    for name in [*credential_variables(), "VODFLOW_HTTP_TIMEOUT"]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_settings_from_the_environment(clean_env):
    clean_env.setenv("VIDEOSDK_API_KEY", "env-key")
    clean_env.setenv("VIDEOSDK_SECRET", "env-secret-" + "x" * 32)
    clean_env.setenv("VIDEOSDK_BASE_URL", "http://127.0.0.1:9")
    clean_env.setenv("HUAWEICLOUD_SDK_AK", "ak-env")
    clean_env.setenv("HUAWEICLOUD_SDK_SK", "sk-env")
    clean_env.setenv("HUAWEICLOUD_SDK_SECURITY_TOKEN", "sts-env")
    clean_env.setenv("MPC_PROJECT_ID", "p1")
    clean_env.setenv("MPC_REGION", "cn-north-1")
    clean_env.setenv("MPC_TEMPLATE_IDS", "7, 8")
    clean_env.setenv("VIDEODB_API_KEY", "sk-env")

    sdk = VideoSDKCredentials.resolve()
    assert sdk.api_key.get_secret_value() == "env-key" and sdk.base_url == "http://127.0.0.1:9"
    mpc = HuaweiMpcCredentials.resolve()
    assert mpc.base_url() == "https://mts.cn-north-1.myhuaweicloud.com"
    assert mpc.trans_template_ids == [7, 8] and mpc.location() == "cn-north-1"
    assert mpc.security_token.get_secret_value() == "sts-env"
    assert VideoDBCredentials.resolve().base_url == "https://api.videodb.io"
    with sdk.get_client() as client:
        assert client.base_url == "http://127.0.0.1:9"


def test_incomplete_settings_are_reported_without_secrets(clean_env):
    clean_env.setenv("VIDEOSDK_API_KEY", "only-the-key")
    clean_env.setenv("HUAWEICLOUD_SDK_AK", "ak-only")
    with pytest.raises(MissingCredentials) as sdk_error:
        VideoSDKCredentials.from_env()
    with pytest.raises(MissingCredentials):
        HuaweiMpcCredentials.from_env()
    with pytest.raises(MissingCredentials):
        VideoDBCredentials.from_env()
    assert "only-the-key" not in str(sdk_error.value)
    with pytest.raises(MissingCredentials):
        HuaweiMpcCredentials(ak="a", sk="b", project_id="p").get_client()  # neither region nor endpoint
    with pytest.raises(MissingCredentials):
        VideoSDKCredentials(api_key="k").get_client()


def test_secrets_stay_hidden_in_reprs():
    blocks = [
        VideoSDKCredentials(api_key="vk-HIDDEN", secret="vs-HIDDEN", token="vt-HIDDEN"),
        HuaweiMpcCredentials(
            ak="ak-HIDDEN", sk="sk-HIDDEN", auth_token="iam-HIDDEN", project_id="p", region="r"
        ),
        VideoDBCredentials(api_key="db-HIDDEN"),
    ]
    for block in blocks:
        assert "HIDDEN" not in repr(block) and "HIDDEN" not in str(block)
        with block.get_client() as client:
            assert "HIDDEN" not in repr(client) and "HIDDEN" not in repr(vars(client).get("_auth", ""))


def test_a_named_block_wins_over_the_environment(prefect_harness, clean_env):
    clean_env.setenv("VIDEODB_API_KEY", "sk-from-env")
    clean_env.setenv("VIDEODB_BASE_URL", "http://127.0.0.1:1")
    VideoDBCredentials(api_key="sk-from-block", base_url="http://127.0.0.1:2").save(
        "vodflow-test-db", overwrite=True
    )
    chosen = VideoDBCredentials.resolve("vodflow-test-db")
    assert chosen.api_key.get_secret_value() == "sk-from-block" and chosen.base_url == "http://127.0.0.1:2"
    assert VideoDBCredentials.resolve().base_url == "http://127.0.0.1:1"
    with pytest.raises(ValueError):
        VideoDBCredentials.resolve("no-such-block")


def test_blocks_register_with_prefect(prefect_harness):
    from prefect.client.orchestration import get_client

    for block in (VideoSDKCredentials, HuaweiMpcCredentials, VideoDBCredentials):
        block.register_type_and_schema()
        with get_client(sync_client=True) as client:
            registered = client.read_block_type_by_slug(block.get_block_type_slug())
            schema = client.get_most_recent_block_schema_for_block_type(registered.id)
        assert registered.name == block.get_block_type_name()
        fields = schema.fields["properties"]
        assert set(block.model_fields) <= set(fields)  # the UI's form names every field
        secrets = {name for name, f in block.model_fields.items() if "SecretStr" in str(f.annotation)}
        assert secrets and secrets <= set(schema.fields.get("secret_fields", []))
