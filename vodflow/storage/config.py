"""Which storage to open: a local directory or an S3 bucket, as a value (from settings or a block)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from vodflow.errors import StorageError
from vodflow.storage.base import Storage


@dataclass(frozen=True)
class StorageConfig:
    """A storage's settings; `source` names where they came from in error messages (variables, a block)."""

    kind: Literal["local", "s3"] = "local"
    data_dir: Path = Path("./data")
    endpoint: str | None = None
    access_key: str | None = None
    secret_key: SecretStr | None = field(default=None, repr=False)
    bucket: str = "vodflow"
    secure: bool = False
    region: str | None = None
    public_base_url: str | None = None
    source: str = "storage settings"  # where these came from, for error messages
    names: tuple[str, str, str] = ("endpoint", "access_key", "secret_key")  # as the source spells them

    def s3_credentials(self) -> tuple[str, str, str]:
        """(endpoint, access key, secret key); StorageError naming what is missing."""
        secret = self.secret_key.get_secret_value() if self.secret_key else None
        values = (self.endpoint, self.access_key, secret)
        missing = [name for name, value in zip(self.names, values, strict=True) if not (value or "").strip()]
        if missing:
            raise StorageError(
                code="invalid_storage_config",
                message=f"{self.source}: {', '.join(missing)} required for S3 storage",
            )
        return self.endpoint.strip(), self.access_key.strip(), self.secret_key.get_secret_value().strip()

    def open(self) -> Storage:
        """The storage these settings describe; StorageError when S3 settings are missing."""
        if self.kind == "local":
            from vodflow.storage.local import LocalStorage

            return LocalStorage(self.data_dir, (self.public_base_url or "").strip() or None)
        endpoint, access_key, secret_key = self.s3_credentials()
        from vodflow.storage.s3 import s3_storage  # the minio client loads only for S3

        return s3_storage(
            endpoint,
            access_key,
            secret_key,
            bucket=self.bucket.strip(),
            secure=self.secure,
            region=(self.region or "").strip() or None,
            public_base_url=(self.public_base_url or "").strip() or None,
        )
