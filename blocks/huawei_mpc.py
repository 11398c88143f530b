"""Huawei Cloud MPC credentials and encode settings: a Block, the environment, and which one wins."""

from __future__ import annotations

import os

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from vodflow.providers import MissingCredentials
from vodflow.providers.mpc import MpcAuth, MpcClient, endpoint_for_region

ENV_VARS = (
    "HUAWEICLOUD_SDK_AK",
    "HUAWEICLOUD_SDK_SK",
    "HUAWEICLOUD_SDK_SECURITY_TOKEN",
    "MPC_AUTH_TOKEN",
    "MPC_PROJECT_ID",
    "MPC_REGION",
    "MPC_ENDPOINT",
    "MPC_OUTPUT_BUCKET",
    "MPC_OUTPUT_PREFIX",
    "MPC_OBS_LOCATION",
    "MPC_TEMPLATE_IDS",
)


class HuaweiMpcCredentials(Block):
    """Credentials for Huawei Cloud Media Processing Center (AK/SK, optionally temporary, or an IAM token),
    its project and region, and where remote encodes write in OBS. Hands out an `MpcClient`.

    Example:
        ```python
        from blocks.huawei_mpc import HuaweiMpcCredentials

        credentials = HuaweiMpcCredentials.load("BLOCK_NAME")
        with credentials.get_client() as client:
            task = client.get_task(100211)
        ```
    """

    _block_type_name = "Huawei MPC Credentials"
    _block_type_slug = "huawei-mpc-credentials"
    _documentation_url = "https://support.huaweicloud.com/intl/en-us/api-mpc/mpc_04_0001.html"

    ak: SecretStr | None = Field(
        default=None, title="Access key (AK)", description="Access key id for signing."
    )
    sk: SecretStr | None = Field(
        default=None, title="Secret key (SK)", description="Secret access key for signing."
    )
    security_token: SecretStr | None = Field(
        default=None, description="Security token of temporary AK/SK credentials, sent as X-Security-Token."
    )
    auth_token: SecretStr | None = Field(
        default=None,
        title="IAM token",
        description="IAM token sent as X-Auth-Token, used when no AK/SK is given.",
    )
    project_id: str = Field(description="Project id of the region, in every path and in X-Project-Id.")
    region: str | None = Field(default=None, description="Region such as `cn-north-4`; gives the endpoint.")
    endpoint: str | None = Field(
        default=None, description="Full endpoint URL; overrides the one derived from the region."
    )
    output_bucket: str | None = Field(default=None, description="OBS bucket that remote encodes write to.")
    output_prefix: str = Field(
        default="vodflow",
        description="Folder in the output bucket; each job writes under `<prefix>/<job id>`.",
    )
    obs_location: str | None = Field(
        default=None, title="OBS location", description="Region of the OBS buckets; defaults to the region."
    )
    trans_template_ids: list[int] = Field(
        default_factory=list, description="Transcoding template ids that a remote encode applies."
    )
    timeout_seconds: float = Field(
        default=30.0, gt=0, description="Time limit of each HTTP call, in seconds."
    )

    def base_url(self) -> str:
        if self.endpoint:
            return self.endpoint
        if self.region:
            return endpoint_for_region(self.region)
        raise MissingCredentials("MPC needs a region or an endpoint")

    def location(self) -> str:
        """The OBS `location` of input and output objects."""
        location = self.obs_location or self.region
        if not location:
            raise MissingCredentials("MPC encodes need obs_location or region")
        return location

    def get_client(self) -> MpcClient:
        """A client (close it, or use it as a context manager); MissingCredentials when incomplete."""
        if self.ak and self.sk:
            auth = MpcAuth(
                access_key=self.ak.get_secret_value(),
                secret_key=self.sk.get_secret_value(),
                security_token=self.security_token.get_secret_value() if self.security_token else None,
            )
        elif self.auth_token:
            auth = MpcAuth(iam_token=self.auth_token.get_secret_value())
        else:
            raise MissingCredentials("MPC needs ak and sk, or an IAM auth_token")
        return MpcClient(self.base_url(), self.project_id, auth, timeout=self.timeout_seconds)


def from_env() -> HuaweiMpcCredentials:
    """Credentials from `HUAWEICLOUD_SDK_*` and `MPC_*`; MissingCredentials when incomplete."""
    env = os.environ
    ak, sk, token = env.get("HUAWEICLOUD_SDK_AK"), env.get("HUAWEICLOUD_SDK_SK"), env.get("MPC_AUTH_TOKEN")
    if not ((ak and sk) or token) or not env.get("MPC_PROJECT_ID"):
        raise MissingCredentials(
            "set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK (or MPC_AUTH_TOKEN) and MPC_PROJECT_ID,"
            " or name a block"
        )
    templates = [int(t) for t in (env.get("MPC_TEMPLATE_IDS") or "").replace(" ", "").split(",") if t]
    return HuaweiMpcCredentials(
        ak=ak or None,
        sk=sk or None,
        security_token=env.get("HUAWEICLOUD_SDK_SECURITY_TOKEN") or None,
        auth_token=token or None,
        project_id=env["MPC_PROJECT_ID"],
        region=env.get("MPC_REGION") or None,
        endpoint=env.get("MPC_ENDPOINT") or None,
        output_bucket=env.get("MPC_OUTPUT_BUCKET") or None,
        output_prefix=env.get("MPC_OUTPUT_PREFIX") or "vodflow",
        obs_location=env.get("MPC_OBS_LOCATION") or None,
        trans_template_ids=templates,
        timeout_seconds=float(env.get("VODFLOW_HTTP_TIMEOUT") or 30.0),
    )


def resolve_credentials(block_name: str | None = None) -> HuaweiMpcCredentials:
    """The named block when a name is given (it wins over the environment), else `from_env()`."""
    if block_name:
        return HuaweiMpcCredentials.load(block_name, _sync=True)
    return from_env()
