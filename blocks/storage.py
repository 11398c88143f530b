"""Where vodflow stores its objects, as a Block: a local directory or an S3 bucket with its credentials."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from vodflow.settings import Settings
from vodflow.storage.base import Storage
from vodflow.storage.config import StorageConfig

if TYPE_CHECKING:
    import minio


class VodflowStorage(Block):
    """Storage settings for vodflow: a local data directory, or an S3 bucket (MinIO, SeaweedFS, AWS...).
    Hands out the `Storage` the pipeline writes to, or a bare MinIO client.

    Example:
        ```python
        from vodflow.blocks.storage import VodflowStorage

        storage_block = VodflowStorage.load("BLOCK_NAME")
        storage = storage_block.get_storage()
        print(storage.list_keys("jobs/"))
        ```
    """

    _block_type_name = "Vodflow Storage"
    _block_type_slug = "vodflow-storage"
    _description = "Where vodflow keeps sources, published files and job documents: local disk or S3."
    _documentation_url = "https://min.io/docs/minio/linux/developers/python/API.html"

    kind: Literal["local", "s3"] = Field(
        default="local", description="`local` for a directory on this machine, `s3` for an S3 bucket."
    )
    data_dir: str = Field(
        default="./data", title="Data directory", description="Root directory of local storage."
    )
    endpoint: str | None = Field(
        default=None,
        description="S3 endpoint as host:port (or http(s)://host:port, the scheme then sets TLS).",
    )
    access_key: str | None = Field(default=None, description="S3 access key id.")
    secret_key: SecretStr | None = Field(default=None, description="S3 secret access key.")
    bucket: str = Field(default="vodflow", description="S3 bucket, created on first use if missing.")
    secure: bool = Field(default=False, title="Use TLS", description="Connect to the S3 endpoint over HTTPS.")
    region: str | None = Field(default=None, description="S3 region, when the server needs one.")
    public_base_url: str | None = Field(
        default=None,
        title="Public base URL",
        description=(
            "Prefix of published file URLs (a CDN, say); default http(s)://endpoint/bucket for S3, "
            "file:// URIs for a local directory."
        ),
    )

    def config(self) -> StorageConfig:
        """These settings as the value the storage is opened from."""
        return StorageConfig(
            kind=self.kind,
            data_dir=Path(self.data_dir),
            endpoint=self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            bucket=self.bucket,
            secure=self.secure,
            region=self.region,
            public_base_url=self.public_base_url,
            source="vodflow-storage block",
        )

    def get_client(self) -> minio.Minio:
        """A MinIO client for the S3 settings; StorageError when endpoint or keys are missing."""
        from vodflow.storage.s3 import make_minio_client, parse_endpoint

        endpoint, access_key, secret_key = self.config().s3_credentials()
        host, secure = parse_endpoint(endpoint, self.secure)
        return make_minio_client(host, access_key, secret_key, secure=secure, region=self.region)

    def get_storage(self) -> Storage:
        """The storage these settings describe; StorageError when S3 settings are missing."""
        return self.config().open()


def resolve_storage_config(block_name: str | None, settings: Settings) -> StorageConfig:
    """The named `vodflow-storage` block's settings, else the block in `VODFLOW_STORAGE_BLOCK`'s, else the
    `VODFLOW_STORAGE*` settings, as a value steps on other machines can open the storage from."""
    name = block_name or settings.storage_block
    if name:
        return VodflowStorage.load(name, _sync=True).config()
    return settings.storage_config()


def resolve_storage(block_name: str | None, settings: Settings) -> Storage:
    """The storage `resolve_storage_config` describes, opened."""
    return resolve_storage_config(block_name, settings).open()
