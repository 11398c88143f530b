"""Prefect's block standards on every block of vodflow, and their slugs (what saved blocks are found by)."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client
from prefect.testing.standard_test_suites import BlockStandardTestSuite

from vodflow.blocks import (
    HuaweiMpcCredentials,
    VideoDBCredentials,
    VideoSDKCredentials,
    VodflowApi,
    VodflowKeys,
    VodflowStorage,
    VodflowWebhookSettings,
)

SLUGS = {
    VodflowStorage: "vodflow-storage",
    VodflowWebhookSettings: "vodflow-webhook-settings",
    VodflowApi: "vodflow-api",
    VodflowKeys: "vodflow-keys",
    VideoSDKCredentials: "videosdk-credentials",
    HuaweiMpcCredentials: "huawei-mpc-credentials",
    VideoDBCredentials: "videodb-credentials",
}


class TestBlockStandards(BlockStandardTestSuite):
    @pytest.fixture(params=list(SLUGS), ids=list(SLUGS.values()))
    def block(self, request):
        return request.param

    def test_has_a_valid_image(self, block, prefect_harness) -> None:
        """The standard test downloads the logo; tests stay off the internet, and a logo is optional: the
        block type as the server records it (what the UI shows) has none, so nothing is ever fetched."""
        block.register_type_and_schema()
        with get_client(sync_client=True) as client:
            assert client.read_block_type_by_slug(block.get_block_type_slug()).logo_url is None


@pytest.mark.parametrize(("block", "slug"), list(SLUGS.items()), ids=list(SLUGS.values()))
def test_slugs_stay_as_saved_blocks_know_them(block, slug):
    assert block.get_block_type_slug() == slug
