"""The encoder-job HTTP API's settings as a Block: the API key and secret tokens are checked against."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from vodflow.providers.videosdk import mint_token
from vodflow.settings import DEFAULT_DEPLOYMENT, ApiSettings


class VodflowApi(Block):
    """Settings of `vodflow api`, the VideoSDK-compatible encoder-job API: the API key and secret that
    sign clients' JWTs, the pipeline deployment jobs run on, and the storage they live in.

    Example:
        ```python
        from vodflow.blocks.api import VodflowApi

        api_block = VodflowApi.load("BLOCK_NAME")
        token = api_block.mint_token()  # the Authorization header value for a client
        ```
    """

    _block_type_name = "Vodflow API"
    _block_type_slug = "vodflow-api"
    _description = "Keys and settings of vodflow's VideoSDK-compatible encoder-job HTTP API."
    _documentation_url = "https://docs.videosdk.live/api-reference/realtime-communication/intro"

    api_key: str = Field(title="API key", description="The `apikey` claim every client token must carry.")
    api_secret: SecretStr = Field(
        title="API secret", description="The HS256 secret client tokens are signed with."
    )
    deployment: str = Field(
        default=DEFAULT_DEPLOYMENT, description="Pipeline deployment jobs run on: `flow/deployment`."
    )
    storage_block: str | None = Field(
        default=None,
        description="Name of the `vodflow-storage` block for job documents and outputs (passed on to the "
        "runs); default: the VODFLOW_STORAGE* environment of the API and the workers.",
    )
    cancel_timeout_seconds: float = Field(
        default=30.0, gt=0, description="How long a delete waits for a running job's flow run to stop."
    )

    allow_local_sources: bool = Field(
        default=False,
        description="Accept `file://` URLs and paths as `videoUrl` (the workers then read their own disks).",
    )
    max_body_bytes: int = Field(default=1 << 20, gt=0, description="Largest request body accepted, in bytes.")
    max_token_ttl_seconds: float = Field(
        default=86400.0, gt=0, description="Refuse client tokens whose `exp` lies further ahead than this."
    )

    playback_secret: SecretStr | None = Field(
        default=None,
        description="HS256 secret of playback tokens and signed links of private jobs (at least 32 "
        "characters); default: one derived from the API secret.",
    )

    def get_settings(self) -> ApiSettings:
        return ApiSettings(
            api_key=self.api_key,
            api_secret=self.api_secret,
            deployment=self.deployment,
            storage_block=self.storage_block,
            cancel_timeout=self.cancel_timeout_seconds,
            allow_local_sources=self.allow_local_sources,
            max_body_bytes=self.max_body_bytes,
            max_token_ttl=self.max_token_ttl_seconds,
            playback_secret=self.playback_secret,
        )

    def mint_token(self, ttl_seconds: int = 3600) -> str:
        """A client token (HS256 JWT with `apikey`, `permissions`, `iat`, `exp`) valid for `ttl_seconds`."""
        return mint_token(self.api_key, self.api_secret.get_secret_value(), ttl_seconds=ttl_seconds)
