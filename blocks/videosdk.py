"""VideoSDK credentials as a Block (or from `VIDEOSDK_*`; a named block wins)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from vodflow.blocks.credentials import EnvironmentCredentials
from vodflow.providers import MissingCredentials
from vodflow.providers.videosdk import DEFAULT_BASE_URL, TokenSource, VideoSDKClient
from vodflow.settings import VideoSDKEnvironment, load_settings


class VideoSDKCredentials(EnvironmentCredentials):
    """Credentials for VideoSDK's encoder-jobs API: an API key and secret (vodflow mints short-lived JWTs)
    or a ready token. Hands out a `VideoSDKClient`.

    Example:
        ```python
        from vodflow.blocks.videosdk import VideoSDKCredentials

        credentials = VideoSDKCredentials.load("BLOCK_NAME")
        with credentials.get_client() as client:
            job = client.get_job("64b0c0ffee0000000000abcd")
        ```
    """

    _block_type_name = "VideoSDK Credentials"
    _block_type_slug = "videosdk-credentials"
    _documentation_url = "https://docs.videosdk.live/api-reference/realtime-communication/intro"
    _environment: ClassVar[type[VideoSDKEnvironment]] = VideoSDKEnvironment

    api_key: SecretStr | None = Field(
        default=None, title="API key", description="VideoSDK API key, put in the JWT as `apikey`."
    )
    secret: SecretStr | None = Field(
        default=None, description="VideoSDK API secret that signs the JWTs (HS256)."
    )
    token: SecretStr | None = Field(
        default=None, description="A ready-made JWT, used as is when no API key and secret are given."
    )
    base_url: str = Field(
        default=DEFAULT_BASE_URL, title="Base URL", description="Root URL of the VideoSDK API."
    )
    token_ttl_seconds: int = Field(
        default=600, ge=60, le=86400, description="Lifetime of each minted JWT, in seconds."
    )
    permissions: list[str] = Field(
        default_factory=lambda: ["allow_join"], description="Permissions written into minted JWTs."
    )
    timeout_seconds: float = Field(
        default=30.0, gt=0, description="Time limit of each HTTP call, in seconds."
    )

    def get_client(self) -> VideoSDKClient:
        """A client (close it, or use it as a context manager); ValueError when credentials are incomplete."""
        if self.api_key and self.secret:
            api_key, secret = self.api_key.get_secret_value(), self.secret.get_secret_value()
            token = TokenSource(
                api_key, secret, ttl_seconds=self.token_ttl_seconds, permissions=self.permissions
            )
            secrets = [api_key, secret]
        elif self.token:
            ready = self.token.get_secret_value()
            token, secrets = (lambda: ready), [ready]
        else:
            raise MissingCredentials("VideoSDK needs api_key and secret, or a token")
        return VideoSDKClient(
            self.base_url, token, secrets=secrets, timeout=self.timeout_seconds, retry=load_settings().retry()
        )
