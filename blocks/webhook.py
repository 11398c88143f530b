"""Webhook signing and the outbound address policy, as a Block (name it in `VODFLOW_WEBHOOK_BLOCK`)."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, field_validator

from vodflow.net.guard import NetPolicy
from vodflow.net.webhook import WebhookConfig, check_secret
from vodflow.settings import Settings


class VodflowWebhookSettings(Block):
    """How vodflow signs and sends job webhooks (Standard Webhooks), and which internal hosts it may reach
    for webhooks and `videoUrl` downloads. Hands out a `WebhookConfig` and a `NetPolicy`.

    Example:
        ```python
        from vodflow.blocks.webhook import VodflowWebhookSettings

        settings = VodflowWebhookSettings.load("BLOCK_NAME")
        config = settings.get_config()  # what vodflow.net.webhook.deliver_webhook uses
        ```
    """

    _block_type_name = "Vodflow Webhook Settings"
    _block_type_slug = "vodflow-webhook-settings"
    _description = "Signing secret and retry window of job webhooks; hosts and networks opened to vodflow."
    _documentation_url = "https://www.standardwebhooks.com/"

    signing_secret: SecretStr | None = Field(
        default=None,
        description="Standard Webhooks secret, `whsec_` + base64 of 24-64 bytes; webhooks are unsigned "
        "without one.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names, addresses and CIDRs (e.g. `videos.intranet`, `10.20.0.0/16`) that webhooks "
        "and source downloads may reach although they are loopback, private or link-local.",
    )
    timeout_seconds: float = Field(default=10.0, gt=0, description="Time limit of each delivery attempt.")
    retry_window_seconds: float = Field(
        default=300.0, gt=0, description="Time after which a failing delivery stops being retried."
    )
    max_attempts: int = Field(default=8, ge=1, le=50, description="Most delivery attempts per event.")

    @field_validator("signing_secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_secret(value.get_secret_value())
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _entries(cls, value: list[str]) -> list[str]:
        NetPolicy.from_entries(value)
        return value

    def net_policy(self) -> NetPolicy:
        """The address policy of these settings."""
        return NetPolicy.from_entries(self.allowed_hosts)

    def get_config(self) -> WebhookConfig:
        """What `deliver_webhook` needs; the secret is unwrapped here, at the moment of use."""
        return WebhookConfig(
            secret=self.signing_secret.get_secret_value() if self.signing_secret else None,
            timeout=self.timeout_seconds,
            window=self.retry_window_seconds,
            max_attempts=self.max_attempts,
            policy=self.net_policy(),
        )


def resolve_webhook_config(settings: Settings) -> WebhookConfig:
    """The block named by `VODFLOW_WEBHOOK_BLOCK` (it wins), else the `VODFLOW_WEBHOOK_*` settings; its
    `policy` is also the address policy of source downloads."""
    if settings.webhook_block:
        return VodflowWebhookSettings.load(settings.webhook_block, _sync=True).get_config()
    return settings.webhook_config()
