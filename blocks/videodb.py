"""VideoDB credentials: a Block, the same settings from the environment, and the rule that a block wins."""

from __future__ import annotations

import os

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from vodflow.providers import MissingCredentials
from vodflow.providers.videodb import DEFAULT_BASE_URL, VideoDBClient

ENV_VARS = ("VIDEODB_API_KEY", "VIDEODB_BASE_URL")


class VideoDBCredentials(Block):
    """Credentials for VideoDB's API (an `sk-...` key sent as `x-access-token`). Hands out a `VideoDBClient`.

    Example:
        ```python
        from blocks.videodb import VideoDBCredentials

        credentials = VideoDBCredentials.load("BLOCK_NAME")
        with credentials.get_client() as client:
            download = client.get_download("dl-123")
        ```
    """

    _block_type_name = "VideoDB Credentials"
    _block_type_slug = "videodb-credentials"
    _documentation_url = "https://docs.videodb.io/"

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
        return VideoDBClient(self.base_url, self.api_key.get_secret_value(), timeout=self.timeout_seconds)


def from_env() -> VideoDBCredentials:
    """Credentials from `VIDEODB_API_KEY` / `VIDEODB_BASE_URL`; MissingCredentials without a key."""
    env = os.environ
    if not env.get("VIDEODB_API_KEY"):
        raise MissingCredentials("set VIDEODB_API_KEY, or name a block")
    return VideoDBCredentials(
        api_key=env["VIDEODB_API_KEY"],
        base_url=env.get("VIDEODB_BASE_URL") or DEFAULT_BASE_URL,
        timeout_seconds=float(env.get("VODFLOW_HTTP_TIMEOUT") or 30.0),
    )


def resolve_credentials(block_name: str | None = None) -> VideoDBCredentials:
    """The named block when a name is given (it wins over the environment), else `from_env()`."""
    if block_name:
        return VideoDBCredentials.load(block_name, _sync=True)
    return from_env()
