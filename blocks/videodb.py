"""VideoDB credentials as a Block (or from `VIDEODB_*`; a named block wins)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from vodflow.blocks.credentials import EnvironmentCredentials
from vodflow.providers import MissingCredentials
from vodflow.providers.videodb import DEFAULT_BASE_URL, VideoDBClient
from vodflow.settings import VideoDBEnvironment, load_settings


class VideoDBCredentials(EnvironmentCredentials):
    """Credentials for VideoDB's API (an `sk-...` key sent as `x-access-token`). Hands out a `VideoDBClient`.

    Example:
        ```python
        from vodflow.blocks.videodb import VideoDBCredentials

        credentials = VideoDBCredentials.load("BLOCK_NAME")
        with credentials.get_client() as client:
            download = client.get_download("dl-123")
        ```
    """

    _block_type_name = "VideoDB Credentials"
    _block_type_slug = "videodb-credentials"
    _documentation_url = "https://docs.videodb.io/"
    _environment: ClassVar[type[VideoDBEnvironment]] = VideoDBEnvironment

    api_key: SecretStr | None = Field(
        default=None, title="API key", description="VideoDB API key (`sk-...`)."
    )
    base_url: str = Field(
        default=DEFAULT_BASE_URL, title="Base URL", description="Root URL of the VideoDB API."
    )
    timeout_seconds: float = Field(
        default=30.0, gt=0, description="Time limit of each HTTP call, in seconds."
    )

    def get_client(self) -> VideoDBClient:
        """A client (close it, or use it as a context manager); MissingCredentials without a key."""
        if not self.api_key:
            raise MissingCredentials("VideoDB needs an api_key")
        return VideoDBClient(
            self.base_url,
            self.api_key.get_secret_value(),
            timeout=self.timeout_seconds,
            retry=load_settings().retry(),
        )
