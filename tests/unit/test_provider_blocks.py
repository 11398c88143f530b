"""The credentials blocks: Prefect's block standards, environment settings, a named block wins, no leaks."""

from __future__ import annotations

import pytest
from prefect.testing.standard_test_suites import BlockStandardTestSuite

from blocks import huawei_mpc, videodb, videosdk
from blocks.huawei_mpc import HuaweiMpcCredentials
from blocks.videodb import VideoDBCredentials
from blocks.videosdk import VideoSDKCredentials
from vodflow.providers import MissingCredentials


class _NoRemoteLogo:
    def test_has_a_valid_image(self, block) -> None:
        # The standard test downloads the logo; tests stay off the internet, and a logo is optional.
        assert block._logo_url is None or str(block._logo_url).startswith("https://")


class TestVideoSDKBlock(_NoRemoteLogo, BlockStandardTestSuite):
    @pytest.fixture
    def block(self):
        return VideoSDKCredentials


class TestHuaweiMpcBlock(_NoRemoteLogo, BlockStandardTestSuite):
    @pytest.fixture
    def block(self):
        return HuaweiMpcCredentials


class TestVideoDBBlock(_NoRemoteLogo, BlockStandardTestSuite):
    @pytest.fixture
    def block(self):
        return VideoDBCredentials


def test_slugs():
    assert VideoSDKCredentials.get_block_type_slug() == "videosdk-credentials"
    assert HuaweiMpcCredentials.get_block_type_slug() == "huawei-mpc-credentials"
    assert VideoDBCredentials.get_block_type_slug() == "videodb-credentials"


@pytest.fixture
def clean_env(monkeypatch):
    for name in videosdk.ENV_VARS + huawei_mpc.ENV_VARS + videodb.ENV_VARS + ("VODFLOW_HTTP_TIMEOUT",):
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

    sdk = videosdk.resolve_credentials()
    assert sdk.api_key.get_secret_value() == "env-key" and sdk.base_url == "http://127.0.0.1:9"
    mpc = huawei_mpc.resolve_credentials()
    assert mpc.base_url() == "https://mts.cn-north-1.myhuaweicloud.com"
    assert mpc.trans_template_ids == [7, 8] and mpc.location() == "cn-north-1"
    assert mpc.security_token.get_secret_value() == "sts-env"
    assert videodb.resolve_credentials().base_url == "https://api.videodb.io"
    with sdk.get_client() as client:
        assert client.base_url == "http://127.0.0.1:9"


def test_incomplete_settings_are_reported_without_secrets(clean_env):
    clean_env.setenv("VIDEOSDK_API_KEY", "only-the-key")
    clean_env.setenv("HUAWEICLOUD_SDK_AK", "ak-only")
    with pytest.raises(MissingCredentials) as sdk_error:
        videosdk.from_env()
    with pytest.raises(MissingCredentials):
        huawei_mpc.from_env()
    with pytest.raises(MissingCredentials):
        videodb.from_env()
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
    chosen = videodb.resolve_credentials("vodflow-test-db")
    assert chosen.api_key.get_secret_value() == "sk-from-block" and chosen.base_url == "http://127.0.0.1:2"
    assert videodb.resolve_credentials().base_url == "http://127.0.0.1:1"
    with pytest.raises(ValueError):
        videodb.resolve_credentials("no-such-block")


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
