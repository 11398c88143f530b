"""Huawei Cloud MPC credentials and encode settings as a Block (or from `HUAWEICLOUD_SDK_*` and `MPC_*`; a
named block wins)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, SecretStr

from vodflow.blocks.credentials import EnvironmentCredentials
from vodflow.providers import MissingCredentials
from vodflow.providers.mpc import MpcAuth, MpcClient, endpoint_for_region
from vodflow.settings import MpcEnvironment, load_settings


class HuaweiMpcCredentials(EnvironmentCredentials):
    """Credentials for Huawei Cloud Media Processing Center (AK/SK, optionally temporary, or an IAM token),
    its project and region, and where remote encodes write in OBS. Hands out an `MpcClient`.

    Example:
        ```python
        from vodflow.blocks.huawei_mpc import HuaweiMpcCredentials

        credentials = HuaweiMpcCredentials.load("BLOCK_NAME")
        with credentials.get_client() as client:
            task = client.get_task(100211)
        ```
    """

    _block_type_name = "Huawei MPC Credentials"
    _block_type_slug = "huawei-mpc-credentials"
    _documentation_url = "https://support.huaweicloud.com/intl/en-us/api-mpc/mpc_04_0001.html"
    _environment: ClassVar[type[MpcEnvironment]] = MpcEnvironment

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
        return MpcClient(
            self.base_url(),
            self.project_id,
            auth,
            timeout=self.timeout_seconds,
            retry=load_settings().retry(),
        )

    @classmethod
    def _fields_from(cls, environment: MpcEnvironment) -> dict[str, Any]:  # type: ignore[override]
        fields = environment.model_dump(exclude_none=True, exclude={"template_ids"})
        return {**fields, "trans_template_ids": environment.trans_template_ids()}
